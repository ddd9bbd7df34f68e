"""What `run --tsa`, `timestamp` and `verify` print about RFC 3161 timestamps.

Rules: pure text from `tsa_client.Stamped` and `timestamp.TimestampCheck`; the genTime is shown
in UTC ISO 8601 (`2025-05-26T01:00:00Z`), the TSA by its certificate subject.
"""

from __future__ import annotations

from typing import Any

from netprobe.evidence import format as fmt


def stamp_dict(stamped: Any) -> dict[str, Any]:
    """The `timestamp` item of `run --format json` (and of `timestamp --format json`)."""
    check = stamped.check.to_dict() if stamped.check is not None else None
    return {
        "path": str(stamped.path),
        "tsr": str(stamped.tsr) if stamped.tsr is not None else None,
        "problem": stamped.problem,
        "check": check,
    }


def stamp_line(stamped: Any) -> str:
    """`timestamp: FILE.tsr (genTime 2025-05-26T01:00:00Z by CN=..., VALID)`."""
    check = stamped.check
    when = check.to_dict()["gen_time"]
    return f"timestamp: {stamped.tsr} (genTime {when} by {check.tsa}, {check.status})"


def stamp_warning(stamped: Any) -> str:
    return (
        f"timestamp missing for {stamped.path}: {stamped.problem}; the file is complete and "
        f"signed; retry later with `netprobe timestamp {stamped.path} --tsa URL`"
    )


def check_cell(check: Any) -> str:
    """The verify table's timestamp cell: `VALID 2025-05-26T01:00:00Z CN=...` or the problem."""
    if check.status == fmt.TS_NONE:
        return "-"
    if check.status == fmt.TS_INVALID:
        return f"INVALID: {check.message}"
    when = check.to_dict()["gen_time"]
    text = f"{check.status} genTime {when} by {check.tsa}"
    return text if check.status == fmt.TS_VALID else f"{text} (no --tsa-ca: TSA not checked)"
