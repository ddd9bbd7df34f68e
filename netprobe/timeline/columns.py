"""The timeline builder's store of healthy runs, and the series cut from it (pure).

Rules:
- Runs are kept per target list: the runs of a network that scored the same (target, layer)
  keys in the same order share one `Rows` (their start times and one score tuple each), so
  taking in a run is two appends, not one per score.
- `SeriesCutter.columns(key)` gives a series' hourly samples as columns (sample times, scores,
  first and last run times) with each sample's hour index: exactly the samples
  `series.hourly_samples` makes of the series' runs (scores clamped to [0, 1] as the builder
  always did: NaN too becomes 0.0). A key of one target list whose runs each have an hour of
  their own (`series.hour_plan`, worked out once per list) only has its scores picked out and
  reordered; any other goes through `hourly_samples` itself.
"""

from __future__ import annotations

from array import array
from math import isnan
from operator import itemgetter

from netprobe.timeline.series import hour_plan, hour_runs, hourly_samples

Key = tuple[str, str]  # (target id, layer)
HourRuns = list[tuple[int, int, int]] | None  # series.hour_runs
Columns = tuple[list[float], list[float], list[float], list[float], list[int], HourRuns]


class Rows:
    """The healthy runs of one network with one target list: start times and score tuples."""

    __slots__ = ("times", "scores")

    def __init__(self) -> None:
        self.times: list[float] = []
        self.scores: list[tuple[float, ...]] = []


class SeriesCutter:
    """Cuts the series of one network's `Rows` (layout -> rows) once `add` is done."""

    def __init__(self, rows: dict[tuple[Key, ...], Rows], first_hour: int) -> None:
        self._parts: dict[Key, list[tuple[Rows, int]]] = {}
        for layout, runs in rows.items():
            for position, key in enumerate(layout):
                self._parts.setdefault(key, []).append((runs, position))
        self._first_hour = first_hour
        # id(rows) -> (hour_plan of its times, each sample's hour index, their hour_runs) or None
        self._plans: dict[int, tuple[tuple, list[int], HourRuns] | None] = {}

    def keys(self) -> list[Key]:
        return sorted(self._parts)

    def columns(self, key: Key) -> Columns:
        parts = self._parts[key]
        if len(parts) == 1:
            runs, position = parts[0]
            planned = self._plan(runs)
            if planned is not None:
                (order, sample_times, run_times), hour_index, hours = planned
                ys = _clamped(list(map(itemgetter(position), runs.scores)))
                if order is not None:
                    ys = list(map(ys.__getitem__, order))
                return sample_times, ys, run_times, run_times, hour_index, hours
        times, scores = array("d"), array("d")
        for runs, position in parts:
            times += array("d", runs.times)
            scores += array("d", _clamped(list(map(itemgetter(position), runs.scores))))
        samples = hourly_samples(times, scores)
        sample_times = [sample.time for sample in samples]
        hour_index = self._hour_index(sample_times)
        return (
            sample_times,
            [sample.y for sample in samples],
            [sample.first_run for sample in samples],
            [sample.last_run for sample in samples],
            hour_index,
            hour_runs(hour_index),
        )

    def _plan(self, runs: Rows) -> tuple[tuple, list[int], HourRuns] | None:
        slot = id(runs)
        if slot not in self._plans:
            plan = hour_plan(runs.times)
            if plan is None:
                self._plans[slot] = None
            else:
                hour_index = self._hour_index(plan[1])
                self._plans[slot] = (plan, hour_index, hour_runs(hour_index))
        return self._plans[slot]

    def _hour_index(self, sample_times: list[float]) -> list[int]:
        first_hour = self._first_hour
        return [int(time // 3600) - first_hour for time in sample_times]


def _clamped(scores: list[float]) -> list[float]:
    # As min(1.0, max(0.0, score)) (NaN too: 0.0; -0.0 stays -0.0); the test in C first, as
    # scores out of range are rare.
    if not any(map(isnan, scores)) and min(scores) >= 0.0 and max(scores) <= 1.0:
        return scores
    return [score if 0.0 <= score <= 1.0 else (1.0 if score > 1.0 else 0.0) for score in scores]
