"""ResultWriter: file layout, checkpoints, rename, detached signature, kill and signal stops."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from netprobe.evidence import sshsig
from netprobe.evidence.keys import Signer, generate_key
from netprobe.evidence.reader import COMPLETE, PARTIAL, UNSIGNED, load_result, verify_file
from netprobe.evidence.writer import ResultWriter
from netprobe.model import records

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def signer(tmp_path: Path) -> Signer:
    return generate_key(tmp_path / "key" / "id_ed25519", "tester")


def tcp_record(i: int) -> dict:
    return records.measurement(
        records.TCP,
        target_id=f"endpoint:192.0.2.{i % 250}:443",
        group="dc",
        role="target",
        attempt=0,
        t0=i * 0.001,
        t=i * 0.001 + 0.0005,
        failure=None,
        failed_operation=None,
        ip=f"192.0.2.{i % 250}",
        port=443,
    )


def write_run(out_dir: Path, signer: Signer | None, count: int, **options) -> Path:
    writer = ResultWriter(out_dir, "run", signer=signer, **options)
    writer.write_header(records.new_record(records.HEADER, vantage="test"))
    for i in range(count):
        writer.write(tcp_record(i))
    return writer.close(records.new_record(records.SUMMARY, measurements=count))


def lines_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_bytes().split(b"\n") if line]


def test_unsigned_file_has_null_signer_and_no_checkpoints(tmp_path: Path) -> None:
    path = write_run(tmp_path, None, 5)
    assert path == tmp_path / "run.jsonl"
    assert not (tmp_path / ".run.jsonl.partial").exists()
    assert not (tmp_path / "run.jsonl.sig").exists()
    types = [r["type"] for r in lines_of(path)]
    assert types == ["header"] + ["tcp"] * 5 + ["summary"]
    assert lines_of(path)[0]["signer"] is None
    assert verify_file(path).status == UNSIGNED


def test_signed_layout_start_interval_end(tmp_path: Path, signer: Signer) -> None:
    path = write_run(tmp_path, signer, 7, checkpoint_every=3)
    kinds = [(r["type"], r.get("reason")) for r in lines_of(path)]
    expected = (
        [("header", None), ("checkpoint", "start"), ("signature", None)]
        + [("tcp", None)] * 3
        + [("checkpoint", "interval"), ("signature", None)]
        + [("tcp", None)] * 3
        + [("checkpoint", "interval"), ("signature", None)]
        + [("tcp", None), ("summary", None), ("checkpoint", "end"), ("signature", None)]
    )
    assert kinds == expected
    assert lines_of(path)[0]["signer"] == signer.header_info()


def test_checkpoint_lines_and_bytes_count_what_precedes_them(
    tmp_path: Path, signer: Signer
) -> None:
    path = write_run(tmp_path, signer, 10, checkpoint_every=4)
    raw_lines = path.read_bytes().splitlines(keepends=True)
    offset = 0
    for number, raw in enumerate(raw_lines):
        record = json.loads(raw)
        if record["type"] == "checkpoint":
            assert (record["lines"], record["bytes"]) == (number, offset)
        if record["type"] == "signature":
            blob = base64.b64decode(record["sshsig"])
            digest = hashlib.sha512(b"".join(raw_lines[:number])).digest()
            sshsig.verify_digest(blob, sshsig.NAMESPACE, digest)
        offset += len(raw)


def test_lines_are_compact_json_with_lf_only(tmp_path: Path, signer: Signer) -> None:
    data = write_run(tmp_path, signer, 3).read_bytes()
    assert b"\r" not in data and data.endswith(b"\n")
    for line in data.splitlines():
        assert line == records.encode_line(json.loads(line)).rstrip(b"\n")


def test_time_based_checkpoint(tmp_path: Path, signer: Signer) -> None:
    writer = ResultWriter(
        tmp_path, "run", signer=signer, checkpoint_every=1000, checkpoint_seconds=0.05
    )
    writer.write_header(records.new_record(records.HEADER))
    writer.write(tcp_record(0))
    assert writer.checkpoints_written == 1  # only the start checkpoint so far
    time.sleep(0.06)
    writer.write(tcp_record(1))
    assert writer.checkpoints_written == 2
    path = writer.close(records.new_record(records.SUMMARY))
    reasons = [r["reason"] for r in lines_of(path) if r["type"] == "checkpoint"]
    assert reasons == ["start", "interval", "end"]


def test_detached_sig_covers_the_whole_file(tmp_path: Path, signer: Signer) -> None:
    path = write_run(tmp_path, signer, 4)
    blob = sshsig.dearmor((tmp_path / "run.jsonl.sig").read_text())
    key = sshsig.verify_digest(blob, sshsig.NAMESPACE, hashlib.sha512(path.read_bytes()).digest())
    assert sshsig.fingerprint(key) == signer.fingerprint


def test_a_second_run_in_the_same_second_gets_a_suffix_never_overwrites(tmp_path: Path) -> None:
    (tmp_path / "run.jsonl").write_text("precious\n")
    (tmp_path / ".run.2.jsonl.partial").write_text("a killed run's evidence\n")
    writer = ResultWriter(tmp_path, "run", signer=None)
    writer.write_header(records.new_record(records.HEADER))
    path = writer.close(records.new_record(records.SUMMARY))
    assert path == tmp_path / "run.3.jsonl"  # run.jsonl is taken, so is run.2's partial
    assert (tmp_path / "run.jsonl").read_text() == "precious\n"
    assert (tmp_path / ".run.2.jsonl.partial").read_text() == "a killed run's evidence\n"
    assert verify_file(path).status == "UNSIGNED"


def test_close_does_not_clobber_a_file_that_appeared_meanwhile(tmp_path: Path) -> None:
    writer = ResultWriter(tmp_path, "run", signer=None)
    writer.write_header(records.new_record(records.HEADER))
    (tmp_path / "run.jsonl").write_text("precious\n")
    with pytest.raises(FileExistsError, match="kept as"):
        writer.close(records.new_record(records.SUMMARY))
    assert (tmp_path / "run.jsonl").read_text() == "precious\n"
    assert (tmp_path / ".run.jsonl.partial").exists()


def test_abandon_leaves_a_partial_file_that_verifies_partial(
    tmp_path: Path, signer: Signer
) -> None:
    writer = ResultWriter(tmp_path, "run", signer=signer, checkpoint_every=2)
    writer.write_header(records.new_record(records.HEADER))
    for i in range(5):
        writer.write(tcp_record(i))
    writer.abandon()
    assert not writer.path.exists()
    result = verify_file(writer.partial_path)
    assert (result.status, result.records_covered, result.records_uncovered) == (PARTIAL, 4, 1)


def test_write_before_header_is_a_programming_error(tmp_path: Path) -> None:
    writer = ResultWriter(tmp_path, "run", signer=None)
    with pytest.raises(RuntimeError, match="header"):
        writer.write(tcp_record(0))


def test_signal_stop_is_signed_and_complete(tmp_path: Path, signer: Signer) -> None:
    # What the runner does on SIGTERM: a "signal" checkpoint, then a clean close.
    writer = ResultWriter(tmp_path, "run", signer=signer, checkpoint_every=100)
    writer.write_header(records.new_record(records.HEADER))
    for i in range(3):
        writer.write(tcp_record(i))
    writer.checkpoint("signal")
    path = writer.close(records.new_record(records.SUMMARY, interrupted="SIGTERM"), reason="signal")
    reasons = [r["reason"] for r in lines_of(path) if r["type"] == "checkpoint"]
    assert reasons == ["start", "signal", "signal"]
    result = verify_file(path)
    assert (result.status, result.records_covered) == (COMPLETE, 3)
    assert load_result(path).summary["interrupted"] == "SIGTERM"


KILL_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from netprobe.model import records
    from netprobe.evidence.keys import load_signer
    from netprobe.evidence.writer import ResultWriter

    out_dir, key, stop_after = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    writer = ResultWriter(out_dir, "run", signer=load_signer(key), checkpoint_every=5)
    writer.write_header(records.new_record(records.HEADER, vantage="kill-test"))
    i = 0
    while True:
        writer.write(records.new_record(records.TCP, target_id=f"endpoint:192.0.2.1:{i}", port=i))
        i += 1
        if i == stop_after:
            print("ready", flush=True)
            time.sleep(60)
    """
)


