"""The trust store and `netprobe keys trust|list|show`, as a researcher uses them (issue 11).

Every test has its own config and data folders (tests/conftest.py), so "the trust store" and
"the local key" here are the test's, never the user's.
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
from netprobe.evidence import sshsig
from netprobe.evidence.keys import KeyFileError, Signer, default_key_path, generate_key
from netprobe.evidence.trust import (
    add_trusted,
    default_trust_store_path,
    load_trust_store,
    signers_for,
)
from netprobe.evidence.writer import ResultWriter
from tests import recordfactory as rf

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def signed_file(folder: Path, signer: Signer, stem: str = "20250526T010000Z_lab-1") -> Path:
    writer = ResultWriter(folder, stem, signer=signer, checkpoint_every=2)
    writer.write_header(rf.header())
    for record in rf.healthy_controls() + rf.domain_ok("telegram.org", "203.0.113.10"):
        writer.write(record)
    return writer.close(rf.summary())


@pytest.fixture
def alice(tmp_path: Path) -> Signer:
    return generate_key(tmp_path / "alice" / "id_ed25519", "alice")


def test_the_trust_store_lives_in_the_config_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    assert default_trust_store_path() == tmp_path / "cfg" / "netprobe" / "allowed_signers"
    monkeypatch.setenv("NETPROBE_ALLOWED_SIGNERS", str(tmp_path / "mine"))
    assert default_trust_store_path() == tmp_path / "mine"


def test_an_empty_set_up_trusts_nobody_and_the_local_key_once_it_exists():
    assert load_trust_store() == []
    local = generate_key(default_key_path())
    [(principal, key)] = load_trust_store()
    assert (principal, sshsig.fingerprint(key)) == ("netprobe", local.fingerprint)


def test_keys_trust_adds_one_line_that_keys_list_shows(alice):
    result = invoke("keys", "trust", f"{alice.path}.pub", "--principal", "hanoi-1")
    assert result.exit_code == 0, result.output
    assert f"trusted: hanoi-1 {alice.fingerprint}" in result.stdout
    store = default_trust_store_path()
    line = f'hanoi-1 namespaces="netprobe-result@v1" {alice.public_key_line.rsplit(" ", 1)[0]}'
    assert store.read_text() == line + "\n"
    again = invoke("keys", "trust", f"{alice.path}.pub", "--principal", "hanoi-1")
    assert again.exit_code == 0 and "already trusted" in again.stdout
    assert store.read_text().count("\n") == 1
    renamed = invoke("keys", "trust", f"{alice.path}.pub", "--principal", "someone-else")
    assert renamed.exit_code == 2 and "already trusted as 'hanoi-1'" in renamed.stderr
    listed = json.loads(invoke("keys", "list", "--format", "json").stdout)
    assert listed["trust_store"] == str(store)
    assert listed["signers"] == [
        {
            "principal": "hanoi-1",
            "fingerprint": alice.fingerprint,
            "public_key": alice.public_key_line.rsplit(" ", 1)[0],
            "source": "trust store",
        }
    ]
    table = invoke("keys", "list")
    assert table.exit_code == 0 and "hanoi-1" in table.stdout and alice.fingerprint in table.stdout


def test_keys_list_shows_the_local_key_as_trusted():
    local = generate_key(default_key_path())
    [entry] = json.loads(invoke("keys", "list", "--format", "json").stdout)["signers"]
    assert (entry["fingerprint"], entry["source"]) == (local.fingerprint, "local key")


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("", "found 0"),
        ("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ me\n", "ssh-ed25519 only"),
        ("ssh-ed25519 !!!notbase64 me\n", "not a valid ssh-ed25519 public key"),
    ],
)
def test_keys_trust_explains_a_bad_pub_file(tmp_path, content, words):
    bad = tmp_path / "bad.pub"
    bad.write_text(content)
    result = invoke("keys", "trust", str(bad), "--principal", "x")
    assert result.exit_code == 2 and words in result.stderr and "Traceback" not in result.output
    assert not default_trust_store_path().exists()


def test_keys_trust_refuses_a_principal_with_spaces(alice):
    result = invoke("keys", "trust", f"{alice.path}.pub", "--principal", "two words")
    assert result.exit_code == 2 and "without spaces" in result.stderr


def test_keys_show_prints_the_key_the_first_run_made():
    missing = invoke("keys", "show")
    assert missing.exit_code == 2 and "no key at" in missing.stderr
    local = generate_key(default_key_path())  # what the first `netprobe run` does
    shown = invoke("keys", "show")
    assert shown.exit_code == 0
    assert local.fingerprint in shown.stdout and local.public_key_line in shown.stdout
    assert local.allowed_signers_line() in shown.stdout
    assert "PRIVATE KEY" not in shown.output
    document = json.loads(invoke("keys", "show", "--format", "json").stdout)
    assert document["allowed_signers_line"] == local.allowed_signers_line()
    assert document["fingerprint"] == local.fingerprint


def test_a_pub_file_is_accepted_as_allowed_signers(tmp_path, alice):
    path = signed_file(tmp_path / "results", alice)
    pub = f"{alice.path}.pub"
    [entry] = json.loads(
        invoke("verify", str(path), "--allowed-signers", pub, "--format", "json").stdout
    )
    assert (entry["status"], entry["trusted"], entry["principal"]) == ("COMPLETE", True, "alice")
    assert invoke("report", str(path), "--allowed-signers", pub).exit_code == 0
    assert invoke("report", str(path)).exit_code == 7  # not in the trust store


@pytest.mark.parametrize("command", ["verify", "report", "timeline"])
def test_a_bad_signers_file_is_a_usage_error_naming_its_line(tmp_path, alice, command):
    path = signed_file(tmp_path / "results", alice)
    broken = tmp_path / "signers"
    key_data = alice.public_key_line.split()[1]
    broken.write_text(f'# mine\nalice namespaces="netprobe-result@v1" {key_data}\n')  # no type
    result = invoke(command, str(path), "--allowed-signers", str(broken))
    assert result.exit_code == 2
    assert f"{broken}:2" in result.stderr and "missing key type or key data" in result.stderr
    assert "UNREADABLE" not in result.output and "Traceback" not in result.output


def test_a_broken_trust_store_names_itself(tmp_path, alice):
    path = signed_file(tmp_path / "results", alice)
    store = default_trust_store_path()
    store.parent.mkdir(parents=True)
    store.write_text("alice ssh-ed25519\n")
    result = invoke("report", str(path))
    assert result.exit_code == 2 and f"trust store {store}" in result.stderr
    assert f"{store}:1" in result.stderr


def test_allowed_signers_replaces_the_trust_store(tmp_path, alice):
    path = signed_file(tmp_path / "results", alice)
    add_trusted(Path(f"{alice.path}.pub"), "alice")
    assert invoke("report", str(path)).exit_code == 0
    other = generate_key(tmp_path / "other", "bob")
    only_bob = tmp_path / "bob_signers"
    only_bob.write_text(other.allowed_signers_line() + "\n")
    result = invoke("report", str(path), "--allowed-signers", str(only_bob))
    assert result.exit_code == 7 and f"UNTRUSTED signer {alice.fingerprint}" in result.stdout
    assert [sshsig.fingerprint(k) for _p, k in signers_for(only_bob)] == [other.fingerprint]
    with pytest.raises(KeyFileError, match="no such file"):
        signers_for(tmp_path / "nope")


def test_the_local_key_is_trusted_without_any_trust_store(tmp_path):
    local = generate_key(default_key_path())
    path = signed_file(tmp_path / "results", local)
    result = invoke("report", str(path), "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["file"]["signer"]["trusted"] is True
    assert not default_trust_store_path().exists()


SSH_KEYGEN = shutil.which("ssh-keygen")


@pytest.mark.skipif(SSH_KEYGEN is None and not os.environ.get("CI"), reason="no ssh-keygen")
def test_ssh_keygen_accepts_the_trust_store_and_the_shown_line(tmp_path, alice):
    path = signed_file(tmp_path / "results", alice)
    invoke("keys", "trust", f"{alice.path}.pub", "--principal", "hanoi-1")

    def ssh_verify(signers: Path, principal: str) -> int:
        return subprocess.run(
            [SSH_KEYGEN or "ssh-keygen", "-Y", "verify", "-f", str(signers), "-I", principal,
             "-n", "netprobe-result@v1", "-s", f"{path}.sig"],
            input=path.read_bytes(), capture_output=True, timeout=30, check=False,
        ).returncode  # fmt: skip

    assert ssh_verify(default_trust_store_path(), "hanoi-1") == 0
    shown = json.loads(invoke("keys", "show", "--key", str(alice.path), "--format", "json").stdout)
    line_file = tmp_path / "shown_line"
    line_file.write_text(shown["allowed_signers_line"] + "\n")
    assert ssh_verify(line_file, "alice") == 0
    path.write_bytes(path.read_bytes().replace(b'"failure":null', b'"failure":"x"', 1))
    assert ssh_verify(default_trust_store_path(), "hanoi-1") != 0
