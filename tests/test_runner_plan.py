"""Pure parts of the run: the planner (jobs, steps, addresses, SNI pairs), file names, summaries."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from netprobe.model.records import measurement
from netprobe.model.resolvers import parse_resolver
from netprobe.run.executor import file_stem
from netprobe.run.planner import (
    SILENT_TIMEOUT,
    Chain,
    DnsQuery,
    RunPlan,
    TcpConnect,
    TlsHandshake,
    control_sni,
    needs_confirmation,
    select_addresses,
    silent_resolvers,
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
    # Only one kind of control was probed: that is no proof the vantage point is offline.
    assert "No lookup was asked of a control resolver" in problem and "offline" not in problem


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
    targets = len(bundled.target_domains()) + sum(1 for _ in bundled.target_endpoints())
    controls = len(bundled.controls.domains) + len(bundled.controls.endpoints)
    # targets `repeat` times; the controls at the start and at the end, whatever `repeat` is
    assert count_jobs([bundled], repeat=3) == 3 * targets + 2 * controls
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


def small_plan(
    repeat: int = 1, limit: int = 4, list_text: str = SMALL_LIST, residual_pause: float = 3.0
) -> RunPlan:
    from netprobe.targets.lists import parse_targets

    return RunPlan(
        target_lists=[parse_targets(list_text, "small.yaml")],
        repeat=repeat,
        probe_resolvers=[parse_resolver("udp://192.0.2.53"), parse_resolver("tcp://192.0.2.54")],
        control_resolvers=[parse_resolver("https://198.51.100.53/dns-query")],
        max_addresses_per_domain=limit,
        control_sni="control.test",
        residual_pause=residual_pause,
    )


def pair(
    ip: str, port: int, target: str, hostname: str | None, sources: tuple[str, ...], pause: float
) -> Chain:
    """The TLS chain the planner makes for one ip:port (control SNI `control.test`)."""
    before = TlsHandshake(ip, port, "control.test", "control", hostname, sources, "before")
    after = TlsHandshake(ip, port, "control.test", "control", hostname, sources, "after", pause)
    target_step = TlsHandshake(ip, port, target, "target", hostname, sources, "target")
    return Chain((before, target_step), after, pause)


def test_controls_are_a_round_of_their_own_and_targets_walk_each_attempt() -> None:
    plan = small_plan(repeat=2)
    one_round = [
        "domain:a.test",
        "endpoint:192.0.2.1:443",
        "endpoint:192.0.2.2:443",
        # the /29 sampled twice, each sample on both ports of the range
        "endpoint:198.51.100.2:443",
        "endpoint:198.51.100.2:80",
        "endpoint:198.51.100.4:443",
        "endpoint:198.51.100.4:80",
    ]
    jobs = [(job.target_id, job.attempt, job.control_round) for job in plan.target_jobs()]
    assert jobs == [(t, 0, None) for t in one_round] + [(t, 1, None) for t in one_round]
    controls = [(j.target_id, j.attempt, j.control_round) for j in plan.control_jobs(3)]
    assert controls == [("domain:control.test", 3, 3), ("endpoint:203.0.113.1:443", 3, 3)]
    # progress counts the targets `repeat` times and the controls twice (start and end rounds)
    assert plan.count() == len(jobs) + 2 * len(controls) == 18
    roles = {job.target_id: (job.group, job.role) for job in plan.control_jobs(0)}
    assert roles["domain:control.test"] == ("control", "control")
    assert {job.role for job in plan.target_jobs()} == {"target"}
    assert next(plan.control_jobs(2)).record_fields() == (("control_round", 2),)
    assert next(plan.target_jobs()).record_fields() == ()


def test_a_domain_starts_with_dns_probe_resolvers_first_a_then_aaaa_then_silent() -> None:
    plan = small_plan()
    job = next(plan.target_jobs())
    steps = plan.first_steps(job)
    assert all(isinstance(step, DnsQuery) for step in steps)
    assert [(s.resolver.address, s.resolver_role, s.query_type) for s in steps] == [
        ("udp://192.0.2.53", "probe", "A"),
        ("udp://192.0.2.53", "probe", "AAAA"),
        ("tcp://192.0.2.54", "probe", "A"),
        ("tcp://192.0.2.54", "probe", "AAAA"),
        ("https://198.51.100.53/dns-query", "control", "A"),
        ("https://198.51.100.53/dns-query", "control", "AAAA"),
        # the injection probe: the list's explicit endpoint addresses run no DNS server
        ("udp://192.0.2.1:53", "silent", "A"),
        ("udp://192.0.2.2:53", "silent", "A"),
    ]
    assert {s.hostname for s in steps} == {"a.test"}
    assert [s.max_timeout for s in steps] == [None] * 6 + [SILENT_TIMEOUT] * 2
    # a control domain gets no injection probe
    control_steps = plan.first_steps(next(plan.control_jobs(0)))
    assert {s.resolver_role for s in control_steps if isinstance(s, DnsQuery)} == {
        "probe",
        "control",
    }


def test_injection_queries_go_to_the_lists_silent_addresses() -> None:
    from netprobe.targets.lists import parse_targets

    text = SMALL_LIST + '  silent_addresses: [198.51.100.99, "2001:db8::99"]\n'
    plan = small_plan(list_text=text)
    silent = [
        (s.hostname, s.resolver.address, s.resolver.engine, s.resolver.ip, s.resolver.port)
        for s in plan.first_steps(next(plan.target_jobs()))
        if isinstance(s, DnsQuery) and s.resolver_role == "silent"
    ]
    assert silent == [
        ("a.test", "udp://198.51.100.99:53", "udp", "198.51.100.99", 53),
        ("a.test", "udp://[2001:db8::99]:53", "udp", "2001:db8::99", 53),
    ]
    many = parse_targets(
        "groups:\n  dc:\n    endpoints: [192.0.2.7:443, '192.0.2.7:80', 192.0.2.8:443,"
        " 192.0.2.9:443]\n  web: {domains: [a.test, b.test]}\n",
        "many.yaml",
    )
    assert [r.address for r in silent_resolvers(many)] == [
        "udp://192.0.2.7:53",
        "udp://192.0.2.8:53",
    ]


def test_the_timeout_of_a_capped_query_is_the_smaller_one() -> None:
    seen: dict[str, float] = {}

    class Probes:
        def dns(self, ctx, hostname, query_type, resolver, *, timeout, **settings):
            seen[resolver.address] = timeout

    from netprobe.probes import ProbeSettings

    for run_timeout in (5.0, 1.0):
        settings = ProbeSettings(timeout=run_timeout, udp_wait=0.5, ssl_context=None)  # type: ignore[arg-type]
        DnsQuery("a.test", "A", parse_resolver("udp://192.0.2.9:53"), "silent", 2.0).call(
            Probes(),
            None,
            settings,  # type: ignore[arg-type]
        )
        DnsQuery("a.test", "A", parse_resolver("udp://192.0.2.53"), "probe").call(
            Probes(),
            None,
            settings,  # type: ignore[arg-type]
        )
        assert seen == {
            "udp://192.0.2.9:53": min(run_timeout, 2.0),
            "udp://192.0.2.53": run_timeout,
        }


def test_a_domain_follows_up_with_a_tls_chain_per_address_and_port() -> None:
    plan = small_plan(limit=2)
    job = next(plan.target_jobs())
    records = [
        dns("probe", "udp://192.0.2.53", "192.0.2.200"),
        dns("probe", "udp://192.0.2.53", qtype="AAAA"),
        dns("control", "https://198.51.100.53/dns-query", "203.0.113.7", "203.0.113.8"),
        # an injected reply from a silent address is evidence, never an address to try
        dns("silent", "udp://192.0.2.1:53", "192.0.2.250"),
    ]
    steps = plan.follow_up_steps(job, records)
    assert steps == [
        pair(ip, port, "a.test", "a.test", (source,), 3.0)
        for ip, source in (
            ("203.0.113.7", "control:https://198.51.100.53/dns-query"),
            ("192.0.2.200", "probe:udp://192.0.2.53"),
        )
        for port in (443, 8443)
    ]
    assert plan.follow_up_steps(job, [dns("probe", "udp://192.0.2.53")]) == []  # NXDOMAIN


def test_a_tls_chain_is_control_sni_before_target_then_after_a_failure() -> None:
    chain = small_plan(residual_pause=2.5).tls_chain("192.0.2.9", 443, "t.me", None, ("endpoint",))
    assert isinstance(chain, Chain)
    assert [(s.server_name, s.sni_role, s.sequence) for s in chain.steps] == [
        ("control.test", "control", "before"),
        ("t.me", "target", "target"),
    ]
    assert chain.if_failed is not None and chain.pause == 2.5
    assert (chain.if_failed.server_name, chain.if_failed.sequence) == ("control.test", "after")
    assert chain.if_failed.record_fields() == (("sequence", "after"), ("pause", 2.5))
    assert chain.steps[0].record_fields() == (("sequence", "before"),)
    # residual_pause 0: no `after` handshake
    no_after = small_plan(residual_pause=0).tls_chain("192.0.2.9", 443, "t.me", None, ())
    assert isinstance(no_after, Chain) and no_after.if_failed is None
    assert [s.sequence for s in no_after.steps] == ["before", "target"]


def test_the_control_domain_is_not_paired_with_itself() -> None:
    plan = small_plan()
    control_job = next(plan.control_jobs(0))
    records = [dns("control", "https://198.51.100.53/dns-query", "203.0.113.9")]
    steps = plan.follow_up_steps(control_job, records)
    assert steps == [
        TlsHandshake(
            "203.0.113.9",
            443,
            "control.test",
            "target",
            "control.test",
            ("control:https://198.51.100.53/dns-query",),
        )
    ]
    assert steps[0].record_fields() == (("sequence", "target"),)  # alone, it is the target SNI


def test_an_endpoint_gets_tcp_and_a_tls_chain_only_when_it_names_an_sni() -> None:
    plan = small_plan()
    by_id = {job.target_id: job for job in plan.target_jobs()}
    assert plan.first_steps(by_id["endpoint:192.0.2.1:443"]) == [TcpConnect("192.0.2.1", 443)]
    with_sni = by_id["endpoint:192.0.2.2:443"]
    assert plan.first_steps(with_sni) == [
        TcpConnect("192.0.2.2", 443),
        pair("192.0.2.2", 443, "web.a.test", None, ("endpoint",), 3.0),
    ]
    assert list(plan.follow_up_steps(with_sni, [])) == []


def failed(**fields: object) -> dict:
    record = {"type": "tcp", "role": "target", "failure": "generic_timeout_error", **fields}
    return {key: value for key, value in record.items() if value is not None}


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (failed(), True),
        (failed(type="dns", query_type="A", resolver_role="probe"), True),
        (failed(type="dns", query_type="A", resolver_role="control"), True),
        (failed(type="dns", query_type="A", failure="dns_no_answer"), True),  # an empty A: a sign
        (failed(type="tls", sni_role="target", sequence="target"), True),
        (failed(failure=None), False),  # successes are never repeated
        (failed(role="control"), False),  # control targets are repeated by their rounds
        (failed(confirmation=1), False),  # a confirmation is not confirmed again
        (failed(type="dns", query_type="AAAA", failure="dns_no_answer"), False),  # no IPv6: normal
        (failed(type="dns", query_type="A", resolver_role="silent"), False),  # the expected case
        (failed(type="tls", sni_role="control", sequence="before"), False),
        (failed(type="tls", sni_role="control", sequence="after"), False),
    ],
)
def test_which_records_need_confirmation(record: dict, expected: bool) -> None:
    assert needs_confirmation(record) is expected


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
