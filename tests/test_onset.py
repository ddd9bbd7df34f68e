"""CUSUM onset detection on synthetic hourly series with known onsets (REFERENCE.md section 4)."""

from __future__ import annotations

import pytest

from netprobe.timeline.onset import (
    BLOCKED,
    OK,
    UNKNOWN,
    CusumParams,
    Sample,
    confidence,
    confidence_label,
    detect,
)

T0 = 1_748_217_600.0  # 2025-05-26T00:00:00Z
HOUR = 3600.0


def series(pattern: list[float | None]) -> list[Sample]:
    """One sample per hour from T0; None = no data that hour (a gap)."""
    return [
        Sample(time=T0 + i * HOUR, y=y, first_run=T0 + i * HOUR + 60, last_run=T0 + i * HOUR + 60)
        for i, y in enumerate(pattern)
        if y is not None
    ]


def real_changes(detection):
    return [c for c in detection.changes if c.from_state != UNKNOWN]


def hour_of(seconds: float) -> float:
    return (seconds - 60 - T0) / HOUR


@pytest.mark.parametrize(
    ("name", "pattern", "last_ok_hour", "first_blocked_hour"),
    [
        ("clean step", [0.0] * 48 + [1.0] * 48, 47, 48),
        ("step to a partial score", [0.0] * 48 + [0.8] * 48, 47, 48),
        ("noisy ok then block", [0.0, 0.1, 0.0, 0.2] * 12 + [0.9, 1.0] * 24, 47, 48),
        # Flapping before the block settles: short blips do not accumulate (1 h on, 3 h off).
        ("flapping then block", [0.0] * 24 + [1.0, 0.0, 0.0, 0.0] * 6 + [1.0] * 48, 47, 48),
        # A flapping block (on 3 h of every 4) is still one block, with no recovery in between.
        ("flapping block", [0.0] * 48 + [1.0, 1.0, 1.0, 0.0] * 12, 47, 48),
    ],
)
def test_onset_falls_in_the_known_interval_and_nothing_else_fires(
    name, pattern, last_ok_hour, first_blocked_hour
):
    detection = detect(series(pattern))
    changes = real_changes(detection)
    assert len(changes) == 1, name
    change = changes[0]
    assert (change.from_state, change.to_state) == (OK, BLOCKED)
    assert hour_of(change.last_before) == last_ok_hour
    assert hour_of(change.first_after) == first_blocked_hour
    # The alarm comes later than the onset (detection delay), and the state is blocked now.
    assert change.alarm_at > change.first_after
    assert detection.state == BLOCKED


@pytest.mark.parametrize(
    ("name", "pattern"),
    [
        ("all ok", [0.0] * 100),
        ("short outage of 3 hours", [0.0] * 48 + [1.0] * 3 + [0.0] * 48),
        ("isolated blips", ([0.0] * 5 + [1.0]) * 20),
        ("low noise", [0.0, 0.3, 0.1, 0.3] * 30),
        ("a 3-day gap", [0.0] * 48 + [None] * 72 + [0.0] * 48),
    ],
)
def test_nothing_fires_without_a_block(name, pattern):
    detection = detect(series(pattern))
    assert real_changes(detection) == [], name
    assert detection.state == OK


def test_block_then_recovery_reports_both_intervals():
    detection = detect(series([0.0] * 30 + [1.0] * 40 + [0.0] * 30))
    onset, recovery = real_changes(detection)
    assert (hour_of(onset.last_before), hour_of(onset.first_after)) == (29, 30)
    assert (recovery.from_state, recovery.to_state) == (BLOCKED, OK)
    assert (hour_of(recovery.last_before), hour_of(recovery.first_after)) == (69, 70)
    assert detection.state == OK


def test_block_after_a_gap_gives_an_interval_spanning_the_gap():
    # Data stops at hour 47 (ok), resumes at hour 80 already blocked: the onset is somewhere in
    # the gap, and the detector must say so rather than pin it on hour 80.
    detection = detect(series([0.0] * 48 + [None] * 32 + [1.0] * 24))
    (change,) = real_changes(detection)
    assert (hour_of(change.last_before), hour_of(change.first_after)) == (47, 80)


def test_series_that_starts_blocked_is_an_initial_state_not_an_onset():
    detection = detect(series([1.0] * 30))
    assert real_changes(detection) == []
    (initial,) = detection.changes
    assert (initial.from_state, initial.to_state, initial.last_before) == (UNKNOWN, BLOCKED, None)
    assert detection.state == BLOCKED


def test_too_few_samples_leave_the_state_unknown():
    assert detect(series([0.0] * 5)).state == UNKNOWN


def test_alarm_delay_follows_edd():
    # With y = 1 each sample adds 1 - v/2 = 0.65; h = edd * 0.35. A smaller edd alarms sooner.
    pattern = [0.0] * 40 + [1.0] * 40
    slow = real_changes(detect(series(pattern), CusumParams(edd=10)))[0]
    fast = real_changes(detect(series(pattern), CusumParams(edd=4)))[0]
    assert hour_of(slow.alarm_at) == 40 + 5  # 6 samples: 6 * 0.65 = 3.9 > 3.5
    assert hour_of(fast.alarm_at) == 40 + 2  # 3 samples: 1.95 > 1.4
    assert slow.first_after == fast.first_after


def test_decay_after_long_gap_fades_old_evidence():
    # 4 blocked hours (s+ = 2.6 < 3.5), then a 5-day gap, then 2 more blocked hours. Without decay
    # 2.6 + 1.3 = 3.9 would alarm; with the 48 h half-life it must not.
    pattern = [0.0] * 24 + [1.0] * 4 + [None] * 120 + [1.0] * 2 + [0.0] * 20
    assert real_changes(detect(series(pattern))) == []
    no_decay = CusumParams(gap_hours=1000)
    assert real_changes(detect(series(pattern), no_decay))[0].to_state == BLOCKED


def test_excess_is_larger_for_a_clear_block_than_a_borderline_one():
    clear = real_changes(detect(series([0.0] * 30 + [1.0] * 30)))[0]
    borderline = real_changes(detect(series([0.0] * 30 + [0.5] * 60)))[0]
    assert clear.excess > 1.5
    assert 0 <= borderline.excess < clear.excess


@pytest.mark.parametrize(
    ("corroborated", "excess", "samples_after", "label"),
    [(True, 2.0, 40, "high"), (False, 2.0, 40, "medium"), (False, 0.0, 1, "low")],
)
def test_confidence_levels(corroborated, excess, samples_after, label):
    assert confidence_label(confidence(corroborated, excess, samples_after, 10)) == label


@pytest.mark.parametrize(
    "kwargs", [{"mu1": 0.0}, {"mu0": 0.8, "mu1": 0.7}, {"edd": 0}, {"gap_hours": -1}]
)
def test_bad_parameters_are_rejected(kwargs):
    with pytest.raises(ValueError):
        CusumParams(**kwargs)
