"""`netprobe ingest`: verified result files -> rows in the ClickHouse store, each file once.

Rules:
- Nothing unverified is stored: every file is verified against the trust store (an OpenSSH
  allowed_signers file; `evidence.trust.default_trust_store_path()` unless told otherwise) by
  `evidence.reader.iter_records`, then checked by `analysis.load` (the one door) and analysed
  (`analysis.analyse(detail=False)`: the same statuses, methods and scores as `report`).
- A file that is unsigned, tampered with, signed by a key not in the trust store, or not a valid
  result is *rejected* with a one-line reason; the other files still go in.
- Idempotent: a file is its SHA-256. Files whose `runs` row exists are *duplicates* and not
  inserted again; a batch inserts measurements, then verdicts, then runs (the commit marker), so
  a batch cut short by a server restart is simply done again (see `schema`).
- Every attempt's `ingest_id` is 32 hex digits that sort in storing order: the attempt's start
  (ns, for a whole `ingest` call), the file's place in it, then random digits. The timeline
  counts the first stored of two files with the same run id (`store.timeline`).
- Verification and analysis are CPU-bound and run in a process pool, in chunks of `batch`
  files (INSERTs of at most `batch_bytes` of rows); each worker inserts its chunk's measurements
  and verdicts itself, and the main process then inserts the chunk's runs rows, chunk after
  chunk in order (`_ingest_in_pool`). Without a pool the main process inserts all three.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from netprobe.evidence.format import _TYPE_FIELD, PARTIAL
from netprobe.store import schema
from netprobe.store.client import ClickHouse, StoreError, insert_body

# Files per INSERT: each INSERT is a new part per table and month on the server, and parts cost
# files to create and merges to rewrite. 1,000 files (~156,000 measurements) instead of 200 took
# a fifth to a third less server CPU per row (bench/PROFILE.md "Ingest"); BATCH_BYTES bounds the
# main process's memory when files are large.
BATCH_FILES = 1000
BATCH_BYTES = 160 << 20
_POOL_MIN_FILES = 16  # fewer files are verified in this process


@dataclass(frozen=True)
class Prepared:
    """One file, verified and turned into encoded rows (or the reason it was refused)."""

    path: str
    sha256: str | None = None
    records: int = 0
    bodies: dict[str, bytes] = field(default_factory=dict)
    reason: str | None = None  # set when rejected
    status: str = ""  # the verification status (COMPLETE, PARTIAL)


@dataclass
class IngestReport:
    ingested: list[dict] = field(default_factory=list)  # {path, sha256, records}
    duplicates: list[dict] = field(default_factory=list)  # {path, sha256}
    rejected: list[dict] = field(default_factory=list)  # {path, reason}

    @property
    def records(self) -> int:
        return sum(item["records"] for item in self.ingested)

    def to_dict(self) -> dict:
        return {
            "ingested": self.ingested,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "records": self.records,
        }


def ensure_schema(client: ClickHouse) -> None:
    """Create what is missing. A collector's INSERT-only user never runs DDL: once an admin has
    created the tables (README "Running a fleet"), this only lists them."""
    rows = client.tsv(f"SELECT name FROM system.tables WHERE database = '{client.database}'")
    if set(schema.TABLES) <= {row[0] for row in rows}:
        return
    for statement in schema.create_statements(client.database):
        client.execute(statement)


def _encode(rows: list[dict]) -> bytes:
    dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
    return "".join(dumps(row) + "\n" for row in rows).encode()


def new_ingest_id(started_ns: int | None = None, index: int = 0) -> str:
    """An attempt's id, sorting in storing order (see the module rules): 32 hex digits."""
    started = time.time_ns() if started_ns is None else started_ns
    return f"{started:016x}{index:08x}{uuid.uuid4().hex[:8]}"