def spawn_writer(tmp_path: Path, signer: Signer, stop_after: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            KILL_SCRIPT,
            str(tmp_path / "out"),
            str(signer.path),
            str(stop_after),
        ],
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )


def test_sigkill_leaves_a_partial_file_whose_covered_records_verify(
    tmp_path: Path, signer: Signer
) -> None:
    child = spawn_writer(tmp_path, signer, stop_after=23)
    try:
        assert child.stdout.readline().strip() == "ready"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    partial = tmp_path / "out" / ".run.jsonl.partial"
    assert not (tmp_path / "out" / "run.jsonl").exists()
    result = verify_file(partial)
    assert result.status == PARTIAL
    assert (result.records_covered, result.records_uncovered) == (20, 3)
    loaded = load_result(partial)
    assert [r["port"] for r in loaded.records] == list(range(20))
    assert loaded.dropped == 3


def test_sigkill_at_a_random_moment_still_verifies(tmp_path: Path, signer: Signer) -> None:
    child = spawn_writer(tmp_path, signer, stop_after=10**9)  # never pauses
    time.sleep(0.5)
    child.send_signal(signal.SIGKILL)
    child.wait(10)
    result = verify_file(tmp_path / "out" / ".run.jsonl.partial")
    assert result.status == PARTIAL, result.message
    assert result.records_covered % 5 == 0 and result.records_covered > 0
    assert result.records_uncovered < 5 + 1  # at most one interval, plus a torn line


