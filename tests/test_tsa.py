"""RFC 3161 timestamps end to end: `run --tsa` against a local TSA, `verify`, stock openssl.

The TSA is `openssl ts -reply` behind an HTTP handler on 127.0.0.1 (tests/tsa_server.py) with a
CA made by openssl in the test; the targets are the loopback servers of test_cli_run. Nothing
here leaves the machine.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from netprobe.evidence.timestamp import (
    check_reply,
    load_pem_certificates,
    make_request,
    request_digest,
)
from tests import localservers as ls
from tests.test_cli_run import Lab, loopback, netprobe, run_args, target_list
from tests.tsa_server import Tsa, TsaServer, make_tsa

__all__ = ["loopback"]  # the fixture, imported for pytest


@pytest.fixture(scope="module")
def tsa(tmp_path_factory: pytest.TempPathFactory) -> Tsa:
    return make_tsa(tmp_path_factory.mktemp("tsa"))


def openssl_verify(data: Path, tsr: Path, ca: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["openssl", "ts", "-verify", "-data", str(data), "-in", str(tsr), "-CAfile", str(ca)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def result_file(tmp_path: Path) -> Path:
    (found,) = (tmp_path / "results").glob("*.jsonl")
    return found


def stamped_run(tmp_path: Path, lab: Lab, tsa: Tsa, server: TsaServer, *extra: str):
    targets = target_list(tmp_path, lab)
    args = run_args(tmp_path, lab, targets, "--tsa", server.url, "--tsa-ca", str(tsa.ca), *extra)
    return netprobe(tmp_path, *args)


def test_run_with_tsa_keeps_a_token_that_verify_and_openssl_accept(
    tmp_path: Path, loopback: Lab, tsa: Tsa
) -> None:
    with TsaServer(tsa) as server:
        done = stamped_run(tmp_path, loopback, tsa, server)
    assert done.returncode == 0, done.stderr
    path = result_file(tmp_path)
    tsr = path.with_name(path.name + ".tsr")
    assert tsr.is_file()
    assert f"timestamp: {tsr}" in done.stdout and "VALID" in done.stdout

    # What went out: one TimeStampReq holding the file's SHA-256, a nonce and certReq, no more.
    assert len(server.requests) == 1 and server.content_types == ["application/timestamp-query"]
    algorithm, digest, others = request_digest(server.requests[0])
    assert (algorithm, digest) == ("sha256", hashlib.sha256(path.read_bytes()).digest())
    assert set(others) == {"nonce", "cert_req"} and others["cert_req"] is True
    assert path.name.encode() not in server.requests[0]
    assert b"loopback-test" not in server.requests[0]

    verified = netprobe(tmp_path, "verify", str(path), "--tsa-ca", str(tsa.ca))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "VALID genTime 20" in verified.stdout and "CN=Test TSA" in verified.stdout
    as_json = netprobe(tmp_path, "verify", str(path), "--tsa-ca", str(tsa.ca), "--format", "json")
    (item,) = json.loads(as_json.stdout)
    assert item["status"] == "COMPLETE" and item["timestamp"]["status"] == "VALID"
    assert item["timestamp"]["gen_time"].endswith("Z")
    assert openssl_verify(path, tsr, tsa.ca).returncode == 0

    # Without a CA the token is only consistent: said so, and no failure.
    unchecked = netprobe(tmp_path, "verify", str(path))
    assert unchecked.returncode == 0 and "UNCHECKED" in unchecked.stdout

    # A one-byte change to the result file: both reject it.
    changed = tmp_path / "changed" / path.name
    changed.parent.mkdir()
    shutil.copy(path, changed)
    shutil.copy(tsr, changed.with_name(tsr.name))
    flip(changed, len(changed.read_bytes()) // 2)
    assert openssl_verify(changed, changed.with_name(tsr.name), tsa.ca).returncode != 0
    rejected = netprobe(tmp_path, "verify", str(changed), "--tsa-ca", str(tsa.ca))
    assert rejected.returncode == 5
    assert "timestamp is for other bytes" in rejected.stdout.replace("\n", " ")

    # A one-byte change to the token, in its signed imprint or in its signature: both reject it.
    digest = hashlib.sha256(path.read_bytes()).digest()
    for offset in (tsr.read_bytes().index(digest) + 5, len(tsr.read_bytes()) - 1):
        bad = tmp_path / f"bad{offset}" / path.name
        bad.parent.mkdir()
        shutil.copy(path, bad)
        bad_tsr = bad.with_name(tsr.name)
        shutil.copy(tsr, bad_tsr)
        flip(bad_tsr, offset)
        assert openssl_verify(bad, bad_tsr, tsa.ca).returncode != 0
        assert netprobe(tmp_path, "verify", str(bad), "--tsa-ca", str(tsa.ca)).returncode == 5

    # A CA that did not issue the TSA's certificate: both reject the token.
    other = make_tsa(tmp_path / "other", "Other TSA")
    assert openssl_verify(path, tsr, other.ca).returncode != 0
    wrong_ca = netprobe(tmp_path, "verify", str(path), "--tsa-ca", str(other.ca))
    assert wrong_ca.returncode == 5 and "does not chain" in wrong_ca.stdout.replace("\n", " ")


def test_tsa_down_the_run_completes_and_says_the_timestamp_is_missing(
    tmp_path: Path, loopback: Lab, tsa: Tsa
) -> None:
    url = f"http://127.0.0.1:{ls.closed_port()}/"
    targets = target_list(tmp_path, loopback)
    done = netprobe(tmp_path, *run_args(tmp_path, loopback, targets, "--tsa", url))
    assert done.returncode == 8, done.stderr
    path = result_file(tmp_path)
    assert not path.with_name(path.name + ".tsr").exists()
    assert "timestamp missing" in done.stderr and "unreachable" in done.stderr
    assert netprobe(tmp_path, "verify", str(path)).returncode == 0  # the file itself is fine

    # Later, with the TSA back: `netprobe timestamp` gets the token.
    with TsaServer(tsa) as server:
        retry = netprobe(
            tmp_path, "timestamp", str(path), "--tsa", server.url, "--tsa-ca", str(tsa.ca)
        )
    assert retry.returncode == 0, retry.stderr
    tsr = path.with_name(path.name + ".tsr")
    assert openssl_verify(path, tsr, tsa.ca).returncode == 0
    again = netprobe(tmp_path, "timestamp", str(path), "--tsa", url)
    assert again.returncode == 2 and "already exists" in again.stderr


@pytest.mark.parametrize("mode", ["garbage", "error"])
def test_a_bad_tsa_reply_is_a_missing_timestamp_in_json_too(
    tmp_path: Path, loopback: Lab, tsa: Tsa, mode: str
) -> None:
    with TsaServer(tsa, mode=mode) as server:
        done = stamped_run(tmp_path, loopback, tsa, server, "--format", "json")
    assert done.returncode == 8, done.stderr
    document = json.loads(done.stdout)
    assert document["timestamp"]["tsr"] is None and document["timestamp"]["problem"]
    assert any("timestamp missing" in w for w in document["warnings"])
    path = result_file(tmp_path)
    assert not path.with_name(path.name + ".tsr").exists()


def test_a_token_from_a_tsa_the_ca_does_not_vouch_for_is_not_kept(
    tmp_path: Path, loopback: Lab, tsa: Tsa
) -> None:
    other = make_tsa(tmp_path / "other", "Other TSA")
    with TsaServer(other) as server:
        done = stamped_run(tmp_path, loopback, tsa, server)  # --tsa-ca is `tsa`'s CA
    assert done.returncode == 8
    assert "does not chain" in done.stderr.replace("\n", " ")
    path = result_file(tmp_path)
    assert not path.with_name(path.name + ".tsr").exists()


def test_tsa_and_tsa_ca_in_the_config_file(tmp_path: Path, loopback: Lab, tsa: Tsa) -> None:
    targets = target_list(tmp_path, loopback)
    with TsaServer(tsa) as server:
        config = tmp_path / "config.yaml"
        config.write_text(f"tsa: {server.url}\ntsa-ca: {tsa.ca}\n")
        done = netprobe(tmp_path, *run_args(tmp_path, loopback, targets, "--config", str(config)))
    assert done.returncode == 0, done.stderr
    assert len(server.requests) == 1
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"tsa_ca: {tmp_path / 'missing.pem'}\n")
    refused = netprobe(tmp_path, *run_args(tmp_path, loopback, targets, "--config", str(bad)))
    assert refused.returncode == 2 and "cannot read TSA CA file" in refused.stderr


def test_check_reply_refuses_another_nonce_and_other_bytes(tsa: Tsa) -> None:
    digest = hashlib.sha256(b"some bytes\n").digest()
    request = make_request(digest)
    with TsaServer(tsa) as server:
        status, reply = server.answer(request.der)
    assert status == 200
    ca = load_pem_certificates(tsa.ca.read_bytes())
    assert check_reply(reply, digest, nonce=request.nonce, ca_certs=ca).status == "VALID"
    replayed = check_reply(reply, digest, nonce=request.nonce + 2, ca_certs=ca)
    assert replayed.status == "INVALID" and "nonce" in replayed.message
    other = check_reply(reply, hashlib.sha256(b"other\n").digest(), ca_certs=ca)
    assert other.status == "INVALID" and "other bytes" in other.message
