"""Throttling verdicts from throughput records (analysis/throughput.py), the target-list
`download:` key, the planner's downloads, diff kinds, report and timeline (issue 13)."""

from __future__ import annotations

import pytest

from netprobe.analysis import analyse
from netprobe.analysis.throughput import MIN_SECONDS, THRESHOLD, ratio_score
from netprobe.diff import diff_runs
from netprobe.model.records import SEQUENCE_BEFORE, SEQUENCE_TARGET
from netprobe.model.vocabulary import (
    IP_METHOD,
    METHOD_CHANGED,
    NEWLY_THROTTLED,
    OK,
    SNI_METHOD,
    THROTTLED,
    THROUGHPUT_LAYER,
    UNTHROTTLED,
)
from netprobe.render.report import report_markdown
from netprobe.run.plan_throughput import ThroughputFetch
from netprobe.run.planner import Chain, RunPlan, TlsHandshake, needs_confirmation
from netprobe.targets.lists import TargetError, parse_targets
from netprobe.timeline.builder import TimelineBuilder, TimelineOptions
from netprobe.timeline.runs import summary_from_analysis
from tests import recordfactory as rf

IP = "203.0.113.10"
IP6 = "2001:db8:100::10"
TARGET = "domain:telegram.org"
FAST, SLOW = 5e6, 18e3  # bytes/s: an unshaped link, ~150 kbit/s


def pair(ip: str, target: float | None, control: float | None, *, attempt: int = 0,
         seconds: float = 8.0, target_failure: str | None = None) -> list[dict]:  # fmt: skip
    """The control SNI's download first, then the target SNI's, on one ip:port."""
    records = []
    if control is not None:
        records.append(
            rf.throughput(
                ip,
                rate=control,
                seconds=min(seconds, (1 << 20) / control),
                sni_role="control",
                attempt=attempt,
            )  # fmt: skip
        )
    records.append(
        rf.throughput(ip, rate=target, seconds=seconds, attempt=attempt, failure=target_failure)
    )
    return records


def control_downloads(rate: float, attempts: int = 1) -> list[dict]:
    return [
        rf.throughput(
            rf.CONTROL_IP,
            rf.CONTROL_DOMAIN,
            rate=rate,
            seconds=1.0,
            group="control",
            role="control",
            attempt=attempt,
            control_round=attempt,
        )  # fmt: skip
        for attempt in range(attempts)
    ]


def judge(*records: dict | list[dict], attempts: int = 1) -> dict:
    flat = [r for item in records for r in (item if isinstance(item, list) else [item])]
    recs = [*rf.healthy_controls(attempts), *rf.domain_ok("telegram.org", IP, attempts), *flat]
    return analyse(rf.header(), recs).verdicts[TARGET].to_dict()


# -- the rules, one case each ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "records", "status", "method"),
    [
        ("only the target SNI is slow on the address", [pair(IP, SLOW, FAST)], THROTTLED,
         SNI_METHOD),
        ("both SNIs slow, control domains fast", [pair(IP, SLOW, SLOW * 1.1),
         control_downloads(FAST)], THROTTLED, IP_METHOD),
        ("a slow link: everything equally slow", [pair(IP, SLOW, SLOW * 1.1),
         control_downloads(SLOW * 0.9)], OK, None),
        ("fast for both", [pair(IP, FAST, FAST * 1.2, seconds=0.2), control_downloads(FAST)],
         OK, None),
        ("slower, but above the threshold", [pair(IP, FAST * THRESHOLD * 1.2, FAST)], OK, None),
        ("a quick transfer is never throttled", [pair(IP, FAST / 10, FAST,
         seconds=MIN_SECONDS / 2)], OK, None),
        ("no control SNI, control domains fast: no throttle claimed", [pair(IP, SLOW, None),
         control_downloads(FAST)], OK, None),
        ("the target's download failed", [pair(IP, None, FAST,
         target_failure="connection_reset")], OK, None),
        ("one throttled address of two makes the attempt throttled", [pair(IP, FAST, FAST * 1.1,
         seconds=0.2), pair(IP6, SLOW, FAST)], THROTTLED, SNI_METHOD),
    ],
)  # fmt: skip
def test_throttle_rules(case: str, records: list, status: str, method: str | None) -> None:
    verdict = judge(*records)
    assert (verdict["status"], verdict["method"]) == (status, method), case
    assert THROUGHPUT_LAYER in verdict["layers"], case