def prepare_file(path: Path, trust: Path | None, ingest_id: str | None = None) -> Prepared:
    """Verify, check, analyse and encode one file. Never raises for a bad file."""
    from netprobe.analysis import analyse
    from netprobe.analysis.load import RunRefused, check_header, load_run
    from netprobe.evidence.format import HEADER, MEASUREMENT_TYPES, SUMMARY
    from netprobe.evidence.reader import ResultFileError, iter_records

    name = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return Prepared(name, reason=f"cannot read: {exc.strerror or exc}")
    digest = hashlib.sha256(data).hexdigest()
    try:
        verification, stream = iter_records(Path(path), verify=True, allowed_signers=trust)
        assert verification is not None
        if trust is not None and verification.trusted is False:
            return Prepared(name, digest, reason="signed by a key not in the trust store")
        header = next(stream, None)
        problem = check_header(header)
        if problem or header is None or header.get("type") != HEADER:
            return Prepared(name, digest, reason=problem or "no header")
        rest = list(stream)
        summary = next((r for r in rest if r.get("type") == SUMMARY), None)
        run = load_run(header, (r for r in rest if r.get("type") != SUMMARY))
        records = [r for r in run.records if r.get("type") in MEASUREMENT_TYPES]
        analysis = analyse(header, records, detail=False)
        rows, encoded = schema.run_rows(
            file_sha256=digest,
            ingest_id=ingest_id or new_ingest_id(),
            header=header,
            records=records,
            summary=summary,
            analysis=analysis,
            verification={
                "status": verification.status,
                "message": verification.message,
                "signer_fingerprint": verification.signer_fingerprint,
                "principal": verification.principal,
                "trusted": verification.trusted,
                "checkpoints": verification.checkpoints,
                "records_covered": verification.records_covered,
                "records_uncovered": verification.records_uncovered,
            },
            ingested_at=datetime.now(UTC),
            lines=_measurement_lines(data, records),
        )
    except (RunRefused, ResultFileError) as exc:
        # Nothing signed yet (not even the start checkpoint) is PARTIAL too: maybe still arriving.
        status = PARTIAL if f": {PARTIAL}: " in str(exc) else ""
        return Prepared(name, digest, reason=str(exc), status=status)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return Prepared(name, digest, reason=f"not a valid result ({type(exc).__name__}: {exc})")
    bodies = {table: _encode(table_rows) for table, table_rows in rows.items()}
    bodies.update(encoded)
    return Prepared(name, digest, len(records), bodies, status=verification.status)


def _measurement_lines(data: bytes, records: list[dict]) -> list[bytes] | None:
    """Each measurement record's own bytes in the file, or None when they cannot be paired
    one to one (a partial file's uncovered tail, an unusual spelling): then they are re-encoded."""
    from netprobe.evidence.format import MEASUREMENT_TYPES

    kinds = {kind.encode() for kind in MEASUREMENT_TYPES}
    match = _TYPE_FIELD.match
    lines, types = [], []
    for line in data.split(b"\n"):
        found = match(line)
        if found is not None and (kind := found.group(1)) in kinds:
            lines.append(line)
            types.append(kind)
    if types != [record["type"].encode() for record in records]:
        return None
    return lines


def _prepare_job(job: tuple[str, str | None, str]) -> Prepared:
    path, trust, ingest_id = job
    return prepare_file(Path(path), Path(trust) if trust else None, ingest_id)


def prepare_files(
    files: list[Path], trust: Path | None, jobs: int | None = None
) -> Iterator[Prepared]:
    """`prepare_file` over `files`, in a process pool when there are many (order kept)."""
    started = time.time_ns()
    work = [
        (str(path), str(trust) if trust else None, new_ingest_id(started, index))
        for index, path in enumerate(files)
    ]
    jobs = jobs if jobs is not None else (os.cpu_count() or 1)
    if jobs <= 1 or len(work) < _POOL_MIN_FILES:
        yield from map(_prepare_job, work)
        return
    with get_context("fork").Pool(jobs) as pool:
        yield from pool.imap(_prepare_job, work, chunksize=16)


