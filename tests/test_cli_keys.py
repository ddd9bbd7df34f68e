"""`netprobe keygen` and `netprobe verify` as a user runs them: output, errors, exit codes."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

import netprobe.cli  # noqa: F401  (registers every command on the app)
from netprobe.cli.app import app
from netprobe.evidence.keys import Signer, generate_key
from netprobe.evidence.writer import ResultWriter
from netprobe.model import records

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def write_file(directory: Path, signer: Signer | None, stem: str = "run") -> Path:
    writer = ResultWriter(directory, stem, signer=signer, checkpoint_every=2)
    writer.write_header(records.new_record(records.HEADER))
    for i in range(3):
        writer.write(records.new_record(records.TCP, target_id=f"endpoint:192.0.2.{i}:443"))
    return writer.close(records.new_record(records.SUMMARY))


@pytest.fixture
def signer(tmp_path: Path) -> Signer:
    return generate_key(tmp_path / "key", "alice")


def test_keygen_prints_public_key_and_allowed_signers_line(tmp_path: Path) -> None:
    key = tmp_path / "var" / "id_ed25519"
    result = invoke("keygen", "--out", str(key), "--principal", "hanoi-1")
    assert result.exit_code == 0, result.output
    public = (tmp_path / "var" / "id_ed25519.pub").read_text().strip()
    assert public in result.stdout
    key_part = " ".join(public.split()[:2])
    assert f'hanoi-1 namespaces="netprobe-result@v1" {key_part}' in result.stdout
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    private_body = key.read_text().splitlines()[1]
    assert "PRIVATE KEY" not in result.output and private_body not in result.output


def test_keygen_default_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert invoke("keygen").exit_code == 0
    assert (tmp_path / "netprobe" / "id_ed25519").is_file()


def test_keygen_refuses_to_overwrite(tmp_path: Path, signer: Signer) -> None:
    before = (tmp_path / "key").read_bytes()
    result = invoke("keygen", "--out", str(tmp_path / "key"))
    assert result.exit_code == 2
    assert "refusing to overwrite" in result.stderr and "Traceback" not in result.output
    assert (tmp_path / "key").read_bytes() == before


def tamper(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data.replace(b"192.0.2.1", b"192.0.2.7"))
    return path


def truncate(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: data.index(b"192.0.2.2") + 5])
    return path


@pytest.mark.parametrize(
    ("make", "status", "code"),
    [
        (lambda d, s: write_file(d, s), "COMPLETE", 0),
        (lambda d, s: truncate(write_file(d, s)), "PARTIAL", 3),
        (lambda d, s: write_file(d, None), "UNSIGNED", 4),
        (lambda d, s: tamper(write_file(d, s)), "INVALID", 5),
        (lambda d, s: d / "missing.jsonl", "UNREADABLE", 2),
    ],
)
def test_verify_exit_codes(tmp_path: Path, signer: Signer, make, status: str, code: int) -> None:
    path = make(tmp_path / "results", signer)
    result = invoke("verify", str(path), "--format", "json")
    assert result.exit_code == code, result.output
    report = json.loads(result.stdout)
    assert [entry["status"] for entry in report] == [status]


def test_verify_worst_file_wins(tmp_path: Path, signer: Signer) -> None:
    good = write_file(tmp_path, signer, "good")
    partial = truncate(write_file(tmp_path, signer, "partial"))
    bad = tamper(write_file(tmp_path, signer, "bad"))
    assert invoke("verify", str(good), str(partial)).exit_code == 3
    assert invoke("verify", str(good), str(partial), str(bad)).exit_code == 5
    assert invoke("verify", str(bad), str(tmp_path / "missing")).exit_code == 5


def test_verify_table_says_whether_the_signer_is_trusted(tmp_path: Path, signer: Signer) -> None:
    path = write_file(tmp_path, signer)
    untrusted = invoke("verify", str(path))
    assert "COMPLETE" in untrusted.stdout and "UNTRUSTED" in untrusted.stdout
    # Checked against the (empty) trust store by default: not trusted, still COMPLETE.
    [entry] = json.loads(invoke("verify", str(path), "--format", "json").stdout)
    assert (entry["status"], entry["trusted"]) == ("COMPLETE", False)
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(signer.allowed_signers_line() + "\n")
    trusted = invoke("verify", str(path), "--allowed-signers", str(allowed), "--format", "json")
    assert trusted.exit_code == 0
    [entry] = json.loads(trusted.stdout)
    assert (entry["trusted"], entry["principal"]) == (True, "alice")


def test_verify_reports_the_bad_line(tmp_path: Path, signer: Signer) -> None:
    path = tamper(write_file(tmp_path, signer))
    [entry] = json.loads(invoke("verify", str(path), "--format", "json").stdout)
    assert entry["bad_line"] is not None and f"line {entry['bad_line']}" in entry["message"]


def test_verify_accepts_partial_files(tmp_path: Path, signer: Signer) -> None:
    writer = ResultWriter(tmp_path, "run", signer=signer, checkpoint_every=2)
    writer.write_header(records.new_record(records.HEADER))
    for i in range(3):
        writer.write(records.new_record(records.TCP, target_id=f"endpoint:192.0.2.{i}:443"))
    writer.abandon()
    result = invoke("verify", str(writer.partial_path), "--format", "json")
    assert result.exit_code == 3
    [entry] = json.loads(result.stdout)
    assert (entry["records_covered"], entry["records_uncovered"]) == (2, 1)


def test_verify_bad_allowed_signers_file(tmp_path: Path, signer: Signer) -> None:
    path = write_file(tmp_path, signer)
    missing = invoke("verify", str(path), "--allowed-signers", str(tmp_path / "nope"))
    assert missing.exit_code == 2 and "allowed-signers" in missing.stderr
    broken = tmp_path / "allowed"
    broken.write_text("alice ssh-ed25519 !!!\n")
    result = invoke("verify", str(path), "--allowed-signers", str(broken), "--format", "json")
    # A usage error naming the signers file and line; the result file is not called UNREADABLE.
    assert result.exit_code == 2 and result.stdout == ""
    assert f"{broken}:1" in result.stderr and "UNREADABLE" not in result.output


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to be sure of the file modes")
def test_help_texts_have_examples() -> None:
    for command in ("keygen", "verify"):
        result = invoke(command, "--help")
        assert result.exit_code == 0 and "Example:" in result.stdout
