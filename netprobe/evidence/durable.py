"""Durable small files: what the writer (`.sig`), the trust store and the TSA client (`.tsr`)
share when they replace a whole file (an I/O edge).

Rules:
- `write_durably(path, data)` writes a temporary file beside `path` (named for this process, so
  two writers never share one), writes every byte, fsyncs it, renames it over `path`, then
  fsyncs the folder: after it returns, a power loss leaves the old file or the new one, whole.
  On any failure the temporary file is removed and the error is raised.
- `fsync_dir(folder)` makes a create or rename in `folder` durable; filesystems that refuse
  fsync on a folder are tolerated (the data itself is already synced).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def write_durably(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace `path` with `data`, durably (see the module rules)."""
    tmp = path.with_name(f".{os.getpid()}.{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    """fsync a folder, so that a create or rename in it survives a power loss."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on directories; the data itself is already synced
    finally:
        os.close(fd)