# --- fsync off the caller's thread ---------------------------------------------------------------


class BlockedFsync:
    """os.fsync stand-in: each call waits until the test opens the gate (or `delay` passes)."""

    def __init__(self, delay: float | None = None, error: OSError | None = None) -> None:
        self.gate = threading.Event()
        self.delay, self.error = delay, error
        self.threads: list[str] = []
        self.real = os.fsync

    def __call__(self, fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            return self.real(fd)  # the folder's entry (after create/rename): not what is timed
        self.threads.append(threading.current_thread().name)
        if self.delay is not None:
            time.sleep(self.delay)
        else:
            assert self.gate.wait(30), "the test never opened the gate"
        if self.error is not None:
            raise self.error
        self.real(fd)


def wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_a_blocked_fsync_does_not_block_writes(tmp_path: Path, signer: Signer, monkeypatch):
    fsync = BlockedFsync()
    monkeypatch.setattr(os, "fsync", fsync)
    writer = ResultWriter(tmp_path, "run", signer=signer, checkpoint_every=2)
    writer.write_header(records.new_record(records.HEADER, vantage="test"))
    started = time.monotonic()
    for i in range(20):  # 10 interval checkpoints while the first fsync is still stuck
        writer.write(tcp_record(i))
    assert time.monotonic() - started < 10  # nothing waited for the gate (30 s)
    assert writer.checkpoints_written == 11 and writer.checkpoints_synced == 0
    wait_for(lambda: fsync.threads)
    assert threading.current_thread().name not in fsync.threads
    fsync.gate.set()
    path = writer.close(records.new_record(records.SUMMARY, measurements=20))
    assert writer.checkpoints_synced == writer.checkpoints_written == 12
    assert len([t for t in fsync.threads if t.startswith("fsync")]) < 12  # requests merged
    result = verify_file(path)
    assert (result.status, result.records_covered) == (COMPLETE, 20)


def test_slow_fsync_leaves_the_file_byte_identical(tmp_path: Path, signer: Signer, monkeypatch):
    options = {"checkpoint_every": 3, "checkpoint_seconds": 10**6}
    plain = write_run(tmp_path / "plain", signer, 25, **options).read_bytes()
    monkeypatch.setattr(os, "fsync", BlockedFsync(delay=0.05))
    slow = write_run(tmp_path / "slow", signer, 25, **options)
    assert slow.read_bytes() == plain
    assert (tmp_path / "slow" / "run.jsonl.sig").read_bytes() == (
        tmp_path / "plain" / "run.jsonl.sig"
    ).read_bytes()
    assert verify_file(slow).status == COMPLETE


def test_a_failed_fsync_is_raised_by_the_next_write(tmp_path: Path, signer: Signer, monkeypatch):
    fsync = BlockedFsync(error=OSError(5, "Input/output error"))
    monkeypatch.setattr(os, "fsync", fsync)
    writer = ResultWriter(tmp_path, "run", signer=signer, checkpoint_every=100)
    writer.write_header(records.new_record(records.HEADER))  # start checkpoint: fsync requested
    writer.write(tcp_record(0))  # the fsync has not failed yet
    fsync.gate.set()
    wait_for(lambda: writer.checkpoints_synced)
    with pytest.raises(OSError, match="Input/output error"):
        writer.write(tcp_record(1))
    with pytest.raises(OSError, match="Input/output error"):  # and again: never lost
        writer.close(records.new_record(records.SUMMARY))
    assert not writer.path.exists()  # not renamed: its bytes may not be on disk


def test_a_failed_fsync_at_the_end_is_raised_by_close(tmp_path: Path, signer: Signer, monkeypatch):
    writer = ResultWriter(tmp_path, "run", signer=signer, checkpoint_every=100)
    writer.write_header(records.new_record(records.HEADER))
    writer.write(tcp_record(0))
    fsync = BlockedFsync(error=OSError(28, "No space left on device"))
    fsync.gate.set()
    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(OSError, match="No space left"):
        writer.close(records.new_record(records.SUMMARY))
    assert not writer.path.exists() and writer.partial_path.exists()
    monkeypatch.undo()
    result = verify_file(writer.partial_path)
    assert result.status == COMPLETE  # every byte reached the kernel; only durability failed


def test_unsigned_writer_starts_no_thread(tmp_path: Path, monkeypatch) -> None:
    before = threading.active_count()
    writer = ResultWriter(tmp_path, "run", signer=None)
    writer.write_header(records.new_record(records.HEADER))
    for i in range(5):
        writer.write(tcp_record(i))
    assert threading.active_count() == before
    writer.close(records.new_record(records.SUMMARY))
