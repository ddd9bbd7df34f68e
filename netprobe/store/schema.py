"""The store's tables and the rows one verified run becomes (pure: no I/O, no HTTP).

Rules:
- Three tables: `runs` (one row per result file: header, health, signer, file hash),
  `measurements` (one row per dns/tcp/tls record: typed columns for what analysis uses plus the
  record's JSON), `verdicts` (one row per target: status, method, layer scores, rule version).
- Every table is partitioned by month of the run's start and ordered by network (probe_asn,
  vantage), then target and time, for per-network, per-target time queries.
- The SQL is what ClickHouse 18.16 (Debian's package) and current releases both accept: plain
  MergeTree-family engines with `PARTITION BY`/`ORDER BY`, no LowCardinality, DateTime64, JSON
  type or window functions.
- Idempotence: a file is identified by the SHA-256 of its bytes. `ingest` inserts a file's
  measurements and verdicts first and its `runs` row last, and skips files whose `runs` row
  exists. Every row carries the `ingest_id` of the attempt that wrote it (new for every
  attempt): rows of an attempt cut short before its `runs` row have an id no `runs` row names,
  so readers that join on (file_sha256, ingest_id) with `runs FINAL` (netprobe's timeline) never
  see them; the engines are ReplacingMergeTree keyed to include the file hash, so merges drop
  them too (keeping the last insert), and `FINAL` shows each row once at any time.
- Scores are stored as analysis rounds them (4 decimals), which ClickHouse parses exactly.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from netprobe.model.vocabulary import LAYERS

RUNS, MEASUREMENTS, VERDICTS = "runs", "measurements", "verdicts"
TABLES = (RUNS, MEASUREMENTS, VERDICTS)
# Bump when the verdict rules change so that stored verdicts say which rules made them.
RULES_VERSION = 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)

_RUNS_COLUMNS = """
    file_sha256 String,
    ingest_id String,
    run_id String,
    probe_asn String,
    probe_cc String,
    vantage String,
    start_time DateTime,
    started_at String,
    started_us Int64,
    finished_at String,
    healthy UInt8,
    health String,
    software_name String,
    software_version String,
    target_list_name String,
    signer_fingerprint String,
    signer_principal String,
    verification String,
    records UInt32,
    rules_version UInt16,
    header String,
    summary String,
    ingested_at DateTime"""

_MEASUREMENT_COLUMNS = """
    file_sha256 String,
    ingest_id String,
    run_id String,
    line UInt32,
    probe_asn String,
    vantage String,
    start_time DateTime,
    started_us Int64,
    type String,
    target_id String,
    target_group String,
    role String,
    attempt UInt16,
    confirmation UInt16,
    control_round Int32,
    t0 Float64,
    t Float64,
    failure Nullable(String),
    failed_operation Nullable(String),
    hostname String,
    query_type String,
    resolver_address String,
    resolver_role String,
    engine String,
    rcode Nullable(String),
    ip String,
    port UInt16,
    server_name String,
    sni_role String,
    sequence String,
    tls_version Nullable(String),
    record String"""

_VERDICT_COLUMNS = (
    """
    file_sha256 String,
    ingest_id String,
    run_id String,
    probe_asn String,
    vantage String,
    start_time DateTime,
    started_us Int64,
    healthy UInt8,
    target_id String,
    target_group String,
    role String,
    status String,
    method String,
    layers String,
    score_layers Array(String),
    score_values Array(Float64),"""
    + "".join(f"\n    score_{layer} Nullable(Float64)," for layer in LAYERS)
    + """
    rules_version UInt16"""
)

_ORDER = {
    RUNS: "(probe_asn, vantage, start_time, file_sha256)",
    MEASUREMENTS: "(probe_asn, vantage, target_id, start_time, file_sha256, line)",
    VERDICTS: "(probe_asn, vantage, target_id, start_time, file_sha256)",
}
_ENGINE = {
    RUNS: "ReplacingMergeTree(ingested_at)",
    MEASUREMENTS: "ReplacingMergeTree()",
    VERDICTS: "ReplacingMergeTree()",
}
_COLUMNS = {RUNS: _RUNS_COLUMNS, MEASUREMENTS: _MEASUREMENT_COLUMNS, VERDICTS: _VERDICT_COLUMNS}


def create_statements(database: str) -> list[str]:
    """`CREATE DATABASE` + one `CREATE TABLE IF NOT EXISTS` per table (README shows them)."""
    statements = [f"CREATE DATABASE IF NOT EXISTS {database}"]
    for table in TABLES:
        statements.append(
            f"CREATE TABLE IF NOT EXISTS {database}.{table} ({_COLUMNS[table]}\n)"
            f"\nENGINE = {_ENGINE[table]}"
            "\nPARTITION BY toYYYYMM(start_time)"
            f"\nORDER BY {_ORDER[table]}"
        )
    return statements


def started_micros(started_at: str) -> int:
    """A header's `started_at` as integer microseconds since the epoch (exact; naive = UTC).

    `started_micros(s) / 1e6 == timeline.runs.parse_time(s)` exactly: both are one correctly
    rounded division of the same integer.
    """
    moment = datetime.fromisoformat(started_at.strip().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _MICRO


def _dt(micros: int) -> str:
    return datetime.fromtimestamp(micros // 1_000_000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _text(value: Any) -> str:
    return "" if value is None else str(value)


# What `json.dumps(value, separators=(",", ":"), ensure_ascii=False)` gives, without making an
# encoder on every call (a fifth of a verdict row's time). The encoder holds no state.
_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def run_rows(
    *,
    file_sha256: str,
    ingest_id: str,
    header: dict,
    records: list[dict],
    summary: dict | None,
    analysis: Any,
    verification: dict,
    ingested_at: datetime,
    lines: list[bytes] | None = None,
) -> tuple[dict[str, list[dict]], dict[str, bytes]]:
    """The rows of one verified run: the runs row (a dict, for JSONEachRow), and the
    measurements and verdicts rows as TabSeparated bytes (`INSERT_FORMATS`; `lines`: each
    record's bytes in the file, in order; else the records are encoded again)."""
    started_at = str(header["started_at"])
    micros = started_micros(started_at)
    common = {
        "file_sha256": file_sha256,
        "ingest_id": ingest_id,
        "run_id": _text(header.get("run_id")),
        "probe_asn": _text(header.get("probe_asn") or "AS0"),
        "vantage": _text(header.get("vantage") or "unknown"),
        "start_time": _dt(micros),
        "started_us": micros,
    }
    health = dict(getattr(analysis, "vantage", {}) or {})
    healthy = 1 if health.get("healthy") else 0
    signer_field = header.get("signer")
    signer: dict = signer_field if isinstance(signer_field, dict) else {}
    raw = lines if lines is not None and len(lines) == len(records) else [None] * len(records)
    fixed = _fixed_fields(common)
    measurements = b"".join(
        [
            measurement_tsv(common, number, record, line, fixed)
            for number, (record, line) in enumerate(zip(records, raw, strict=True), 1)
        ]
    )
    prefix = "\t".join(_tsv(common[name]) for name in VERDICT_COLUMNS[:7]) + f"\t{healthy}\t"
    verdicts = "".join(
        [
            verdict_tsv(prefix, verdict)
            for _target, verdict in sorted(getattr(analysis, "verdicts", {}).items())
        ]
    ).encode()
    run = {
        **common,
        "probe_cc": _text(header.get("probe_cc")),
        "started_at": started_at,
        "finished_at": _text((summary or {}).get("finished_at")),
        "healthy": healthy,
        "health": _json(health),
        "software_name": _text(header.get("software_name")),
        "software_version": _text(header.get("software_version")),
        "target_list_name": _text(header.get("target_list_name")),
        "signer_fingerprint": _text(
            verification.get("signer_fingerprint") or signer.get("fingerprint")
        ),
        "signer_principal": _text(verification.get("principal")),
        "verification": _json(verification),
        "records": len(records),
        "rules_version": RULES_VERSION,
        "header": _json(header),
        "summary": _json(summary),
        "ingested_at": ingested_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
    }
    return {RUNS: [run]}, {MEASUREMENTS: measurements, VERDICTS: verdicts}


# The measurements table's columns in the order `measurement_tsv` writes them (INSERT ... FORMAT
# TabSeparated: a fifth of the encoding work of JSONEachRow, and most rows are measurements).
MEASUREMENT_COLUMNS = tuple(line.split()[0] for line in _MEASUREMENT_COLUMNS.strip().splitlines())
_TEXT_FIELDS = ("hostname", "query_type", "resolver_address", "resolver_role", "engine")
_TLS_FIELDS = ("server_name", "sni_role", "sequence")


def _tsv(value: Any) -> str:
    """One TabSeparated field: None is \\N; backslash, tab and newline escaped."""
    if value is None:
        return "\\N"
    text = str(value)
    if "\\" in text or "\t" in text or "\n" in text:
        text = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
    return text


_NULL = "\x00"  # stands for \\N while a row is assembled (see measurement_tsv)
_TABS = len(MEASUREMENT_COLUMNS) - 2  # separators before the record's JSON


def _fixed_fields(common: dict) -> tuple[str, str]:
    """The run's own fields of every measurements row, before and after the line number."""
    return (
        f"{common['file_sha256']}\t{common['ingest_id']}\t{common['run_id']}\t",
        f"\t{common['probe_asn']}\t{common['vantage']}\t{common['start_time']}\t"
        f"{common['started_us']}\t",
    )


def measurement_tsv(
    common: dict,
    number: int,
    record: dict,
    line: bytes | None,
    fixed: tuple[str, str] | None = None,
) -> bytes:
    """One measurements row as a TabSeparated line (`line`: the record's bytes in the file;
    `fixed`: `_fixed_fields(common)`, made once per run).

    Fast path: the fields are joined as they are and the row is checked once (no backslash,
    newline or stray tab, as many NUL stand-ins as null fields); any surprise takes the slow path,
    which escapes every field.
    """
    head, middle = fixed if fixed is not None else _fixed_fields(common)
    get = record.get
    raw = line if line is not None else _json(record).encode()
    if b"\\" in raw:
        raw = raw.replace(b"\\", b"\\\\")
    failure, operation = get("failure"), get("failed_operation")
    rcode, version, control_round = get("rcode"), get("tls_version"), get("control_round")
    # JSON times are floats already: `repr` of the value itself, converting only other types
    # (and zeros: `-0.0 or 0.0` is 0.0, as stored before).
    t0, t = get("t0"), get("t")
    t0 = t0 if t0.__class__ is float and t0 else float(t0 or 0.0)
    t = t if t.__class__ is float and t else float(t or 0.0)
    row = (
        f"{head}{number}{middle}"
        f"{get('type')}\t{get('target_id')}\t{get('group') or ''}\t{get('role') or ''}\t"
        f"{int(get('attempt') or 0)}\t{int(get('confirmation') or 0)}\t"
        f"{-1 if control_round is None else int(control_round)}\t{t0!r}\t{t!r}\t"
        f"{_NULL if failure is None else failure}\t{_NULL if operation is None else operation}\t"
        f"{get('hostname') or ''}\t{get('query_type') or ''}\t{get('resolver_address') or ''}\t"
        f"{get('resolver_role') or ''}\t{get('engine') or ''}\t{_NULL if rcode is None else rcode}\t"
        f"{get('ip') or ''}\t{int(get('port') or 0)}\t{get('server_name') or ''}\t"
        f"{get('sni_role') or ''}\t{get('sequence') or ''}\t{_NULL if version is None else version}\t"
    )
    nulls = (failure is None) + (operation is None) + (rcode is None) + (version is None)
    if "\\" in row or "\n" in row or row.count("\t") != _TABS + 1 or row.count(_NULL) != nulls:
        return _measurement_tsv_escaped(common, number, record, raw)
    return (row.replace(_NULL, "\\N") if nulls else row).encode() + raw + b"\n"


def _measurement_tsv_escaped(common: dict, number: int, record: dict, raw: bytes) -> bytes:
    get = record.get
    control_round = get("control_round")
    fields = [
        common["file_sha256"], common["ingest_id"], _tsv(common["run_id"]), str(number),
        _tsv(common["probe_asn"]),
        _tsv(common["vantage"]), common["start_time"], str(common["started_us"]),
        _tsv(get("type")), _tsv(get("target_id")), _tsv(get("group") or ""), _tsv(get("role") or ""),
        str(int(get("attempt") or 0)), str(int(get("confirmation") or 0)),
        str(int(control_round)) if control_round is not None else "-1",
        repr(float(get("t0") or 0.0)), repr(float(get("t") or 0.0)),
        _tsv(get("failure")), _tsv(get("failed_operation")),
        *(_tsv(get(name) or "") for name in _TEXT_FIELDS),
        _tsv(get("rcode")), _tsv(get("ip") or ""), str(int(get("port") or 0)),
        *(_tsv(get(name) or "") for name in _TLS_FIELDS),
        _tsv(get("tls_version")),
    ]  # fmt: skip
    return "\t".join(fields).encode() + b"\t" + raw + b"\n"


# The verdicts table's columns in the order `verdict_tsv` writes them (after the 7 run fields
# and `healthy`, which `run_rows` writes once per run).
VERDICT_COLUMNS = tuple(line.split()[0] for line in _VERDICT_COLUMNS.strip().splitlines())
# How `ingest` sends each table's rows: (format, columns).
INSERT_FORMATS: dict[str, tuple[str, tuple[str, ...] | None]] = {
    RUNS: ("JSONEachRow", None),
    MEASUREMENTS: ("TabSeparated", MEASUREMENT_COLUMNS),
    VERDICTS: ("TabSeparated", VERDICT_COLUMNS),
}
_LAYER_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_PLAIN_LAYERS = frozenset(layer for layer in LAYERS if _LAYER_NAME.match(layer))  # checked once


def verdict_tsv(prefix: str, verdict: Any) -> str:
    """One verdicts row as a TabSeparated line after `prefix` (the run fields and `healthy`).

    Layer names are analysis' own words (`LAYERS`); one of another shape is an error, so the
    quoted array needs no escaping. Scores are finite floats (`repr` is exact).
    """
    scores = {layer: score for layer, score in (verdict.scores or {}).items() if score is not None}
    for layer in scores:
        if layer not in _PLAIN_LAYERS and _LAYER_NAME.match(layer) is None:
            raise ValueError(f"unexpected layer name {layer!r}")
    values = {layer: repr(float(score)) for layer, score in scores.items()}
    fields = [
        _tsv(verdict.target_id), _tsv(_text(verdict.group)), _tsv(_text(verdict.role)),
        _tsv(_text(verdict.status)), _tsv(_text(verdict.method)), _tsv(_json(dict(verdict.layers))),
        "[" + ",".join(f"'{layer}'" for layer in values) + "]",
        "[" + ",".join(values.values()) + "]",
        *(values.get(layer, "\\N") for layer in LAYERS),
        str(RULES_VERSION),
    ]  # fmt: skip
    return prefix + "\t".join(fields) + "\n"