def test_sni_throttle_evidence_reads_as_a_sentence() -> None:
    verdict = judge(pair(IP, SLOW, FAST))
    first = verdict["evidence"][0]
    assert first.startswith(f"throughput: {IP}:443: telegram.org 18.0 kB/s vs control SNI")
    assert "5.0 MB/s on the same address" in first and "throttled by SNI" in first
    assert verdict["scores"][THROUGHPUT_LAYER] == 1.0


def test_a_failed_target_download_is_evidence_not_a_verdict() -> None:
    verdict = judge(pair(IP, None, FAST, target_failure="connection_reset"))
    assert verdict["layers"][THROUGHPUT_LAYER] == "inconclusive"
    assert any("download of telegram.org failed (connection_reset)" in e
               for e in verdict["evidence"])  # fmt: skip


@pytest.mark.parametrize(("throttled", "status"), [(1, OK), (2, THROTTLED), (3, THROTTLED)])
def test_two_thirds_of_the_attempts_decide(throttled: int, status: str) -> None:
    records = [
        pair(
            IP,
            SLOW if attempt < throttled else FAST,
            FAST,
            attempt=attempt,
            seconds=8.0 if attempt < throttled else 0.2,
        )  # fmt: skip
        for attempt in range(3)
    ]
    verdict = judge(*records, attempts=3)
    assert verdict["status"] == status
    if status == OK:
        assert any("1/3 attempts were throttled" in note for note in verdict["notes"])


def test_blocked_tls_wins_over_any_rate() -> None:
    recs = [
        *rf.healthy_controls(),
        *rf.domain_lookups("telegram.org", [IP], [IP]),
        *rf.tls_pair(IP, "telegram.org", target_failure="connection_reset"),
    ]
    verdict = analyse(rf.header(), recs).verdicts[TARGET].to_dict()
    assert verdict["status"] == "blocked" and THROUGHPUT_LAYER not in verdict["layers"]


def test_unhealthy_vantage_makes_throttling_inconclusive() -> None:
    timeout = {"failure": "generic_timeout_error", "group": "control", "role": "control"}
    dead = [
        rf.dns(
            rf.CONTROL_DOMAIN,
            None,
            resolver=rf.CONTROL_RESOLVER,
            resolver_role="control",
            **timeout,
        ),  # fmt: skip
        rf.tcp(*rf.CONTROL_ENDPOINT, **timeout),
    ]
    lookups = rf.domain_lookups("telegram.org", [IP], None, control_failure="generic_timeout_error")
    recs = [*dead, *lookups, *rf.tls_pair(IP, "telegram.org"), *pair(IP, SLOW, FAST)]
    verdict = analyse(rf.header(), recs).verdicts[TARGET].to_dict()
    assert verdict["status"] == "inconclusive"


def test_old_files_have_no_throughput_layer() -> None:
    verdict = judge()
    assert set(verdict["layers"]) == {"dns", "tcp", "tls"} and verdict["status"] == OK


@pytest.mark.parametrize(
    ("ratio", "score"), [(1.0, 0.0), (0.5, 0.0), (0.25, 1.0), (0.01, 1.0), (0.3536, 0.5)]
)
def test_ratio_score(ratio: float, score: float) -> None:
    assert ratio_score(ratio) == pytest.approx(score, abs=1e-3)


# -- diff, report, timeline -------------------------------------------------------------------


