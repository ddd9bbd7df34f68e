"""Table tests for the verdict rules of netprobe.analysis (hand-built records, no network).

Each case builds the records a run would write for one target (plus healthy controls unless the
case is about vantage health) and checks the verdict a person would read: status, method, layers.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netprobe.analysis import analyse
from tests import recordfactory as rf

TG = "telegram.org"
GOOD = "203.0.113.10"  # inside the header's expected "lab" range
GOOD6 = "2001:db8:100::10"
OTHER = "192.0.2.99"  # not expected, a bogon unless vouched for
DC = "203.0.113.50"


def verdict(records, header=None, target=f"domain:{TG}"):
    analysis = analyse(header or rf.header(), records)
    return analysis.verdicts[target], analysis


def case_dns_nxdomain():
    recs = rf.domain_lookups(TG, None, [GOOD], probe_failure="dns_nxdomain_error")
    return recs + rf.tls_pair(GOOD, TG, sources=[f"control:{rf.CONTROL_RESOLVER}"])


def case_dns_timeout():
    return rf.domain_lookups(TG, None, [GOOD], probe_failure="generic_timeout_error")


def case_dns_bogon():
    return rf.domain_lookups(TG, ["10.10.34.34"], [GOOD])


def case_dns_unexpected_answer_failing_tls():
    # An answer nothing vouches for, whose TLS handshake for the name fails: a block page server.
    recs = rf.domain_lookups(TG, ["8.8.4.4"], ["8.8.8.8"])
    recs += rf.tls_pair(
        "8.8.4.4", TG, target_failure="ssl_invalid_hostname", sources=["probe:system"]
    )
    return recs


def case_dns_injection():
    # The first reply looks fine; a second, different reply to the same query is an injection.
    recs = rf.domain_lookups(TG, [GOOD], [GOOD])
    recs[0]["late_replies"] = [rf.late_reply(["198.18.0.1"])]
    return recs


def case_ip_timeout():
    recs = rf.domain_lookups(TG, [GOOD], [GOOD])
    return recs + rf.tls_pair(
        GOOD,
        TG,
        target_failure="generic_timeout_error",
        target_failed_operation="connect",
        control_failure="generic_timeout_error",
        control_failed_operation="connect",
    )


def case_sni_reset():
    return rf.domain_lookups(TG, [GOOD], [GOOD]) + rf.tls_pair(
        GOOD, TG, target_failure="connection_reset"
    )


def case_sni_control_gets_wrong_name():
    # The control SNI meets a certificate for another name: the server still answered.
    return rf.domain_lookups(TG, [GOOD], [GOOD]) + rf.tls_pair(
        GOOD, TG, target_failure="eof_error", control_failure="ssl_invalid_hostname"
    )


def case_tls_every_sni():
    return rf.domain_lookups(TG, [GOOD], [GOOD]) + rf.tls_pair(
        GOOD, TG, target_failure="connection_reset", control_failure="connection_reset"
    )


def case_mitm():
    return rf.domain_lookups(TG, [GOOD], [GOOD]) + rf.tls_pair(
        GOOD, TG, target_failure="ssl_unknown_authority", control_failure="ssl_unknown_authority"
    )


def case_ipv6_sni():
    recs = rf.domain_lookups(TG, [GOOD6], [GOOD6], qtype="AAAA")
    return recs + rf.tls_pair(GOOD6, TG, target_failure="connection_reset")


def case_ok():
    return rf.domain_ok(TG, GOOD)


def case_ok_via_tls_validation():
    # The probe resolver answers differently from the control (a CDN), but the address holds a
    # valid certificate for the name: genuine, not DNS tampering.
    recs = rf.domain_lookups(TG, ["8.8.4.4"], ["8.8.8.8"])
    recs += rf.tls_pair("8.8.4.4", TG, sources=["probe:system"])
    return recs


def case_down_nxdomain_everywhere():
    return rf.domain_lookups(
        TG, None, None, probe_failure="dns_nxdomain_error", control_failure="dns_nxdomain_error"
    )


def case_down_no_addresses():
    return rf.domain_lookups(TG, None, None, qtype="A") + rf.domain_lookups(
        TG, None, None, qtype="AAAA"
    )


def case_no_control_sni():
    recs = rf.domain_lookups(TG, [GOOD], [GOOD])
    return recs + rf.tls_pair(GOOD, TG, target_failure="connection_reset")[:1]


def case_control_resolver_failed_too():
    return rf.domain_lookups(
        TG, None, None, probe_failure="dns_servfail_error", control_failure="generic_timeout_error"
    )


def case_unchecked_answer():
    # Different answers, no TLS evidence for the probe's address: cannot tell.
    return rf.domain_lookups(TG, ["8.8.4.4"], ["8.8.8.8"])


CASES = [
    # (case, status, method, {layer: status})
    (case_dns_nxdomain, "blocked", "dns", {"dns": "blocked", "tls": "ok"}),
    (case_dns_timeout, "blocked", "dns", {"dns": "blocked", "tls": "n/a"}),
    (case_dns_bogon, "blocked", "dns", {"dns": "blocked"}),
    (case_dns_unexpected_answer_failing_tls, "blocked", "dns", {"dns": "blocked"}),
    (case_dns_injection, "blocked", "dns", {"dns": "blocked"}),
    (case_ip_timeout, "blocked", "ip", {"dns": "ok", "tcp": "blocked", "tls": "n/a"}),
    (case_sni_reset, "blocked", "sni", {"dns": "ok", "tcp": "ok", "tls": "blocked"}),
    (case_sni_control_gets_wrong_name, "blocked", "sni", {"tls": "blocked"}),
    (case_tls_every_sni, "blocked", "tls", {"tcp": "ok", "tls": "blocked"}),
    (case_mitm, "blocked", "mitm", {"tls": "blocked"}),
    (case_ipv6_sni, "blocked", "sni", {"dns": "ok", "tls": "blocked"}),
    (case_ok, "ok", None, {"dns": "ok", "tcp": "ok", "tls": "ok"}),
    (case_ok_via_tls_validation, "ok", None, {"dns": "ok", "tls": "ok"}),
    (case_down_nxdomain_everywhere, "down", None, {"dns": "down"}),
    (case_down_no_addresses, "down", None, {"dns": "down"}),
    (case_no_control_sni, "inconclusive", None, {"dns": "ok", "tls": "inconclusive"}),
    (case_control_resolver_failed_too, "inconclusive", None, {"dns": "inconclusive"}),
    (case_unchecked_answer, "inconclusive", None, {"dns": "inconclusive"}),
]


@pytest.mark.parametrize(
    ("build", "status", "method", "layers"), CASES, ids=[c[0].__name__ for c in CASES]
)
def test_domain_rules(build, status, method, layers):
    result, _ = verdict(rf.healthy_controls() + build())
    assert (result.status, result.method) == (status, method), result.evidence
    for layer, expected in layers.items():
        assert result.layers[layer] == expected, (layer, result.evidence)
    assert result.evidence, "every verdict carries evidence"


def test_dns_evidence_names_failure_and_control_answer():
    result, _ = verdict(rf.healthy_controls() + case_dns_nxdomain())
    assert any("dns_nxdomain_error" in line and GOOD in line for line in result.evidence)
    assert "DNS-only block" in " ".join(result.notes)


def test_expected_range_answer_is_not_a_bogon():
    # 203.0.113.0/24 is a documentation range (a bogon) but the header declares it expected.
    recs = rf.healthy_controls() + rf.domain_lookups(TG, [GOOD], ["203.0.113.11"])
    result, _ = verdict(recs)
    assert result.layers["dns"] == "ok"
    undeclared = rf.header(expected_ranges={}, groups={})
    result, _ = verdict(recs, header=undeclared)
    assert (result.status, result.method) == ("blocked", "dns")


ENDPOINT_CASES = [
    # (failure, controls ok, ipv6 target, status, method)
    ("generic_timeout_error", True, False, "blocked", "ip"),
    ("connection_reset", True, False, "blocked", "ip"),
    ("connection_refused", True, False, "blocked", "ip"),
    (None, True, False, "ok", None),
    ("generic_timeout_error", False, False, "inconclusive", None),
    ("network_unreachable", True, True, "inconclusive", None),  # nothing works over IPv6 here
]


@pytest.mark.parametrize(("failure", "controls", "ipv6", "status", "method"), ENDPOINT_CASES)
def test_endpoint_rules(failure, controls, ipv6, status, method):
    ip = "2001:db8:100::50" if ipv6 else DC
    records = [rf.tcp(ip, 443, failure=failure)]
    if controls:
        records += rf.healthy_controls()
    else:
        records += [
            rf.tcp(
                *rf.CONTROL_ENDPOINT,
                failure="generic_timeout_error",
                group="control",
                role="control",
            )
        ]
    result, _ = verdict(records, target=rf.endpoint_id(ip, 443))
    assert (result.status, result.method) == (status, method), result.evidence


def test_ipv6_endpoint_blocked_when_ipv6_works_elsewhere():
    ip = "2001:db8:100::50"
    records = rf.healthy_controls(ipv6=True) + [rf.tcp(ip, 443, failure="generic_timeout_error")]
    result, analysis = verdict(records, target=rf.endpoint_id(ip, 443))
    assert (result.status, result.method) == ("blocked", "ip")
    assert rf.endpoint_id(ip, 443) == "endpoint:[2001:db8:100::50]:443"


def test_unhealthy_vantage_makes_everything_inconclusive():
    dead = [
        rf.dns(
            rf.CONTROL_DOMAIN,
            None,
            failure="generic_timeout_error",
            resolver=rf.CONTROL_RESOLVER,
            resolver_role="control",
            group="control",
            role="control",
        ),
        rf.tcp(
            *rf.CONTROL_ENDPOINT, failure="generic_timeout_error", group="control", role="control"
        ),
    ]
    # A bogon answer needs no control to look like tampering, but a dead vantage point decides.
    lookups = rf.domain_lookups(TG, ["10.10.34.34"], None, control_failure="generic_timeout_error")
    result, analysis = verdict(dead + lookups)
    assert result.status == "inconclusive" and result.scores["dns"] is None
    assert any("vantage unhealthy" in note for note in result.notes)
    assert analysis.vantage["healthy"] is False
    assert analysis.vantage["control_resolver_ok"] is False


def test_run_without_controls_is_inconclusive():
    # Probe resolver and TLS only: no control resolver, no control target.
    result, analysis = verdict([rf.dns(TG, [GOOD]), *rf.tls_pair(GOOD, TG)])
    assert result.status == "inconclusive"
    assert "no control measurements" in " ".join(analysis.vantage["notes"])


REPEAT_CASES = [
    # (failures per attempt, status, note expected, score)
    ([None, "generic_timeout_error", None], "ok", "1/3 attempts failed", 1 / 3),
    (
        ["generic_timeout_error", "generic_timeout_error", None],
        "blocked",
        "1/3 attempts worked",
        2 / 3,
    ),
    (["generic_timeout_error"] * 3, "blocked", None, 1.0),
    ([None, None, None], "ok", None, 0.0),
    (["generic_timeout_error", None], "ok", "1/2 attempts failed", 0.5),
]


@pytest.mark.parametrize(("failures", "status", "note", "score"), REPEAT_CASES)
def test_repeats_need_a_clear_majority(failures, status, note, score):
    records = rf.healthy_controls(attempts=len(failures))
    records += [rf.tcp(DC, 443, failure=f, attempt=i) for i, f in enumerate(failures)]
    result, _ = verdict(records, target=rf.endpoint_id(DC, 443))
    assert result.status == status
    assert result.scores["tcp"] == pytest.approx(score, abs=1e-3)
    if note:
        assert any(note in n for n in result.notes), result.notes


def test_slow_but_working_is_ok_with_note():
    records = rf.healthy_controls() + rf.domain_lookups(TG, [GOOD], [GOOD])
    records += rf.tls_pair(GOOD, TG, seconds=3.0)
    result, _ = verdict(records)
    assert result.status == "ok"
    assert any(n.startswith("slow:") for n in result.notes)
    fast, _ = verdict(rf.healthy_controls() + case_ok())
    assert not any(n.startswith("slow:") for n in fast.notes)


def test_bogon_address_does_not_count_as_tls_evidence():
    # TLS failing on a poisoned address is DNS evidence, not an SNI block on the real server.
    records = rf.healthy_controls() + rf.domain_lookups(TG, ["10.10.34.34"], [GOOD])
    records += rf.tls_pair(
        "10.10.34.34", TG, target_failure="connection_reset", sources=["probe:system"]
    )
    records += rf.tls_pair(GOOD, TG, sources=[f"control:{rf.CONTROL_RESOLVER}"])
    result, _ = verdict(records)
    assert (result.status, result.method) == ("blocked", "dns")
    assert result.layers["tls"] == "ok"


def test_one_working_address_makes_the_target_reachable():
    records = rf.healthy_controls() + rf.domain_lookups(
        TG, [GOOD, "203.0.113.11"], [GOOD, "203.0.113.11"]
    )
    records += rf.tls_pair(GOOD, TG, target_failure="connection_reset")
    records += rf.tls_pair("203.0.113.11", TG)
    result, _ = verdict(records)
    assert result.status == "ok"


def test_group_sentence_for_dc_endpoints():
    records = rf.healthy_controls()
    ips = [f"203.0.113.{50 + i}" for i in range(6)]
    for ip in ips:
        records += [
            rf.tcp(ip, 443, failure="generic_timeout_error"),
            rf.tcp(ip, 80, failure="generic_timeout_error"),
            rf.tcp(ip, 5222),
        ]
    analysis = analyse(rf.header(), records)
    dc = next(g for g in analysis.groups if g.group == "dc")
    assert (dc.status, dc.method) == ("blocked", "ip")
    assert dc.line == "DC endpoints: blocked by ip (6/6 time out on 80 and 443, 5222 open)"


def test_group_sentence_for_names_and_controls():
    records = rf.healthy_controls() + case_sni_reset() + rf.domain_ok("t.me", "203.0.113.20")
    analysis = analyse(rf.header(), records)
    lines = {g.group: g.line for g in analysis.groups}
    assert lines["web"] == "Web names: blocked by sni (1/2 blocked: 1 by sni (reset); ok: t.me)"
    assert lines["control"] == "Controls: ok (2/2 reachable)"
    assert [g.group for g in analysis.groups] == ["web", "control"]  # header order


def test_analysis_is_deterministic_and_order_independent():
    records = rf.healthy_controls() + case_sni_reset() + case_ip_timeout()
    first = analyse(rf.header(), records).to_dict()
    again = analyse(rf.header(), list(reversed(records))).to_dict()
    assert first == again
    assert [v["target_id"] for v in first["verdicts"]] == sorted(
        v["target_id"] for v in first["verdicts"]
    )


def test_to_dict_shape():
    data = analyse(rf.header(), rf.healthy_controls() + case_ok()).to_dict()
    assert set(data) == {"run", "vantage", "counts", "groups", "verdicts"}
    assert data["run"]["vantage"] == "lab-1"
    assert set(data["verdicts"][0]) >= {
        "target_id",
        "status",
        "method",
        "layers",
        "scores",
        "evidence",
        "notes",
    }


def _decisions(analysis) -> dict:
    return {
        target_id: (v.status, v.method, v.layers, v.scores, v.role)
        for target_id, v in analysis.verdicts.items()
    }


def _recorded_runs() -> list[list[dict]]:
    # Golden files are real lab runs; each holds every kind of record the probes write.
    golden = Path(__file__).resolve().parent / "golden"
    runs = []
    for path in sorted(golden.glob("*/*.jsonl")):
        runs.append([json.loads(line) for line in path.read_text().splitlines() if line])
    return runs


@pytest.mark.parametrize(
    "records",
    [rf.healthy_controls() + case() for case, *_ in CASES]
    + [
        rf.healthy_controls()
        + rf.domain_lookups(TG, [GOOD], [GOOD])
        + rf.tls_pair(GOOD, TG, seconds=3.0)
    ]
    + [[r for r in run if r.get("type") in ("dns", "tcp", "tls")] for run in _recorded_runs()],
)
def test_timeline_mode_decides_exactly_like_the_full_analysis(records):
    # The timeline calls analyse(detail=False) on thousands of files; it must only skip the words.
    full = analyse(rf.header(), records)
    lean = analyse(rf.header(), records, detail=False)
    assert _decisions(lean) == _decisions(full)
    assert lean.vantage["healthy"] == full.vantage["healthy"]
    assert all(not v.evidence and not v.notes for v in lean.verdicts.values())
    assert lean.groups == []
