"""Evidence bundles: `netprobe bundle` packs two real runs (signed, timestamped by a local TSA);
the bundle's verify.sh runs with nothing but sh, ssh-keygen, openssl and sha256sum on PATH.

Targets are the loopback servers of test_cli_run, the TSA is `openssl ts -reply` on 127.0.0.1
(tests/tsa_server.py); nothing leaves the machine.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from netprobe.bundle.check import check_bundle
from tests.test_cli_run import Lab, loopback, netprobe, run_args, target_list
from tests.tsa_server import Tsa, TsaServer, make_tsa

__all__ = ["loopback"]  # the fixture, imported for pytest

TOOLS = ("sh", "ssh-keygen", "openssl", "sha256sum")


@pytest.fixture(scope="module")
def tsa(tmp_path_factory: pytest.TempPathFactory) -> Tsa:
    return make_tsa(tmp_path_factory.mktemp("tsa"))


def clean_path(tmp_path: Path) -> Path:
    """A folder holding only symlinks to the tools verify.sh may use (no python, no netprobe)."""
    folder = tmp_path / "clean-bin"
    folder.mkdir()
    for name in TOOLS:
        found = shutil.which(name)
        assert found, f"{name} is needed (Debian: openssh-client, openssl, coreutils)"
        (folder / name).symlink_to(found)
    return folder


def run_script(folder: Path, tools: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`sh <folder>/verify.sh` under `env -i PATH=<tools>`, from another directory."""
    return subprocess.run(
        ["env", "-i", f"PATH={tools}", "sh", str(folder / "verify.sh")],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def two_runs(tmp_path: Path, lab: Lab, tsa: Tsa) -> list[Path]:
    targets = target_list(tmp_path, lab)
    with TsaServer(tsa) as server:
        for _ in range(2):
            started = time.time()
            extra = ("--tsa", server.url, "--tsa-ca", str(tsa.ca))
            done = netprobe(tmp_path, *run_args(tmp_path, lab, targets, *extra))
            assert done.returncode == 0, done.stderr
            time.sleep(max(0.0, 1.1 - (time.time() - started)))  # file names are per second
    files = sorted((tmp_path / "results").glob("*.jsonl"))
    assert len(files) == 2
    return files


def unpack(archive: Path, into: Path) -> Path:
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    (folder,) = into.iterdir()
    return folder


def repack(folder: Path, archive: Path) -> None:
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=folder.name)


