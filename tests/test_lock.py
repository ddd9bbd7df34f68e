"""Run lock with real processes: a held lock refuses a second run; a killed holder frees it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from netprobe.run.lock import EXIT_LOCKED, LockBusy, default_lock_path, run_lock

HOLDER = """
import sys, time
from pathlib import Path
from netprobe.run.lock import run_lock
with run_lock(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(60)
"""


@pytest.fixture
def holder(tmp_path):
    """A separate process holding the lock; yields (process, lock path)."""
    lock = default_lock_path(tmp_path)
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert process.stdout.readline().strip() == "locked"
    yield process, lock
    if process.poll() is None:
        process.kill()
    process.wait()


def test_default_lock_path_is_in_the_output_folder(tmp_path):
    assert default_lock_path(tmp_path) == tmp_path / ".netprobe.run.lock"
    assert EXIT_LOCKED == 75


def test_second_process_is_refused_at_once_with_the_holders_pid(holder):
    process, lock = holder
    started = time.monotonic()
    with pytest.raises(LockBusy) as caught, run_lock(lock):
        pytest.fail("the lock should be busy")
    assert time.monotonic() - started < 1.0
    message = str(caught.value)
    assert message.startswith(f"another netprobe run holds the lock {lock} (pid {process.pid}, ")
    assert "started 20" in message


def test_killed_holder_releases_the_lock(holder):
    process, lock = holder
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    with run_lock(lock):
        assert f"pid={os.getpid()} " in lock.read_text()
    assert lock.exists()  # never deleted (see the module docstring)


def test_lock_is_released_after_the_block_and_after_an_exception(tmp_path):
    lock = tmp_path / "sub" / ".netprobe.run.lock"
    with run_lock(lock):
        pass
    with pytest.raises(RuntimeError), run_lock(lock):
        raise RuntimeError("crash inside the run")
    with run_lock(lock):
        pass


def test_same_process_cannot_take_the_lock_twice(tmp_path):
    # flock locks belong to the open file description: a second open() conflicts too, which is
    # what stops two runs started from one long-lived process.
    lock = default_lock_path(tmp_path)
    with run_lock(lock), pytest.raises(LockBusy), run_lock(lock):
        pass
