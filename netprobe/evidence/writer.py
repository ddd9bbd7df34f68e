"""Streaming result-file writer with signed checkpoints (docs/DESIGN.md "Result file").

Rules:
- One record per line, encoded once by `records.encode_line`; every byte written is also fed to
  a running SHA-512, and signatures are made from `hasher.copy().digest()`: the file is never
  re-read or re-serialised to sign it.
- Lines go to the kernel with one unbuffered `os.write` each, so a SIGKILL loses at most the line
  being written (a torn last line), never a line that a checkpoint already covers.
- Signed files get a checkpoint + signature pair right after the header, every `checkpoint_every`
  records or `checkpoint_seconds` seconds, on demand (`checkpoint("signal")`), and at the end;
  each pair is fsync'ed. Unsigned files (`signer=None`) have `"signer": null` and no checkpoints.
- While running the file is `<out_dir>/.<stem>.jsonl.partial`; `close()` renames it to
  `<out_dir>/<stem>.jsonl` (never over an existing file) and writes the detached armored
  signature `<stem>.jsonl.sig` that stock `ssh-keygen -Y verify` accepts.
- Not re-entrant: call `checkpoint()`/`close()` from the main flow (e.g. an asyncio signal
  handler that sets a flag), not from a raw signal handler that may interrupt `write()`.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from netprobe.evidence.sshsig import NAMESPACE, armor
from netprobe.model import records

if TYPE_CHECKING:
    from netprobe.evidence.keys import Signer

CHECKPOINT_REASONS = ("start", "interval", "signal", "end")
DEFAULT_CHECKPOINT_EVERY = 256
DEFAULT_CHECKPOINT_SECONDS = 10.0


class ResultWriter:
    """Writes one result file; see the module docstring for the format guarantees."""

    def __init__(
        self,
        out_dir: Path,
        stem: str,
        *,
        signer: Signer | None,
        checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY,
        checkpoint_seconds: float = DEFAULT_CHECKPOINT_SECONDS,
    ) -> None:
        if checkpoint_every < 1:
            raise ValueError("checkpoint_every must be at least 1")
        if checkpoint_seconds <= 0:
            raise ValueError("checkpoint_seconds must be positive")
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        self.out_dir = out_dir
        self.path = out_dir / f"{stem}.jsonl"
        self.partial_path = out_dir / f".{stem}.jsonl.partial"
        self.sig_path = out_dir / f"{stem}.jsonl.sig"
        if self.path.exists():
            raise FileExistsError(
                f"{self.path} already exists; refusing to overwrite a result file"
            )
        self.signer = signer
        self.checkpoint_every = checkpoint_every
        self.checkpoint_seconds = checkpoint_seconds
        self.records_written = 0
        self.checkpoints_written = 0
        self.lines_written = 0
        self.bytes_written = 0
        self._hasher = hashlib.sha512()
        self._pending = 0  # lines written since the last checkpoint
        self._last_checkpoint = time.monotonic()
        self._header_written = False
        self._closed = False
        # O_EXCL: a leftover .partial is evidence from a killed run; never clobber it.
        self._fd: int | None = os.open(
            self.partial_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644
        )

    @property
    def signing(self) -> bool:
        return self.signer is not None

    def write_header(self, header: dict[str, Any]) -> None:
        """Write the header (first line), with `signer` filled in; then the start checkpoint."""
        if self._header_written:
            raise RuntimeError("the header is already written")
        header = dict(header)
        header["signer"] = self.signer.header_info() if self.signer else None
        self._write_line(header)
        self._header_written = True
        if self.signing:
            self.checkpoint("start")

    def write(self, record: dict[str, Any]) -> None:
        """Write one measurement record; sign an interval checkpoint when one is due."""
        self._require_header()
        self._write_line(record)
        self.records_written += 1
        self.checkpoint_if_due()

    def checkpoint_if_due(self) -> bool:
        """Checkpoint if records are waiting and N records or T seconds have passed.

        `write()` calls this; a runner may also call it from a timer so that a quiet stretch
        does not leave records unsigned for long.
        """
        if not self.signing or self._pending == 0 or self._closed:
            return False
        elapsed = time.monotonic() - self._last_checkpoint
        if self._pending >= self.checkpoint_every or elapsed >= self.checkpoint_seconds:
            self.checkpoint("interval")
            return True
        return False

    def checkpoint(self, reason: str) -> None:
        """Write a checkpoint + signature pair over every byte so far, then fsync.

        Does nothing for an unsigned file.
        """
        if reason not in CHECKPOINT_REASONS:
            raise ValueError(
                f"checkpoint reason must be one of {CHECKPOINT_REASONS}, not {reason!r}"
            )
        self._require_header()
        if self.signer is None:
            return
        seq = self.checkpoints_written
        self._write_line(
            records.new_record(
                records.CHECKPOINT,
                seq=seq,
                lines=self.lines_written,
                bytes=self.bytes_written,
                reason=reason,
            )
        )
        blob = self.signer.sign_digest(self._hasher.copy().digest())
        self._write_line(
            records.new_record(
                records.SIGNATURE,
                seq=seq,
                namespace=NAMESPACE,
                hash_alg="sha512",
                sshsig=_b64(blob),
            )
        )
        self.checkpoints_written += 1
        self._pending = 0
        self._last_checkpoint = time.monotonic()
        assert self._fd is not None
        os.fsync(self._fd)

    def close(self, summary: dict[str, Any], *, reason: str = "end") -> Path:
        """Write the summary and the final checkpoint, fsync, rename, write `.sig`; return the path.

        `reason` is "end" for a normal finish or "signal" for a clean stop after a signal.
        """
        if reason not in ("end", "signal"):
            raise ValueError(f"final checkpoint reason must be 'end' or 'signal', not {reason!r}")
        self._require_header()
        self._write_line(summary)
        self.checkpoint(reason)
        assert self._fd is not None
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = None
        self._closed = True
        _rename_no_clobber(self.partial_path, self.path)
        if self.signer is not None:
            blob = self.signer.sign_digest(self._hasher.copy().digest())
            _write_durably(self.sig_path, armor(blob).encode("ascii"))
        _fsync_dir(self.out_dir)
        return self.path

    def abandon(self) -> None:
        """Close the file without renaming it: it stays `.partial` and verifies PARTIAL."""
        if self._fd is not None:
            try:
                os.fsync(self._fd)
            finally:
                os.close(self._fd)
                self._fd = None
        self._closed = True

    def __enter__(self) -> ResultWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        # An exception escaping the run leaves a .partial file signed up to its last checkpoint.
        if not self._closed:
            self.abandon()

    def _require_header(self) -> None:
        if self._closed:
            raise RuntimeError(f"{self.partial_path} is already closed")
        if not self._header_written:
            raise RuntimeError("write_header() must come first")

    def _write_line(self, record: dict[str, Any]) -> None:
        line = records.encode_line(record)
        assert self._fd is not None
        view = memoryview(line)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self._hasher.update(line)
        self.lines_written += 1
        self.bytes_written += len(line)
        self._pending += 1


def _b64(blob: bytes) -> str:
    import base64

    return base64.b64encode(blob).decode("ascii")


def _rename_no_clobber(source: Path, target: Path) -> None:
    # os.rename would silently replace an existing result; a hard link fails instead.
    try:
        os.link(source, target)
    except FileExistsError:
        raise FileExistsError(
            f"{target} appeared while running; the run is kept as {source}"
        ) from None
    except OSError:
        # Filesystems without hard links: check, then rename (small race, but no hard links).
        if target.exists():
            raise FileExistsError(f"{target} exists; the run is kept as {source}") from None
        os.rename(source, target)
        return
    os.unlink(source)


def _write_durably(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _fsync_dir(directory: Path) -> None:
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
