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
- Verification and analysis are CPU-bound and run in a process pool; the main process only
  inserts, in batches of `batch` files (at most `batch_bytes` of rows) per INSERT.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path

from netprobe.evidence.format import _TYPE_FIELD, PARTIAL
from netprobe.store import schema
from netprobe.store.client import ClickHouse, insert_body

# Files per INSERT: each INSERT is a new part per table and month on the server, and parts cost
# files to create and merges to rewrite. 1,000 files (~156,000 measurements) instead of 200 took
# a fifth to a third less server CPU per row (bench/PROFILE.md "Ingest"); BATCH_BYTES bounds the
# main process's memory when files are large.
BATCH_FILES = 1000
BATCH_BYTES = 160 << 20


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
    if jobs <= 1 or len(work) < 16:
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


def store_batch(client: ClickHouse, batch: list[Prepared], report: IngestReport) -> list[Prepared]:
    """Insert the not-yet-stored files of `batch`; returns the ones inserted now."""
    present = stored_hashes(client, (p.sha256 for p in batch if p.sha256))
    fresh: list[Prepared] = []
    seen: set[str] = set()
    for item in batch:
        assert item.sha256 is not None
        if item.sha256 in present or item.sha256 in seen:
            report.duplicates.append({"path": item.path, "sha256": item.sha256})
        else:
            seen.add(item.sha256)
            fresh.append(item)
    # The runs rows go last: a file counts as stored only once its runs row is in.
    for table in (schema.MEASUREMENTS, schema.VERDICTS, schema.RUNS):
        body = [item.bodies.get(table, b"") for item in fresh]
        insert_body(client, table, body, *schema.INSERT_FORMATS[table])
    for item in fresh:
        report.ingested.append({"path": item.path, "sha256": item.sha256, "records": item.records})
    return fresh


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
    pending: list[Prepared] = []
    size = 0
    for item in prepare_files(files, trust, jobs):
        if item.reason is not None:
            rejected = {"path": item.path, "reason": item.reason}
            report.rejected.append(rejected)
            if on_rejected is not None:
                on_rejected(rejected)
            continue
        pending.append(item)
        size += sum(map(len, item.bodies.values()))
        if len(pending) >= batch or size >= batch_bytes:
            store_batch(client, pending, report)
            pending, size = [], 0
    if pending:
        store_batch(client, pending, report)
    return report
