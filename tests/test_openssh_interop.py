"""Interoperability with stock OpenSSH `ssh-keygen -Y` (needs openssh-client >= 8.2).

Skips when ssh-keygen is missing, but fails when CI is set: CI must prove interop.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from netprobe.evidence import sshsig
from netprobe.evidence.keys import Signer, generate_key, load_signer
from netprobe.evidence.reader import COMPLETE, verify_file
from netprobe.evidence.writer import ResultWriter
from netprobe.model import records

SSH_KEYGEN = shutil.which("ssh-keygen")
if SSH_KEYGEN is None:
    if os.environ.get("CI"):
        raise RuntimeError("CI is set but ssh-keygen (openssh-client) is not installed")
    pytest.skip("ssh-keygen (openssh-client) is not installed", allow_module_level=True)


def ssh_keygen(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess:
    return subprocess.run(
        [SSH_KEYGEN, *args], input=stdin, capture_output=True, timeout=30, check=False
    )


def ssh_verify(tmp: Path, signer: Signer, data: bytes, armored: str, namespace: str = ""):
    allowed = tmp / "allowed_signers"
    allowed.write_text(signer.allowed_signers_line() + "\n")
    sig = tmp / "check.sig"
    sig.write_text(armored)
    namespace = namespace or sshsig.NAMESPACE
    return ssh_keygen(
        "-Y", "verify", "-f", str(allowed), "-I", signer.principal, "-n", namespace,
        "-s", str(sig), stdin=data,
    )  # fmt: skip


@pytest.fixture
def signer(tmp_path: Path) -> Signer:
    return generate_key(tmp_path / "key" / "id_ed25519", "volunteer-1")


@pytest.fixture
def result(tmp_path: Path, signer: Signer) -> Path:
    writer = ResultWriter(tmp_path / "results", "run", signer=signer, checkpoint_every=2)
    writer.write_header(records.new_record(records.HEADER, vantage="interop"))
    for i in range(5):
        writer.write(records.new_record(records.TCP, target_id=f"endpoint:198.51.100.{i}:443"))
    return writer.close(records.new_record(records.SUMMARY, measurements=5))


def test_ssh_keygen_reads_our_keys(tmp_path: Path, signer: Signer) -> None:
    derived = ssh_keygen("-y", "-f", str(signer.path))
    assert derived.returncode == 0, derived.stderr
    assert derived.stdout.decode().split()[:2] == signer.public_key_line.split()[:2]
    listed = ssh_keygen("-l", "-f", f"{signer.path}.pub")
    assert signer.fingerprint in listed.stdout.decode()


def test_detached_sig_verifies_with_stock_openssh(tmp_path: Path, signer: Signer, result: Path):
    armored = Path(f"{result}.sig").read_text()
    checked = ssh_verify(tmp_path, signer, result.read_bytes(), armored)
    assert checked.returncode == 0, checked.stderr
    assert b"Good" in checked.stdout + checked.stderr


def test_every_checkpoint_verifies_over_its_byte_prefix(tmp_path: Path, signer: Signer, result):
    data = result.read_bytes()
    offset, checked = 0, 0
    for line in data.splitlines(keepends=True):
        record = json.loads(line)
        if record["type"] == "signature":
            blob = base64.b64decode(record["sshsig"])
            outcome = ssh_verify(tmp_path, signer, data[:offset], sshsig.armor(blob))
            assert outcome.returncode == 0, (record["seq"], outcome.stderr)
            checked += 1
        offset += len(line)
    assert checked == 4  # start, after records 2 and 4, end


def test_tampered_file_is_rejected(tmp_path: Path, signer: Signer, result: Path) -> None:
    data = bytearray(result.read_bytes())
    data[data.index(b"198.51.100.3")] ^= 0x01
    outcome = ssh_verify(tmp_path, signer, bytes(data), Path(f"{result}.sig").read_text())
    assert outcome.returncode != 0


def test_wrong_namespace_is_rejected(tmp_path: Path, signer: Signer, result: Path) -> None:
    armored = Path(f"{result}.sig").read_text()
    outcome = ssh_verify(tmp_path, signer, result.read_bytes(), armored, namespace="file")
    assert outcome.returncode != 0


def test_ssh_keygen_signature_is_accepted_and_identical(tmp_path: Path, signer: Signer, result):
    data = result.read_bytes()
    lines = data.splitlines(keepends=True)
    prefix = b"".join(lines[:2])  # header + start checkpoint: what the start signature covers
    signed = ssh_keygen("-Y", "sign", "-f", str(signer.path), "-n", sshsig.NAMESPACE, stdin=prefix)
    assert signed.returncode == 0, signed.stderr
    blob = sshsig.dearmor(signed.stdout.decode())
    key = sshsig.verify_digest(blob, sshsig.NAMESPACE, hashlib.sha512(prefix).digest())
    assert sshsig.fingerprint(key) == signer.fingerprint
    assert blob == base64.b64decode(json.loads(lines[2])["sshsig"])  # byte-identical


def test_key_made_by_ssh_keygen_signs_files_we_verify(tmp_path: Path) -> None:
    made = ssh_keygen("-q", "-t", "ed25519", "-N", "", "-C", "ops", "-f", str(tmp_path / "k"))
    assert made.returncode == 0, made.stderr
    signer = load_signer(tmp_path / "k")
    assert signer.principal == "ops"
    writer = ResultWriter(tmp_path, "run", signer=signer)
    writer.write_header(records.new_record(records.HEADER))
    path = writer.close(records.new_record(records.SUMMARY))
    assert verify_file(path).status == COMPLETE
    outcome = ssh_verify(tmp_path, signer, path.read_bytes(), Path(f"{path}.sig").read_text())
    assert outcome.returncode == 0, outcome.stderr
