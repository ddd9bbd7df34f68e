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
from collections.abc import Iterable, Sequence
from itertools import compress, islice, repeat
from math import isnan
from operator import eq, lt

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


def hour_plan(times: Sequence[float]) -> tuple[list[int] | None, list[float], list[float]] | None:
    """What `hourly_samples` does with these run times when each run has an hour of its own.

    (the order that sorts the runs, None when they are sorted; each sample's time; the run times
    in order): the samples of any series with exactly these run times are then
    `zip(sample times, its scores in that order, run times, run times)`, as `hourly_samples` makes
    them. None when two runs share an hour or a time (their scores then decide the order)."""
    if any(map(isnan, times)):
        return None
    if all(map(lt, times, islice(times, 1, None))):
        order, run_times = None, list(times)
    else:
        order = sorted(range(len(times)), key=times.__getitem__)
        run_times = list(map(times.__getitem__, order))
        if any(map(eq, run_times, islice(run_times, 1, None))):
            return None
    hours = [t // 3600 for t in run_times]
    if len(set(hours)) != len(hours):
        return None
    return order, [int(hour) * 3600.0 for hour in hours], run_times


def hour_runs(hour_index: Sequence[int]) -> list[tuple[int, int, int]] | None:
    """Strictly increasing hour indexes as runs of consecutive hours: (first sample, end sample,
    first hour) each; None when they are not strictly increasing."""
    runs: list[tuple[int, int, int]] = []
    start = 0
    for position in range(1, len(hour_index) + 1):
        if position == len(hour_index) or hour_index[position] != hour_index[position - 1] + 1:
            if position < len(hour_index) and hour_index[position] <= hour_index[position - 1]:
                return None
            runs.append((start, position, hour_index[start]))
            start = position
    return runs


def raise_worst(
    worst: array,
    worst_layer: array | None,
    hour_index: Sequence[int],
    hours: list[tuple[int, int, int]] | None,
    ys: Sequence[float],
    layer_index: int,
) -> None:
    """worst[i] = y where y > worst[i], i = each sample's hour index; worst_layer[i] = layer_index
    there, sample by sample. Indexes outside `worst` are left out. `hours`: `hour_runs` of the
    hour indexes (None: not known to increase)."""
    if hours is not None and all(
        0 <= first and first + end - start <= len(worst) for start, end, first in hours
    ):
        # Whole slices of consecutive hours: max(old, y) is y exactly when y > old.
        for start, end, first in hours:
            olds = worst[first : first + end - start]
            news = ys[start:end]
            if worst_layer is not None:
                for index in compress(range(first, first + end - start), map(lt, olds, news)):
                    worst_layer[index] = layer_index
            worst[first : first + end - start] = array("d", map(max, olds, news))
        return
    for index, y in zip(hour_index, ys, strict=True):
        if 0 <= index < len(worst) and y > worst[index]:
            worst[index] = y
            if worst_layer is not None:
                worst_layer[index] = layer_index
