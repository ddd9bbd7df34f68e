"""Streaming result-file writer with signed checkpoints (docs/DESIGN.md "Result file").

Rules:
- One record per line, encoded once by `records.encode_line`; every byte written is also fed to
  a running SHA-512, and signatures are made from `hasher.copy().digest()`: the file is never
  re-read or re-serialised to sign it.
- Lines go to the kernel with one unbuffered `os.write` each, so a SIGKILL loses at most the line
  being written (a torn last line), never a line that a checkpoint already covers. Between
  `hold()` and `flush()` lines wait in memory and go out in one `os.write` at `flush()` (a
  runner holds the records of one event-loop wake-up: a sweep's connects that end together);
  a SIGKILL then loses at most the held lines, still never a line a checkpoint covers: a
  checkpoint, `close()` and `abandon()` write every held line out first. A line is hashed when
  it is written or held, so the hash follows the file's byte order either way.
- Signed files get a checkpoint + signature pair right after the header, every `checkpoint_every`
  records or `checkpoint_seconds` seconds, on demand (`checkpoint("signal")`), and at the end.
  Unsigned files (`signer=None`) have `"signer": null` and no checkpoints. Names, field order and
  reasons come from `format.py`.
- Durability: each pair is fsync'ed by the writer's own sync thread, never in the caller's
  thread (a checkpoint inside the asyncio loop must not stall the probes in flight). An fsync
  covers every byte written before it starts, so requests that pile up are merged; none is
  dropped. `close()` and `abandon()` wait for every requested fsync, then fsync once more
  themselves, before the rename / close: a renamed `.jsonl` is on disk in full. A failed fsync
  is raised by the next `write()`/`checkpoint()`, or by `close()`/`abandon()`, never lost.
- While running the file is `<out_dir>/.<stem>.jsonl.partial`; `close()` renames it to
  `<out_dir>/<stem>.jsonl` (never over an existing file) and writes the detached armored
  signature `<stem>.jsonl.sig` that stock `ssh-keygen -Y verify` accepts. `close()` blocks:
  call it once the event loop is done.
- The folder is fsynced after the `.partial` is created and after the rename, so a power loss
  never loses a file whose checkpoints were synced. A `.sig` that cannot be written (disk full)
  leaves no temporary file and raises `SignatureFileError`, which says the `.jsonl` is complete
  and how to re-create the `.sig` (`netprobe verify --write-sig FILE`).
- Not re-entrant: call `checkpoint()`/`close()` from the main flow (e.g. an asyncio signal
  handler that sets a flag), not from a raw signal handler that may interrupt `write()`.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from netprobe.evidence import format as fmt
from netprobe.evidence.durable import fsync_dir, write_durably
from netprobe.evidence.format import CHECKPOINT_REASONS
from netprobe.model import records

if TYPE_CHECKING:
    from netprobe.evidence.keys import Signer


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
        # Two runs that start in the same second (same stem): the later one gets `.2`, `.3`, ...
        # (`20250526T010000Z_hanoi.2.jsonl`); an existing file is never overwritten.
        base, number = stem, 1
        while (out_dir / fmt.result_name(stem)).exists() or (
            out_dir / fmt.partial_name(stem)
        ).exists():
            number += 1
            stem = f"{base}.{number}"
        self.path = out_dir / fmt.result_name(stem)
        self.partial_path = out_dir / fmt.partial_name(stem)
        self.sig_path = out_dir / fmt.sig_name(stem)
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
        self._held: list[bytes] | None = None  # lines waiting for `flush()` while held
        # O_EXCL: a leftover .partial is evidence from a killed run; never clobber it.
        self._fd: int | None = os.open(
            self.partial_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644
        )
        # The folder entry of the new file must reach the disk too, or a power loss can lose
        # the file together with checkpoints its own fsyncs already made durable.
        fsync_dir(out_dir)
        self._syncer = _Syncer(self._fd, self.partial_path)

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
        # `_require_header`, `_write_line` and `checkpoint_if_due` written out: a sweep writes
        # thousands of records a second, and each call is a few percent of a record's cost.
        if self._closed or not self._header_written:
            self._require_header()
        self._syncer.raise_error()
        self._write_bytes(records.encode_line(record))
        self.records_written += 1
        if self.signer is not None:
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
        """Write a checkpoint + signature pair over every byte so far; fsync it in the background.

        Does nothing for an unsigned file.
        """
        if reason not in CHECKPOINT_REASONS:
            raise ValueError(
                f"checkpoint reason must be one of {CHECKPOINT_REASONS}, not {reason!r}"
            )
        self._require_header()
        if self.signer is None:
            return
        self._syncer.raise_error()
        seq = self.checkpoints_written
        self._write_bytes(fmt.checkpoint_line(seq, self.lines_written, self.bytes_written, reason))
        blob = self.signer.sign_digest(self._hasher.copy().digest())
        self._write_bytes(fmt.signature_line(seq, blob))
        if self._held is not None:  # the pair and every line before it reach the kernel now
            self.flush()
            self.hold()
        self.checkpoints_written += 1
        self._pending = 0
        self._last_checkpoint = time.monotonic()
        self._syncer.request()

    def hold(self) -> None:
        """Keep the lines that follow in memory until `flush()` (see the module rules)."""
        if self._held is None:
            self._held = []

    def flush(self) -> None:
        """Write the held lines in one `os.write` and end the hold (nothing held: no-op)."""
        held, self._held = self._held, None
        if held:
            self._write_out(b"".join(held))

    @property
    def checkpoints_synced(self) -> int:
        """Checkpoints whose fsync has finished (all of them once `close()` returned)."""
        return self._syncer.synced_requests

    def close(self, summary: dict[str, Any], *, reason: str = "end") -> Path:
        """Write the summary and the final checkpoint, fsync, rename, write `.sig`; return the path.

        `reason` is "end" for a normal finish or "signal" for a clean stop after a signal.
        """
        if reason not in fmt.FINAL_REASONS:
            raise ValueError(f"final checkpoint reason must be 'end' or 'signal', not {reason!r}")
        self._require_header()
        self._syncer.raise_error()
        self._write_line(summary)
        self.checkpoint(reason)
        self.flush()  # an unsigned file has no checkpoint to write its held lines
        assert self._fd is not None
        try:
            self._syncer.stop()  # every requested fsync done; raises a failed one
            os.fsync(self._fd)
        except BaseException:
            self.abandon(raise_error=False)
            raise
        os.close(self._fd)
        self._fd = None
        self._closed = True
        _rename_no_clobber(self.partial_path, self.path)
        fsync_dir(self.out_dir)  # the rename is durable before anything else happens
        if self.signer is not None:
            blob = self.signer.sign_digest(self._hasher.copy().digest())
            write_detached_signature(self.path, self.sig_path, blob)
        return self.path

    def abandon(self, *, raise_error: bool = True) -> None:
        """Close the file without renaming it: it stays `.partial` and verifies PARTIAL.

        Waits for the sync thread first; raises a failed fsync unless `raise_error=False`.
        """
        failure: OSError | None = None
        try:
            if self._fd is not None:
                self.flush()  # what was measured stays in the .partial
        except OSError as exc:
            failure = exc
        try:
            self._syncer.stop()
        except OSError as exc:
            failure = exc
        try:
            if self._fd is not None:
                try:
                    os.fsync(self._fd)
                except OSError as exc:
                    failure = failure or exc
                finally:
                    os.close(self._fd)
                    self._fd = None
        finally:
            self._closed = True
        if failure is not None and raise_error:
            raise failure

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
        self._write_bytes(records.encode_line(record))

    def _write_bytes(self, line: bytes) -> None:
        if self._held is not None:
            self._held.append(line)
        else:
            self._write_out(line)
        self._hasher.update(line)
        self.lines_written += 1
        self.bytes_written += len(line)
        self._pending += 1

    def _write_out(self, data: bytes) -> None:
        assert self._fd is not None
        written = os.write(self._fd, data)
        if written < len(data):  # a short write (a signal, a nearly full disk): the rest
            view = memoryview(data)[written:]
            while view:
                view = view[os.write(self._fd, view) :]


class _Syncer:
    """One writer's sync thread: fsyncs its fd on request, off the caller's thread.

    `request()` returns at once; the thread runs one fsync for all the requests that arrived
    before it started. `stop()` waits for all of them and ends the thread. A failed fsync is
    kept and raised by `raise_error()` and `stop()`, in the caller's thread.
    """

    def __init__(self, fd: int, path: Path) -> None:
        self._fd = fd
        self._path = path
        self._cond = threading.Condition()
        self._requested = 0
        self.synced_requests = 0
        self._error: OSError | None = None
        self._stopping = False
        self._thread: threading.Thread | None = None

    def request(self) -> None:
        with self._cond:
            if self._stopping:
                raise RuntimeError("fsync requested after the sync thread stopped")
            self._requested += 1
            if self._thread is None:  # started by the first checkpoint: unsigned runs need none
                self._thread = threading.Thread(
                    target=self._run, name=f"fsync {self._path.name}", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()
        self.raise_error()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self.synced_requests == self._requested and not self._stopping:
                    self._cond.wait()
                target = self._requested
                if self.synced_requests == target:
                    return  # stopping, nothing left to sync
            try:
                os.fsync(self._fd)
            except OSError as exc:
                if self._error is None:
                    self._error = exc
            with self._cond:
                self.synced_requests = target
                self._cond.notify_all()


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


class SignatureFileError(OSError):
    """The `.jsonl` is complete and signed, but its detached `.sig` could not be written."""


def write_detached_signature(result: Path, sig_path: Path, blob: bytes) -> None:
    """Write `sig_path` (the armored `blob`) durably; SignatureFileError names the fix.

    A failure (disk full, ...) leaves no temporary file behind and no partial `.sig`.
    """
    try:
        from netprobe.evidence.sshsig import armor  # cryptography: only a signed file needs it

        write_durably(sig_path, armor(blob).encode("ascii"))
    except OSError as exc:
        raise SignatureFileError(
            exc.errno,
            f"{result} is complete and signed (its checkpoints verify), but writing "
            f"{sig_path.name} failed: {exc.strerror or exc}; free some space, then re-create it "
            f"with: netprobe verify --write-sig {result}",
        ) from None


def detached_signature_digest(path: Path) -> bytes:
    """The SHA-512 of a whole finished file: what its detached `.sig` signs."""
    digest = hashlib.sha512()
    with open(path, "rb", buffering=0) as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.digest()
