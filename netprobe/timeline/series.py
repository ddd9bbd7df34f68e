"""The per-series arithmetic of a timeline: hourly samples, gaps between healthy runs, strips.

Rules:
- Pure functions over compact arrays of POSIX times and scores; input order is free unless a
  function says "sorted".
- Runs within the same UTC hour become one sample: the median score, bounded by the first and last
  run of that hour (the onset interval is built from those bounds).
- A gap is a hole longer than the threshold between consecutive healthy runs; it is
  "controls failing" when unhealthy runs fall inside it, else "no runs". A gap is never evidence.
- The threshold is two missed runs at the usual (median) cadence, and at least 1.5 h.
- A strip is one character per column (`STRIP_*`; renderers map them to colours): the share of the
  column's hours whose worst layer scored at least `LOOKS_BLOCKED`: none = ok, all = blocked,
  some = mixed; a column without samples is a gap.
"""

from __future__ import annotations

import statistics
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from itertools import repeat

from netprobe.timeline.onset import Sample
from netprobe.timeline.runs import iso

# Strip codes (renderers map them to colours): no data, ok, blocked, mixed.
STRIP_GAP, STRIP_OK, STRIP_BLOCKED, STRIP_MIXED = ".", "o", "x", "~"
# A sample at or above this score counts as "looks blocked" for strips (halfway between mu0/mu1
# with the default parameters).
LOOKS_BLOCKED = 0.35
GAP_NO_RUNS = "no runs"
GAP_CONTROLS_FAILING = "controls failing"
_new_tuple = tuple.__new__


def hourly_samples(times: Iterable[float], scores: Iterable[float]) -> list[Sample]:
    """Aggregate runs within the same UTC hour into one sample (median score), time-ordered."""
    # Sorting (time, score) pairs first makes each hour a run of neighbours; with hourly runs
    # (the usual case) every hour holds one pair and no median is needed. This is the hot loop
    # of a year-long timeline (one pass per target and layer), hence the plain loop.
    pairs = sorted(zip(times, scores, strict=True))
    run_times = [pair[0] for pair in pairs]
    hours = [t // 3600 for t in run_times]
    if len(set(hours)) == len(hours):
        # One run per hour (a year of hourly runs): the samples are built by C loops (zip and
        # tuple.__new__), not one Python call of Sample's __new__ each.
        return list(
            map(
                _new_tuple,
                repeat(Sample),
                zip(
                    [int(hour) * 3600.0 for hour in hours],
                    [pair[1] for pair in pairs],
                    run_times,
                    run_times,
                    strict=True,
                ),
            )
        )
    samples: list[Sample] = []
    append = samples.append
    index, count = 0, len(pairs)
    while index < count:
        t, y = pairs[index]
        hour = t // 3600
        end = index + 1
        while end < count and pairs[end][0] // 3600 == hour:
            end += 1
        if end == index + 1:
            append(Sample(int(hour) * 3600.0, y, t, t))
        else:
            ys = sorted(y for _, y in pairs[index:end])
            middle = len(ys) // 2
            median = ys[middle] if len(ys) % 2 else (ys[middle - 1] + ys[middle]) / 2
            append(Sample(int(hour) * 3600.0, median, t, pairs[end - 1][0]))
        index = end
    return samples


def find_gaps(run_times: array, run_healthy: array, threshold_hours: float) -> list[dict]:
    """Holes longer than `threshold_hours` between consecutive healthy runs (sorted input)."""
    healthy_times = [t for t, ok in zip(run_times, run_healthy, strict=True) if ok]
    gaps = []
    for before, after in zip(healthy_times, healthy_times[1:], strict=False):
        hours = (after - before) / 3600.0
        if hours > threshold_hours:
            lo, hi = bisect_right(run_times, before), bisect_left(run_times, after)
            unhealthy = hi - lo
            gaps.append(
                {
                    "from": iso(before),
                    "to": iso(after),
                    "hours": round(hours, 2),
                    "reason": GAP_CONTROLS_FAILING if unhealthy else GAP_NO_RUNS,
                    "unhealthy_runs": unhealthy,
                }
            )
    return gaps


def gap_threshold_hours(run_times: array) -> float:
    """Two missed runs in a row at the usual cadence (and at least 1.5 h) make a gap (sorted)."""
    if len(run_times) < 2:
        return 2.0
    spacing = statistics.median(b - a for a, b in zip(run_times, run_times[1:], strict=False))
    return max(1.5, 2 * spacing / 3600.0)


def strip(worst: array, width: int) -> str:
    """`width` strip codes over `worst`: one value per hour of the span, -1 = no sample then."""
    hours = len(worst)
    chars = []
    for column in range(width):
        lo, hi = (
            column * hours // width,
            max((column + 1) * hours // width, column * hours // width + 1),
        )
        values = [y for y in worst[lo:hi] if y >= 0]
        if not values:
            chars.append(STRIP_GAP)
            continue
        blocked = sum(y >= LOOKS_BLOCKED for y in values) / len(values)
        chars.append(STRIP_OK if blocked == 0 else STRIP_BLOCKED if blocked == 1 else STRIP_MIXED)
    return "".join(chars)


def strip_cells(
    worst: array,
    worst_layer: array,
    first_hour: int,
    width: int,
    blocked_methods: list[tuple[float, str]],
    layers: tuple[str, ...],
) -> list[dict]:
    """The strip's columns with their evidence, for pages that show a tooltip per sample.

    The same columns as `strip` (a column that repeats the hour before it, when there are fewer
    hours than columns, is left out: one cell per hour then). Each cell: its hours (`from`, `to`),
    `code`, `hours` with a sample, `blocked_hours` (worst layer at or above `LOOKS_BLOCKED`),
    and when it has samples the `worst` score, its `layer` and the `method` most verdicts of
    blocked runs named in the cell (None when none did).
    """
    hours = len(worst)
    cells: list[dict] = []
    previous = None
    named_runs = sorted(blocked_methods)
    named_times = [t for t, _ in named_runs]
    for column in range(width):
        lo = column * hours // width
        hi = max((column + 1) * hours // width, lo + 1)
        if (lo, hi) == previous:
            continue
        previous = (lo, hi)
        indexes = [i for i in range(lo, hi) if worst[i] >= 0]
        blocked = sum(worst[i] >= LOOKS_BLOCKED for i in indexes)
        if not indexes:
            code = STRIP_GAP
        else:
            code = (
                STRIP_OK
                if blocked == 0
                else STRIP_BLOCKED
                if blocked == len(indexes)
                else STRIP_MIXED
            )
        start, end = (first_hour + lo) * 3600.0, (first_hour + hi) * 3600.0
        cell: dict = {
            "from": iso(start),
            "to": iso(end),
            "code": code,
            "hours": len(indexes),
            "blocked_hours": blocked,
        }
        if indexes:
            top = max(indexes, key=worst.__getitem__)
            cell["worst"] = round(worst[top], 3)
            cell["layer"] = layers[worst_layer[top]] if worst_layer[top] >= 0 else None
            lo_run, hi_run = bisect_left(named_times, start), bisect_left(named_times, end)
            named = [m for _, m in named_runs[lo_run:hi_run]]
            cell["method"] = max(set(named), key=named.count) if named else None
        cells.append(cell)
    return cells
