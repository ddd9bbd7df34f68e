"""One call from result files to a timeline report: read (through the cache), summarise, build.

Rules:
- `timeline_report` is what `netprobe timeline` runs: files in, the JSON-able report out (the
  `--format json` document), plus what was skipped and why the cache was not used, if it was not.
- Unusable files are skipped, reported to `on_skip` as they are met, and listed in the report's
  `skipped`; the report is complete all the same. The cache never makes a report differ.
- The cache is opened and closed here; a cache problem is returned, never raised.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from netprobe.timeline.builder import TimelineBuilder, TimelineOptions
from netprobe.timeline.files import ReadOptions, Skipped, open_cache, read_runs


@dataclass
class TimelineResult:
    report: dict  # TimelineBuilder.build() plus `files` (count) and `skipped` ([{path, reason}])
    runs: int  # runs inside the time range
    skipped: list[Skipped] = field(default_factory=list)
    cache_problem: str | None = None  # why the summary cache was not (fully) used


def timeline_report(
    files: list[Path],
    read_options: ReadOptions,
    options: TimelineOptions,
    *,
    jobs: int | None = None,
    use_cache: bool = True,
    on_skip: Callable[[Skipped], None] | None = None,
) -> TimelineResult:
    """Summaries of `files` (read with `jobs` workers, cached unless `use_cache` is False) -> report."""
    builder = TimelineBuilder(options)
    skipped: list[Skipped] = []
    cache = open_cache(read_options) if use_cache else None
    try:
        for result in read_runs(files, read_options, jobs=jobs, cache=cache):
            if isinstance(result, Skipped):
                skipped.append(result)
                if on_skip is not None:
                    on_skip(result)
            else:
                builder.add(result)
    finally:
        if cache is not None:
            cache.close()
    report = builder.build()
    report["files"] = len(files)
    report["skipped"] = [{"path": s.path, "reason": s.reason} for s in skipped]
    problem = cache.problem if cache is not None else None
    return TimelineResult(report, builder.runs_seen, skipped, problem)
