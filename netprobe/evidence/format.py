"""The result-file format, defined once (docs/DESIGN.md "Result file", "checkpoint / signature").

The writer (`writer.py`), the verifier (`verifier.py`), retention (`run/retention.py`) and the
timeline's file search import these names; none of them spells a file name, a field order or a
reason of its own.

Rules:
- Names: a run started at UTC time T on vantage V is `<T %Y%m%dT%H%M%SZ>_<V'>.jsonl`, V' being V
  with every character outside `[A-Za-z0-9._-]` replaced by `-` (`unnamed` if empty). While it
  runs the file is `.<name>.partial`; a signed run also gets the detached `<name>.sig`.
- Lines: one JSON object each, UTF-8, compact separators, LF only (`records.encode_line`);
  at most `MAX_LINE_BYTES` bytes including the LF, nested at most `MAX_NESTING` levels (a deeper
  line is not a record: `decode_line` gives None, the verifier calls the file INVALID).
- Checkpoint and signature lines are exactly `CHECKPOINT_FIELDS` / `SIGNATURE_FIELDS` in that
  order, schema_version 1, canonical base64 (`checkpoint_line`, `signature_line`). Any other
  spelling of one is an edit (`is_as_written`).
- Reasons: seq 0 is `start`; before the summary `interval` or `signal`; after it `end` or
  `signal`, which closes the file (`allowed_reasons`).
- Statuses of a file: COMPLETE, PARTIAL, UNSIGNED, INVALID (meaning in `verifier.py`).
"""

from __future__ import annotations

import base64
import binascii
import json
import json.scanner
import re
from datetime import UTC, datetime
from typing import Any

from netprobe.model import records

# --- file names ---------------------------------------------------------------------------------
STEM_TIME_FORMAT = "%Y%m%dT%H%M%SZ"
RESULT_SUFFIX = ".jsonl"
PARTIAL_SUFFIX = ".partial"
SIG_SUFFIX = ".sig"
# A finished result file, its detached signature or its timestamp, as retention recognises them.
RESULT_NAME = re.compile(
    r"^(?P<start>\d{8}T\d{6}Z)_(?P<vantage>[^/]+)\.jsonl(?P<sig>\.sig|\.tsr)?$"
)


def file_stem(started: datetime, vantage: str) -> str:
    """`20250526T010000Z_hanoi-vnpt` : UTC start time and vantage name, safe for any filesystem."""
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in vantage) or "unnamed"
    return f"{started.strftime(STEM_TIME_FORMAT)}_{safe}"


def result_name(stem: str) -> str:
    """The finished file: `<stem>.jsonl`."""
    return f"{stem}{RESULT_SUFFIX}"


def partial_name(stem: str) -> str:
    """The file while its run is going on (or after it was killed): `.<stem>.jsonl.partial`."""
    return f".{stem}{RESULT_SUFFIX}{PARTIAL_SUFFIX}"


def sig_name(stem: str) -> str:
    """The detached armored signature of a finished signed file: `<stem>.jsonl.sig`."""
    return f"{stem}{RESULT_SUFFIX}{SIG_SUFFIX}"


def is_result_file(name: str) -> bool:
    """A name readers look at in a folder: any `*.jsonl`, or a hidden `.*.jsonl.partial`."""
    return name.endswith(RESULT_SUFFIX) or (
        name.startswith(".") and name.endswith(RESULT_SUFFIX + PARTIAL_SUFFIX)
    )


