"""Many runs -> per-network, per-target, per-layer blocking series, onsets and gaps.

Rules:
- Runs are grouped by vantage network = (header `probe_asn`, header `vantage`): the same volunteer
  machine on the same ISP. Changing either starts a new network (a moved laptop is a new series).
- One series per (network, target_id, layer). Its samples are the per-run blocking scores from
  `analysis.analyse` (`Verdict.scores[layer]`, None = no evidence), aggregated into hourly medians.
- A run whose vantage is unhealthy (controls failing) contributes no sample: the hole is a gap,
  never evidence of a block. Gaps are reported per network (holes in healthy runs).
- Target lists may change: a series simply starts or stops; the detector sees a longer spacing.
- Changes come from `onset.detect`. A change is corroborated when another series of the same
  network flips the same way within `window_hours` of it and >= 80 % of the network's runs in that
  window had healthy controls.
- The core (`TimelineBuilder`) is pure and keeps only compact columns (per target list one score
  tuple per run, `netprobe.timeline.columns`), never records; file reading
  lives in `netprobe.timeline.files`, one run's summary in `netprobe.timeline.runs`, the
  per-series arithmetic (hourly medians, gaps, strips) in `netprobe.timeline.series`.
- `--target` (`TimelineOptions.target`) names a target id. When no run in range measured it (a
  typo, or a target of another list), the report says so: `target_found: false` and up to five
  `close_matches` (difflib) among the target ids the runs did measure.
- A blocked change takes the method most verdicts named between its onset and its alarm, else the
  layer's default (`vocabulary.LAYER_METHOD`: dns -> dns, tcp -> ip, tls -> tls).
- Each target carries its `group` (from the latest run that named one) and each network its
  `group_labels` and a `summary` (`netprobe.timeline.fleet`: one sentence, which groups are
  blocked by what since when). With `TimelineOptions.cells` (the HTML page) each target also
  carries `cells`: the strip's columns with their evidence (`series.strip_cells`).
- The `throughput` layer (issue 13) scores the rate ratio (`analysis.throughput.ratio_score`):
  its high state is written `throttled` (`vocabulary.LAYER_BAD_STATUS`), and a target whose only
  high layer is throughput is `throttled`, not blocked; its method defaults to `sni`.
- A store that computes the hourly samples itself (`netprobe.store.timeline`: SQL) feeds a whole
  network at once with `add_aggregated`; what follows (CUSUM, gaps, corroboration) is the same code.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections import Counter
from dataclasses import dataclass, field
from difflib import get_close_matches

from netprobe.model.vocabulary import (
    BLOCKED,
    LAYER_BAD_STATUS,
    LAYER_METHOD,
    LAYERS,
    OK,
    THROTTLED,
    UNKNOWN,
)
from netprobe.timeline.columns import Rows, SeriesCutter
from netprobe.timeline.fleet import network_summary
from netprobe.timeline.nogc import paused_gc
from netprobe.timeline.onset import (
    Change,
    CusumParams,
    Detection,
    Sample,
    confidence,
    confidence_label,
    detect,
    detect_columns,
)
from netprobe.timeline.runs import RunSummary, iso
from netprobe.timeline.series import (
    find_gaps,
    gap_threshold_hours,
    hour_runs,
    raise_worst,
    strip,
    strip_cells,
)

HEALTHY_CONTROLS_NEEDED = 0.8


class _Network:
    __slots__ = (
        "run_times", "run_healthy", "rows", "methods", "groups", "labels", "latest", "hourly",
    )  # fmt: skip

    def __init__(self) -> None:
        self.run_times = array("d")
        self.run_healthy = array("b")
        # The score keys of healthy runs (their order too) -> those runs' times and scores.
        self.rows: dict[tuple[tuple[str, str], ...], Rows] = {}
        # (target, layer) -> hourly samples computed elsewhere (add_aggregated); None: from series.
        self.hourly: dict[tuple[str, str], list[Sample]] | None = None
        # target -> Counter of (hour, method) is too big; keep (time, method) only for blocked runs.
        self.methods: dict[str, list[tuple[float, str]]] = {}
        self.groups: dict[str, str] = {}  # target -> group, from the latest run naming it
        self.labels: dict[str, str] = {}  # group -> label, likewise
        self.latest = float("-inf")


@dataclass
class TimelineOptions:
    params: CusumParams = field(default_factory=CusumParams)
    window_hours: float = 6.0
    since: float | None = None
    until: float | None = None
    target: str | None = None  # only report this target_id (corroboration still sees all)
    strip_width: int = 48
    cells: bool = False  # add each target's strip cells with their evidence (the HTML page)


class TimelineBuilder:
    """Feed `RunSummary`s in any order with `add`, then `build()` the report (a JSON-able dict)."""

    def __init__(self, options: TimelineOptions | None = None) -> None:
        self.options = options or TimelineOptions()
        self._networks: dict[tuple[str, str], _Network] = {}
        self.runs_seen = 0
        self.runs_outside_range = 0
        self._ids: set[str] = set()  # target ids from methods and unscored targets
        self._score_keys: set[tuple[str, str]] = set()  # (target id, layer) of every score

    def add(self, run: RunSummary) -> None:
        opts = self.options
        if (opts.since is not None and run.started_at < opts.since) or (
            opts.until is not None and run.started_at > opts.until
        ):
            self.runs_outside_range += 1
            return
        self.runs_seen += 1
        network = self._networks.get(run.network)
        if network is None:
            network = self._networks[run.network] = _Network()
        network.run_times.append(run.started_at)
        network.run_healthy.append(1 if run.healthy else 0)
        if run.started_at >= network.latest:
            network.latest = run.started_at
            network.groups.update(run.groups)
            network.labels.update(run.group_labels)
        else:  # an older run only fills in what the newer ones did not say
            network.groups = {**run.groups, **network.groups}
            network.labels = {**run.group_labels, **network.labels}
        self._ids.update(run.methods)
        self._ids.update(run.unscored)
        if not run.healthy:
            self._score_keys.update(run.scores)
            return
        started, scores = run.started_at, run.scores
        layout = tuple(scores)  # the same target list from run to run: one dict lookup
        rows = network.rows.get(layout)
        if rows is None:
            rows = network.rows[layout] = Rows()
            self._score_keys.update(layout)
        rows.times.append(started)
        rows.scores.append(tuple(scores.values()))
        for target_id, method in run.methods.items():
            network.methods.setdefault(target_id, []).append((started, method))

    @property
    def _target_ids(self) -> set[str]:
        """Every target id a run in range measured."""
        return self._ids | {target_id for target_id, _layer in self._score_keys}

    def add_aggregated(
        self,
        key: tuple[str, str],
        runs: list[tuple[float, bool]],
        hourly: dict[tuple[str, str], list[Sample]],
        methods: dict[str, list[tuple[float, str]]],
        target_ids: set[str],
        *,
        groups: dict[str, str] | None = None,
        labels: dict[str, str] | None = None,
    ) -> None:
        """One network whose hourly samples were computed elsewhere (a store's SQL), all at once.

        `runs` are (started_at, healthy) of every run in range; `hourly` the samples of healthy
        runs (`series.hourly_samples` semantics: median of the hour, first and last run time);
        `methods` the (started_at, method) of healthy runs' verdicts in time order; `groups`
        (target -> group) and `labels` (group -> label) as `add` would leave them after every run
        (each from the latest run naming it).
        """
        network = self._networks.setdefault(key, _Network())
        for started_at, healthy in runs:
            network.run_times.append(started_at)
            network.run_healthy.append(1 if healthy else 0)
        self.runs_seen += len(runs)
        network.hourly = {**(network.hourly or {}), **hourly}
        for target_id, seen in methods.items():
            network.methods.setdefault(target_id, []).extend(seen)
        self._ids.update(target_ids)
        network.groups.update(groups or {})
        network.labels.update(labels or {})

    def build(self) -> dict:
        with paused_gc():  # a million hourly samples, no cycles (timeline.nogc)
            networks = [
                _build_network(key, network, self.options)
                for key, network in sorted(self._networks.items())
            ]
        report = {
            "parameters": _parameters(self.options),
            "runs": self.runs_seen,
            "runs_outside_range": self.runs_outside_range,
            "networks": networks,
        }
        wanted = self.options.target
        if wanted is not None:
            # Unknowable only when the runs measured no target at all.
            target_ids = self._target_ids
            found = wanted in target_ids or not target_ids
            report["target_found"] = found
            report["close_matches"] = (
                [] if found else get_close_matches(wanted, sorted(target_ids), n=5, cutoff=0.6)
            )
        return report


def _parameters(opts: TimelineOptions) -> dict:
    p = opts.params
    return {
        "mu0": p.mu0,
        "mu1": p.mu1,
        "edd": p.edd,
        "h": round(p.h, 6),
        "gap_hours": p.gap_hours,
        "half_life_hours": p.half_life_hours,
        "window_hours": opts.window_hours,
        "since": iso(opts.since),
        "until": iso(opts.until),
        "target": opts.target,
    }


def _sorted_network(network: _Network) -> None:
    order = sorted(range(len(network.run_times)), key=network.run_times.__getitem__)
    network.run_times = array("d", (network.run_times[i] for i in order))
    network.run_healthy = array("b", (network.run_healthy[i] for i in order))


def _healthy_fraction(network: _Network, center: float, window_s: float) -> float:
    lo = bisect_left(network.run_times, center - window_s)
    hi = bisect_right(network.run_times, center + window_s)
    if hi <= lo:
        return 0.0
    return sum(network.run_healthy[lo:hi]) / (hi - lo)


def _method_for(network: _Network, target_id: str, layer: str, change: Change) -> str | None:
    if change.to_state != BLOCKED:
        return None
    window_end = change.alarm_at + 1
    seen = Counter(
        method
        for t, method in network.methods.get(target_id, ())
        if change.first_after <= t <= window_end
    )
    return seen.most_common(1)[0][0] if seen else LAYER_METHOD.get(layer, layer)


def _word(layer: str, state: str) -> str:
    """A series state in the layer's words: the throughput layer's high state is `throttled`."""
    return LAYER_BAD_STATUS.get(layer, BLOCKED) if state == BLOCKED else state


def _build_network(key: tuple[str, str], network: _Network, opts: TimelineOptions) -> dict:
    _sorted_network(network)
    params, window_s = opts.params, opts.window_hours * 3600.0
    start = opts.since if opts.since is not None else network.run_times[0]
    end = opts.until if opts.until is not None else network.run_times[-1]
    first_hour = int(start // 3600)
    span_hours = max(1, int(end // 3600) - first_hour + 1)
    # Samples live only while their series is analysed; what survives per target is small:
    # the detection, first/last sample time, sample count and a per-hour worst score for the strip.
    detections: dict[tuple[str, str], Detection] = {}
    seen: dict[str, list[float]] = {}  # target -> [first time, last time, max samples]
    worst: dict[str, array] = {}
    worst_layer: dict[str, array] = {}  # the layer of each hour's worst score (cells only)
    prepared = network.hourly  # a store's samples; else the series are cut from the rows
    cutter = SeriesCutter(network.rows, first_hour)
    for series_key in sorted(prepared) if prepared is not None else cutter.keys():
        if prepared is not None:
            samples = prepared[series_key]
            detections[series_key] = detect(samples, params)
            times, ys = [s.time for s in samples], [s.y for s in samples]
            hour_index = [int(time // 3600) - first_hour for time in times]
            hours_of = hour_runs(hour_index)
        else:
            times, ys, first_runs, last_runs, hour_index, hours_of = cutter.columns(series_key)
            detections[series_key] = detect_columns(times, ys, first_runs, last_runs, params)
        target_id = series_key[0]
        if opts.target is not None and target_id != opts.target:
            continue
        bounds = seen.setdefault(target_id, [times[0], times[-1], 0])
        bounds[0], bounds[1] = min(bounds[0], times[0]), max(bounds[1], times[-1])
        bounds[2] = max(bounds[2], len(times))
        hours = worst.setdefault(target_id, array("d", [-1.0]) * span_hours)
        layer_at = None
        if opts.cells:
            layer_at = worst_layer.setdefault(target_id, array("b", [-1]) * span_hours)
        layer_index = LAYERS.index(series_key[1]) if series_key[1] in LAYERS else -1
        raise_worst(hours, layer_at, hour_index, hours_of, ys, layer_index)
    # Real flips (not the initial state) of every series, for corroboration.
    flips = [
        (series_key, change)
        for series_key, detection in detections.items()
        for change in detection.changes
        if change.from_state != UNKNOWN
    ]
    gap_threshold = gap_threshold_hours(network.run_times)
    targets: dict[str, dict] = {}
    for (target_id, layer), detection in sorted(detections.items()):
        if opts.target is not None and target_id != opts.target:
            continue
        entry = targets.setdefault(target_id, {"target_id": target_id})
        entry.setdefault("layers", {})[layer] = _word(layer, detection.state)
        for change in detection.changes:
            others = [
                f"{other[0]}/{other[1]}"
                for other, flip in flips
                if other != (target_id, layer)
                and flip.to_state == change.to_state
                and abs(flip.first_after - change.first_after) <= window_s
            ]
            controls = _healthy_fraction(network, change.first_after, window_s)
            corroborated = bool(others) and controls >= HEALTHY_CONTROLS_NEEDED
            initial = change.from_state == UNKNOWN
            value = confidence(corroborated, change.excess, change.samples_after, params.edd)
            interval = (
                None
                if change.last_before is None
                else round((change.first_after - change.last_before) / 3600.0, 2)
            )
            entry.setdefault("changes", []).append(
                {
                    "layer": layer,
                    "from": _word(layer, change.from_state),
                    "to": _word(layer, change.to_state),
                    "initial": initial,
                    "last_before": iso(change.last_before),
                    "first_after": iso(change.first_after),
                    "interval_hours": interval,
                    "spans_gap": interval is not None and interval > gap_threshold,
                    "alarm_at": iso(change.alarm_at),
                    "method": _method_for(network, target_id, layer, change),
                    "corroborated": corroborated,
                    "corroborating": sorted(others),
                    "controls_healthy": round(controls, 3),
                    "excess": change.excess,
                    "samples_after": change.samples_after,
                    "confidence": value,
                    "confidence_label": confidence_label(value),
                }
            )
    target_list = []
    for target_id in sorted(targets):
        entry = targets[target_id]
        layer_states = entry["layers"]
        changes = sorted(entry.pop("changes", []), key=lambda c: (c["first_after"], c["layer"]))
        first_time, last_time, sample_count = seen[target_id]
        blocked_layers = [layer for layer in LAYERS if layer_states.get(layer) == BLOCKED]
        if blocked_layers:
            state = BLOCKED
        elif any(s == THROTTLED for s in layer_states.values()):
            state = THROTTLED  # issue 13: reachable, but the throughput layer says throttled
        elif any(s == OK for s in layer_states.values()):
            state = OK
        else:
            state = UNKNOWN
        last_block = next((c for c in reversed(changes) if c["to"] == state), None)
        target_list.append(
            {
                "target_id": target_id,
                "group": network.groups.get(target_id),
                "state": state,
                "blocked_layers": blocked_layers,
                "method": last_block["method"]
                if state in (BLOCKED, THROTTLED) and last_block
                else None,
                "layers": layer_states,
                "first_seen": iso(first_time),
                "last_seen": iso(last_time),
                "samples": sample_count,
                "changes": changes,
                "strip": strip(worst[target_id], opts.strip_width),
            }
        )
        if opts.cells:
            target_list[-1]["cells"] = strip_cells(
                worst[target_id],
                worst_layer[target_id],
                first_hour,
                opts.strip_width,
                network.methods.get(target_id, []),
                LAYERS,
            )
    healthy = sum(network.run_healthy)
    built = {
        "probe_asn": key[0],
        "vantage": key[1],
        "runs": len(network.run_times),
        "healthy_runs": healthy,
        "first_run": iso(network.run_times[0]),
        "last_run": iso(network.run_times[-1]),
        "strip_start": iso(start),
        "strip_end": iso(end),
        "gap_threshold_hours": round(gap_threshold, 2),
        "gaps": find_gaps(network.run_times, network.run_healthy, gap_threshold),
        "group_labels": dict(network.labels),  # in the order of the target lists
        "targets": target_list,
    }
    built["summary"] = network_summary(built, opts.target)
    return built
