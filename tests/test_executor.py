"""The executor with fake probes: concurrency bound, deadline, stop request, streaming, one record
per planned probe. No sockets, no namespaces: the fakes only sleep and build records."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from netprobe.probes import ProbeContext, Probes
from netprobe.run.executor import RunOptions, RunResult, StopRequest, run_targets
from netprobe.run.planner import DnsQuery, RunPlan, Step, TcpConnect, TlsHandshake
from netprobe.targets.lists import TargetList, parse_targets

TARGETS = """\
name: fake
groups:
  web:
    domains: [a.test, bb.test]
    ports: [443, 8443]
  dc:
    endpoints:
      - 192.0.2.1:443
      - {address: 192.0.2.2:443, sni: web.a.test}
  r:
    ranges:
      - {cidr: 198.51.100.0/28, ports: [443, 80], sample: 5}
controls:
  domains: [control.test]
  endpoints: [203.0.113.1:443]
  sni: control.test
"""


def endpoints_list(count: int) -> TargetList:
    lines = "".join(f"      - 192.0.2.{i + 1}:443\n" for i in range(count))
    return parse_targets(f"name: many\ngroups:\n  dc:\n    endpoints:\n{lines}", "many.yaml")


def octet(ctx: ProbeContext) -> int:
    """The last octet of an `endpoint:192.0.2.N:443` target."""
    return int(ctx.target_id.split(":")[1].rsplit(".", 1)[1])


def answer_for(hostname: str, role: str) -> str:
    """The fake DNS answer: the probe resolver differs from the control for `bb.test`."""
    last = len(hostname) + (100 if role == "probe" and hostname == "bb.test" else 0)
    return f"203.0.113.{last}"


class FakeNetwork:
    """Fake probes: each call sleeps `delay(kind, ctx)` seconds, then returns a success record."""

    def __init__(self, delay: Callable[[str, ProbeContext], float] = lambda kind, ctx: 0.001):
        self.delay = delay
        self.in_flight = 0
        self.max_in_flight = 0
        self.finished: list[tuple[float, dict[str, Any]]] = []  # (monotonic time, record)

    def probes(self) -> Probes:
        return Probes(dns=self.dns, tcp=self.tcp, tls=self.tls)

    async def _probe(self, kind: str, ctx: ProbeContext, **fields: Any) -> Any:
        t0 = ctx.now()
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay(kind, ctx))
        finally:
            self.in_flight -= 1
        record = ctx.record(kind, t0=t0, failure=None, failed_operation=None, **fields)
        self.finished.append((time.monotonic(), record))
        return record

    async def dns(self, ctx, hostname, query_type, resolver, *, resolver_role, **settings) -> Any:
        address = answer_for(hostname, resolver_role)
        answers = [{"answer_type": "A", "ipv4": address, "ttl": 60}] if query_type == "A" else []
        return await self._probe(
            "dns",
            ctx,
            hostname=hostname,
            query_type=query_type,
            resolver_address=resolver.address,
            resolver_role=resolver_role,
            answers=answers,
        )

    async def tcp(self, ctx, ip, port, *, timeout) -> Any:
        return await self._probe("tcp", ctx, ip=ip, port=port)

    async def tls(self, ctx, ip, port, server_name, *, sni_role, **settings) -> Any:
        return await self._probe(
            "tls", ctx, ip=ip, port=port, server_name=server_name, sni_role=sni_role
        )


class FakeSink:
    """Keeps what the executor writes, with the time each record arrived."""

    def __init__(self, on_write: Callable[[FakeSink], None] | None = None) -> None:
        self.header: dict[str, Any] | None = None
        self.records: list[dict[str, Any]] = []
        self.arrivals: list[float] = []
        self.in_flight_at_write: list[int] = []
        self.summary: dict[str, Any] | None = None
        self.reason: str | None = None
        self.on_write = on_write
        self.network: FakeNetwork | None = None

    def write_header(self, header: dict[str, Any]) -> None:
        self.header = header

    def write(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        self.arrivals.append(time.monotonic())
        if self.network is not None:
            self.in_flight_at_write.append(self.network.in_flight)
        if self.on_write is not None:
            self.on_write(self)

    def close(self, summary: dict[str, Any], *, reason: str = "end") -> Path:
        self.summary, self.reason = summary, reason
        return Path("fake.jsonl")


def options(**overrides: Any) -> RunOptions:
    settings: dict[str, Any] = {
        "resolvers": ["udp://192.0.2.53"],
        "control_resolvers": ["udp://198.51.100.53"],
        "concurrency": 8,
        "deadline": 30.0,
    }
    settings.update(overrides)
    return RunOptions(**settings)


def run(
    network: FakeNetwork,
    sink: FakeSink,
    target_lists: list[TargetList] | None = None,
    stop: StopRequest | None = None,
    **option_overrides: Any,
) -> RunResult:
    sink.network = network
    return run_targets(
        target_lists or [parse_targets(TARGETS, "fake.yaml")],
        options(**option_overrides),
        sink_factory=lambda out_dir, stem: sink,
        probes=network.probes(),
        stop=stop,
    )


def step_key(ctx_fields: tuple[str, int], step: Step) -> tuple:
    if isinstance(step, DnsQuery):
        return (*ctx_fields, "dns", step.hostname, step.query_type, step.resolver.address)
    if isinstance(step, TcpConnect):
        return (*ctx_fields, "tcp", step.ip, step.port)
    assert isinstance(step, TlsHandshake)
    return (*ctx_fields, "tls", step.ip, step.port, step.server_name, step.sni_role)


def record_key(record: dict[str, Any]) -> tuple:
    ctx_fields = (record["target_id"], record["attempt"])
    if record["type"] == "dns":
        extra = (record["hostname"], record["query_type"], record["resolver_address"])
    elif record["type"] == "tcp":
        extra = (record["ip"], record["port"])
    else:
        extra = (record["ip"], record["port"], record["server_name"], record["sni_role"])
    return (*ctx_fields, record["type"], *extra)


def planned_probes(target_lists: list[TargetList], opts: RunOptions) -> list[tuple]:
    """Every probe the planner asks for, with the fake network's DNS answers."""
    from netprobe.model.resolvers import parse_resolver

    plan = RunPlan(
        target_lists=target_lists,
        repeat=opts.repeat,
        probe_resolvers=[parse_resolver(a) for a in opts.resolvers],
        control_resolvers=[parse_resolver(a) for a in opts.control_resolvers or []],
        max_addresses_per_domain=opts.max_addresses_per_domain,
        control_sni="control.test",
    )
    keys = []
    for job in plan.jobs():
        ctx_fields = (job.target_id, job.attempt)
        first = plan.first_steps(job)
        answers = [
            {
                "resolver_role": s.resolver_role,
                "resolver_address": s.resolver.address,
                "answers": [{"answer_type": "A", "ipv4": answer_for(s.hostname, s.resolver_role)}]
                if s.query_type == "A"
                else [],
            }
            for s in first
            if isinstance(s, DnsQuery)
        ]
        for step in [*first, *plan.follow_up_steps(job, answers)]:
            keys.append(step_key(ctx_fields, step))
    return keys


