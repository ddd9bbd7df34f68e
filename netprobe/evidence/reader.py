"""Reading and verifying result files: the I/O around `verifier.Verifier` (docs/DESIGN.md).

Rules:
- Each file is read once, in `CHUNK`-byte reads, straight into the sans-I/O verifier
  (`verifier.py` holds every verification rule; `format.py` the format). Memory stays constant:
  one chunk and one checkpoint interval of records at most.
- Only an unreadable file (missing, unreadable, or not a regular file: a directory or a FIFO is
  refused at once, never waited on) raises `ResultFileError`; a bad file is a `Verification` (INVALID,
  PARTIAL, UNSIGNED) naming the line.
- Readers (`load_result`, `iter_records`) use only lines covered by a valid signature unless
  `verify=False`, and count what they dropped. What they yield is exactly the bytes verified.
- allowed_signers files are parsed once per process and re-read only when they change.
- Trust: `allowed_signers=` (a path) makes an unlisted signer INVALID; `signers=` (entries, e.g.
  the trust store) only marks it `trusted=False`, and the caller decides (`report` exits
  non-zero, `diff`/`timeline` skip the file) unless told to accept it.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from netprobe.evidence import format as fmt
from netprobe.evidence.format import COMPLETE, INVALID, MAX_LINE_BYTES, PARTIAL, UNSIGNED
from netprobe.evidence.keys import KeyFileError, read_allowed_signers
from netprobe.evidence.verifier import Checkpoint, Verification, Verifier

STRUCTURAL_TYPES = fmt.STRUCTURAL_TYPES
# 64 KiB reads: a typical result file in one or two system calls, and a chunk plus the lines
# split out of it stay well inside the constant-memory budget of a verification.
CHUNK = 64 * 1024

__all__ = [
    "COMPLETE",
    "INVALID",
    "MAX_LINE_BYTES",
    "PARTIAL",
    "UNSIGNED",
    "LoadedResult",
    "ResultFileError",
    "Verification",
    "iter_records",
    "load_result",
    "verify_file",
]


class ResultFileError(Exception):
    """A result file cannot be read or used; the message names the file (and line)."""


def _open(path: Path) -> BinaryIO:
    """The file for reading; ResultFileError unless it is a regular file (never blocks on a FIFO)."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; reads of a regular file ignore it.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise ResultFileError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = _KINDS.get(stat.S_IFMT(mode), "not a regular file")
            raise ResultFileError(f"{path}: cannot read: {kind}, expected a result file")
        os.set_blocking(fd, True)
        return open(fd, "rb", buffering=0)  # noqa: SIM115 - the callers close it
    except BaseException:
        os.close(fd)
        raise


_KINDS = {
    stat.S_IFDIR: "is a directory",
    stat.S_IFIFO: "is a FIFO (named pipe)",
    stat.S_IFSOCK: "is a socket",
    stat.S_IFCHR: "is a character device",
    stat.S_IFBLK: "is a block device",
}


# path -> ((mtime_ns, size, inode), entries): a timeline checks thousands of files against one
# allowed_signers file; re-reading it only when it changes saves ~5 % of the time.
_ALLOWED_CACHE: dict[str, tuple[tuple[int, int, int], list[tuple[str, Ed25519PublicKey]]]] = {}


def _allowed_signers(path: Path) -> list[tuple[str, Ed25519PublicKey]]:
    try:
        info = os.stat(path)
        stamp = (info.st_mtime_ns, info.st_size, info.st_ino)
    except OSError:
        stamp = (-1, -1, -1)  # let read_allowed_signers produce the error message
    cached = _ALLOWED_CACHE.get(str(path))
    if cached is not None and cached[0] == stamp and stamp[0] != -1:
        return cached[1]
    try:
        entries = read_allowed_signers(path)
    except KeyFileError as exc:
        raise ResultFileError(str(exc)) from None
    _ALLOWED_CACHE[str(path)] = (stamp, entries)
    return entries


