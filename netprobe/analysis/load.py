"""Loading a run for analysis: the schema checks every reader applies before `analyse`.

`report`, `diff` (cli/cmd_report.py), `timeline` (timeline/files.py) and any later reader take
the records `netprobe.evidence.reader` gives them (already verified, or read with --no-verify)
and pass them through here, so a file one reader refuses is refused by all of them.

Rules:
- Pure: works on the records it is given; never opens a file (the evidence layer does that).
- The header must be a `header` record whose `schema_version` is the one this netprobe reads
  (`SCHEMA_VERSION`); a file from another format version is refused, never guessed at. The
  header fields the analysis reads (`groups`, `expected_ranges`, ...) must have their types.
- A measurement record that does not belong to the file is refused: one whose `schema_version`
  is not the header's, or whose fields the analysis reads have the wrong type (`check_records`).
- Problems are plain messages without the file name (`RunRefused`); callers prefix the path.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from netprobe.model.records import (
    CONFIRMATION,
    CONTROL_ROUND,
    HEADER,
    MEASUREMENT_TYPES,
    PAUSE,
    SCHEMA_VERSION,
    SUMMARY,
)

_LIST_FIELDS = ("answers", "late_replies", "address_sources", "peer_certificates")
_ADDRESSED = frozenset({"tcp", "tls", "mtproto", "http", "throughput"})  # records with ip, port


class RunRefused(ValueError):
    """The records cannot be analysed; the message says why (without the file name)."""


@dataclass
class Run:
    header: dict[str, Any]
    records: list[dict[str, Any]]  # measurement records only (dns/tcp/tls), in file order
    summary: dict[str, Any] | None = None


def check_header(header: Any) -> str | None:
    """Why `header` cannot start a run this netprobe reads, else None."""
    if not isinstance(header, dict) or header.get("type") != HEADER:
        return "no header line covered by a valid signature"
    version = header.get("schema_version")
    if version.__class__ is not int or version != SCHEMA_VERSION:
        return f"header schema_version {version!r}; this netprobe reads {SCHEMA_VERSION}"
    for name, kind, noun in _HEADER_FIELDS:
        value = header.get(name)
        if value is not None and not isinstance(value, kind):
            return f"header field {name!r} must be {noun}, got {type(value).__name__}"
    ranges = header.get("expected_ranges") or {}
    for key, cidrs in ranges.items():
        if not isinstance(cidrs, list) or not all(isinstance(c, str) for c in cidrs):
            return f"header field 'expected_ranges.{key}' must be a list of network strings"
    return None


# Header fields the analysis reads, when present: (name, type, what the message calls it).
_HEADER_FIELDS = (
    ("groups", dict, "a mapping"),
    ("expected_ranges", dict, "a mapping"),
    ("options", dict, "a mapping"),
    ("target_files", list, "a list"),
)


def check_records(records: Iterable[dict], schema_version: int = SCHEMA_VERSION) -> str | None:
    """The first measurement record the analysis cannot use, named with its field, else None.

    Non-measurement records are ignored. The loop is the timeline's per-record cost: the usual
    record passes one conservative test; anything unusual gets the exact check and its message.
    """
    for number, record in enumerate(records, start=1):
        if record.__class__ is not dict:
            if not isinstance(record, dict):
                continue
        kind = record.get("type")
        if kind not in MEASUREMENT_TYPES:
            continue
        get = record.get
        target, failure = get("target_id"), get("failure")
        if (
            (version := get("schema_version")) == schema_version
            and version.__class__ is int
            and target.__class__ is str
            and target
            and get("attempt", 0).__class__ is int
            and (failure is None or failure.__class__ is str)
            and (
                kind not in _ADDRESSED
                or (get("ip").__class__ is str and get("port").__class__ is int)
            )
            and ((value := get("answers")) is None or value.__class__ is list)
            and ((value := get("late_replies")) is None or value.__class__ is list)
            and ((value := get("address_sources")) is None or value.__class__ is list)
            and ((value := get("peer_certificates")) is None or value.__class__ is list)
            and ((value := get(CONFIRMATION)) is None or value.__class__ is int)
            and ((value := get(CONTROL_ROUND)) is None or value.__class__ is int)
            and get(PAUSE) is None
        ):
            continue
        problem = _record_problem(number, record, schema_version)
        if problem:
            return problem
    return None


def _record_problem(number: int, record: dict, schema_version: int) -> str | None:
    where = f"measurement record {number} ({record.get('type')} {record.get('target_id')!r})"
    version = record.get("schema_version")
    if version.__class__ is not int or version != schema_version:
        return (
            f"{where}: schema_version {version!r} is not the header's {schema_version}: "
            "the record does not belong to this file"
        )
    if not isinstance(record.get("target_id"), str) or not record["target_id"]:
        return f"{where}: field 'target_id' must be a non-empty string"
    if not isinstance(record.get("attempt", 0), int):  # a bool passes, as it always has
        return f"{where}: field 'attempt' must be an integer, got {record.get('attempt')!r}"
    for name in (CONFIRMATION, CONTROL_ROUND):
        value = record.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            return f"{where}: field {name!r} must be an integer, got {value!r}"
    pause = record.get(PAUSE)
    if pause is not None and (not isinstance(pause, int | float) or isinstance(pause, bool)):
        return f"{where}: field {PAUSE!r} must be a number, got {pause!r}"
    failure = record.get("failure")
    if failure is not None and not isinstance(failure, str):
        return f"{where}: field 'failure' must be null or a string, got {failure!r}"
    if record["type"] in _ADDRESSED:
        if not isinstance(record.get("ip"), str):
            return f"{where}: field 'ip' must be a string, got {record.get('ip')!r}"
        port = record.get("port")
        if not isinstance(port, int) or isinstance(port, bool):
            return f"{where}: field 'port' must be an integer, got {port!r}"
    for name in _LIST_FIELDS:
        if record.get(name) is not None and not isinstance(record[name], list):
            return f"{where}: field {name!r} must be a list, got {record[name]!r}"
    return None


def load_run(header: Any, records: Iterable[dict[str, Any]]) -> Run:
    """A run ready for `analyse`: the header checked, the measurements checked and split out.

    `records` are what a reader gives after the header (measurements, the summary, records of
    unknown types, in any mix); raises RunRefused with the first problem.
    """
    problem = check_header(header)
    if problem:
        raise RunRefused(problem)
    summary = None
    measurements: list[dict[str, Any]] = []
    keep = measurements.append
    for record in records:
        kind = record.get("type") if isinstance(record, dict) else None
        if kind in MEASUREMENT_TYPES:
            keep(record)
        elif kind == SUMMARY:
            summary = record
    problem = check_records(measurements, header["schema_version"])
    if problem:
        raise RunRefused(problem)
    return Run(header, measurements, summary)