def flip_at(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def flip_middle(path: Path) -> None:
    flip_at(path, path.stat().st_size // 2)


def ssh_verify(folder: Path, signed: str, principal: str, namespace: str) -> int:
    with open(folder / signed, "rb") as message:
        return subprocess.run(
            ["ssh-keygen", "-Y", "verify", "-f", str(folder / "allowed_signers")]
            + ["-I", principal, "-n", namespace, "-s", str(folder / f"{signed}.sig")],
            stdin=message,
            capture_output=True,
            timeout=60,
        ).returncode


def openssl_verify(folder: Path, name: str) -> int:
    return subprocess.run(
        ["openssl", "ts", "-verify", "-data", str(folder / name)]
        + ["-in", str(folder / f"{name}.tsr"), "-CAfile", str(folder / "tsa-ca.pem")],
        capture_output=True,
        timeout=60,
    ).returncode


def test_a_bundle_verifies_on_a_clean_path_and_any_one_byte_change_fails(
    tmp_path: Path, loopback: Lab, tsa: Tsa
) -> None:
    files = two_runs(tmp_path, loopback, tsa)
    archive = tmp_path / "case.tar.gz"
    made = netprobe(
        tmp_path, "bundle", *map(str, files), "--out", str(archive), "--tsa-ca", str(tsa.ca)
    )
    assert made.returncode == 0, made.stderr
    folder = unpack(archive, tmp_path / "unpacked")
    assert folder.name == "case"
    names = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    for path in files:
        for suffix in ("", ".sig", ".tsr"):
            assert f"results/{path.name}{suffix}" in names
        stem = path.name.removesuffix(".jsonl")
        assert {f"reports/{stem}.json", f"reports/{stem}.txt"} <= set(names)
    expected = {"allowed_signers", "tsa-ca.pem", "MANIFEST.sha256", "MANIFEST.sha256.sig"}
    assert expected | {"VERIFY.md", "verify.sh", "reports/timeline.html"} <= set(names)
    report = json.loads((folder / "reports" / f"{files[0].stem}.json").read_text())
    assert report["file"]["verification"] == "COMPLETE" and report["verdicts"]
    assert "loop.test" in (folder / "reports" / f"{files[0].stem}.txt").read_text()

    # Nothing the bundle adds names a path of the machine that made it.
    for name in names:
        if not name.startswith("results/"):
            assert str(tmp_path) not in (folder / name).read_text(), name

    # The manifest is sha256sum's own format and lists every other file.
    manifest = (folder / "MANIFEST.sha256").read_text().splitlines()
    listed = {line.split("  ", 1)[1]: line.split("  ", 1)[0] for line in manifest}
    assert set(listed) == set(names) - {"MANIFEST.sha256", "MANIFEST.sha256.sig"}
    for name, digest in listed.items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest

    # Untouched: the script (on a PATH of four tools, from another folder), ssh-keygen and
    # openssl by hand, and `bundle --check` all accept it.
    tools = clean_path(tmp_path)
    script = run_script(folder, tools, cwd=tmp_path)
    assert script.returncode == 0, script.stdout + script.stderr
    assert "OK: all 6 checks passed" in script.stdout
    principal = (folder / "allowed_signers").read_text().split()[0]
    for path in files:
        name = f"results/{path.name}"
        assert ssh_verify(folder, name, principal, "netprobe-result@v1") == 0
        assert openssl_verify(folder, name) == 0
    assert ssh_verify(folder, "MANIFEST.sha256", principal, "netprobe-bundle@v1") == 0
    checked = netprobe(tmp_path, "bundle", "--check", str(archive), "--format", "json")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert all(item["ok"] for item in json.loads(checked.stdout))

    # A one-byte change to any file of the bundle: the script fails, `bundle --check` fails,
    # and the stock tool that covers the file rejects it.
    for name in names:
        changed = tmp_path / "changed" / name.replace("/", "_") / "case"
        shutil.copytree(folder, changed)
        flip_middle(changed / name)
        script = run_script(changed, tools, cwd=tmp_path)
        assert script.returncode != 0, f"verify.sh accepted a change to {name}"
        assert "FAILED" in script.stderr or "syntax" in script.stderr or name == "verify.sh"
        repacked = changed.parent / "case.tar.gz"
        repack(changed, repacked)
        assert not all(check.ok for check in check_bundle(repacked)), name
        if name.endswith(".jsonl"):
            assert ssh_verify(changed, name, principal, "netprobe-result@v1") != 0, name
            assert openssl_verify(changed, name) != 0, name
        elif name.endswith(".jsonl.sig"):
            assert ssh_verify(changed, name[:-4], principal, "netprobe-result@v1") != 0, name
        elif name.endswith(".jsonl.tsr"):
            # The middle of a token may be its bag of certificates, which no signature covers
            # (openssl uses the trusted CA's own copy): the manifest catches that. A change to
            # a signed byte (here in the file's hash inside the TSTInfo) openssl rejects.
            token = changed / name
            token.write_bytes((folder / name).read_bytes())
            digest = hashlib.sha256((folder / name[:-4]).read_bytes()).digest()
            flip_at(token, token.read_bytes().index(digest) + 7)
            assert openssl_verify(changed, name[:-4]) != 0, name
        elif name.startswith("MANIFEST"):
            assert ssh_verify(changed, "MANIFEST.sha256", principal, "netprobe-bundle@v1") != 0

    # The CLI agrees on a changed bundle and names the file.
    changed = tmp_path / "changed" / f"results_{files[1].name}" / "case.tar.gz"
    rejected = netprobe(tmp_path, "bundle", "--check", str(changed))
    assert rejected.returncode == 5
    assert files[1].name in rejected.stdout and "FAILED" in rejected.stdout


def test_an_unsigned_or_unfinished_file_is_refused(tmp_path: Path, loopback: Lab) -> None:
    targets = target_list(tmp_path, loopback)
    done = netprobe(tmp_path, *run_args(tmp_path, loopback, targets, "--no-sign"))
    assert done.returncode == 0, done.stderr
    (unsigned,) = (tmp_path / "results").glob("*.jsonl")
    archive = tmp_path / "case.tar.gz"
    refused = netprobe(tmp_path, "bundle", str(unsigned), "--out", str(archive))
    assert refused.returncode == 2 and "no detached signature" in refused.stderr
    assert not archive.exists()
    partial = tmp_path / "results" / f".{unsigned.name}.partial"
    shutil.copy(unsigned, partial)
    refused = netprobe(tmp_path, "bundle", str(partial), "--out", str(archive))
    assert refused.returncode == 2 and "not a finished result file" in refused.stderr


def keygen(tmp_path: Path, name: str) -> tuple[Path, str]:
    """A new key at tmp_path/name: (private key path, 'ssh-ed25519 AAAA...')."""
    path = tmp_path / name
    assert netprobe(tmp_path, "keygen", "--out", str(path), "--principal", name).returncode == 0
    return path, " ".join(Path(f"{path}.pub").read_text().split()[:2])


def test_a_file_signed_by_a_key_outside_the_trust_store_is_refused(
    tmp_path: Path, loopback: Lab
) -> None:
    volunteer, volunteer_key = keygen(tmp_path, "volunteer")
    _, stranger_key = keygen(tmp_path, "stranger")
    targets = target_list(tmp_path, loopback)
    done = netprobe(tmp_path, *run_args(tmp_path, loopback, targets, "--key", str(volunteer)))
    assert done.returncode == 0, done.stderr
    (path,) = (tmp_path / "results").glob("*.jsonl")
    store = tmp_path / "config" / "netprobe" / "allowed_signers"  # XDG_CONFIG_HOME/netprobe
    store.parent.mkdir(parents=True)
    store.write_text(f"stranger {stranger_key}\n")
    archive = tmp_path / "case.tar.gz"
    refused = netprobe(tmp_path, "bundle", str(path), "--out", str(archive))
    assert refused.returncode == 2, refused.stderr
    assert "which is not in the trust store" in refused.stderr.replace("\n", " ")
    assert not archive.exists()

    # With the file's key in an allowed signers file, it goes in under that principal; the
    # manifest is signed by the local key, whose line is in the bundle too.
    allowed = tmp_path / "allowed"
    allowed.write_text(f"hanoi-volunteer {volunteer_key}\n")
    made = netprobe(
        tmp_path, "bundle", str(path), "--out", str(archive), "--allowed-signers", str(allowed),
        "--format", "json",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    document = json.loads(made.stdout)
    assert [item["principal"] for item in document["results"]] == ["hanoi-volunteer"]
    folder = unpack(archive, tmp_path / "unpacked")
    lines = (folder / "allowed_signers").read_text().splitlines()
    assert [line.split()[0] for line in lines] == ["hanoi-volunteer", "netprobe"]
    assert stranger_key not in "".join(lines)
    script = run_script(folder, clean_path(tmp_path), cwd=folder)
    assert script.returncode == 0, script.stdout + script.stderr
    assert "OK: all 3 checks passed" in script.stdout
    readme = (folder / "VERIFY.md").read_text()
    assert "No result file in this bundle has a timestamp" in readme
    assert "allowed signers file allowed given" in readme and str(tmp_path) not in readme
    assert all(check.ok for check in check_bundle(archive))


def test_without_a_trust_store_the_files_keys_are_used_and_verify_md_says_so(
    tmp_path: Path, loopback: Lab
) -> None:
    # Two volunteers who both kept the default principal `netprobe`, and a third local key.
    targets = target_list(tmp_path, loopback)
    keys = [keygen(tmp_path, name)[0] for name in ("a", "b")]
    for key in keys:
        started = time.time()
        key.with_name(key.name + ".pub").write_text(
            " ".join(key.with_name(key.name + ".pub").read_text().split()[:2]) + " netprobe\n"
        )
        done = netprobe(tmp_path, *run_args(tmp_path, loopback, targets, "--key", str(key)))
        assert done.returncode == 0, done.stderr
        time.sleep(max(0.0, 1.1 - (time.time() - started)))
    files = sorted((tmp_path / "results").glob("*.jsonl"))
    archive = tmp_path / "case.tar.gz"
    made = netprobe(tmp_path, "bundle", *map(str, files), "--out", str(archive))
    assert made.returncode == 0, made.stderr
    folder = unpack(archive, tmp_path / "unpacked")
    principals = [line.split()[0] for line in (folder / "allowed_signers").read_text().splitlines()]
    assert principals == ["netprobe", "netprobe-2", "netprobe-3"]  # a, b, the local key
    assert "no trust store" in (folder / "VERIFY.md").read_text()
    script = run_script(folder, clean_path(tmp_path), cwd=tmp_path)
    assert script.returncode == 0, script.stdout + script.stderr
    assert all(check.ok for check in check_bundle(archive))


def test_a_tampered_archive_layout_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "evil.tar.gz"
    payload = tmp_path / "payload"
    payload.write_text("x\n")
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(payload, arcname="case/../../escape")
    done = netprobe(tmp_path, "bundle", "--check", str(archive))
    assert done.returncode == 2 and "unsafe member name" in done.stderr
    assert not (tmp_path.parent / "escape").exists()