def test_every_planned_probe_produces_exactly_one_record() -> None:
    network, sink = FakeNetwork(), FakeSink()
    done: list[int] = []
    lists = [parse_targets(TARGETS, "fake.yaml")]
    result = run_targets(
        lists,
        options(repeat=2),
        sink_factory=lambda out_dir, stem: sink,
        probes=network.probes(),
        on_progress=done.append,
    )
    expected = planned_probes(lists, options(repeat=2))
    assert len(set(expected)) == len(expected)  # no probe planned twice
    assert Counter(record_key(r) for r in sink.records) == Counter(expected)
    assert {r["type"] for r in sink.records} == {"dns", "tcp", "tls"}
    # bb.test: the probe resolver's own answer is handshaken with too, beside the control's
    assert any(r.get("ip") == "203.0.113.107" for r in sink.records)
    assert result.interrupted is None and sink.reason == "end"
    assert sink.summary is not None and sink.summary["interrupted"] is None
    assert sink.summary["measurements"] == len(expected) == result.summary.measurements
    assert done == list(range(1, 2 * 16 + 1))  # once per job: 3 domains + 13 endpoints, 2 rounds
    assert sink.header is not None and sink.header["type"] == "header"


@pytest.mark.parametrize("concurrency", [1, 3, 16])
def test_never_more_than_concurrency_probes_in_flight(concurrency: int) -> None:
    network = FakeNetwork(delay=lambda kind, ctx: 0.002 * (1 + len(ctx.target_id) % 3))
    sink = FakeSink()
    run(network, sink, concurrency=concurrency)
    assert network.max_in_flight == concurrency  # the bound is reached, never passed
    assert len(sink.records) == len(network.finished) > concurrency


