"""The builder's fast paths give exactly what the plain code gives: `onset.detect_columns` is
`detect`, `columns.SeriesCutter` cuts the samples `hourly_samples` makes (scores clamped as the
builder clamps them), and `series.raise_worst` is the per-sample loop; floats compared by repr
(NaN, -0.0), over target lists that change, runs out of order, shared hours and times."""

from __future__ import annotations

import math
import random
from array import array

from hypothesis import given, settings
from hypothesis import strategies as st

from netprobe.timeline.columns import Rows, SeriesCutter
from netprobe.timeline.onset import CusumParams, Sample, detect, detect_columns
from netprobe.timeline.series import hour_runs, hourly_samples, raise_worst

T0 = 1_748_217_600.0  # 2025-05-26T00:00:00Z
SCORES = st.one_of(
    st.sampled_from([0.0, -0.0, 1.0, 0.35, 0.7, 0.5, math.nan, 2.0, -1.0]),
    st.floats(min_value=0.0, max_value=1.0),
)
PARAMS = st.builds(
    CusumParams,
    mu1=st.sampled_from([0.7, 0.5, 0.9]),
    edd=st.sampled_from([10.0, 2.5, 3.0]),
    gap_hours=st.sampled_from([24.0, 2.0]),
    half_life_hours=st.sampled_from([48.0, 1.0]),
)


@st.composite
def hourly(draw) -> list[Sample]:
    steps = draw(st.lists(st.sampled_from([1, 1, 1, 2, 3, 30, 80]), max_size=150))
    blocks = draw(st.booleans())  # long runs of one score, as real series rest
    ys = []
    for _ in steps:
        if blocks and ys and draw(st.integers(0, 9)):
            ys.append(ys[-1])
        else:
            ys.append(draw(SCORES))
    samples, hour = [], 0
    for step, y in zip(steps, ys, strict=True):
        hour += step
        first = T0 + hour * 3600.0 + draw(st.sampled_from([0.0, 59.0, 1800.0]))
        samples.append(
            Sample(T0 + hour * 3600.0, y, first, first + draw(st.sampled_from([0.0, 60.0])))
        )
    return samples


@settings(max_examples=400, deadline=None)
@given(hourly(), PARAMS)
def test_detect_columns_is_detect(samples, params):
    columns = [list(column) for column in zip(*samples, strict=True)] or [[], [], [], []]
    assert repr(detect_columns(*columns, params)) == repr(detect(samples, params))


def clamped(score: float) -> float:
    return score if 0.0 <= score <= 1.0 else (1.0 if score > 1.0 else 0.0)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from([0, 1, 2, 2, 2, 5]), min_size=1, max_size=60),  # runs per hour
    st.integers(0, 3),  # how the target list changes
    st.randoms(use_true_random=False),
    st.lists(SCORES, min_size=400, max_size=400),
)
def test_series_cut_from_target_lists_are_hourly_samples(per_hour, lists, rand, pool):
    times = []
    for hour, count in enumerate(per_hour):
        times += [
            T0 + hour * 3600.0 + rand.choice([0.0, 7.0, 1200.0, 3599.0]) for _ in range(count)
        ]
    if rand.random() < 0.5:
        rand.shuffle(times)
    keys = [("domain:a", "dns"), ("domain:a", "tcp"), ("endpoint:b", "tcp"), ("domain:c", "tls")]
    layouts = [tuple(keys), tuple(keys[:2]), tuple(reversed(keys)), tuple(keys[1:])][: lists + 1]
    rows: dict[tuple, Rows] = {}
    expected: dict[tuple, tuple[list, list]] = {}
    scores = iter(pool * 10)
    for index, started in enumerate(times):
        layout = layouts[index * len(layouts) // len(times)]
        run = rows.setdefault(layout, Rows())
        run.times.append(started)
        run.scores.append(tuple(next(scores) for _ in layout))
        for key, score in zip(layout, run.scores[-1], strict=True):
            expected.setdefault(key, ([], []))[0].append(started)
            expected[key][1].append(clamped(score))
    first_hour = int(T0 // 3600) + rand.choice([0, 3])
    cutter = SeriesCutter(rows, first_hour)
    assert cutter.keys() == sorted(expected)
    for key, (key_times, key_scores) in expected.items():
        samples = hourly_samples(array("d", key_times), array("d", key_scores))
        got_times, ys, firsts, lasts, hour_index, runs = cutter.columns(key)
        assert repr(list(zip(got_times, ys, firsts, lasts, strict=True))) == repr(
            [tuple(sample) for sample in samples]
        )
        assert hour_index == [int(t // 3600) - first_hour for t in got_times]
        assert runs == hour_runs(hour_index)


def worst_by_loop(worst, layers, hour_index, ys, layer):
    for index, y in zip(hour_index, ys, strict=True):
        if 0 <= index < len(worst) and y > worst[index]:
            worst[index] = y
            layers[index] = layer


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(-5, 60), SCORES), max_size=80),
    st.booleans(),
    st.integers(1, 50),
)
def test_raise_worst_is_the_per_sample_loop(pairs, increasing, span):
    if increasing:
        pairs = sorted(dict(pairs).items())
    hour_index, ys = [p[0] for p in pairs], [p[1] for p in pairs]
    rand = random.Random(len(pairs))
    start = array("d", [rand.choice([-1.0, 0.0, 0.5, 1.0]) for _ in range(span)])
    fast, fast_layers = array("d", start), array("b", [-1]) * span
    slow, slow_layers = array("d", start), array("b", [-1]) * span
    for layer in (0, 2):
        raise_worst(fast, fast_layers, hour_index, hour_runs(hour_index), ys, layer)
        worst_by_loop(slow, slow_layers, hour_index, ys, layer)
    assert repr(fast) == repr(slow) and fast_layers == slow_layers
