"""Tampering cases a forger would try, each with the outcome a user must see (issue 11).

- A file re-signed with another key, one record edited to show a block: `report` says
  "UNTRUSTED signer SHA256:..." and exits 7; `diff` and `timeline` skip it with a warning naming
  the file and the fingerprint.
- Bytes appended after the final checkpoint, with or without a newline: INVALID (PARTIAL when
  the file has no final checkpoint), and stock `ssh-keygen -Y verify` agrees with the `.sig`.
- A copy of a file under another name: one run, the copy reported (both files named).
- A file signed by an unknown key in a timeline folder: skipped with a warning.

Everything runs in the test's private config and data folders (tests/conftest.py); the trusted
volunteer is added with `netprobe keys trust`, as a researcher would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

import netprobe.cli  # noqa: F401  (registers every command on the app)
from netprobe.cli.app import app
from netprobe.evidence.keys import Signer, generate_key
from netprobe.evidence.reader import load_result
from netprobe.evidence.writer import ResultWriter
from tests import recordfactory as rf

runner = CliRunner()
TG = "telegram.org"
GOOD = "203.0.113.10"
STEM = "20250526T010000Z_lab-1"


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def ok_records() -> list[dict]:
    return rf.healthy_controls() + rf.domain_ok(TG, GOOD)


def write_signed(folder: Path, stem: str, signer: Signer, head: dict, records: list[dict]) -> Path:
    writer = ResultWriter(folder, stem, signer=signer, checkpoint_every=3)
    writer.write_header(head)
    for record in records:
        writer.write(record)
    return writer.close(rf.summary(len(records)))


@pytest.fixture
def volunteer(tmp_path: Path) -> Signer:
    signer = generate_key(tmp_path / "keys" / "volunteer", "hanoi-1")
    result = invoke("keys", "trust", f"{signer.path}.pub", "--principal", "hanoi-1")
    assert result.exit_code == 0, result.output
    return signer


@pytest.fixture
def mallory(tmp_path: Path) -> Signer:
    return generate_key(tmp_path / "keys" / "mallory", "netprobe")


@pytest.fixture
def original(tmp_path: Path, volunteer: Signer) -> Path:
    return write_signed(tmp_path / "results", STEM, volunteer, rf.header(), ok_records())


def forge(original: Path, forger: Signer, folder: Path, stem: str) -> Path:
    """The original's header and records, one TLS record edited to a reset, re-signed."""
    loaded = load_result(original, verify=False)
    records = [dict(record) for record in loaded.records]
    edited = next(r for r in records if r["type"] == "tls" and r.get("failure") is None)
    edited["failure"] = "connection_reset"
    header = {k: v for k, v in loaded.header.items() if k != "signer"}
    return write_signed(folder, stem, forger, header, records)


@pytest.fixture
def forged(original: Path, mallory: Signer, tmp_path: Path) -> Path:
    return forge(original, mallory, tmp_path / "results", "20250526T010001Z_lab-1")


# --- the re-signed forgery ---------------------------------------------------------------------


def test_the_forgery_verifies_by_itself_so_only_trust_can_refuse_it(forged, mallory):
    [entry] = json.loads(invoke("verify", str(forged), "--format", "json").stdout)
    assert entry["status"] == "COMPLETE" and entry["trusted"] is False
    assert entry["signer_fingerprint"] == mallory.fingerprint


def test_report_of_the_forgery_says_untrusted_and_exits_7(forged, mallory):
    for fmt in ("table", "markdown"):
        result = invoke("report", str(forged), "--format", fmt)
        assert result.exit_code == 7, result.output
        assert f"UNTRUSTED signer {mallory.fingerprint}" in result.stdout
        assert f"UNTRUSTED signer {mallory.fingerprint}" in result.stderr
    document = json.loads(invoke("report", str(forged), "--format", "json").stdout)
    assert document["file"]["signer"]["trusted"] is False
    accepted = invoke("report", str(forged), "--accept-untrusted")
    assert accepted.exit_code == 0 and f"UNTRUSTED signer {mallory.fingerprint}" in accepted.stdout


def test_report_of_the_original_is_trusted(original, volunteer):
    result = invoke("report", str(original), "--format", "json")
    assert result.exit_code == 0, result.output
    signer = json.loads(result.stdout)["file"]["signer"]
    assert signer == {"fingerprint": volunteer.fingerprint, "trusted": True, "principal": "hanoi-1"}
    assert "UNTRUSTED" not in invoke("report", str(original)).stdout


def test_diff_skips_the_forgery_with_a_warning_and_shows_no_block(original, forged, mallory):
    result = invoke("diff", str(original), str(forged), "--format", "json")
    assert result.exit_code == 7
    assert f"skipped {forged}: UNTRUSTED signer {mallory.fingerprint}" in result.stderr
    assert "newly_blocked" not in result.stdout


def test_diff_with_accept_untrusted_still_sees_one_run(original, forged):
    result = invoke("diff", str(original), str(forged), "--accept-untrusted", "--format", "json")
    assert result.exit_code == 2
    assert str(original) in result.stderr and str(forged) in result.stderr
    assert "same run id" in result.stderr and "newly_blocked" not in result.stdout