def _analysis(records: list, started: str = "2025-05-26T01:00:00.000000Z"):
    recs = [*rf.healthy_controls(), *rf.domain_ok("telegram.org", IP), *records]
    return analyse(rf.header(started_at=started), recs)


@pytest.mark.parametrize(
    ("old", "new", "kind"),
    [
        (pair(IP, FAST, FAST, seconds=0.2), pair(IP, SLOW, FAST), NEWLY_THROTTLED),
        (pair(IP, SLOW, FAST), pair(IP, FAST, FAST, seconds=0.2), UNTHROTTLED),
        (pair(IP, SLOW, FAST), [*pair(IP, SLOW, SLOW), *control_downloads(FAST)], METHOD_CHANGED),
    ],
)
def test_diff_kinds(old: list, new: list, kind: str) -> None:
    result = diff_runs(_analysis(old), _analysis(new)).to_dict()
    assert [(c["target"], c["kind"]) for c in result["changes"]] == [(TARGET, kind)]
    assert result["summary"][kind] == 1 and result["status_changed"]


def test_report_shows_the_throughput_layer_and_status() -> None:
    text = report_markdown(_analysis(pair(IP, SLOW, FAST)).to_dict())
    assert "| dns/tcp/tls/throughput |" in text
    assert f"| `{TARGET}` | web | throttled (sni) | ok/ok/ok/throttled |" in text
    plain = report_markdown(_analysis([]).to_dict())
    assert "| dns/tcp/tls |" in plain and "throughput" not in plain


def test_timeline_turns_throttled_runs_into_a_throttled_onset() -> None:
    builder = TimelineBuilder(TimelineOptions())
    for hour in range(24):
        records = pair(IP, SLOW, FAST) if hour >= 12 else pair(IP, FAST, FAST, seconds=0.2)
        started = f"2025-05-26T{hour:02d}:00:00.000000Z"
        analysis = _analysis(records, started)
        builder.add(summary_from_analysis(analysis.header, analysis))
    (network,) = builder.build()["networks"]
    target = next(t for t in network["targets"] if t["target_id"] == TARGET)
    assert target["state"] == THROTTLED and target["method"] == SNI_METHOD
    assert target["layers"][THROUGHPUT_LAYER] == THROTTLED
    (change,) = [c for c in target["changes"] if c["layer"] == THROUGHPUT_LAYER and c["to"] != OK]
    assert change["to"] == THROTTLED and change["first_after"].startswith("2025-05-26T12")


# -- target list and plan ------------------------------------------------------------------


LIST = """
groups:
  web:
    domains: [telegram.org, t.me]
    download: {DOWNLOAD}
controls:
  domains: [control.example]
  sni: control.example
  download: /big.bin
"""


def test_download_path_for_every_domain_of_a_group() -> None:
    tl = parse_targets(LIST.replace("{DOWNLOAD}", "/img/logo.png"), "t.yaml")
    assert {d.name: d.download for d in tl.domains()} == {
        "telegram.org": "/img/logo.png", "t.me": "/img/logo.png", "control.example": "/big.bin",
    }  # fmt: skip


def test_download_path_per_domain() -> None:
    tl = parse_targets(LIST.replace("{DOWNLOAD}", "{t.me: /a.js}"), "t.yaml")
    assert {d.name: d.download for d in tl.target_domains()} == {
        "telegram.org": None,
        "t.me": "/a.js",
    }


@pytest.mark.parametrize(
    ("download", "message"),
    [
        ("img.png", 't.yaml:5: groups.web.download: expected a URL path like "/img/logo.png"'),
        ('"/a b"', "groups.web.download: expected a URL path"),
        ("{example.org: /x}", "t.yaml:5: groups.web.download.example.org: not a domain of this "
         "group (its domains: telegram.org, t.me)"),
        ("[/x]", "groups.web.download: expected a URL path, got a list"),
    ],
)  # fmt: skip
def test_bad_download_paths_name_file_line_and_field(download: str, message: str) -> None:
    with pytest.raises(TargetError) as caught:
        parse_targets(LIST.replace("{DOWNLOAD}", download), "t.yaml")
    assert message in str(caught.value)