Signers = list[tuple[str, Ed25519PublicKey]]


def verify_file(
    path: Path, *, allowed_signers: Path | None = None, signers: Signers | None = None
) -> Verification:
    """Verify one result file by streaming it; raises ResultFileError only if it is unreadable.

    `allowed_signers`: a signer not listed makes the file INVALID. `signers` (e.g. the trust
    store, `evidence.trust.signers_for`): a signer not among them leaves `trusted` False, for
    the caller to report.
    """
    return _verify(Path(path), allowed_signers, None, signers)


def _verify(
    path: Path,
    allowed_signers: Path | None,
    covered: list[dict[str, Any]] | None,
    signers: Signers | None = None,
    share: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> Verification:
    """The single pass behind `verify_file` and the verifying readers.

    With `covered`, the records (header, measurements, summary) that end up covered by a valid
    signature are appended to it, so readers parse each line once. Records wait in the
    verifier for at most one checkpoint interval, until their signature has been checked.
    `share` (a `_Sharer`) is applied to each record kept: for readers that hold a whole run.
    """
    allowed = _allowed_signers(allowed_signers) if allowed_signers is not None else None
    strict = signers is None
    if signers is not None:
        allowed = signers
    verifier = Verifier(
        allowed, path=path, records=False, collect=covered is not None, require_trusted=strict
    )
    with _open(path) as handle:
        read = handle.read
        try:
            while not verifier.done:
                data = read(CHUNK)
                events = verifier.feed(data) if data else verifier.close()
                del data  # the next read must not hold two chunks at once
                if covered is not None:
                    for event in events:
                        if isinstance(event, Checkpoint):
                            covered.extend(
                                event.records if share is None else map(share, event.records)
                            )
        except OSError as exc:
            raise ResultFileError(f"{path}: read error: {exc.strerror}") from None
    return verifier.verification


@dataclass
class LoadedResult:
    path: Path
    header: dict[str, Any]
    records: list[dict[str, Any]]  # measurement records only (dns/tcp/tls)
    summary: dict[str, Any] | None
    verification: Verification | None
    dropped: int
    skipped_lines: list[int] = field(default_factory=list)  # with verify=False: their numbers
    used: int | None = None  # records used, when a reader kept fewer (`reports.load_analysed`)

    @property
    def notice(self) -> str | None:
        """A one-line note for stderr when records were dropped, else None."""
        if not self.dropped:
            return None
        if self.verification is not None:
            return (
                f"{self.path}: {self.verification.status}: using "
                f"{len(self.records) if self.used is None else self.used} signed "
                f"records, dropped {self.dropped} not covered by a valid signature"
            )
        shown = ", ".join(str(n) for n in self.skipped_lines[:5])
        more = ", ..." if len(self.skipped_lines) > 5 else ""
        where = f" (line {shown}{more})" if shown else ""
        return f"{self.path}: skipped {self.dropped} unreadable or incomplete lines{where}"


def iter_records(
    path: Path,
    *,
    verify: bool = True,
    allowed_signers: Path | None = None,
    signers: Signers | None = None,
    share: bool = False,
) -> tuple[Verification | None, Iterator[dict[str, Any]]]:
    """(verification, records): header, measurements and summary, in file order.

    verify=True: INVALID or UNSIGNED raise ResultFileError; only covered lines are yielded. The
    file is read once: what is yielded is exactly the bytes that were verified.
    verify=False: every parseable line is yielded (checkpoint/signature lines are skipped).
    share=True: equal keys and short values are one string object (`_Sharer`), for a caller
    that keeps the whole run in memory (`load_result`); it costs ~10 % of the reading time.
    """
    path = Path(path)
    if not verify:
        return None, _iter_unverified(path, share=share)
    covered: list[dict[str, Any]] = []
    verification = _verify(path, allowed_signers, covered, signers, _Sharer() if share else None)
    if verification.status == INVALID:
        raise ResultFileError(f"{path}: INVALID: {verification.message}")
    if verification.status == UNSIGNED:
        raise ResultFileError(
            f"{path}: UNSIGNED: the file carries no signatures; use --no-verify to read it anyway"
        )
    if verification.lines_covered == 0:
        raise ResultFileError(f"{path}: PARTIAL: {verification.message}")
    return verification, iter(covered)


class _Sharer:
    """One file's records with one string object per distinct key and short value.

    JSON decoding makes new strings for every key and value of every line: in a sweep of 34,000
    records the same dozen keys and values ("type", "tcp", "generic_timeout_error", a target id
    seen on every attempt, ...) take half the memory of the records. Equal values, same order.
    """

    __slots__ = ("_memo",)

    def __init__(self) -> None:
        self._memo: dict[str, str] = {}

    def __call__(self, record: dict[str, Any]) -> dict[str, Any]:
        memo = self._memo
        shared: dict[str, Any] = {}
        for key, value in record.items():
            if value.__class__ is str and len(value) <= _SHARED_LENGTH:
                value = memo.setdefault(value, value)
            shared[memo.setdefault(key, key)] = value
        return shared


_SHARED_LENGTH = 80  # longer values (messages, certificates) are rarely repeated


def _iter_unverified(
    path: Path, skipped: list[int] | None = None, *, share: bool = False
) -> Iterator[dict[str, Any]]:
    """Every parseable line but checkpoints and signatures; `skipped` gets the other numbers."""
    decode, signing = fmt.decode_line, fmt.SIGNING_TYPES
    sharer = _Sharer() if share else None
    number = 0
    tail = b""
    oversized = False  # the line in `tail` is longer than MAX_LINE_BYTES: never a record
    with _open(path) as handle:
        while True:
            try:
                data = handle.read(CHUNK)
            except OSError as exc:
                raise ResultFileError(f"{path}: read error: {exc.strerror}") from None
            if not data:
                break
            pieces = data.split(b"\n")
            pieces[0] = tail + pieces[0]
            tail = pieces.pop()
            for piece in pieces:
                number += 1
                record = None if oversized or len(piece) > MAX_LINE_BYTES else decode(piece)
                oversized = False
                if number == 1 and (record is None or record["type"] != fmt.HEADER):
                    raise ResultFileError(f"{path}:1: not a netprobe result header")
                if record is None:
                    if skipped is not None:
                        skipped.append(number)
                elif record["type"] not in signing:
                    yield record if sharer is None else sharer(record)
            if len(tail) > MAX_LINE_BYTES:
                tail, oversized = b"", True
    if tail or oversized:  # a torn last line
        number += 1
        if number == 1:
            raise ResultFileError(f"{path}:1: not a netprobe result header")
        if skipped is not None:
            skipped.append(number)


def load_result(
    path: Path,
    *,
    verify: bool = True,
    allowed_signers: Path | None = None,
    signers: Signers | None = None,
) -> LoadedResult:
    """Load one file (see `iter_records`); `dropped` counts records left out."""
    path = Path(path)
    skipped: list[int] = []
    if verify:
        verification, stream = iter_records(
            path, verify=True, allowed_signers=allowed_signers, signers=signers, share=True
        )
    else:
        verification, stream = None, _iter_unverified(path, skipped, share=True)
    header: dict[str, Any] | None = None
    summary = None
    measurements: list[dict[str, Any]] = []
    for record in stream:
        kind = record["type"]
        if kind == fmt.HEADER and header is None:
            header = record
        elif kind == fmt.SUMMARY:
            summary = record
        elif kind in fmt.MEASUREMENT_TYPES:
            measurements.append(record)
    if header is None:
        raise ResultFileError(f"{path}: no signed header (nothing in the file is covered)")
    dropped = verification.records_uncovered if verification else len(skipped)
    return LoadedResult(path, header, measurements, summary, verification, dropped, skipped)
