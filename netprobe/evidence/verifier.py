"""Sans-I/O verification of result files: bytes in, events out (as h11 does for HTTP).

`Verifier.feed(data)` takes the next bytes of a file, in chunks of any size, and returns the
events they complete; `close()` says the file ended and returns the last ones. The verdict is the
same however the bytes are split. No file handles, no clock: the I/O layer is `reader.py`.

Events, in file order:
- `Header(line, raw, record)` for line 1, `Record(line, raw, record)` for every measurement,
  summary and unknown-type line (raw: the line's bytes without its LF);
- `Checkpoint(...)` when a signature line has been verified: every line up to it is covered;
- `Torn(line, raw, counted)` at close, for a last line without LF;
- `Invalid(line, reason)` then `Done(verification)`, and nothing after, when the file is edited;
- `Done(verification)` last, exactly once (at close, or right after `Invalid`).

Rules (docs/DESIGN.md "checkpoint / signature"):
- Every signature is checked against a running SHA-512 of the exact bytes before its line;
  nothing is re-serialised except checkpoint/signature lines, which must be as written
  (`format.is_as_written`).
- Outcome: COMPLETE (every checkpoint valid, a final one after the summary, nothing after it),
  PARTIAL (valid up to a checkpoint, then unsigned lines or a torn last line), INVALID (bad
  signature, broken sequence, edited byte, untrusted signer: names the line), UNSIGNED (written
  with --no-sign).
- A complete line that is not a JSON object with a `type` (or that nests deeper than
  `format.MAX_NESTING`) is INVALID, even in the unsigned tail; the message says what is wrong.
- Trust: with `allowed` entries (from an allowed_signers file), a signer not listed is INVALID
  (with `require_trusted=False`: the file verifies as usual and `trusted` is False, for callers
  that report an untrusted signer themselves); without entries signatures are checked against
  the header's key (a hint) and `trusted` is None.
- Anything after the final checkpoint, a complete line or bytes without a newline, is INVALID;
  without a final checkpoint a last line without LF is torn (PARTIAL).
- Record events carry lines not yet covered: a reader keeps them until the next `Checkpoint`
  (or asks for `collect=True`, and takes `Checkpoint.records`: only covered records).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from netprobe.evidence import format as fmt
from netprobe.evidence import sshsig
from netprobe.evidence.events import (
    Checkpoint,
    Done,
    Event,
    Header,
    Invalid,
    Record,
    Torn,
    Verification,
)
from netprobe.evidence.keys import header_signer_key, trusted_principal

_DECODE, _MAX = fmt.FULL_DECODE, fmt.MAX_LINE_BYTES
_DEPTH, _TOO_DEEP = fmt.MAX_NESTING, fmt.too_deep
_HEADER, _SUMMARY, _SIGNING = fmt.HEADER, fmt.SUMMARY, fmt.SIGNING_TYPES
_STRUCTURAL = fmt.STRUCTURAL_TYPES
_NO_CHUNK: tuple[memoryview, int, bytes] = (memoryview(b""), 0, b"")


class _Invalid(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


class Verifier:
    """One file's verification state; see the module docstring for the events and rules.

    `allowed`: (principal, key) entries of an allowed_signers file, or None; with
    `require_trusted=False` a signer not among them is reported (`trusted` False), not INVALID.
    `path` only names
    the file in the `Verification`. `records=False` leaves out Header/Record events (for a
    verdict alone: a little faster). `collect=True` puts the parsed records a checkpoint covers
    into its event (`Checkpoint.records`): what a reader of verified data needs, without one
    event object per line.
    """

    def __init__(
        self,
        allowed: list[tuple[str, Ed25519PublicKey]] | None = None,
        *,
        path: Path | str = "-",
        records: bool = True,
        collect: bool = False,
        require_trusted: bool = True,
    ) -> None:
        self.allowed = allowed
        self.require_trusted = require_trusted
        self.emit_records = records
        self._covering: list[dict[str, Any]] = []  # collected records awaiting a signature
        self._keep = self._covering.append if collect else None
        self.verification = Verification(path=Path(path), status=fmt.PARTIAL, message="")
        self._hasher = hashlib.sha512()
        self._hashed = 0  # bytes fed to the hasher; the rest of the complete lines waits
        self._offset = 0  # bytes in complete lines so far
        self._line_no = 0
        self._tail: list[bytes] = []  # the incomplete last line, in pieces
        self._tail_size = 0
        self._key: Ed25519PublicKey | None = None
        self._header_signed = False
        self._next_seq = 0
        self._pending: tuple[int, int, str] | None = None  # (seq, line, reason) awaiting signature
        self._summary_line: int | None = None
        self._final = False
        self._torn = False
        self._records_since = 0
        self._done = False
        self._chunk: tuple[memoryview, int, bytes] = _NO_CHUNK

    @property
    def done(self) -> bool:
        return self._done

    def feed(self, data: bytes) -> list[Event]:
        """The events completed by the next bytes of the file."""
        if self._done:
            raise RuntimeError("feed() after the verifier finished")
        events: list[Event] = []
        if not data:
            return events
        if b"\n" not in data:
            self._tail.append(data)
            self._tail_size += len(data)
            if self._tail_size > _MAX:
                self._fail(events, self._line_no + 1, self._too_long(self._line_no + 1))
            return events
        pieces = data.split(b"\n")
        rest = pieces.pop()
        base = self._offset + self._tail_size  # file offset of data[0]
        head = b""
        if self._tail:
            head = b"".join(self._tail)
            pieces[0] = head + pieces[0]
            self._tail, self._tail_size = [], 0
        self._chunk = (memoryview(data), base, head)
        # Lines with a long run of digits, for the whole chunk at once (`format.decode_json`);
        # the first line is tested whole when the previous chunk started it.
        long_lines = fmt.long_digit_lines(data)
        if head and fmt.has_long_digit_run(pieces[0]):
            long_lines.add(0)
        try:
            self._lines(pieces, events, long_lines)
        except _Invalid as exc:
            self._fail(events, exc.line, str(exc))
            return events
        finally:
            self._chunk = _NO_CHUNK  # keep no reference to the caller's buffer
        if rest:
            self._tail.append(rest)
            self._tail_size = len(rest)
            if self._tail_size > _MAX:
                self._fail(events, self._line_no + 1, self._too_long(self._line_no + 1))
        return events

    def close(self) -> list[Event]:
        """The file ended: the torn last line if any, then `Done`."""
        if self._done:
            raise RuntimeError("close() after the verifier finished")
        events: list[Event] = []
        if self._tail and self._final:
            # Bytes after the final checkpoint, even without a newline, are an edit: the
            # detached .sig (and `ssh-keygen -Y verify`) covers the file only up to it.
            number = self._line_no + 1
            self._fail(events, number, f"line {number}: data after the final signed checkpoint")
            return events
        if self._tail:
            self._line_no += 1
            raw = b"".join(self._tail)
            counted = self._line_no > 1 and fmt.torn_line_is_record(raw)
            self._torn = True
            self._records_since += counted
            events.append(Torn(self._line_no, raw, counted))
        result = self.verification
        result.lines_total = self._line_no
        result.records_uncovered = self._records_since
        self._conclude(result)
        if result.status == fmt.INVALID:  # only "empty file" is found at close
            events.append(Invalid(None, result.message))
        self._done = True
        events.append(Done(result))
        return events

    def _lines(self, pieces: list[bytes], events: list, long_lines: set[int]) -> None:
        """The hot loop of a timeline: each complete line once, with everything in locals.

        Measurement lines take the short path; every other line goes through `_structural`,
        which applies the rules in full. `long_lines`: the indexes of `pieces` that hold a long
        run of digits (`format.long_digit_lines`): the others skip that test.
        """
        append, decode = events.append, fmt.decode_short_digits
        decode_long, first = fmt.decode_json, self._line_no + 1
        emit, keep = self.emit_records, self._keep
        number, offset, since = self._line_no, self._offset, self._records_since
        pending, final = self._pending, self._final
        for piece in pieces:
            number += 1
            size = len(piece) + 1
            if size > _MAX:
                raise _Invalid(number, self._too_long(number))
            if final:
                raise _Invalid(number, f"line {number}: data after the final signed checkpoint")
            try:  # format.decode_line, inlined
                record = decode(piece) if number - first not in long_lines else decode_long(piece)
            except (ValueError, RecursionError):  # UnicodeDecodeError included
                record = kind = None
            else:
                kind = record.get("type") if record.__class__ is dict else None
                if kind.__class__ is not str or (
                    piece.count(b"[") + piece.count(b"{") > _DEPTH and _TOO_DEEP(record)
                ):
                    record = kind = None
            if pending is None and kind is not None and kind not in _STRUCTURAL and number > 1:
                since += 1  # a measurement (or a record type this version does not know)
                if emit:
                    append(Record(number, piece, record))
                if keep is not None:
                    keep(record)
            else:
                self._line_no, self._offset, self._records_since = number, offset, since
                self._structural(number, offset, size, piece, record, kind, append)
                since, pending, final = self._records_since, self._pending, self._final
            offset += size
        self._line_no, self._offset, self._records_since = number, offset, since
        self._hash_to(offset)

    def _structural(
        self, number: int, offset: int, size: int, piece: bytes, record: Any, kind: Any, append: Any
    ) -> None:
        """Every line but a plain measurement: header, checkpoint, signature, summary, errors."""
        if number == 1:
            if kind != _HEADER:
                raise _Invalid(1, "line 1 is not a netprobe result header")
            try:
                self._key = header_signer_key(record.get("signer"))
            except ValueError as exc:
                raise _Invalid(1, f"line 1: {exc}") from None
            self._header_signed = self._key is not None
            if self.emit_records:
                append(Header(1, piece, record))
            if self._keep is not None:
                self._keep(record)
        elif self._pending is not None and kind != fmt.SIGNATURE:
            raise _Invalid(
                number,
                f"line {number}: the checkpoint on line {self._pending[1]} is not "
                "followed by its signature",
            )
        elif record is None:
            # Our writer only ever leaves a torn last line (no LF); a complete line that is
            # not a JSON record was edited, even in the unsigned tail.
            raise _Invalid(number, f"line {number} is not a JSON record{_why_not_json(piece)}")
        elif kind in _SIGNING:
            if not fmt.is_as_written(record, piece):
                # The writer encodes these itself; any other spelling is an edit (this also
                # catches base64 bit-flips that decode to the same signature).
                raise _Invalid(number, f"line {number}: {kind} line is not as written")
            if kind == fmt.CHECKPOINT:
                self._checkpoint(record, number)
                return
            self._hash_to(offset)
            checkpoint = self._signature(record, number)
            self._hash_to(offset + size)
            result = self.verification
            result.covered_bytes = checkpoint.covered_bytes = offset + size
            result.covered_sha512 = checkpoint.covered_sha512 = self._hasher.hexdigest()
            append(checkpoint)
        elif kind == _HEADER:
            raise _Invalid(number, f"line {number}: a second header")
        elif kind == _SUMMARY:
            if self._summary_line is not None:
                raise _Invalid(number, f"line {number}: a second summary")
            self._summary_line = number
            self._record(number, piece, record, append)
        else:  # unreachable: the short path takes these
            self._records_since += 1
            self._record(number, piece, record, append)

    def _record(self, number: int, piece: bytes, record: Any, append: Any) -> None:
        if self.emit_records:
            append(Record(number, piece, record))
        if self._keep is not None:
            self._keep(record)

    def _hash_to(self, end: int) -> None:
        """Feed the hasher every byte before file offset `end` of the chunk being fed.

        `head` is the previous chunk's incomplete line, which starts the first line of `view`
        (at file offset `base`); hashing lags behind parsing so that each chunk is hashed in a
        few large updates instead of one per line.
        """
        if end <= self._hashed:
            return
        view, base, head = self._chunk
        if self._hashed < base:  # the head is only ever hashed whole
            self._hasher.update(head)
            self._hashed = base
        self._hasher.update(view[self._hashed - base : end - base])
        self._hashed = end

    def _checkpoint(self, record: dict[str, Any], number: int) -> None:
        seq, reason = record.get("seq"), record.get("reason")
        problems, causes = [], []
        if seq != self._next_seq:
            problems.append(f"seq {seq!r}, expected {self._next_seq}")
            causes.append("checkpoints were removed, repeated or reordered")
        lines = record.get("lines")
        if lines != number - 1:
            problems.append(f"lines {lines!r}, expected {number - 1}")
            if isinstance(lines, int) and not isinstance(lines, bool):
                more = number - 1 - lines
                causes.append(
                    f"{abs(more)} line(s) were {'added' if more > 0 else 'removed'} before it"
                )
            else:
                causes.append("its line count is not a number")
        size = record.get("bytes")
        if size != self._offset:
            problems.append(f"bytes {size!r}, expected {self._offset}")
            if lines == number - 1 and isinstance(size, int) and not isinstance(size, bool):
                longer = self._offset - size
                causes.append(
                    f"the same number of lines is {abs(longer)} byte(s) "
                    f"{'longer' if longer > 0 else 'shorter'} than when it was signed:"
                    " a record before it was edited (its length changed)"
                )
            elif lines == number - 1:
                causes.append("its byte count is not a number")
        expected_reasons = fmt.allowed_reasons(self._next_seq, self._summary_line is not None)
        if reason not in expected_reasons:
            problems.append(f"reason {reason!r}, expected one of {expected_reasons}")
            causes.append("the checkpoint's reason was changed")
        if problems:
            raise _Invalid(
                number,
                f"line {number}: broken checkpoint sequence ({'; '.join(problems)}): "
                + "; ".join(dict.fromkeys(causes)),
            )
        self._pending = (self._next_seq, number, str(reason))  # one of expected_reasons

    def _signature(self, record: dict[str, Any], number: int) -> Checkpoint:
        pending = self._pending
        if pending is None or record.get("seq") != pending[0]:
            raise _Invalid(
                number, f"line {number}: signature without its checkpoint line before it"
            )
        if record.get("namespace") != fmt.NAMESPACE or record.get("hash_alg") != fmt.HASH_ALG:
            raise _Invalid(
                number,
                f"line {number}: signature namespace/hash must be "
                f"{fmt.NAMESPACE!r}/{fmt.HASH_ALG!r}",
            )
        result = self.verification
        first = result.lines_covered + 1
        try:
            blob = fmt.decode_sshsig(record.get("sshsig"))
            key = sshsig.verify_digest(blob, fmt.NAMESPACE, self._hasher.copy().digest())
        except ValueError as exc:
            raise _Invalid(
                number,
                f"line {number}: signature does not match lines {first}-{number - 1} as "
                f"written ({exc}): a byte was edited or lines were added, removed or reordered",
            ) from None
        self._check_key(key, number)
        result.checkpoints += 1
        result.lines_covered = number
        result.records_covered += self._records_since
        self._records_since = 0
        self._next_seq += 1
        final = pending[2] in fmt.FINAL_REASONS and self._summary_line is not None
        self._final = final
        self._pending = None
        covered = self._covering[:]
        self._covering.clear()
        return Checkpoint(pending[0], pending[2], number, 0, "", final, covered)

    def _check_key(self, key: Ed25519PublicKey, number: int) -> None:
        blob = sshsig.public_key_blob(key)
        if self._key is not None and sshsig.public_key_blob(self._key) != blob:
            raise _Invalid(
                number, f"line {number}: signed by a different key than the header names"
            )
        if self._key is None:
            self._key = key
        result = self.verification
        if result.signer_fingerprint is None:
            result.signer_fingerprint = sshsig.fingerprint(key)
            if self.allowed is not None:
                result.principal = trusted_principal(self.allowed, key)
                result.trusted = result.principal is not None
                if not result.trusted and self.require_trusted:
                    raise _Invalid(
                        number,
                        f"line {number}: signer {result.signer_fingerprint} is not "
                        "listed for this namespace in the allowed signers file",
                    )

    def _fail(self, events: list, line: int, message: str) -> None:
        result = self.verification
        result.status, result.bad_line, result.message = fmt.INVALID, line, message
        result.lines_total = line
        self._done = True
        events.append(Invalid(line, message))
        events.append(Done(result))

    @staticmethod
    def _too_long(number: int) -> str:
        return f"line {number} is longer than {_MAX} bytes"

    def _conclude(self, result: Verification) -> None:
        if result.lines_total == 0:
            result.status, result.message, result.bad_line = fmt.INVALID, "empty file", None
            return
        if self._line_no == 1 and self._torn:
            result.status = fmt.PARTIAL
            result.message = "the header line is incomplete; nothing is signed"
            return
        if result.checkpoints == 0 and not self._header_signed and self._pending is None:
            result.status = fmt.UNSIGNED
            result.message = f"no signatures ({result.records_uncovered} records, written unsigned)"
            return
        if self._final:
            result.status = fmt.COMPLETE
            result.message = f"all {result.checkpoints} checkpoints valid, final checkpoint present"
            return
        result.status = fmt.PARTIAL
        tail = result.lines_total - result.lines_covered
        torn = "; the last line is torn" if self._torn else ""
        result.message = (
            f"signed up to line {result.lines_covered} ({result.records_covered} records); "
            f"{result.records_uncovered} records in {tail} lines after it are not signed{torn}"
        )


def _why_not_json(piece: bytes) -> str:
    """What is wrong with a line that is not a record, for the message (error path only)."""
    try:
        text = piece.decode()
    except UnicodeDecodeError as exc:
        return f" (not valid UTF-8 at byte {exc.start + 1})"
    if "\x00" in text:
        return " (it contains a NUL byte)"
    if piece.count(b"[") + piece.count(b"{") > _DEPTH:
        try:
            if _TOO_DEEP(_DECODE(text)):
                return f" (nested more than {_DEPTH} levels deep)"
        except RecursionError:
            return f" (nested more than {_DEPTH} levels deep)"
        except ValueError:
            pass
    try:
        value = _DECODE(text)
    except (ValueError, RecursionError) as exc:
        return f" ({exc})"
    if value.__class__ is not dict:
        return f" (a JSON {type(value).__name__}, not an object)"
    return " (no text 'type' field)"