def result_start_time(name: str) -> datetime | None:
    """UTC start time in a finished result (or `.sig`) name; None if the name is not one."""
    match = RESULT_NAME.match(name)
    if not match:
        return None
    try:
        return datetime.strptime(match["start"], STEM_TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


# --- record types and line layout ---------------------------------------------------------------
SCHEMA_VERSION = records.SCHEMA_VERSION
HEADER, SUMMARY = records.HEADER, records.SUMMARY
CHECKPOINT, SIGNATURE = records.CHECKPOINT, records.SIGNATURE
SIGNING_TYPES = frozenset({CHECKPOINT, SIGNATURE})
STRUCTURAL_TYPES = frozenset({HEADER, SUMMARY, CHECKPOINT, SIGNATURE})
MEASUREMENT_TYPES = records.MEASUREMENT_TYPES
MAX_LINE_BYTES = 16 * 1024 * 1024
MAX_NESTING = 100  # arrays/objects inside each other; our records use fewer than 10

CHECKPOINT_FIELDS = ("schema_version", "type", "seq", "lines", "bytes", "reason")
SIGNATURE_FIELDS = ("schema_version", "type", "seq", "namespace", "hash_alg", "sshsig")
FIELDS = {CHECKPOINT: list(CHECKPOINT_FIELDS), SIGNATURE: list(SIGNATURE_FIELDS)}

START, INTERVAL, SIGNAL, END = "start", "interval", "signal", "end"
CHECKPOINT_REASONS = (START, INTERVAL, SIGNAL, END)
FINAL_REASONS = (END, SIGNAL)  # after the summary: these close the file

NAMESPACE = "netprobe-result@v1"  # the SSHSIG namespace of every result-file signature
BUNDLE_NAMESPACE = "netprobe-bundle@v1"  # the namespace of an evidence bundle's manifest signature
DEFAULT_PRINCIPAL = "netprobe"  # a key's principal when none is given (`keygen --principal`)
HASH_ALG = "sha512"

# --- statuses of a file -------------------------------------------------------------------------
COMPLETE = "COMPLETE"
PARTIAL = "PARTIAL"
UNSIGNED = "UNSIGNED"
INVALID = "INVALID"
STATUSES = (COMPLETE, PARTIAL, UNSIGNED, INVALID)
UNREADABLE = "UNREADABLE"  # `verify`'s status for a file it could not read at all (not a STATUS)


def allowed_reasons(seq: int, after_summary: bool) -> tuple[str, ...]:
    """The reasons checkpoint `seq` may give, before or after the summary line."""
    if seq == 0:
        return (START,)
    return FINAL_REASONS if after_summary else (INTERVAL, SIGNAL)


def checkpoint_record(seq: int, lines: int, size: int, reason: str) -> dict[str, Any]:
    """The checkpoint record after `lines` lines / `size` bytes; reason in CHECKPOINT_REASONS."""
    if reason not in CHECKPOINT_REASONS:
        raise ValueError(f"checkpoint reason must be one of {CHECKPOINT_REASONS}, not {reason!r}")
    return records.new_record(CHECKPOINT, seq=seq, lines=lines, bytes=size, reason=reason)


def signature_record(seq: int, blob: bytes) -> dict[str, Any]:
    """The signature record carrying the binary SSHSIG `blob` of checkpoint `seq`."""
    return records.new_record(
        SIGNATURE,
        seq=seq,
        namespace=NAMESPACE,
        hash_alg=HASH_ALG,
        sshsig=base64.b64encode(blob).decode("ascii"),
    )


def checkpoint_line(seq: int, lines: int, size: int, reason: str) -> bytes:
    return records.encode_line(checkpoint_record(seq, lines, size, reason))


def signature_line(seq: int, blob: bytes) -> bytes:
    return records.encode_line(signature_record(seq, blob))


def is_as_written(record: dict[str, Any], line: bytes) -> bool:
    """Whether a parsed checkpoint/signature `record` is exactly what the writer writes.

    `line` is the raw line without its LF. Catches reordered or extra fields, another
    schema_version, other whitespace or escapes, and base64 edits that decode the same.
    """
    if list(record) != FIELDS[record["type"]] or record["schema_version"] != SCHEMA_VERSION:
        return False
    try:
        return records.encode_line(record) == line + b"\n"
    except ValueError:  # NaN or Infinity: the writer never writes one
        return False


def decode_sshsig(text: Any) -> bytes:
    """The SSHSIG blob of a signature record's `sshsig` field; ValueError unless canonical."""
    try:
        blob = base64.b64decode(text or "", validate=True)
    except (binascii.Error, TypeError) as exc:
        raise ValueError(str(exc)) from None
    if base64.b64encode(blob).decode() != text:
        raise ValueError("non-canonical base64")  # unused bits were edited
    return blob


# --- decoding lines -----------------------------------------------------------------------------
_DECODER = json.JSONDecoder()
# The decoder's C scanner, called directly: our lines are one compact object, so the Python
# layers of json.loads (encoding sniffing, whitespace regexes) would be a third of the reading
# time of a timeline for nothing. Anything else falls back to the full decoder.
SCAN = json.scanner.make_scanner(_DECODER)  # type: ignore[arg-type] # typeshed: the C type
FULL_DECODE = _DECODER.decode
_TYPE_FIELD = re.compile(rb'^\{"schema_version":\d+,"type":"([a-z_]+)"')
# orjson, when installed (a default dependency), decodes a line 3-4x faster straight from bytes,
# and shares the key strings of all the records it makes (cheaper dict lookups later). It gives
# the same objects as the stdlib for every line it accepts, except numbers of 19+ digits (an int
# beyond 64 bits becomes a float): those lines, and every line it refuses (NaN, Infinity, a lone
# surrogate, nesting over 1,024), go to the stdlib decoder, so the result is the stdlib's.
try:
    import orjson
except ImportError:  # pragma: no cover - the pure-Python path is tested by patching _fast_loads
    orjson = None  # type: ignore[assignment]
_fast_loads = orjson.loads if orjson is not None else None
# A run of LONG_DIGITS ASCII digits anywhere in a line (in a number or not) sends it to the
# stdlib. Found by mapping every digit to "0" (other bytes stay, none becomes "0") and searching
# for the run of zeros: ~0.8 us a line, where the regex `\d{19}` took ~6 us (a sixth of a
# timeline's CPU time).
LONG_DIGITS = 19
_ZEROED_DIGITS = bytes.maketrans(b"123456789", b"000000000")
_DIGIT_RUN = b"0" * LONG_DIGITS


def has_long_digit_run(line: bytes) -> bool:
    """Whether `line` holds LONG_DIGITS ASCII digits in a row (as `re.search(rb"\\d{19}")`)."""
    return _DIGIT_RUN in line.translate(_ZEROED_DIGITS)


def long_digit_lines(data: bytes) -> set[int]:
    """The indexes (0-based, split at LF) of the lines of `data` that hold LONG_DIGITS digits in
    a row: what `has_long_digit_run` says of each line, found with one pass over a whole chunk
    (the verifier's loop then needs no test per line)."""
    zeroed = data.translate(_ZEROED_DIGITS)
    found: set[int] = set()
    start = zeroed.find(_DIGIT_RUN)
    while start != -1:
        found.add(zeroed.count(b"\n", 0, start))  # rare: a header's run id of digits, say
        end = zeroed.find(b"\n", start)
        start = -1 if end == -1 else zeroed.find(_DIGIT_RUN, end)
    return found


def decode_json(line: bytes) -> Any:
    """One JSON text from bytes, exactly as the stdlib decodes it; ValueError/RecursionError.

    The stdlib path calls the decoder's C scanner directly: our lines are one compact object,
    and the Python layers of json.loads would cost a third of the reading time for nothing.
    """
    if has_long_digit_run(line):
        return decode_stdlib(line)
    return decode_short_digits(line)


def decode_short_digits(line: bytes) -> Any:
    """`decode_json` of a line known to hold no run of LONG_DIGITS digits (`long_digit_lines`)."""
    fast = _fast_loads
    if fast is not None:
        try:
            return fast(line)
        except ValueError:  # orjson.JSONDecodeError: let the stdlib decide (and word the error)
            pass
    return decode_stdlib(line)


def decode_stdlib(line: bytes) -> Any:
    """`decode_json` by the stdlib alone (what orjson refuses or may read differently)."""
    text = line.decode()
    try:
        obj, end = SCAN(text, 0)
    except StopIteration:  # leading whitespace, or not JSON at all
        end = -1
    if end != len(text):
        obj = FULL_DECODE(text)
    return obj


def decode_line(line: bytes) -> dict[str, Any] | None:
    """A line (without its LF) as a record, or None if it is not a JSON object with a `type`.

    Whitespace around the object is allowed; anything after it is not. (The verifier inlines
    the checks below in its loop; keep the two in step.)
    """
    try:
        obj = decode_json(line)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    if obj.__class__ is not dict or obj.get("type").__class__ is not str:
        return None
    if line.count(b"[") + line.count(b"{") > MAX_NESTING and too_deep(obj):
        return None
    return obj


def too_deep(obj: Any) -> bool:
    """Whether decoded JSON `obj` nests more than `MAX_NESTING` arrays/objects (no recursion)."""
    stack = [(obj, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_NESTING:
            return True
        children = item.values() if item.__class__ is dict else item
        stack.extend((child, depth + 1) for child in children if child.__class__ in _CONTAINERS)
    return False


_CONTAINERS = (dict, list)


def torn_line_is_record(line: bytes) -> bool:
    """Whether a torn last line was a measurement (or cannot tell), not a structural line."""
    found = _TYPE_FIELD.search(line)
    return not (found and found.group(1).decode() in STRUCTURAL_TYPES)


# --- trusted timestamps (RFC 3161, `timestamp.py`) ----------------------------------------------
TSR_SUFFIX = ".tsr"
TS_VALID = "VALID"  # the token is for these bytes, signed by a TSA that chains to the given CA
TS_UNCHECKED = "UNCHECKED"  # the token is for these bytes and self-consistent; no CA was given
TS_INVALID = "INVALID"  # not for these bytes, not signed by its certificate, or no valid chain
TS_NONE = "NONE"  # no .tsr next to the file


def tsr_name(result_file_name: str) -> str:
    """The timestamp token next to a finished result file: `<stem>.jsonl.tsr`."""
    return f"{result_file_name}{TSR_SUFFIX}"


# --- evidence bundles (`netprobe bundle`, `netprobe/bundle/`) -------------------------------------
BUNDLE_MANIFEST = "MANIFEST.sha256"  # sha256sum(1) lines for every other file but its .sig
BUNDLE_MANIFEST_SIG = "MANIFEST.sha256.sig"  # armored SSHSIG of the manifest, BUNDLE_NAMESPACE
BUNDLE_SIGNERS = "allowed_signers"
BUNDLE_TSA_CA = "tsa-ca.pem"
BUNDLE_SCRIPT = "verify.sh"
BUNDLE_README = "VERIFY.md"
BUNDLE_RESULTS = "results"  # folder of the result files, their .sig and .tsr
BUNDLE_REPORTS = "reports"  # folder of the reports (<stem>.txt, <stem>.json, timeline.html)