def test_the_deadline_stops_the_run_and_the_summary_says_so() -> None:
    network = FakeNetwork(delay=lambda kind, ctx: 60.0 if octet(ctx) >= 3 else 0.01)
    sink = FakeSink()
    began = time.monotonic()
    result = run(network, sink, target_lists=[endpoints_list(4)], deadline=0.5)
    assert time.monotonic() - began < 5
    assert result.interrupted == "deadline"
    assert sink.summary is not None and sink.summary["interrupted"] == "deadline"
    assert sink.reason == "end"  # a deadline is an ordinary end, not a signal
    assert sorted(r["target_id"] for r in sink.records) == [
        "endpoint:192.0.2.1:443",
        "endpoint:192.0.2.2:443",
    ]
    assert network.in_flight == 0  # the slow probes were cancelled, not left behind


def test_a_stop_request_mid_run_stops_it_with_the_given_reason() -> None:
    stop = StopRequest()

    def stop_after_three(sink: FakeSink) -> None:
        if len(sink.records) == 3:
            stop.stop("SIGTERM")
            stop.stop("SIGINT")  # a second request changes nothing

    network = FakeNetwork(delay=lambda kind, ctx: 0.01 if octet(ctx) <= 3 else 60.0)
    sink = FakeSink(on_write=stop_after_three)
    began = time.monotonic()
    result = run(network, sink, target_lists=[endpoints_list(9)], stop=stop, concurrency=3)
    assert time.monotonic() - began < 5
    assert result.interrupted == "SIGTERM" and stop.reason == "SIGTERM"
    assert sink.summary is not None and sink.summary["interrupted"] == "SIGTERM"
    assert sink.reason == "signal"  # the writer signs a `signal` checkpoint
    assert len(sink.records) == 3 and network.in_flight == 0


def test_a_stop_request_from_another_thread_wakes_the_run() -> None:
    stop = StopRequest()
    network, sink = FakeNetwork(delay=lambda kind, ctx: 60.0), FakeSink()
    timer = threading.Timer(0.3, stop.stop, args=["SIGHUP"])
    timer.start()
    began = time.monotonic()
    result = run(network, sink, target_lists=[endpoints_list(4)], stop=stop)
    timer.join()
    assert time.monotonic() - began < 5
    assert result.interrupted == "SIGHUP" and sink.records == []


def test_a_stop_requested_before_the_run_stops_it_at_once() -> None:
    stop = StopRequest()
    stop.stop("SIGINT")
    network, sink = FakeNetwork(delay=lambda kind, ctx: 60.0), FakeSink()
    result = run(network, sink, stop=stop)
    assert result.interrupted == "SIGINT" and sink.reason == "signal"
    assert sink.header is not None and sink.records == []


def test_a_stop_after_the_run_is_not_an_interruption() -> None:
    stop = StopRequest()
    network, sink = FakeNetwork(), FakeSink()
    result = run(network, sink, target_lists=[endpoints_list(2)], stop=stop)
    stop.stop("SIGTERM")  # the loop is closed by now: nothing happens, nothing raises
    assert result.interrupted is None and sink.reason == "end"


def test_records_reach_the_sink_as_each_probe_finishes() -> None:
    count = 6
    # The first planned endpoint is the slowest: records must come back in finishing order.
    network = FakeNetwork(delay=lambda kind, ctx: 0.05 * (count - octet(ctx)))
    sink = FakeSink()
    run(network, sink, target_lists=[endpoints_list(count - 1)], concurrency=count)
    finished = [record for _, record in network.finished]
    assert sink.records == finished
    assert [r["ip"] for r in sink.records] == [f"192.0.2.{i}" for i in range(count - 1, 0, -1)]
    for (done_at, _), arrived in zip(network.finished, sink.arrivals, strict=True):
        assert arrived - done_at < 0.03  # written when it finished, not at the end of the run
    assert sink.in_flight_at_write[0] == count - 2  # the others were still running


def test_a_jobs_records_are_not_held_back_until_the_whole_job_ends() -> None:
    one = parse_targets(
        "groups:\n  dc:\n    endpoints:\n      - {address: 192.0.2.9:443, sni: a.test}\n"
        "controls:\n  sni: control.test\n",
        "one.yaml",
    )
    delays = {"tcp": 0.02, "tls": 0.3}
    network = FakeNetwork(delay=lambda kind, ctx: delays[kind])
    sink = FakeSink()
    run(network, sink, target_lists=[one])
    assert [r["type"] for r in sink.records] == ["tcp", "tls", "tls"]
    assert sink.in_flight_at_write[0] == 2  # the TCP record came while both handshakes ran
