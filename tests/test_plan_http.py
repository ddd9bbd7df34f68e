"""The HTTP steps of a run's plan (netprobe/run/plan_http.py), and the executor running them
with fake probes: which addresses get a `GET /`, with which labels, and what a run without an
http probe does."""

from __future__ import annotations

import asyncio

from netprobe.model.records import measurement
from netprobe.model.resolvers import parse_resolver
from netprobe.options import RunOptions
from netprobe.probes import ProbeContext, Probes, ProbeSettings
from netprobe.run.plan_http import HttpGet, http_gets
from netprobe.run.planner import Job, RunPlan, needs_confirmation
from netprobe.targets.lists import parse_targets
from tests.test_executor import FakeNetwork, FakeSink, run_targets

LIST = """\
groups:
  web: {domains: [a.test]}
controls:
  domains: [control.test]
  sni: control.test
"""
PROBE = "udp://192.0.2.53"
CONTROL = "https://192.0.2.54/dns-query"


def dns(role: str, resolver: str, *ips: str, silent: bool = False) -> dict:
    answers = [
        {"answer_type": "AAAA", "ipv6": ip, "ttl": 1}
        if ":" in ip
        else {"answer_type": "A", "ipv4": ip, "ttl": 1}
        for ip in ips
    ]
    return {
        "type": "dns",
        "resolver_role": "silent" if silent else role,
        "resolver_address": resolver,
        "answers": answers,
    }


def test_every_address_found_is_fetched_once_control_answers_first() -> None:
    records = [
        dns("probe", PROBE, "198.18.0.9", "203.0.113.1"),
        dns("control", CONTROL, "203.0.113.1", "203.0.113.2"),
        dns("probe", PROBE, "2001:db8::1"),
        dns("silent", "udp://192.0.2.99:53", "198.18.0.66", silent=True),  # never fetched
    ]
    gets = http_gets("a.test", records, limit=4)
    assert [(g.ip, g.port) for g in gets] == [
        ("203.0.113.1", 80),
        ("203.0.113.2", 80),
        ("198.18.0.9", 80),
        ("2001:db8::1", 80),
    ]
    assert gets[0].address_sources == (f"probe:{PROBE}", f"control:{CONTROL}")
    assert gets[1].address_sources == (f"control:{CONTROL}",)
    assert {g.hostname for g in gets} == {"a.test"}


def test_each_resolver_role_gives_at_most_limit_addresses() -> None:
    records = [
        dns("probe", PROBE, *(f"198.18.0.{i}" for i in range(1, 9))),
        dns("control", CONTROL, *(f"203.0.113.{i}" for i in range(1, 9))),
    ]
    gets = http_gets("a.test", records, limit=2)
    assert [g.ip for g in gets] == ["203.0.113.1", "203.0.113.2", "198.18.0.1", "198.18.0.2"]


def test_loopback_and_other_local_answers_are_never_fetched() -> None:
    records = [dns("probe", PROBE, "127.0.0.1", "::1", "0.0.0.0", "169.254.1.1", "fe80::1")]
    assert http_gets("a.test", records, limit=8) == []
    # A private address may be an ISP's blockpage (Iran's 10.10.34.34): that one is fetched.
    assert [g.ip for g in http_gets("a.test", [dns("probe", PROBE, "10.10.34.34")], 8)] == [
        "10.10.34.34"
    ]


def _plan(http: bool) -> RunPlan:
    return RunPlan(
        target_lists=[parse_targets(LIST, "l.yaml")],
        repeat=1,
        probe_resolvers=[parse_resolver(PROBE)],
        control_resolvers=[parse_resolver(CONTROL)],
        max_addresses_per_domain=4,
        control_sni="control.test",
        http=http,
    )


def test_domain_jobs_get_http_steps_only_when_the_run_has_an_http_probe() -> None:
    records = [dns("probe", PROBE, "203.0.113.1"), dns("control", CONTROL, "203.0.113.1")]
    for plan in (_plan(True), _plan(False)):
        for job in [*plan.target_jobs(), *plan.control_jobs(0)]:
            gets = [s for s in plan.follow_up_steps(job, records) if isinstance(s, HttpGet)]
            assert len(gets) == (1 if plan.http else 0), (job.target_id, plan.http)


def test_http_failures_are_not_re_probed() -> None:
    failed = measurement(
        "http", target_id="domain:a.test", group="web", role="target", attempt=0,
        t0=0, t=1, failure="connection_reset", failed_operation="http_round_trip",
    )  # fmt: skip
    assert not needs_confirmation(failed)


def test_the_step_calls_the_http_probe_with_the_runs_settings() -> None:
    seen: dict = {}

    async def fake_http(ctx, ip, hostname, **kwargs):
        seen.update(ip=ip, hostname=hostname, **kwargs)
        return {}

    network = FakeNetwork()
    probes = Probes(dns=network.dns, tcp=network.tcp, tls=network.tls, http=fake_http)
    settings = ProbeSettings(timeout=3.0, udp_wait=0, ssl_context=None, http_body_limit=0)  # type: ignore[arg-type]
    ctx = ProbeContext("domain:a.test", "web", "target", 0, 0.0)
    step = HttpGet("203.0.113.1", "a.test", ("probe:system",))
    asyncio.run(step.call(probes, ctx, settings))  # type: ignore[arg-type]
    assert seen == {
        "ip": "203.0.113.1",
        "hostname": "a.test",
        "port": 80,
        "timeout": 3.0,
        "body_limit": 0,
        "address_sources": ("probe:system",),
    }
    assert isinstance(Job(parse_targets(LIST, "l.yaml").target_domains()[0], 0), Job)


def test_a_run_with_an_http_probe_writes_one_http_record_per_address_and_domain() -> None:
    network, sink = FakeNetwork(), FakeSink()

    async def fake_http(ctx, ip, hostname, *, port, timeout, body_limit, address_sources):
        return await network._probe(
            "http", ctx, ip=ip, port=port, hostname=hostname, address_sources=list(address_sources)
        )

    probes = Probes(dns=network.dns, tcp=network.tcp, tls=network.tls, http=fake_http)
    options = RunOptions(resolvers=[PROBE], control_resolvers=[CONTROL], confirm=0)
    run_targets(
        [parse_targets(LIST, "l.yaml")],
        options,
        sink_factory=lambda out_dir, stem: sink,
        probes=probes,
    )
    http = [r for r in sink.records if r["type"] == "http"]
    # a.test once; control.test in the start and the end control rounds; one address each
    # (the fake resolvers agree on it).
    assert sorted((r["target_id"], r.get("control_round")) for r in http) == [
        ("domain:a.test", None),
        ("domain:control.test", 0),
        ("domain:control.test", 1),
    ]
    assert all(r["port"] == 80 and r["hostname"] == r["target_id"][7:] for r in http)
    assert sink.header is not None and sink.header["options"]["http_body_limit"] == 4096
