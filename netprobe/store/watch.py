"""`netprobe ingest --watch DIR`: a collector's drop folder, ingested as files finish arriving.

Rules:
- Volunteers copy result files into DIR (rsync, scp, sftp). Only names that are final result
  names (`<UTC>_<vantage>.jsonl`, no leading dot: rsync's temporary files and `.partial` files are
  left alone) directly in DIR are considered, and only once their size and mtime have not changed
  for `settle` seconds. A file that verifies as PARTIAL may still be arriving: it waits, until it
  has been unchanged for `stale` seconds (a killed run's file: then it is taken as it is).
- A stored file (new or already in the store) moves to `done` (default DIR/ingested); a rejected
  one to `quarantine` (default DIR/quarantine) with `<name>.reason` beside it. Names that clash
  get a numeric suffix; nothing is overwritten.
- A file moves only after its rows are in: when ClickHouse is unreachable the files stay where
  they are and the batch is tried again after `retry` seconds (doubling up to 60 s). Ingest is
  idempotent (`ingest`), so a restart of the server or of the watcher never loses or duplicates.
- `should_stop()` is checked between cycles (the CLI sets it on SIGINT/SIGTERM).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from netprobe.evidence.format import PARTIAL, RESULT_NAME
from netprobe.store.client import ClickHouse, StoreError
from netprobe.store.ingest import IngestReport, Prepared, ensure_schema, prepare_file, store_batch

REASON_SUFFIX = ".reason"


@dataclass
class WatchOptions:
    folder: Path
    trust: Path | None
    done: Path | None = None
    quarantine: Path | None = None
    interval: float = 2.0
    settle: float = 5.0
    stale: float = 3600.0
    retry: float = 1.0
    batch: int = 200

    @property
    def done_dir(self) -> Path:
        return self.done or self.folder / "ingested"

    @property
    def quarantine_dir(self) -> Path:
        return self.quarantine or self.folder / "quarantine"


def _unique(target: Path) -> Path:
    if not target.exists():
        return target
    for n in range(1, 10_000):
        candidate = target.with_name(f"{target.name}.{n}")
        if not candidate.exists():
            return candidate
    raise OSError(f"{target}: too many files of this name")


def move(path: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = _unique(folder / path.name)
    os.replace(path, target)
    return target


def quarantine(path: Path, folder: Path, reason: str) -> Path:
    target = move(path, folder)
    target.with_name(target.name + REASON_SUFFIX).write_text(reason + "\n", encoding="utf-8")
    return target


def settled_files(options: WatchOptions, seen: dict[Path, tuple[int, int, float]]) -> list[Path]:
    """Result files in the folder unchanged for `settle` seconds; `seen` keeps (size, mtime, since)."""
    now = time.monotonic()
    ready: list[Path] = []
    present: set[Path] = set()
    for entry in sorted(options.folder.iterdir()):
        if not RESULT_NAME.match(entry.name) or entry.name.endswith(".sig") or not entry.is_file():
            continue
        present.add(entry)
        stat = entry.stat()
        key = (stat.st_size, stat.st_mtime_ns)
        previous = seen.get(entry)
        if previous is None or previous[:2] != key:
            seen[entry] = (*key, now)
        elif now - previous[2] >= options.settle:
            ready.append(entry)
    for gone in set(seen) - present:
        del seen[gone]
    return ready


def watch(
    connect: Callable[[], ClickHouse],
    options: WatchOptions,
    *,
    should_stop: Callable[[], bool] = lambda: False,
    on_event: Callable[[str, str, str], None] = lambda kind, path, detail: None,
) -> IngestReport:
    """Run until `should_stop()`; events: (ingested|duplicate|rejected|waiting|unavailable, path, detail)."""
    report = IngestReport()
    seen: dict[Path, tuple[int, int, float]] = {}
    prepared: dict[tuple[Path, int, int], Prepared] = {}
    client: ClickHouse | None = None
    schema_ready = False
    delay = options.retry
    while not should_stop():
        batch: list[tuple[Path, Prepared]] = []
        for path in settled_files(options, seen):
            size, mtime, since = seen[path]
            item = prepared.get((path, size, mtime))
            if item is None:
                item = prepared[(path, size, mtime)] = prepare_file(path, options.trust)
            if item.status == PARTIAL and time.monotonic() - since < options.stale:
                continue  # maybe still arriving (even with nothing signed yet)
            if item.reason is not None:
                target = quarantine(path, options.quarantine_dir, item.reason)
                report.rejected.append({"path": str(path), "reason": item.reason})
                on_event("rejected", str(path), f"{item.reason} (moved to {target})")
                prepared.pop((path, size, mtime), None)
                continue
            batch.append((path, item))
            if len(batch) >= options.batch:
                break
        if batch:
            try:
                if client is None:
                    client = connect()
                if not schema_ready:
                    ensure_schema(client)
                    schema_ready = True
                before = len(report.ingested)
                store_batch(client, [item for _path, item in batch], report)
                fresh = {entry["path"] for entry in report.ingested[before:]}
            except StoreError as exc:
                on_event("unavailable", str(options.folder), str(exc))
                # Prepared again next time: a new ingest_id, so rows this attempt may have
                # written without its runs row stay invisible (see schema).
                batch_paths = {path for path, _item in batch}
                prepared = {k: v for k, v in prepared.items() if k[0] not in batch_paths}
                if client is not None:
                    client.close()
                client, schema_ready = None, False
                _sleep(delay, should_stop)
                delay = min(60.0, delay * 2)
                continue
            delay = options.retry
            for path, item in batch:
                move(path, options.done_dir)
                kind = "ingested" if item.path in fresh else "duplicate"
                on_event(kind, str(path), f"{item.records} records")
                seen.pop(path, None)
                prepared = {k: v for k, v in prepared.items() if k[0] != path}
            continue  # more may be ready
        _sleep(options.interval, should_stop)
    if client is not None:
        client.close()
    return report


def _sleep(seconds: float, should_stop: Callable[[], bool]) -> None:
    end = time.monotonic() + seconds
    while not should_stop() and time.monotonic() < end:
        time.sleep(min(0.1, max(0.0, end - time.monotonic())))