def timeline(*args: str):
    return invoke("timeline", *args, "--format", "json", "--jobs", "1")


def test_timeline_skips_the_forgery_and_counts_the_run_once(original, forged, mallory):
    result = timeline(str(original.parent))
    assert result.exit_code == 0, result.output
    assert f"skipped {forged}: UNTRUSTED signer {mallory.fingerprint}" in result.stderr
    report = json.loads(result.stdout)
    assert report["runs"] == 1
    assert [item["path"] for item in report["skipped"]] == [str(forged)]


def test_timeline_accepting_the_forgery_still_counts_one_run(original, forged):
    result = timeline(str(original.parent), "--accept-untrusted")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["runs"] == 1 and report["skipped"] == []
    [duplicate] = report["duplicates"]
    assert duplicate == {
        "path": str(forged),
        "copy_of": str(original),
        "run_id": load_result(original).header["run_id"],
    }
    assert str(forged) in result.stderr and str(original) in result.stderr


# --- appended bytes ----------------------------------------------------------------------------

APPENDED = b'{"schema_version":1,"type":"tcp","target_id":"endpoint:192.0.2.1:443"}'


@pytest.mark.parametrize("tail", [APPENDED, APPENDED + b"\n", b"x", b"\n"])
def test_bytes_after_the_final_checkpoint_are_invalid(original, tail):
    original.write_bytes(original.read_bytes() + tail)
    result = invoke("verify", str(original), "--format", "json")
    [entry] = json.loads(result.stdout)
    assert (result.exit_code, entry["status"]) == (5, "INVALID"), entry
    assert "after the final signed checkpoint" in entry["message"]
    assert invoke("report", str(original)).exit_code == 2


def test_bytes_without_newline_after_a_non_final_checkpoint_are_a_torn_line(tmp_path, volunteer):
    writer = ResultWriter(tmp_path, "run", signer=volunteer, checkpoint_every=2)
    writer.write_header(rf.header())
    for record in ok_records():
        writer.write(record)
    writer.abandon()  # a killed run: no final checkpoint
    partial = writer.partial_path
    partial.write_bytes(partial.read_bytes() + APPENDED)
    [entry] = json.loads(invoke("verify", str(partial), "--format", "json").stdout)
    assert entry["status"] == "PARTIAL" and "torn" in entry["message"]


SSH_KEYGEN = shutil.which("ssh-keygen")


@pytest.mark.skipif(SSH_KEYGEN is None and not os.environ.get("CI"), reason="no ssh-keygen")
@pytest.mark.parametrize("tail", [b"", APPENDED, APPENDED + b"\n"])
def test_ssh_keygen_agrees_about_appended_bytes(original, volunteer, tail):
    original.write_bytes(original.read_bytes() + tail)
    allowed = original.parent / "allowed_signers"
    allowed.write_text(volunteer.allowed_signers_line() + "\n")
    checked = subprocess.run(
        [SSH_KEYGEN or "ssh-keygen", "-Y", "verify", "-f", str(allowed), "-I", "hanoi-1",
         "-n", "netprobe-result@v1", "-s", f"{original}.sig"],
        input=original.read_bytes(), capture_output=True, timeout=30, check=False,
    )  # fmt: skip
    ours = json.loads(invoke("verify", str(original), "--format", "json").stdout)[0]["status"]
    assert (checked.returncode == 0) == (ours == "COMPLETE") == (tail == b"")


# --- copies and unknown keys in a timeline folder ----------------------------------------------


def test_a_copy_under_another_name_is_one_run(original):
    copy = original.parent / "sent-to-editor.jsonl"
    shutil.copyfile(original, copy)
    result = timeline(str(original.parent))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["runs"] == 1
    assert [(d["path"], d["copy_of"]) for d in report["duplicates"]] == [(str(copy), str(original))]
    assert f"{copy} has the same run id" in result.stderr and str(original) in result.stderr
    diffed = invoke("diff", str(original), str(copy))
    assert diffed.exit_code == 2 and str(copy) in diffed.stderr and str(original) in diffed.stderr


def test_an_unknown_key_in_a_timeline_folder_is_skipped(original, mallory, tmp_path):
    stranger = write_signed(
        original.parent, "20250526T020000Z_lab-1", mallory,
        rf.header(started_at="2025-05-26T02:00:00.000000Z", run_id="1" * 32), ok_records(),
    )  # fmt: skip
    result = timeline(str(original.parent))
    assert result.exit_code == 0, result.output
    assert f"skipped {stranger}: UNTRUSTED signer {mallory.fingerprint}" in result.stderr
    assert json.loads(result.stdout)["runs"] == 1
    accepted = json.loads(timeline(str(original.parent), "--accept-untrusted").stdout)
    assert accepted["runs"] == 2 and accepted["skipped"] == []
    alone = timeline(str(stranger))
    assert alone.exit_code == 2 and "none of the 1 files could be used" in alone.stderr
    trusted = invoke("keys", "trust", f"{mallory.path}.pub", "--principal", "stranger")
    assert trusted.exit_code == 0  # trusted now: the same process reads the store afresh
    assert json.loads(timeline(str(original.parent)).stdout)["runs"] == 2
