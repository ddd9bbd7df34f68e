"""Reading and verifying result files (docs/DESIGN.md "Result file", "checkpoint / signature").

Rules:
- Verification streams the raw bytes once (constant memory): every signature is checked against
  a running SHA-512 of the exact bytes before it; nothing is re-serialised.
- Outcome per file: COMPLETE (every checkpoint valid, final checkpoint after the summary, nothing
  after it), PARTIAL (valid up to a checkpoint, then unsigned lines or a torn last line),
  INVALID (bad signature, broken sequence, edited byte, untrusted signer: names the line),
  UNSIGNED (written with --no-sign). Only an unreadable file raises `ResultFileError`.
- Trust comes from an allowed_signers file; without one, signatures are checked against the key
  named in the header (a hint only) and `trusted` is None.
- Readers (`load_result`, `iter_records`) use only lines covered by a valid signature unless
  `verify=False`, and count what they dropped.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import json.scanner
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_ssh_public_key

from netprobe.evidence import sshsig
from netprobe.evidence.keys import KeyFileError, read_allowed_signers, trusted_principal
from netprobe.model import records

COMPLETE = "COMPLETE"
PARTIAL = "PARTIAL"
INVALID = "INVALID"
UNSIGNED = "UNSIGNED"
MAX_LINE_BYTES = 16 * 1024 * 1024
_TYPE_FIELD = re.compile(rb'^\{"schema_version":\d+,"type":"([a-z_]+)"')
_FIELDS = {  # exact field order the writer uses for the lines it signs
    records.CHECKPOINT: ["schema_version", "type", "seq", "lines", "bytes", "reason"],
    records.SIGNATURE: ["schema_version", "type", "seq", "namespace", "hash_alg", "sshsig"],
}
_SIGNING = frozenset({records.CHECKPOINT, records.SIGNATURE})
STRUCTURAL_TYPES = frozenset(
    {records.HEADER, records.SUMMARY, records.CHECKPOINT, records.SIGNATURE}
)


class ResultFileError(Exception):
    """A result file cannot be read or used; the message names the file (and line)."""


@dataclass
class Verification:
    path: Path
    status: str
    message: str
    lines_total: int = 0
    lines_covered: int = 0
    records_covered: int = 0
    records_uncovered: int = 0
    bad_line: int | None = None
    signer_fingerprint: str | None = None
    trusted: bool | None = None  # None: no allowed_signers given
    principal: str | None = None
    checkpoints: int = 0
    covered_bytes: int = 0
    covered_sha512: str | None = None  # lets readers detect a file changed after verifying

    def to_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["path"] = str(self.path)
        return data


class _Invalid(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


def _open(path: Path) -> BinaryIO:
    try:
        # A 256 KiB buffer reads a typical result file in one or two system calls.
        return open(path, "rb", buffering=256 * 1024)  # noqa: SIM115 - the callers close it
    except OSError as exc:
        raise ResultFileError(f"{path}: cannot read: {exc.strerror}") from None


def _lines(handle: BinaryIO) -> Iterator[bytes]:
    while True:
        raw = handle.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        yield raw


_DECODER = json.JSONDecoder()
# The decoder's C scanner, called directly: our lines are one compact object plus "\n", so the
# Python layers of json.loads (encoding sniffing, whitespace regexes) are a third of the reading
# time over a year of files for nothing. Anything else falls back to the full decoder.
_SCAN = json.scanner.make_scanner(_DECODER)


def _parse(raw: bytes) -> dict[str, Any] | None:
    try:
        text = raw.decode("utf-8")
        try:
            obj, end = _SCAN(text, 0)
        except StopIteration:  # leading whitespace, or not JSON at all
            end = -1
        if end != len(text) - 1 or text[-1] != "\n":
            obj = _DECODER.decode(text)  # other whitespace is allowed; trailing data is not
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
        return None
    return obj


def _torn_line_is_record(raw: bytes) -> int:
    """1 if a torn last line was a measurement (or cannot tell), 0 if it was a structural line."""
    found = _TYPE_FIELD.search(raw)
    return 0 if found and found.group(1).decode() in STRUCTURAL_TYPES else 1


def _header_key(header: dict[str, Any]) -> Ed25519PublicKey | None:
    signer = header.get("signer")
    if signer is None:
        return None
    if not isinstance(signer, dict) or not isinstance(signer.get("public_key"), str):
        raise _Invalid(1, "line 1: header field 'signer' is malformed")
    key, fingerprint = _public_key(" ".join(signer["public_key"].split()[:2]))
    if key is None:
        raise _Invalid(1, "line 1: header signer public_key is not an OpenSSH public key")
    if not isinstance(key, Ed25519PublicKey):
        raise _Invalid(1, "line 1: header signer public_key is not an Ed25519 key")
    if signer.get("fingerprint") not in (None, fingerprint):
        raise _Invalid(1, "line 1: header signer fingerprint does not match its public_key")
    return key


@functools.lru_cache(maxsize=64)
def _public_key(text: str) -> tuple[Any, str | None]:
    # One volunteer's files all name the same key: parse it once per process, not per file.
    try:
        key = load_ssh_public_key(text.encode())
    except Exception:
        return None, None
    return key, sshsig.fingerprint(key) if isinstance(key, Ed25519PublicKey) else None


class _Verifier:
    """State machine over the lines of one file; see the module docstring for the rules."""

    def __init__(self, path: Path, allowed: list[tuple[str, Ed25519PublicKey]] | None) -> None:
        self.path = path
        self.allowed = allowed
        self.hasher = hashlib.sha512()
        self.offset = 0
        self.line_no = 0
        self.key: Ed25519PublicKey | None = None
        self.header_signed = False
        self.next_seq = 0
        self.pending: tuple[int, int, str] | None = None  # (seq, line, reason) awaiting signature
        self.summary_line: int | None = None
        self.final = False
        self.torn = False
        self.records_since = 0
        self.result = Verification(path=path, status=PARTIAL, message="")

    def feed(self, raw: bytes) -> dict[str, Any] | None:
        """Check one line; returns it parsed (None for a torn last line)."""
        self.line_no += 1
        number = self.line_no
        if len(raw) > MAX_LINE_BYTES:
            raise _Invalid(number, f"line {number} is longer than {MAX_LINE_BYTES} bytes")
        if not raw.endswith(b"\n"):
            self.torn = True  # only possible on the last line: readline stops at EOF
            self.records_since += _torn_line_is_record(raw) if number > 1 else 0
            return None
        if self.final:
            raise _Invalid(number, f"line {number}: data after the final signed checkpoint")
        record = _parse(raw)
        if number == 1:
            if record is None or record["type"] != records.HEADER:
                raise _Invalid(1, "line 1 is not a netprobe result header")
            self.key = _header_key(record)
            self.header_signed = self.key is not None
        elif self.pending is not None and (record is None or record["type"] != records.SIGNATURE):
            raise _Invalid(
                number,
                f"line {number}: the checkpoint on line {self.pending[1]} is not "
                "followed by its signature",
            )
        elif record is None:
            # Our writer only ever leaves a torn last line (no LF); a complete line that is not
            # a JSON record was edited, even in the unsigned tail.
            raise _Invalid(number, f"line {number} is not a JSON record")
        elif record["type"] in (records.CHECKPOINT, records.SIGNATURE):
            if (
                list(record) != _FIELDS[record["type"]]
                or record["schema_version"] != records.SCHEMA_VERSION
                or records.encode_line(record) != raw
            ):
                # The writer encodes these itself; any other spelling is an edit (this also
                # catches base64 bit-flips that decode to the same signature).
                raise _Invalid(number, f"line {number}: {record['type']} line is not as written")
            if record["type"] == records.CHECKPOINT:
                self._checkpoint(record, number)
            else:
                self._signature(record, number)
        elif record["type"] == records.HEADER:
            raise _Invalid(number, f"line {number}: a second header")
        elif record["type"] == records.SUMMARY:
            if self.summary_line is not None:
                raise _Invalid(number, f"line {number}: a second summary")
            self.summary_line = number
        else:
            self.records_since += 1
        self.hasher.update(raw)
        self.offset += len(raw)
        return record

    def _checkpoint(self, record: dict[str, Any], number: int) -> None:
        seq, reason = record.get("seq"), record.get("reason")
        final = self.summary_line is not None
        problems = []
        if seq != self.next_seq:
            problems.append(f"seq {seq!r}, expected {self.next_seq}")
        if record.get("lines") != number - 1:
            problems.append(f"lines {record.get('lines')!r}, expected {number - 1}")
        if record.get("bytes") != self.offset:
            problems.append(f"bytes {record.get('bytes')!r}, expected {self.offset}")
        expected_reasons = ("end", "signal") if final else ("interval", "signal")
        if self.next_seq == 0:
            expected_reasons = ("start",)
        if reason not in expected_reasons:
            problems.append(f"reason {reason!r}, expected one of {expected_reasons}")
        if problems:
            raise _Invalid(
                number,
                f"line {number}: broken checkpoint sequence ({'; '.join(problems)}): "
                "lines were added, removed or reordered",
            )
        self.pending = (self.next_seq, number, reason)

    def _signature(self, record: dict[str, Any], number: int) -> None:
        if self.pending is None or record.get("seq") != self.pending[0]:
            raise _Invalid(
                number, f"line {number}: signature without its checkpoint line before it"
            )
        if record.get("namespace") != sshsig.NAMESPACE or record.get("hash_alg") != "sha512":
            raise _Invalid(
                number,
                f"line {number}: signature namespace/hash must be {sshsig.NAMESPACE!r}/'sha512'",
            )
        first = self.result.lines_covered + 1
        try:
            blob = base64.b64decode(record.get("sshsig") or "", validate=True)
            if base64.b64encode(blob).decode() != record["sshsig"]:
                raise ValueError("non-canonical base64")  # unused bits were edited
            key = sshsig.verify_digest(blob, sshsig.NAMESPACE, self.hasher.copy().digest())
        except (ValueError, binascii.Error) as exc:
            raise _Invalid(
                number,
                f"line {number}: signature does not match lines {first}-{number - 1} as "
                f"written ({exc}): a byte was edited or lines were added, removed or reordered",
            ) from None
        self._check_key(key, number)
        self.result.checkpoints += 1
        self.result.lines_covered = number
        self.result.records_covered += self.records_since
        self.records_since = 0
        self.next_seq += 1
        if self.pending[2] in ("end", "signal") and self.summary_line is not None:
            self.final = True
        self.pending = None

    def _check_key(self, key: Ed25519PublicKey, number: int) -> None:
        blob = sshsig.public_key_blob(key)
        if self.key is not None and sshsig.public_key_blob(self.key) != blob:
            raise _Invalid(
                number, f"line {number}: signed by a different key than the header names"
            )
        if self.key is None:
            self.key = key
        if self.result.signer_fingerprint is None:
            self.result.signer_fingerprint = sshsig.fingerprint(key)
            if self.allowed is not None:
                self.result.principal = trusted_principal(self.allowed, key)
                self.result.trusted = self.result.principal is not None
                if not self.result.trusted:
                    raise _Invalid(
                        number,
                        f"line {number}: signer {self.result.signer_fingerprint} is not "
                        "listed for this namespace in the allowed signers file",
                    )


def verify_file(path: Path, *, allowed_signers: Path | None = None) -> Verification:
    """Verify one result file by streaming it; raises ResultFileError only if it is unreadable."""
    return _verify(Path(path), allowed_signers, None)


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


def _verify(
    path: Path, allowed_signers: Path | None, covered: list[dict[str, Any]] | None
) -> Verification:
    """The single pass behind `verify_file` and the verifying readers.

    With `covered`, the records (header, measurements, summary) that end up covered by a valid
    signature are appended to it, so readers parse each line once. Records wait in a buffer of
    at most one checkpoint interval until their signature has been checked.
    """
    allowed = _allowed_signers(allowed_signers) if allowed_signers is not None else None
    verifier = _Verifier(path, allowed)
    result = verifier.result
    waiting: list[dict[str, Any]] = []
    with _open(path) as handle:
        try:
            readline = handle.readline  # the hot loop of a timeline: no generator in between
            while raw := readline(MAX_LINE_BYTES + 1):
                covered_before = result.lines_covered
                record = verifier.feed(raw)
                if covered is not None and record is not None and record["type"] not in _SIGNING:
                    waiting.append(record)
                if result.lines_covered != covered_before:
                    result.covered_bytes = verifier.offset
                    result.covered_sha512 = verifier.hasher.hexdigest()
                    if covered is not None:
                        covered.extend(waiting)
                        waiting.clear()
        except _Invalid as exc:
            result.status, result.bad_line = INVALID, exc.line
            result.message = str(exc)
            result.lines_total = verifier.line_no
            return result
        except OSError as exc:
            raise ResultFileError(f"{path}: read error: {exc.strerror}") from None
    result.lines_total = verifier.line_no
    result.records_uncovered = verifier.records_since
    _conclude(verifier, result)
    return result


def _conclude(verifier: _Verifier, result: Verification) -> None:
    if result.lines_total == 0:
        result.status, result.message, result.bad_line = INVALID, "empty file", None
        return
    if verifier.line_no == 1 and verifier.torn:
        result.status, result.message = PARTIAL, "the header line is incomplete; nothing is signed"
        return
    if result.checkpoints == 0 and not verifier.header_signed and verifier.pending is None:
        result.status = UNSIGNED
        result.message = f"no signatures ({result.records_uncovered} records, written unsigned)"
        return
    if verifier.final:
        result.status = COMPLETE
        result.message = f"all {result.checkpoints} checkpoints valid, final checkpoint present"
        return
    result.status = PARTIAL
    tail = result.lines_total - result.lines_covered
    torn = "; the last line is torn" if verifier.torn else ""
    result.message = (
        f"signed up to line {result.lines_covered} ({result.records_covered} records); "
        f"{result.records_uncovered} records in {tail} lines after it are not signed{torn}"
    )


@dataclass
class LoadedResult:
    path: Path
    header: dict[str, Any]
    records: list[dict[str, Any]]  # measurement records only (dns/tcp/tls)
    summary: dict[str, Any] | None
    verification: Verification | None
    dropped: int

    @property
    def notice(self) -> str | None:
        """A one-line note for stderr when records were dropped, else None."""
        if not self.dropped:
            return None
        if self.verification is not None:
            return (
                f"{self.path}: {self.verification.status}: using {len(self.records)} signed "
                f"records, dropped {self.dropped} not covered by a valid signature"
            )
        return f"{self.path}: skipped {self.dropped} unreadable or incomplete lines"


def iter_records(
    path: Path, *, verify: bool = True, allowed_signers: Path | None = None
) -> tuple[Verification | None, Iterator[dict[str, Any]]]:
    """(verification, records): header, measurements and summary, in file order.

    verify=True: INVALID or UNSIGNED raise ResultFileError; only covered lines are yielded. The
    file is read once: what is yielded is exactly the bytes that were verified.
    verify=False: every parseable line is yielded (checkpoint/signature lines are skipped).
    """
    path = Path(path)
    if not verify:
        return None, _iter_unverified(path)
    covered: list[dict[str, Any]] = []
    verification = _verify(path, allowed_signers, covered)
    if verification.status == INVALID:
        raise ResultFileError(f"{path}: INVALID: {verification.message}")
    if verification.status == UNSIGNED:
        raise ResultFileError(
            f"{path}: UNSIGNED: the file carries no signatures; use --no-verify to read it anyway"
        )
    if verification.lines_covered == 0:
        raise ResultFileError(f"{path}: PARTIAL: {verification.message}")
    return verification, iter(covered)


def _iter_unverified(path: Path, skipped: list[int] | None = None) -> Iterator[dict[str, Any]]:
    with _open(path) as handle:
        for number, raw in enumerate(_lines(handle), start=1):
            record = _parse(raw) if raw.endswith(b"\n") else None
            if number == 1 and (record is None or record["type"] != records.HEADER):
                raise ResultFileError(f"{path}:1: not a netprobe result header")
            if record is None:
                if skipped is not None:
                    skipped.append(number)
                continue
            if record["type"] not in (records.CHECKPOINT, records.SIGNATURE):
                yield record


def load_result(
    path: Path, *, verify: bool = True, allowed_signers: Path | None = None
) -> LoadedResult:
    """Load one file (see `iter_records`); `dropped` counts records left out."""
    path = Path(path)
    skipped: list[int] = []
    if verify:
        verification, stream = iter_records(path, verify=True, allowed_signers=allowed_signers)
    else:
        verification, stream = None, _iter_unverified(path, skipped)
    header: dict[str, Any] | None = None
    summary = None
    measurements: list[dict[str, Any]] = []
    for record in stream:
        kind = record["type"]
        if kind == records.HEADER and header is None:
            header = record
        elif kind == records.SUMMARY:
            summary = record
        elif kind in records.MEASUREMENT_TYPES:
            measurements.append(record)
    if header is None:
        raise ResultFileError(f"{path}: no signed header (nothing in the file is covered)")
    dropped = verification.records_uncovered if verification else len(skipped)
    return LoadedResult(path, header, measurements, summary, verification, dropped)
