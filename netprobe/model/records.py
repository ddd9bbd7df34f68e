"""Record schema shared by every probe, the writer and every reader.

Rules:
- Every record is a flat JSON object with `schema_version` and `type` first.
- Records are encoded once, compactly, one per line, LF only; readers never re-serialise a
  record before verifying it (signatures cover the bytes as written).
- Times inside a run are seconds since the run start (`t0`, `t`), rounded to microseconds;
  wall-clock times are UTC ISO-8601 with a `Z` suffix.
The full schema is in docs/DESIGN.md.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

SCHEMA_VERSION = 1

HEADER = "header"
SUMMARY = "summary"
CHECKPOINT = "checkpoint"
SIGNATURE = "signature"
DNS = "dns"
TCP = "tcp"
TLS = "tls"
MEASUREMENT_TYPES = frozenset({DNS, TCP, TLS})


def new_record(record_type: str, **fields: Any) -> dict[str, Any]:
    """A record with the schema version and type first, then `fields` in the given order."""
    record: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "type": record_type}
    record.update(fields)
    return record


def measurement(
    record_type: str,
    *,
    target_id: str,
    group: str,
    role: str,
    attempt: int,
    t0: float,
    t: float,
    failure: str | None,
    failed_operation: str | None,
    **fields: Any,
) -> dict[str, Any]:
    """A measurement record with the common fields of docs/DESIGN.md, then kind-specific ones."""
    return new_record(
        record_type,
        target_id=target_id,
        group=group,
        role=role,
        attempt=attempt,
        t0=round(t0, 6),
        t=round(t, 6),
        failure=failure,
        failed_operation=failed_operation if failure else None,
        **fields,
    )


def encode_line(record: dict[str, Any]) -> bytes:
    """One record as the exact bytes written to a result file (compact JSON + LF)."""
    text = json.dumps(record, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.encode("utf-8") + b"\n"


def utc_now_iso() -> str:
    return format_utc(datetime.now(UTC))


def format_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_utc(text: str) -> datetime:
    """Parse a time written by `format_utc` (or any ISO-8601 string; naive means UTC)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
