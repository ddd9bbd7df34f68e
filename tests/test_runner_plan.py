"""Pure parts of the run: the planner (jobs, steps, addresses, SNI pairs), file names, summaries."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from netprobe.model.records import measurement
from netprobe.model.resolvers import parse_resolver
from netprobe.run.executor import file_stem
from netprobe.run.planner import (
    DnsQuery,
    RunPlan,
    TcpConnect,
    TlsHandshake,
    control_sni,
    select_addresses,
    sni_pairs,
)
from netprobe.run.tally import RunTally


def dns(role: str, resolver: str, *ips: str, qtype: str = "A") -> dict:
    key = "ipv4" if qtype == "A" else "ipv6"
    return measurement(
        "dns",
        target_id="domain:t.me",
        group="web",
        role="target",
        attempt=0,
        t0=0.0,
        t=0.1,
        failure=None if ips else "dns_nxdomain_error",
        failed_operation="resolve",
        hostname="t.me",
        query_type=qtype,
        resolver_address=resolver,
        resolver_role=role,
        answers=[{"answer_type": qtype, key: ip, "ttl": 60} for ip in ips],
    )


@pytest.mark.parametrize(
    ("records", "limit", "expected"),
    [
        # The same address from both views is probed once and names both sources.
        (
            [
                dns("control", "https://c/dns-query", "203.0.113.1"),
                dns("probe", "system", "203.0.113.1"),
            ],
            4,
            [("203.0.113.1", ["control:https://c/dns-query", "probe:system"])],
        ),
        # A probe resolver's odd answer (a blockpage) is kept beside the control answer.
        (
            [
                dns("control", "https://c/dns-query", "203.0.113.1", "203.0.113.2", "203.0.113.3"),
                dns("probe", "system", "192.0.2.200"),
            ],
            2,
            [
                ("203.0.113.1", ["control:https://c/dns-query"]),
                ("192.0.2.200", ["probe:system"]),
            ],
        ),
        # NXDOMAIN at the probe resolver: only control answers remain.
        (
            [dns("probe", "system"), dns("control", "https://c/dns-query", "203.0.113.9")],
            4,
            [("203.0.113.9", ["control:https://c/dns-query"])],
        ),
        # IPv6 answers are probed too.
        (
            [dns("control", "https://c/dns-query", "2001:db8::1", qtype="AAAA")],
            4,
            [("2001:db8::1", ["control:https://c/dns-query"])],
        ),
        ([], 4, []),
    ],
)
def test_select_addresses(records: list[dict], limit: int, expected: list) -> None:
    assert select_addresses(records, limit) == expected


def test_file_stem_is_utc_time_and_safe_vantage() -> None:
    moment = datetime(2025, 5, 26, 1, 2, 3, tzinfo=UTC)
    assert file_stem(moment, "hanoi-vnpt-1") == "20250526T010203Z_hanoi-vnpt-1"
    assert file_stem(moment, "a/b c") == "20250526T010203Z_a-b-c"


def tcp(target: str, role: str, failure: str | None) -> dict:
    return measurement(
        "tcp",
        target_id=target,
        group="control" if role == "control" else "dc",
        role=role,
        attempt=0,
        t0=0.0,
        t=1.0,
        failure=failure,
        failed_operation="connect",
        ip="192.0.2.1",
        port=443,
    )


def test_summary_says_why_an_offline_run_cannot_conclude() -> None:
    summary = RunTally()
    summary.add(tcp("endpoint:192.0.2.1:443", "control", "network_unreachable"))
    summary.add(tcp("endpoint:198.51.100.1:443", "target", "network_unreachable"))
    problem = summary.vantage_problem()
    assert problem is not None
    assert "control endpoints all failed (network_unreachable x1)" in problem
    assert "no control resolvers were probed" in problem


def test_summary_layers_and_healthy_controls() -> None:
    summary = RunTally()
    summary.add(tcp("endpoint:192.0.2.1:443", "control", None))
    summary.add(tcp("endpoint:198.51.100.1:443", "target", "generic_timeout_error"))
    summary.add(tcp("endpoint:198.51.100.1:443", "target", None))
    assert summary.vantage_problem() is None
    state = summary.targets["endpoint:198.51.100.1:443"].layers["tcp"].state()
    assert state == "ok 1/2"
    assert summary.to_record_fields()["failures"] == {"generic_timeout_error": 1}


def test_progress_total_matches_the_jobs_without_iterating_huge_ranges() -> None:
    from netprobe.run.planner import count_jobs
    from netprobe.targets.lists import bundled_targets_path, load_targets, parse_targets

    bundled = load_targets(bundled_targets_path())
    jobs = len(bundled.domains()) + sum(1 for _ in bundled.iter_endpoints())
    assert count_jobs([bundled], repeat=2) == 2 * jobs
    huge = parse_targets(
        "groups:\n  r:\n    ranges:\n      - {cidr: 198.18.0.0/15, ports: [443, 80], sample: all}\n",
        "huge.yaml",
    )
    assert count_jobs([huge], repeat=1) == 2 * (2**17 - 2)


# -- the pure planner: jobs, steps, address selection, SNI pairs --------------------------------

SMALL_LIST = """\
name: small
groups:
  web:
    domains: [a.test]
    ports: [443, 8443]
  dc:
    endpoints:
      - 192.0.2.1:443
      - {address: 192.0.2.2:443, sni: web.a.test}
  r:
    ranges:
      - {cidr: 198.51.100.0/29, ports: [443, 80], sample: 2}
