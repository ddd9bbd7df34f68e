"""Integrity under faults (issue 11, part 4): power loss, disk full, early signals, key races.

- The result folder is fsynced after the `.partial` is created and after the rename.
- Disk full while writing the `.sig` (injected at `os.write`, the writer's one way to the disk):
  no `.sig.tmp` is left, the message says the `.jsonl` is complete and how to re-create the
  `.sig`, and `netprobe verify --write-sig` does (stock `ssh-keygen -Y verify` accepts it).
- A SIGTERM as soon as the header is on disk still ends in a signed stop checkpoint.
- Five first runs at once with no key: one key, every file signed by it, no "already exists".
- SIGINT during start-up: exit 130 and one line, no traceback.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import netprobe.cli  # noqa: F401  (registers every command on the app)
from netprobe.cli.app import app
from netprobe.evidence.keys import Signer, generate_key, load_or_create_signer, load_signer
from netprobe.evidence.reader import COMPLETE, verify_file
from netprobe.evidence.writer import ResultWriter, SignatureFileError
from tests import recordfactory as rf
from tests.test_cli_run import (  # noqa: F401  (loopback is a fixture)
    Lab,
    env,
    loopback,
    read_lines,
    run_args,
    slow_run,
    target_list,
)

runner = CliRunner()


@pytest.fixture
def signer(tmp_path: Path) -> Signer:
    return generate_key(tmp_path / "key" / "id_ed25519", "tester")


def start_writer(folder: Path, signer: Signer) -> ResultWriter:
    writer = ResultWriter(folder, "20250526T010000Z_lab-1", signer=signer, checkpoint_every=2)
    writer.write_header(rf.header())
    for record in rf.healthy_controls():
        writer.write(record)
    return writer


# --- the folder entry is durable ---------------------------------------------------------------


def test_the_folder_is_synced_after_create_and_after_rename(tmp_path, signer, monkeypatch):
    seen: list[set[str]] = []  # the folder's names at each fsync of the folder
    real = os.fsync

    def fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            seen.append(set(os.listdir(f"/proc/self/fd/{fd}")))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    folder = tmp_path / "results"
    writer = start_writer(folder, signer)
    partial, final = writer.partial_path.name, writer.path.name
    assert seen and partial in seen[0], "the new .partial's entry was not synced"
    created = len(seen)
    writer.close(rf.summary())
    after = seen[created:]
    assert any(final in names and partial not in names for names in after), after


# --- disk full while writing the .sig ----------------------------------------------------------


def fail_sig_writes(monkeypatch) -> None:
    """os.write raises ENOSPC for the .sig's temporary file, as on a full disk."""
    real_open, real_write = os.open, os.write
    doomed: set[int] = set()

    def fake_open(path, flags, mode=0o777, *args, **kwargs):
        fd = real_open(path, flags, mode, *args, **kwargs)
        if str(path).endswith(".sig.tmp"):
            doomed.add(fd)
        return fd

    def fake_write(fd, data):
        if fd in doomed:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(os, "open", fake_open)
    monkeypatch.setattr(os, "write", fake_write)


