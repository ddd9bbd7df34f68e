"""Timeline core: synthetic run histories with known onsets, grouped by vantage network."""

from __future__ import annotations

import pytest

from netprobe.timeline.builder import TimelineBuilder, TimelineOptions
from netprobe.timeline.onset import CusumParams
from netprobe.timeline.runs import RunSummary, iso, parse_time, summary_from_analysis
from netprobe.timeline.series import hourly_samples

T0 = parse_time("2025-05-20T00:00:00Z")
HOUR = 3600.0
DCS = [f"endpoint:149.154.175.{n}:443" for n in (50, 51, 52, 53, 54)]


def history(hours, score_of, *, healthy_of=lambda h: True, vantage="hanoi-vnpt-1",
            asn="AS45899", targets=DCS, skip=lambda h: False, runs_per_hour=1):  # fmt: skip
    """Hourly RunSummaries; score_of(hour, target_id, run) -> score or None (target absent)."""
    runs = []
    for hour in range(hours):
        if skip(hour):
            continue
        for run in range(runs_per_hour):
            scores = {}
            for target in targets:
                score = score_of(hour, target, run)
                if score is not None:
                    scores[(target, "tcp")] = score
            runs.append(
                RunSummary(
                    started_at=T0 + hour * HOUR + 300 + run * (3600 / runs_per_hour - 1) * 0.9,
                    probe_asn=asn,
                    vantage=vantage,
                    run_id=f"{vantage}-{hour}-{run}",
                    healthy=healthy_of(hour),
                    scores=scores,
                    methods={t: "ip" for t, s in scores if scores[(t, "tcp")] >= 0.7},
                )
            )
    return runs


def build(runs, **options):
    builder = TimelineBuilder(TimelineOptions(**options))
    for run in runs:
        builder.add(run)
    return builder.build()


def changes_of(report, network=0):
    return {
        entry["target_id"]: [c for c in entry["changes"] if not c["initial"]]
        for entry in report["networks"][network]["targets"]
    }


def at(hour: int) -> str:
    return iso(T0 + hour * HOUR + 300)


def test_clean_step_on_every_target_is_one_corroborated_onset_each():
    report = build(history(96, lambda h, t, r: 1.0 if h >= 50 else 0.0))
    for target, changes in changes_of(report).items():
        (change,) = changes
        assert (change["from"], change["to"]) == ("ok", "blocked"), target
        assert (change["last_before"], change["first_after"]) == (at(49), at(50))
        assert change["corroborated"] and change["confidence_label"] == "high"
        assert change["method"] == "ip"
    entry = report["networks"][0]["targets"][0]
    assert entry["state"] == "blocked" and entry["blocked_layers"] == ["tcp"]


def test_partial_block_on_some_dcs_fires_only_for_those():
    blocked = set(DCS[:2])
    report = build(history(96, lambda h, t, r: 1.0 if h >= 40 and t in blocked else 0.0))
    changes = changes_of(report)
    assert {t for t, c in changes.items() if c} == blocked
    states = {e["target_id"]: e["state"] for e in report["networks"][0]["targets"]}
    assert {t for t, s in states.items() if s == "blocked"} == blocked
    assert all(changes[t][0]["first_after"] == at(40) for t in blocked)
    assert all(changes[t][0]["corroborated"] for t in blocked)  # two DCs flipped together


def test_a_single_target_flipping_alone_is_not_corroborated():
    report = build(history(96, lambda h, t, r: 1.0 if h >= 40 and t == DCS[0] else 0.0))
    (change,) = changes_of(report)[DCS[0]]
    assert not change["corroborated"] and change["corroborating"] == []
    assert change["confidence"] < 0.75


def test_unhealthy_vantage_is_a_gap_not_a_block():
    # Hours 40-69: the volunteer's line is down, every probe fails, controls fail too.
    offline = range(40, 70)
    runs = history(
        110,
        lambda h, t, r: 1.0 if h in offline else 0.0,
        healthy_of=lambda h: h not in offline,
    )
    report = build(runs)
    assert all(not c for c in changes_of(report).values())
    (gap,) = report["networks"][0]["gaps"]
    assert (gap["from"], gap["to"], gap["reason"]) == (at(39), at(70), "controls failing")


def test_missing_files_are_a_gap_and_a_block_after_it_spans_the_gap():
    runs = history(120, lambda h, t, r: 1.0 if h >= 60 else 0.0, skip=lambda h: 30 <= h < 60)
    report = build(runs)
    (gap,) = report["networks"][0]["gaps"]
    assert (gap["from"], gap["to"], gap["reason"]) == (at(29), at(60), "no runs")
    change = changes_of(report)[DCS[0]][0]
    assert (change["last_before"], change["first_after"]) == (at(29), at(60))
    assert change["spans_gap"] is True


@pytest.mark.parametrize(
    ("name", "score_of"),
    [
        ("short outage (2 h) on one target", lambda h, t, r: 1.0 if 50 <= h < 52 and t == DCS[0] else 0.0),
        ("short outage (3 h) on all targets", lambda h, t, r: 1.0 if 50 <= h < 53 else 0.0),
        ("one bad run in four each hour (median)", lambda h, t, r: 1.0 if r == 0 else 0.0),
    ],
)  # fmt: skip
def test_nothing_fires_without_a_block(name, score_of):
    report = build(history(100, score_of, runs_per_hour=4))
    assert all(not c for c in changes_of(report).values()), name
    assert {e["state"] for e in report["networks"][0]["targets"]} == {"ok"}