# Hashes per query: 1,000 quoted hashes are 67 KB of SQL, well under ClickHouse's default
# max_query_size (256 KiB), whatever the batch size.
_HASHES_PER_QUERY = 1000


def stored_hashes(client: ClickHouse, hashes: Iterable[str]) -> set[str]:
    wanted = sorted(h for h in set(hashes) if all(c in "0123456789abcdef" for c in h))
    found: set[str] = set()
    for start in range(0, len(wanted), _HASHES_PER_QUERY):
        listed = ",".join(f"'{digest}'" for digest in wanted[start : start + _HASHES_PER_QUERY])
        rows = client.tsv(
            f"SELECT DISTINCT file_sha256 FROM {client.database}.{schema.RUNS} "
            f"WHERE file_sha256 IN ({listed})"
        )
        found.update(row[0] for row in rows)
    return found


def _fresh(client: ClickHouse, batch: list[Prepared]) -> list[bool]:
    """Per file of `batch` (all verified): True when neither stored nor an earlier one's copy."""
    present = stored_hashes(client, (p.sha256 for p in batch if p.sha256))
    seen: set[str] = set()
    flags = []
    for item in batch:
        assert item.sha256 is not None
        flags.append(item.sha256 not in present and item.sha256 not in seen)
        seen.add(item.sha256)
    return flags


def _insert(client: ClickHouse, items: list[Prepared], tables: tuple[str, ...]) -> None:
    for table in tables:
        body = [item.bodies.get(table, b"") for item in items]
        insert_body(client, table, body, *schema.INSERT_FORMATS[table])


def store_batch(client: ClickHouse, batch: list[Prepared], report: IngestReport) -> list[Prepared]:
    """Insert the not-yet-stored files of `batch`; returns the ones inserted now."""
    fresh: list[Prepared] = []
    for item, new in zip(batch, _fresh(client, batch), strict=True):
        if new:
            fresh.append(item)
        else:
            report.duplicates.append({"path": item.path, "sha256": item.sha256})
    # The runs rows go last: a file counts as stored only once its runs row is in.
    _insert(client, fresh, (schema.MEASUREMENTS, schema.VERDICTS, schema.RUNS))
    for item in fresh:
        report.ingested.append({"path": item.path, "sha256": item.sha256, "records": item.records})
    return fresh


# In a pool worker of `_ingest_in_pool`: (its own client, trust store, the number of chunks
# committed so far, the condition that guards it). Set by `_start_worker` after the fork.
_WORKER: tuple[ClickHouse, Path | None, Any, Any] | None = None
_ROW_TABLES = (schema.MEASUREMENTS, schema.VERDICTS)


def _start_worker(client: ClickHouse, trust: Path | None, committed: Any, changed: Any) -> None:
    global _WORKER
    _WORKER = (client.copy(), trust, committed, changed)


def _chunk_job(
    job: tuple[int, list[tuple[str, str]], int],
) -> tuple[list[Prepared], list[bool], StoreError | None]:
    """In a worker: verify and encode a chunk's files, then, once every earlier chunk is
    committed (so `stored_hashes` sees their runs rows), insert the measurements and verdicts of
    the files not stored yet. Returns the files (the fresh ones with only their runs rows left to
    insert, the others with no rows), which are fresh, and the server's error, if any."""
    index, work, batch_bytes = job
    assert _WORKER is not None
    client, trust, committed, changed = _WORKER
    items = [prepare_file(Path(path), trust, ingest_id) for path, ingest_id in work]
    verified = [item for item in items if item.reason is None]
    with changed:
        changed.wait_for(lambda: committed.value >= index)
    try:
        flags = dict(zip(map(id, verified), _fresh(client, verified), strict=True))
        fresh = [item for item in verified if flags[id(item)]]
        group: list[Prepared] = []
        size = 0
        for item in fresh:
            group.append(item)
            size += sum(len(item.bodies.get(table, b"")) for table in _ROW_TABLES)
            if size >= batch_bytes:
                _insert(client, group, _ROW_TABLES)
                group, size = [], 0
        _insert(client, group, _ROW_TABLES)
    except StoreError as exc:
        return [], [], exc
    light = [
        replace(item, bodies={schema.RUNS: item.bodies.get(schema.RUNS, b"")})
        if flags.get(id(item))
        else replace(item, bodies={})
        for item in items
    ]
    return light, [bool(flags.get(id(item))) for item in items], None


