"""File-reading layer of `netprobe timeline`: result files and folders -> `RunSummary`s.

Rules:
- Streaming: one file at a time, records go straight into `analysis.analyse`; only the small
  `RunSummary` survives, so memory does not grow with record counts.
- Folders are searched recursively for `*.jsonl` and for `.*.jsonl.partial` (a killed run's file
  is still evidence up to its last valid signature).
- A file that cannot be used is reported (`Skipped`) and the rest still counts; nothing raises
  for bad files. Files outside --since/--until are dropped after reading their header only.
- With `jobs > 1` files are read by a process pool (parsing and analysis are CPU-bound).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

from netprobe.timeline import RunSummary, parse_time, summary_from_analysis


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


@dataclass(frozen=True)
class ReadOptions:
    verify: bool = True
    allowed_signers: str | None = None
    since: float | None = None
    until: float | None = None


def expand_paths(paths: Iterable[Path]) -> tuple[list[Path], list[Skipped]]:
    """Files given directly plus result files found under folders, sorted by name, deduplicated."""
    found: set[Path] = set()
    missing: list[Skipped] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            for candidate in path.rglob("*"):
                name = candidate.name
                is_partial = name.startswith(".") and name.endswith(".jsonl.partial")
                if candidate.is_file() and (name.endswith(".jsonl") or is_partial):
                    found.add(candidate)
        elif path.is_file():
            found.add(path)
        else:
            missing.append(Skipped(str(path), "no such file or folder"))
    # Names start with the UTC start time, so sorting by name reads runs roughly in time order.
    return sorted(found, key=lambda p: (p.name.lstrip("."), str(p))), missing


def summarise_file(path: Path, options: ReadOptions) -> RunSummary | Skipped | None:
    """One file -> RunSummary; None when outside the time range; Skipped when unusable."""
    from netprobe.analysis import analyse
    from netprobe.resultfile import ResultFileError, iter_records

    allowed = Path(options.allowed_signers) if options.allowed_signers else None
    try:
        _verification, records = iter_records(
            Path(path), verify=options.verify, allowed_signers=allowed
        )
        records = iter(records)
        header = next(records, None)
        if header is None or header.get("type") != "header":
            return Skipped(str(path), "no header line covered by a valid signature")
        try:
            started = parse_time(str(header["started_at"]))
        except (KeyError, ValueError):
            return Skipped(str(path), "header has no valid started_at")
        if (options.since is not None and started < options.since) or (
            options.until is not None and started > options.until
        ):
            return None
        # `analyse` keeps only the measurement records (dns, tcp, tls) of what follows the header.
        return summary_from_analysis(header, analyse(header, records, detail=False))
    except ResultFileError as exc:
        return Skipped(str(path), str(exc))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return Skipped(str(path), f"{type(exc).__name__}: {exc}")
    except (KeyError, TypeError, AttributeError) as exc:
        # Only reachable with --no-verify: a record that parses as JSON but not as our schema.
        return Skipped(
            str(path), f"records do not follow the result schema ({type(exc).__name__}: {exc})"
        )


def _summarise_job(job: tuple[Path, ReadOptions]) -> RunSummary | Skipped | None:
    return summarise_file(*job)


def read_runs(
    files: list[Path], options: ReadOptions, *, jobs: int | None = None
) -> Iterator[RunSummary | Skipped]:
    """Summaries of `files` (order not guaranteed with jobs > 1); None results are dropped."""
    jobs = jobs if jobs is not None else (os.cpu_count() or 1)
    work = [(path, options) for path in files]
    if jobs <= 1 or len(work) < 16:
        results: Iterable = map(_summarise_job, work)
        for result in results:
            if result is not None:
                yield result
        return
    # fork keeps start-up cheap; chunks amortise the pickling of small results.
    with get_context("fork").Pool(jobs) as pool:
        for result in pool.imap_unordered(_summarise_job, work, chunksize=32):
            if result is not None:
                yield result