def test_disk_full_at_the_sig_leaves_no_temp_file_and_says_how_to_fix_it(
    tmp_path, signer, monkeypatch
):
    writer = start_writer(tmp_path / "results", signer)
    fail_sig_writes(monkeypatch)
    with pytest.raises(SignatureFileError) as caught:
        writer.close(rf.summary())
    monkeypatch.undo()
    message = str(caught.value.strerror)
    path = writer.path
    assert f"{path} is complete and signed" in message
    assert f"netprobe verify --write-sig {path}" in message and "No space left" in message
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no .sig, no .tmp
    assert verify_file(path).status == COMPLETE

    result = runner.invoke(
        app, ["verify", "--write-sig", str(path), "--key", str(signer.path)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    sig = path.with_name(path.name + ".sig")
    assert sig.read_text().startswith("-----BEGIN SSH SIGNATURE-----")
    ssh_keygen = shutil.which("ssh-keygen")
    if ssh_keygen is None and os.environ.get("CI"):
        raise AssertionError("CI must have ssh-keygen")
    if ssh_keygen is not None:
        allowed = tmp_path / "allowed"
        allowed.write_text(signer.allowed_signers_line() + "\n")
        checked = subprocess.run(
            [ssh_keygen, "-Y", "verify", "-f", str(allowed), "-I", "tester",
             "-n", "netprobe-result@v1", "-s", str(sig)],
            input=path.read_bytes(), capture_output=True, timeout=30, check=False,
        )  # fmt: skip
        assert checked.returncode == 0, checked.stderr


def test_write_sig_refuses_another_key_and_unfinished_files(tmp_path, signer):
    writer = start_writer(tmp_path / "results", signer)
    path = writer.close(rf.summary())
    other = generate_key(tmp_path / "other", "someone")
    wrong = runner.invoke(app, ["verify", "--write-sig", str(path), "--key", str(other.path)])
    assert wrong.exit_code == 2 and f"signed by {signer.fingerprint}" in wrong.stderr
    unfinished = start_writer(tmp_path / "partial", signer)
    unfinished.abandon()
    refused = runner.invoke(
        app, ["verify", "--write-sig", str(unfinished.partial_path), "--key", str(signer.path)]
    )
    assert refused.exit_code == 2 and "not COMPLETE" in refused.stderr
    assert not list((tmp_path / "partial").glob("*.sig"))


# --- signals -----------------------------------------------------------------------------------


def test_sigterm_right_after_the_header_closes_with_a_stop_checkpoint(
    tmp_path,
    loopback: Lab,  # noqa: F811
):
    key = tmp_path / "key"
    generate_key(key, "tester")
    proc = slow_run(tmp_path, loopback, "--key", str(key))
    results = tmp_path / "results"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the moment the header line is on disk
        partials = list(results.glob(".*.partial")) if results.exists() else []
        if partials and b"\n" in partials[0].read_bytes():
            break
        time.sleep(0.001)
    else:
        proc.kill()
        raise AssertionError("the run never wrote its header")
    proc.send_signal(signal.SIGTERM)
    _stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    [final] = results.glob("*.jsonl")
    lines = read_lines(final)
    assert lines[-2]["type"] == "checkpoint" and lines[-2]["reason"] == "signal"
    assert verify_file(final).status == COMPLETE


def blocked_on_the_fifo(pid: int, waited: float) -> bool:
    """The process waits in open() of a FIFO (kernels without symbols: asleep for 5 s)."""
    wchan = Path(f"/proc/{pid}/wchan").read_text()
    if wchan not in ("", "0"):
        return wchan == "wait_for_partner"
    return waited > 5 and Path(f"/proc/{pid}/stat").read_text().split()[2] == "S"


def test_sigint_during_start_up_is_exit_130_and_one_line(tmp_path):
    # A target list, config or key that is a FIFO is refused at once (issue 12), so the run is
    # held in its start-up by a log file that is one: opening it blocks until a reader comes.
    fifo = tmp_path / "netprobe.log"
    os.mkfifo(fifo, 0o600)
    local = tmp_path / "local.yaml"  # loopback only, should the run ever get past its start-up
    local.write_text('name: local\ngroups:\n  local:\n    endpoints: ["127.0.0.1:9"]\n')
    proc = subprocess.Popen(
        [sys.executable, "-m", "netprobe", "run", str(local), "--log", str(fifo),
         "--out", str(tmp_path / "out")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(tmp_path),
    )  # fmt: skip
    started = time.monotonic()
    while not blocked_on_the_fifo(proc.pid, time.monotonic() - started):
        assert time.monotonic() - started < 60, "the run never reached the target list"
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert stderr == "netprobe: interrupted\n" and stdout == ""
    assert not (tmp_path / "out").exists()


# --- concurrent first runs ---------------------------------------------------------------------


def test_concurrent_first_keys_in_one_process_are_one_key(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    found: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(12)

    def first_run() -> None:
        try:
            start.wait()
            found.append(load_or_create_signer(None)[0].fingerprint)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=first_run) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == [] and len(found) == 12 and len(set(found)) == 1
    folder = tmp_path / "data" / "netprobe"
    assert sorted(p.name for p in folder.iterdir()) == ["id_ed25519", "id_ed25519.pub"]


def test_five_first_runs_at_once_share_the_one_key(
    tmp_path,
    loopback: Lab,  # noqa: F811
):
    targets = target_list(tmp_path, loopback)
    procs = []
    for number in range(5):
        args = run_args(tmp_path, loopback, targets, "--quiet")
        args[args.index("--out") + 1] = str(tmp_path / f"results-{number}")
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "netprobe", *args],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env(tmp_path),
            )  # fmt: skip
        )
    outcomes = [(proc.wait(120), proc.stdout.read(), proc.stderr.read()) for proc in procs]
    for code, _out, err in outcomes:
        assert code in (0, 75), err
        assert "already exists" not in err and "Traceback" not in err
    key = tmp_path / "data" / "netprobe" / "id_ed25519"
    fingerprint = load_signer(key).fingerprint
    signed = [Path(out.strip()) for code, out, _err in outcomes if code == 0]
    assert signed, "no run finished"
    for path in signed:
        entry = verify_file(path)
        assert (entry.status, entry.signer_fingerprint) == (COMPLETE, fingerprint)
    created = [err for _code, _out, err in outcomes if "created signing key" in err]
    assert len(created) == 1
    report = json.loads(
        subprocess.run(
            [sys.executable, "-m", "netprobe", "report", str(signed[0]), "--format", "json"],
            capture_output=True, text=True, env=env(tmp_path), timeout=60, check=True,
        ).stdout
    )  # fmt: skip
    assert report["file"]["signer"]["trusted"] is True  # the local key needs no trust step