def _plan(text: str) -> RunPlan:
    tl = parse_targets(text, "t.yaml")
    return RunPlan([tl], 1, [], [], 4, "control.example", throughput_bytes=5000,
                   throughput_seconds=2.0)  # fmt: skip


def _answers(ips: list[str]) -> list[dict]:
    return [rf.dns("telegram.org", ips, resolver=rf.CONTROL_RESOLVER, resolver_role="control")]


def test_plan_fetches_after_the_tls_chain_on_one_address_per_family() -> None:
    plan = _plan(LIST.replace("{DOWNLOAD}", "/img/logo.png"))
    domain = plan.target_lists[0].groups["web"].domains[0]
    tasks = plan.domain_handshakes(domain, _answers([IP, "203.0.113.11", IP6, "2001:db8::11"]))
    with_downloads = [t for t in tasks if isinstance(t, Chain) and t.then]
    assert [(t.steps[-1].ip, len(t.then)) for t in with_downloads] == [(IP, 2), (IP6, 2)]
    before, target = with_downloads[0].then
    assert isinstance(before, ThroughputFetch) and isinstance(target, ThroughputFetch)
    assert (before.server_name, before.sni_role, before.sequence) == (
        "control.example", "control", SEQUENCE_BEFORE,
    )  # fmt: skip
    assert (target.server_name, target.hostname, target.sequence, target.path) == (
        "telegram.org", "telegram.org", SEQUENCE_TARGET, "/img/logo.png",
    )  # fmt: skip
    assert (target.max_bytes, target.max_seconds) == (5000, 2.0)
    assert isinstance(with_downloads[0].steps[-1], TlsHandshake)


def test_no_download_object_no_fetch() -> None:
    plan = _plan(LIST.replace("{DOWNLOAD}", "{t.me: /a.js}"))
    domain = plan.target_lists[0].groups["web"].domains[0]  # telegram.org: none
    tasks = plan.domain_handshakes(domain, _answers([IP]))
    assert not any(isinstance(t, Chain) and t.then for t in tasks)


def test_throughput_records_are_never_reprobed() -> None:
    assert not needs_confirmation(rf.throughput(IP, failure="connection_reset"))


@pytest.mark.parametrize(
    ("field", "value"), [("rate", "fast"), ("duration", "long"), ("http_status", "200")]
)
def test_odd_field_values_are_not_judged_and_never_crash(field: str, value: object) -> None:
    records = pair(IP, SLOW, FAST)
    records[-1][field] = value
    verdict = judge(records)
    assert verdict["status"] == OK  # not throttled: the target's download cannot be read


def test_a_throughput_record_without_an_address_is_refused_by_the_loader() -> None:
    from netprobe.analysis.load import RunRefused, load_run

    record = rf.throughput(IP)
    record["port"] = "443"
    with pytest.raises(RunRefused, match="throughput 'domain:telegram.org'.*'port'"):
        load_run(rf.header(), [record])


def test_targets_show_lists_the_download_objects() -> None:
    from rich.console import Console

    from netprobe.render.targets import describe_targets, targets_renderables

    info = describe_targets(parse_targets(LIST.replace("{DOWNLOAD}", "{t.me: /a.js}"), "t.yaml"))
    assert info["groups"]["web"]["downloads"] == {"t.me": "/a.js"}
    assert info["controls"]["downloads"] == {"control.example": "/big.bin"}
    console = Console(width=120, record=True)
    for part in targets_renderables(info):
        console.print(part)
    text = console.export_text()
    assert "Download objects (throughput probe)" in text
    assert "t.me" in text and "/a.js" in text and "/big.bin" in text
