"""Run lock: two `netprobe run` processes writing to the same folder never overlap.

Rules:
- The lock is an advisory `fcntl.flock(LOCK_EX | LOCK_NB)` on `<out_dir>/.netprobe.run.lock`; the kernel
  drops it when the holder exits or crashes, so a stale lock cannot outlive its process.
- A second run fails at once with `LockBusy` (the CLI maps it to exit code `EXIT_LOCKED` = 75,
  EX_TEMPFAIL, so cron mail and systemd see a "try again later", not an error).
- The lock file is never deleted (deleting a flock'ed file lets a third process lock a new inode);
  it holds the holder's pid and start time for the error message only.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

EXIT_LOCKED = 75
LOCK_FILE_NAME = ".netprobe.run.lock"


class LockBusy(Exception):
    """Another process holds the run lock."""

    def __init__(self, path: Path, holder: str) -> None:
        self.path = path
        self.holder = holder
        super().__init__(f"another netprobe run holds the lock {path} ({holder})")


def default_lock_path(out_dir: Path) -> Path:
    return Path(out_dir) / LOCK_FILE_NAME


def _describe_holder(text: str) -> str:
    # The file holds "pid=N started=ISO"; an old or empty file still gives a readable message.
    fields = dict(part.split("=", 1) for part in text.split() if "=" in part)
    if "pid" in fields:
        return f"pid {fields['pid']}, started {fields.get('started', 'at an unknown time')}"
    return "holder unknown"


@contextmanager
def run_lock(path: Path) -> Iterator[None]:
    """Hold the run lock at `path` for the duration of the `with` block, or raise `LockBusy`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode("utf-8", "replace")
            raise LockBusy(path, _describe_holder(holder)) from None
        # Only the holder rewrites the file, so a loser never wipes the holder's details.
        started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid={os.getpid()} started={started}\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