def _ingest_in_pool(
    client: ClickHouse,
    files: list[Path],
    trust: Path | None,
    jobs: int,
    batch: int,
    batch_bytes: int,
    report: IngestReport,
    on_rejected: Callable[[dict], None] | None,
) -> None:
    """The workers insert their chunks' measurements and verdicts themselves (the rows do not
    travel through this process: a tenth of the ingest's CPU); this process inserts each
    chunk's runs rows, in order, after the worker said its other rows are in. A worker inserts
    only after every earlier chunk is committed, so a copy of a file in a later chunk is seen
    as stored (`_fresh`) and never inserted twice."""
    started = time.time_ns()
    work = [(str(path), new_ingest_id(started, index)) for index, path in enumerate(files)]
    size = max(1, min(batch, -(-len(work) // jobs)))  # every worker busy on small inputs
    chunks = [
        (k, work[at : at + size], batch_bytes) for k, at in enumerate(range(0, len(work), size))
    ]
    context = get_context("fork")
    changed = context.Condition()
    committed = context.Value("i", 0, lock=False)  # guarded by `changed`
    with context.Pool(jobs, _start_worker, (client, trust, committed, changed)) as pool:
        for index, (items, fresh, error) in enumerate(pool.imap(_chunk_job, chunks)):
            if error is not None:
                raise error
            done = []
            for item, new in zip(items, fresh, strict=True):
                if item.reason is not None:
                    _rejected(report, item, on_rejected)
                elif new:
                    done.append(item)
                else:
                    report.duplicates.append({"path": item.path, "sha256": item.sha256})
            _insert(client, done, (schema.RUNS,))
            for item in done:
                entry = {"path": item.path, "sha256": item.sha256, "records": item.records}
                report.ingested.append(entry)
            with changed:
                committed.value = index + 1
                changed.notify_all()


def _rejected(
    report: IngestReport, item: Prepared, on_rejected: Callable[[dict], None] | None
) -> None:
    rejected = {"path": item.path, "reason": item.reason}
    report.rejected.append(rejected)
    if on_rejected is not None:
        on_rejected(rejected)


def ingest_files(
    client: ClickHouse,
    files: list[Path],
    trust: Path | None,
    *,
    jobs: int | None = None,
    batch: int = BATCH_FILES,
    batch_bytes: int = BATCH_BYTES,
    on_rejected: Callable[[dict], None] | None = None,
) -> IngestReport:
    """Verify and store `files`; StoreError (server trouble) propagates to the caller."""
    ensure_schema(client)
    report = IngestReport()
    jobs = jobs if jobs is not None else (os.cpu_count() or 1)
    if jobs > 1 and len(files) >= _POOL_MIN_FILES:
        _ingest_in_pool(client, files, trust, jobs, batch, batch_bytes, report, on_rejected)
        return report
    pending: list[Prepared] = []
    size = 0
    for item in prepare_files(files, trust, 1):
        if item.reason is not None:
            _rejected(report, item, on_rejected)
            continue
        pending.append(item)
        size += sum(map(len, item.bodies.values()))
        if len(pending) >= batch or size >= batch_bytes:
            store_batch(client, pending, report)
            pending, size = [], 0
    if pending:
        store_batch(client, pending, report)
    return report
