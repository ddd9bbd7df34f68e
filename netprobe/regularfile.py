"""Reading a small input file (a target list, the config file) without ever blocking on it.

Rules: `read_regular(path)` opens the path without blocking (O_NONBLOCK: a FIFO with no writer
would otherwise hang the open, and a reader that waits forever on a named pipe given by mistake
is a hung cron job), checks that it is a regular file, and only then reads it. Anything else (a
FIFO, a socket, a device, a folder) is `NotRegularFile`, whose message names what it is.
I/O at the edge: the parsers stay text in, values out.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


class NotRegularFile(OSError):
    """The path exists but is no regular file; `kind` says what it is."""

    def __init__(self, path: str, kind: str) -> None:
        self.kind = kind
        super().__init__(f"not a regular file: it is {kind}")


def kind_of(mode: int) -> str:
    return next((name for test, name in KINDS if test(mode)), "not a regular file")


def read_regular(path: str | Path) -> bytes:
    """The bytes of `path`, a regular file; `NotRegularFile` for anything else (never blocks)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(str(path), kind_of(mode))
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as handle:
            return handle.read()
    finally:
        os.close(fd)