def test_flapping_block_is_one_onset_without_recoveries():
    report = build(history(120, lambda h, t, r: 1.0 if h >= 48 and h % 4 != 3 else 0.0))
    for changes in changes_of(report).values():
        assert [(c["to"], c["first_after"]) for c in changes] == [("blocked", at(48))]


def test_block_and_recovery_per_network():
    hanoi = history(120, lambda h, t, r: 1.0 if 40 <= h < 80 else 0.0, vantage="hanoi-vnpt-1")
    saigon = history(120, lambda h, t, r: 0.0, vantage="saigon-viettel-1", asn="AS7552")
    report = build(hanoi + saigon)
    names = [(n["probe_asn"], n["vantage"]) for n in report["networks"]]
    assert names == [("AS45899", "hanoi-vnpt-1"), ("AS7552", "saigon-viettel-1")]
    onset, recovery = changes_of(report, 0)[DCS[0]]
    assert (onset["first_after"], recovery["to"], recovery["first_after"]) == (
        at(40),
        "ok",
        at(80),
    )
    assert all(not c for c in changes_of(report, 1).values())


def test_target_list_that_grows_over_time_is_not_a_change():
    late = "endpoint:91.108.56.130:443"
    runs = history(
        100,
        lambda h, t, r: None if (t == late and h < 50) else 0.0,
        targets=[*DCS, late],
    )
    report = build(runs)
    entry = next(e for e in report["networks"][0]["targets"] if e["target_id"] == late)
    assert entry["first_seen"] == iso(T0 + 50 * HOUR) and entry["changes"][0]["initial"]
    assert all(not c for c in changes_of(report).values())


def test_since_until_and_target_filters():
    runs = history(96, lambda h, t, r: 1.0 if h >= 50 else 0.0)
    report = build(runs, since=T0 + 60 * HOUR, target=DCS[1])
    (entry,) = report["networks"][0]["targets"]
    assert entry["target_id"] == DCS[1]
    assert entry["state"] == "blocked" and all(c["initial"] for c in entry["changes"])
    assert report["runs"] == 36 and report["runs_outside_range"] == 60
    assert build(runs, until=T0 - 1)["networks"] == []


def test_detector_parameters_change_the_alarm_delay():
    runs = history(96, lambda h, t, r: 1.0 if h >= 50 else 0.0)
    slow = changes_of(build(runs))[DCS[0]][0]["alarm_at"]
    fast = changes_of(build(runs, params=CusumParams(edd=4)))[DCS[0]][0]["alarm_at"]
    assert fast < slow


def test_strip_marks_ok_blocked_and_gaps():
    runs = history(96, lambda h, t, r: 1.0 if h >= 64 else 0.0, skip=lambda h: 32 <= h < 48)
    strip = build(runs, strip_width=6)["networks"][0]["targets"][0]["strip"]
    assert strip == "oo.oxx"


def test_hourly_samples_take_the_median_of_runs_in_the_same_hour():
    samples = hourly_samples([T0 + 10, T0 + 20, T0 + 30, T0 + HOUR], [1.0, 0.0, 0.0, 1.0])
    assert [(s.time, s.y, s.first_run, s.last_run) for s in samples] == [
        (T0, 0.0, T0 + 10, T0 + 30),
        (T0 + HOUR, 1.0, T0 + HOUR, T0 + HOUR),
    ]


def test_hourly_samples_do_not_depend_on_the_order_runs_arrive_in():
    # Worker processes deliver files in any order; two runs in hour 2 (median of an even count).
    times = [T0 + 2 * HOUR + 50, T0, T0 + 2 * HOUR + 5, T0 + HOUR + 1]
    scores = [1.0, 0.0, 0.5, 0.25]
    samples = hourly_samples(times, scores)
    assert [(s.time, s.y, s.first_run, s.last_run) for s in samples] == [
        (T0, 0.0, T0, T0),
        (T0 + HOUR, 0.25, T0 + HOUR + 1, T0 + HOUR + 1),
        (T0 + 2 * HOUR, 0.75, T0 + 2 * HOUR + 5, T0 + 2 * HOUR + 50),
    ]
    assert hourly_samples(list(reversed(times)), list(reversed(scores))) == samples


class _Verdict:
    def __init__(self, role, scores, method=None):
        self.role, self.scores, self.method = role, scores, method


class _Analysis:
    def __init__(self, healthy):
        self.vantage = {"healthy": healthy}
        self.verdicts = {
            "domain:t.me": _Verdict("target", {"dns": 0.0, "tcp": None, "tls": 1.0}, "sni"),
            "domain:example.com": _Verdict("control", {"dns": 0.0, "tls": 0.0}),
        }


def test_summary_from_analysis_keeps_target_scores_and_drops_controls_and_nones():
    header = {"started_at": "2025-05-26T01:00:00.123456Z", "vantage": "v", "probe_asn": "AS1",
              "run_id": "abc"}  # fmt: skip
    run = summary_from_analysis(header, _Analysis(healthy=True))
    assert run.scores == {("domain:t.me", "dns"): 0.0, ("domain:t.me", "tls"): 1.0}
    assert run.methods == {"domain:t.me": "sni"}
    assert run.network == ("AS1", "v") and run.healthy
    assert run.started_at == pytest.approx(parse_time("2025-05-26T01:00:00.123456Z"))