controls:
  domains: [control.test]
  endpoints: [203.0.113.1:443]
  sni: control.test
"""


def small_plan(repeat: int = 1, limit: int = 4, list_text: str = SMALL_LIST) -> RunPlan:
    from netprobe.targets.lists import parse_targets

    return RunPlan(
        target_lists=[parse_targets(list_text, "small.yaml")],
        repeat=repeat,
        probe_resolvers=[parse_resolver("udp://192.0.2.53"), parse_resolver("tcp://192.0.2.54")],
        control_resolvers=[parse_resolver("https://198.51.100.53/dns-query")],
        max_addresses_per_domain=limit,
        control_sni="control.test",
    )


def test_jobs_walk_each_round_domains_then_endpoints_then_controls() -> None:
    plan = small_plan(repeat=2)
    one_round = [
        "domain:a.test",
        "domain:control.test",
        "endpoint:192.0.2.1:443",
        "endpoint:192.0.2.2:443",
        # the /29 sampled twice, each sample on both ports of the range
        "endpoint:198.51.100.2:443",
        "endpoint:198.51.100.2:80",
        "endpoint:198.51.100.4:443",
        "endpoint:198.51.100.4:80",
        "endpoint:203.0.113.1:443",
    ]
    jobs = [(job.target_id, job.attempt) for job in plan.jobs()]
    assert jobs == [(t, 0) for t in one_round] + [(t, 1) for t in one_round]
    assert plan.count() == len(jobs) == 18
    roles = {job.target_id: (job.group, job.role) for job in plan.jobs()}
    assert roles["domain:control.test"] == ("control", "control")
    assert roles["endpoint:198.51.100.4:80"] == ("r", "target")


def test_a_domain_starts_with_dns_probe_resolvers_first_a_then_aaaa() -> None:
    plan = small_plan()
    job = next(plan.jobs())
    steps = plan.first_steps(job)
    assert all(isinstance(step, DnsQuery) for step in steps)
    assert [(s.resolver.address, s.resolver_role, s.query_type) for s in steps] == [
        ("udp://192.0.2.53", "probe", "A"),
        ("udp://192.0.2.53", "probe", "AAAA"),
        ("tcp://192.0.2.54", "probe", "A"),
        ("tcp://192.0.2.54", "probe", "AAAA"),
        ("https://198.51.100.53/dns-query", "control", "A"),
        ("https://198.51.100.53/dns-query", "control", "AAAA"),
    ]
    assert {s.hostname for s in steps} == {"a.test"}


def test_a_domain_follows_up_with_tls_per_address_port_and_sni() -> None:
    plan = small_plan(limit=2)
    job = next(plan.jobs())
    records = [
        dns("probe", "udp://192.0.2.53", "192.0.2.200"),
        dns("probe", "udp://192.0.2.53", qtype="AAAA"),
        dns("control", "https://198.51.100.53/dns-query", "203.0.113.7", "203.0.113.8"),
    ]
    steps = plan.follow_up_steps(job, records)
    assert steps == [
        TlsHandshake(ip, port, sni, role, "a.test", (source,))
        for ip, source in (
            ("203.0.113.7", "control:https://198.51.100.53/dns-query"),
            ("192.0.2.200", "probe:udp://192.0.2.53"),
        )
        for port in (443, 8443)
        for sni, role in (("a.test", "target"), ("control.test", "control"))
    ]
    assert plan.follow_up_steps(job, [dns("probe", "udp://192.0.2.53")]) == []  # NXDOMAIN


def test_the_control_domain_is_not_paired_with_itself() -> None:
    plan = small_plan()
    control_job = [job for job in plan.jobs() if job.role == "control"][0]
    records = [dns("control", "https://198.51.100.53/dns-query", "203.0.113.9")]
    steps = plan.follow_up_steps(control_job, records)
    assert [(s.server_name, s.sni_role) for s in steps] == [("control.test", "target")]


def test_an_endpoint_gets_tcp_then_tls_only_when_it_names_an_sni() -> None:
    plan = small_plan()
    by_id = {job.target_id: job for job in plan.jobs()}
    assert plan.first_steps(by_id["endpoint:192.0.2.1:443"]) == [TcpConnect("192.0.2.1", 443)]
    with_sni = by_id["endpoint:192.0.2.2:443"]
    assert plan.first_steps(with_sni) == [
        TcpConnect("192.0.2.2", 443),
        TlsHandshake("192.0.2.2", 443, "web.a.test", "target", None, ("endpoint",)),
        TlsHandshake("192.0.2.2", 443, "control.test", "control", None, ("endpoint",)),
    ]
    assert list(plan.follow_up_steps(with_sni, [])) == []


@pytest.mark.parametrize(
    ("target", "control", "expected"),
    [
        ("t.me", "example.com", [("t.me", "target"), ("example.com", "control")]),
        ("Example.COM", "example.com", [("Example.COM", "target")]),  # same name: no pair
        ("t.me", None, [("t.me", "target")]),
    ],
)
def test_sni_pairs(target: str, control: str | None, expected: list) -> None:
    assert sni_pairs(target, control) == expected


def test_the_control_sni_is_the_first_list_that_sets_one() -> None:
    from netprobe.targets.lists import parse_targets

    bare = parse_targets("groups:\n  g:\n    domains: [a.test]\n", "bare.yaml")
    first = parse_targets(SMALL_LIST, "small.yaml")
    other = parse_targets(SMALL_LIST.replace("sni: control.test", "sni: other.test"), "o.yaml")
    assert control_sni([bare, first, other]) == "control.test"
    assert control_sni([bare]) is None
