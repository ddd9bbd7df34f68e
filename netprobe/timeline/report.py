"""One call from result files to a timeline report: read (through the cache), summarise, build.

Rules:
- `timeline_report` is what `netprobe timeline` runs: files in, the JSON-able report out (the
  `--format json` document), plus what was skipped and why the cache was not used, if it was not.
- Unusable files are skipped, reported to `on_skip` as they are met, and listed in the report's
  `skipped`; the report is complete all the same. The cache never makes a report differ.
- The cache is opened and closed here; a cache problem is returned, never raised.
- Two files with the same run id are one run (a copy, or a re-signed forgery accepted with
  --accept-untrusted): the first in file order counts, each other one is a `Duplicate`, reported
  to `on_duplicate` and listed in the report's `duplicates`, not counted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from netprobe.timeline.builder import TimelineBuilder, TimelineOptions
from netprobe.timeline.files import ReadOptions, Skipped, open_cache, read_runs
from netprobe.timeline.runs import RunSummary


@dataclass(frozen=True)
class Duplicate:
    path: str  # the copy, not counted
    copy_of: str  # the file counted for this run
    run_id: str

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "copy_of": self.copy_of, "run_id": self.run_id}

    def message(self) -> str:
        return (
            f"{self.path} has the same run id ({self.run_id}) as {self.copy_of}: "
            "one run, counted once"
        )


@dataclass
class TimelineResult:
    report: dict  # TimelineBuilder.build() plus `files`, `skipped` and `duplicates`
    runs: int  # runs inside the time range
    skipped: list[Skipped] = field(default_factory=list)
    cache_problem: str | None = None  # why the summary cache was not (fully) used
    duplicates: list[Duplicate] = field(default_factory=list)


def timeline_report(
    files: list[Path],
    read_options: ReadOptions,
    options: TimelineOptions,
    *,
    jobs: int | None = None,
    use_cache: bool = True,
    on_skip: Callable[[Skipped], None] | None = None,
    on_duplicate: Callable[[Duplicate], None] | None = None,
) -> TimelineResult:
    """Summaries of `files` (read with `jobs` workers, cached unless `use_cache` is False) -> report."""
    builder = TimelineBuilder(options)
    skipped: list[Skipped] = []
    runs: list[RunSummary] = []
    cache = open_cache(read_options) if use_cache else None
    try:
        for result in read_runs(files, read_options, jobs=jobs, cache=cache):
            if isinstance(result, Skipped):
                skipped.append(result)
                if on_skip is not None:
                    on_skip(result)
            else:
                runs.append(result)
    finally:
        if cache is not None:
            cache.close()
    duplicates: list[Duplicate] = []
    for run in _one_per_run(runs, files, duplicates):
        builder.add(run)
    for duplicate in duplicates:
        if on_duplicate is not None:
            on_duplicate(duplicate)
    report = builder.build()
    report["files"] = len(files)
    report["skipped"] = [{"path": s.path, "reason": s.reason} for s in skipped]
    report["duplicates"] = [d.to_dict() for d in duplicates]
    problem = cache.problem if cache is not None else None
    return TimelineResult(report, builder.runs_seen, skipped, problem, duplicates)


def _one_per_run(
    runs: list[RunSummary], files: list[Path], duplicates: list[Duplicate]
) -> list[RunSummary]:
    """`runs` in file order, each run id once; the later copies go to `duplicates`."""
    order = {str(path): index for index, path in enumerate(files)}
    runs.sort(key=lambda run: (order.get(run.source, len(order)), run.source))
    first: dict[str, str] = {}
    kept = []
    for run in runs:
        if run.run_id and run.run_id in first:
            duplicates.append(Duplicate(run.source, first[run.run_id], run.run_id))
            continue
        if run.run_id:
            first[run.run_id] = run.source
        kept.append(run)
    return kept
