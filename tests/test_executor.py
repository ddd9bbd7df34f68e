"""The executor with fake probes: concurrency bound, deadline, stop request, streaming, one record
per planned probe; controls first, last and every interval; TLS chains; confirmation re-probes.
No sockets, no namespaces: the fakes only sleep and build records."""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from netprobe.probes import ProbeContext, Probes
from netprobe.run.executor import RunOptions, RunResult, StopRequest, run_targets
from netprobe.run.plan_mtproto import MtprotoAttempt
from netprobe.run.planner import (
    Chain,
    DnsQuery,
    RunPlan,
    Step,
    TcpConnect,
    TlsHandshake,
    count_jobs,
)
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
    # Not a `dc` group: these endpoints get a TCP connect only (no MTProto follow-up).
    return parse_targets(f"name: many\ngroups:\n  hosts:\n    endpoints:\n{lines}", "many.yaml")


def octet(ctx: ProbeContext) -> int:
    """The last octet of an `endpoint:192.0.2.N:443` target."""
    return int(ctx.target_id.split(":")[1].rsplit(".", 1)[1])


def answer_for(hostname: str, role: str) -> str:
    """The fake DNS answer: the probe resolver differs from the control for `bb.test`."""
    last = len(hostname) + (100 if role == "probe" and hostname == "bb.test" else 0)
    return f"203.0.113.{last}"


Failing = Callable[[str, ProbeContext, dict[str, Any]], str | None]


def never_fails(kind: str, ctx: ProbeContext, fields: dict[str, Any]) -> str | None:
    return None


class FakeNetwork:
    """Fake probes: each call sleeps `delay(kind, ctx)` seconds, then returns a record whose
    failure is `fail(kind, ctx, fields)` (None: a success)."""

    def __init__(
        self,
        delay: Callable[[str, ProbeContext], float] = lambda kind, ctx: 0.001,
        fail: Failing = never_fails,
    ):
        self.delay = delay
        self.fail = fail
        self.in_flight = 0
        self.max_in_flight = 0
        self.started: list[tuple[float, dict[str, Any]]] = []  # (monotonic time, fields)
        self.finished: list[tuple[float, dict[str, Any]]] = []  # (monotonic time, record)

    # With `batched`, `probes()` also has a `tcp_batch` (`FakeBatch`, over the same fake
    # connects): the runner then takes its plain-connect path (`Runner._feed`). The autouse
    # fixture `connect_path` runs the tests of a module that uses it on both paths.
    batched = False

    def probes(self) -> Probes:
        batch = functools.partial(FakeBatch, self) if self.batched else None
        return Probes(
            dns=self.dns, tcp=self.tcp, tls=self.tls, mtproto=self.mtproto, tcp_batch=batch
        )

    async def _probe(self, kind: str, ctx: ProbeContext, **fields: Any) -> Any:
        t0 = ctx.now()
        self.started.append(
            (time.monotonic(), {"type": kind, "target_id": ctx.target_id, **fields})
        )
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay(kind, ctx))
        finally:
            self.in_flight -= 1
        failure = self.fail(kind, ctx, fields)
        record = ctx.record(
            kind, t0=t0, failure=failure, failed_operation=kind if failure else None, **fields
        )
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

    async def mtproto(self, ctx, ip, port, transport, *, timeout) -> Any:
        return await self._probe("mtproto", ctx, ip=ip, port=port, transport=transport)


class FakeBatch:
    """A fake `TcpBatchEngine`: each `start` runs the network's fake connect as a task."""

    def __init__(self, network: FakeNetwork, *, timeout: float) -> None:
        self.network, self.timeout = network, timeout
        self.tasks: set[asyncio.Task[Any]] = set()
        self.started = 0

    def start(self, ctx: ProbeContext, ip: str, port: int, done: Callable[[Any], None]) -> None:
        self.started += 1
        task = asyncio.ensure_future(self.network.tcp(ctx, ip, port, timeout=self.timeout))
        self.tasks.add(task)

        def ended(task: asyncio.Task[Any]) -> None:
            self.tasks.discard(task)
            if not task.cancelled():
                done(task.result())

        task.add_done_callback(ended)

    def close(self) -> None:
        for task in self.tasks:
            task.cancel()


@pytest.fixture(autouse=True, params=["per-probe", "batched"])
def connect_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test here runs with plain connects through `tcp`, then through a `tcp_batch`."""
    monkeypatch.setattr(FakeNetwork, "batched", request.param == "batched")
    return str(request.param)


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
        # short waits: the tests that measure spacing and pauses set their own
        "confirm_spacing": 0.01,
        "residual_pause": 0.05,
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
    if isinstance(step, MtprotoAttempt):
        return (*ctx_fields, "mtproto", step.ip, step.port, step.transport)
    assert isinstance(step, TlsHandshake)
    return (*ctx_fields, "tls", step.ip, step.port, step.server_name, step.sni_role)


def record_key(record: dict[str, Any]) -> tuple:
    ctx_fields = (record["target_id"], record["attempt"])
    if record["type"] == "dns":
        extra = (record["hostname"], record["query_type"], record["resolver_address"])
    elif record["type"] == "tcp":
        extra = (record["ip"], record["port"])
    elif record["type"] == "mtproto":
        extra = (record["ip"], record["port"], record["transport"])
    else:
        extra = (record["ip"], record["port"], record["server_name"], record["sni_role"])
    return (*ctx_fields, record["type"], *extra)


def planned_probes(target_lists: list[TargetList], opts: RunOptions) -> list[tuple]:
    """Every probe the planner asks for when every probe works, with the fake DNS answers:
    control round 0, the target jobs, the end control round."""
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
    for job in [*plan.control_jobs(0), *plan.target_jobs(), *plan.control_jobs(1)]:
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
        answers += [{"type": "tcp", "failure": None} for s in first if isinstance(s, TcpConnect)]
        for task in [*first, *plan.follow_up_steps(job, answers)]:
            steps = task.steps if isinstance(task, Chain) else (task,)  # no `after`: all work
            keys += [step_key(ctx_fields, step) for step in steps]
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
    assert {r["type"] for r in sink.records} == {"dns", "tcp", "tls", "mtproto"}
    # bb.test: the probe resolver's own answer is handshaken with too, beside the control's
    assert any(r.get("ip") == "203.0.113.107" for r in sink.records)
    assert result.interrupted is None and sink.reason == "end"
    assert sink.summary is not None and sink.summary["interrupted"] is None
    assert sink.summary["measurements"] == len(expected) == result.summary.measurements
    # Once per counted job: 2 domains + 12 endpoints x 2 attempts, 2 controls x 2 rounds.
    assert done == list(range(1, 2 * 14 + 2 * 2 + 1))
    assert done[-1] == count_jobs(lists, 2)
    assert not any("confirmation" in r for r in sink.records)  # a clean run: no re-probes
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
        "groups:\n  hosts:\n    endpoints:\n      - {address: 192.0.2.9:443, sni: a.test}\n"
        "controls:\n  sni: control.test\n",
        "one.yaml",
    )
    delays = {"tcp": 0.02, "tls": 0.3}
    network = FakeNetwork(delay=lambda kind, ctx: delays[kind])
    sink = FakeSink()
    run(network, sink, target_lists=[one])
    assert [(r["type"], r.get("sequence")) for r in sink.records] == [
        ("tcp", None),
        ("tls", "before"),
        ("tls", "target"),
    ]
    assert sink.in_flight_at_write[0] == 1  # the TCP record came while a handshake ran


# -- controls first, last and every control_interval ------------------------------------------


def test_controls_run_before_any_target_and_again_at_the_end() -> None:
    network, sink = FakeNetwork(), FakeSink()
    run(network, sink, repeat=2)
    roles = [r["role"] for r in sink.records]
    first_target, last_target = roles.index("target"), len(roles) - 1 - roles[::-1].index("target")
    start, end = sink.records[:first_target], sink.records[last_target + 1 :]
    assert {(r["role"], r["control_round"], r["attempt"]) for r in start} == {("control", 0, 0)}
    assert {(r["role"], r["control_round"], r["attempt"]) for r in end} == {("control", 1, 1)}
    assert {r["target_id"] for r in start} == {"domain:control.test", "endpoint:203.0.113.1:443"}
    start_keys = [(key[0], 1, *key[2:]) for key in map(record_key, start)]
    assert sorted(start_keys) == sorted(map(record_key, end))  # the end round repeats round 0
    assert all("control_round" not in r for r in sink.records if r["role"] == "target")
    assert {r["attempt"] for r in sink.records if r["role"] == "target"} == {0, 1}


CONTROLLED = """\
name: controlled
groups:
  dc:
    endpoints: [192.0.2.1:443, 192.0.2.2:443, 192.0.2.3:443, 192.0.2.4:443, 192.0.2.5:443]
controls:
  endpoints: [203.0.113.1:443]
"""


def test_long_runs_repeat_the_controls_every_interval_and_progress_never_overshoots() -> None:
    lists = [parse_targets(CONTROLLED, "controlled.yaml")]
    network = FakeNetwork(delay=lambda kind, ctx: 0.001 if ctx.role == "control" else 0.25)
    sink, done = FakeSink(), []
    run_targets(
        lists,
        options(concurrency=1, control_interval=0.3),
        sink_factory=lambda out_dir, stem: sink,
        probes=network.probes(),
        on_progress=done.append,
    )
    rounds = [(i, r["control_round"]) for i, r in enumerate(sink.records) if r["role"] == "control"]
    numbers = [number for _, number in rounds]
    assert numbers == list(range(len(numbers))) and len(numbers) >= 4  # start, >= 2 between, end
    targets = [i for i, r in enumerate(sink.records) if r["role"] == "target"]
    assert rounds[0][0] < targets[0] and rounds[-1][0] > targets[-1]
    assert all(targets[0] < i for i, _ in rounds[1:-1])  # started while targets ran
    assert sum(1 for i, _ in rounds if targets[0] < i < targets[-1]) >= 2
    # Progress counts the 5 targets and the start and end rounds only: it ends at its total.
    assert done == list(range(1, count_jobs(lists, 1) + 1)) and done[-1] == 5 + 2


def test_a_deadline_stopped_run_still_has_its_round_0_controls() -> None:
    lists = [parse_targets(CONTROLLED, "controlled.yaml")]
    network = FakeNetwork(delay=lambda kind, ctx: 0.001 if ctx.role == "control" else 60.0)
    sink = FakeSink()
    result = run(network, sink, target_lists=lists, deadline=0.5)
    assert result.interrupted == "deadline"
    assert [(r["target_id"], r["control_round"]) for r in sink.records] == [
        ("endpoint:203.0.113.1:443", 0)
    ]
    assert network.in_flight == 0


# -- TLS chains: control SNI before, target SNI, control SNI after a failure -------------------

CHAINED = """\
name: chained
groups:
  dc:
    endpoints:
      - {address: 192.0.2.7:443, sni: blocked.test}
      - {address: 192.0.2.8:443, sni: fine.test}
controls:
  endpoints: [203.0.113.1:443]
  sni: control.test
"""


def sni_blocked(kind: str, ctx: ProbeContext, fields: dict[str, Any]) -> str | None:
    return "connection_reset" if fields.get("server_name") == "blocked.test" else None


def test_a_tls_chain_runs_before_then_target_then_after_the_pause() -> None:
    network = FakeNetwork(delay=lambda kind, ctx: 0.02, fail=sni_blocked)
    sink = FakeSink()
    run(
        network,
        sink,
        target_lists=[parse_targets(CHAINED, "c.yaml")],
        residual_pause=0.3,
        confirm=0,
    )
    tls = {
        target: [r for r in sink.records if r["type"] == "tls" and r["target_id"] == target]
        for target in ("endpoint:192.0.2.7:443", "endpoint:192.0.2.8:443")
    }
    blocked, fine = tls["endpoint:192.0.2.7:443"], tls["endpoint:192.0.2.8:443"]
    assert [(r["server_name"], r["sequence"], r.get("pause")) for r in blocked] == [
        ("control.test", "before", None),
        ("blocked.test", "target", None),
        ("control.test", "after", 0.3),
    ]
    before, target, after = blocked
    assert before["t"] <= target["t0"]  # one after the other, not together
    assert after["t0"] - target["t"] >= 0.3  # the residual pause
    # the target SNI worked: no `after` handshake
    assert [(r["server_name"], r["sequence"]) for r in fine] == [
        ("control.test", "before"),
        ("fine.test", "target"),
    ]
    # the plan's labels come after every field the probe wrote
    assert list(after)[-2:] == ["sequence", "pause"]


def test_residual_pause_0_makes_no_after_handshake() -> None:
    network = FakeNetwork(fail=sni_blocked)
    sink = FakeSink()
    run(network, sink, target_lists=[parse_targets(CHAINED, "c.yaml")], residual_pause=0, confirm=0)
    assert [
        r["sequence"]
        for r in sink.records
        if r.get("target_id") == "endpoint:192.0.2.7:443" and r["type"] == "tls"
    ] == ["before", "target"]


# -- confirmation re-probes --------------------------------------------------------------------

CONFIRMED = """\
name: confirmed
groups:
  web: {domains: [a.test]}
  dc:
    endpoints:
      - 192.0.2.1:443
      - 192.0.2.2:443
      - {address: 192.0.2.3:443, sni: blocked.test}
controls:
  endpoints: [203.0.113.1:443]
  sni: control.test
"""


def confirmed_list() -> list[TargetList]:
    return [parse_targets(CONFIRMED, "confirmed.yaml")]


def tcp_to_2_fails(kind: str, ctx: ProbeContext, fields: dict[str, Any]) -> str | None:
    if kind == "tcp" and fields["ip"] == "192.0.2.2":
        return "generic_timeout_error"
    return None


def test_a_failed_probe_is_re_probed_n_times_spaced_with_the_same_attempt() -> None:
    network, sink = FakeNetwork(fail=tcp_to_2_fails), FakeSink()
    run(network, sink, target_lists=confirmed_list(), confirm=3, confirm_spacing=0.1, repeat=2)
    failing = [r for r in sink.records if r["target_id"] == "endpoint:192.0.2.2:443"]
    for attempt in (0, 1):
        mine = [r for r in failing if r["attempt"] == attempt]
        assert [r.get("confirmation") for r in mine] == [None, 1, 2, 3]
        assert {record_key(r) for r in mine} == {
            ("endpoint:192.0.2.2:443", attempt, "tcp", "192.0.2.2", 443)
        }
        for previous, later in zip(mine, mine[1:], strict=False):
            assert later["t0"] - previous["t"] >= 0.1  # spaced
        assert list(mine[1])[-1] == "confirmation"  # written after the probe's own fields
    # Nothing that worked was repeated, and every confirmation came before the end round.
    assert not [r for r in sink.records if r.get("confirmation") and r["failure"] is None]
    extra = [r for r in sink.records if r.get("confirmation")]
    assert len(extra) == 2 * 3
    last_confirmation = max(i for i, r in enumerate(sink.records) if r.get("confirmation"))
    end_round = [i for i, r in enumerate(sink.records) if r.get("control_round") == 1]
    assert end_round and min(end_round) > last_confirmation
    assert sink.summary is not None and sink.summary["measurements"] == len(sink.records)


def test_a_failed_target_sni_is_re_probed_alone_after_its_chain() -> None:
    network = FakeNetwork(fail=sni_blocked)
    sink = FakeSink()
    run(
        network,
        sink,
        target_lists=confirmed_list(),
        confirm=2,
        confirm_spacing=0.05,
        residual_pause=0.2,
    )
    tls = [r for r in sink.records if r["type"] == "tls" and r["ip"] == "192.0.2.3"]
    assert [(r["server_name"], r["sequence"], r.get("confirmation")) for r in tls] == [
        ("control.test", "before", None),
        ("blocked.test", "target", None),
        ("control.test", "after", None),
        ("blocked.test", "target", 1),
        ("blocked.test", "target", 2),
    ]
    # the first re-sent forbidden name comes after the `after` probe, not inside the pause
    assert tls[3]["t0"] - tls[2]["t"] >= 0.05


def everything_fails(kind: str, ctx: ProbeContext, fields: dict[str, Any]) -> str | None:
    return "generic_timeout_error"


def test_no_confirmations_when_every_control_failed_or_with_confirm_0() -> None:
    network, sink = FakeNetwork(fail=everything_fails), FakeSink()
    run(network, sink, target_lists=confirmed_list(), confirm_spacing=0.01)
    assert sink.records and not [r for r in sink.records if "confirmation" in r]
    network, sink = FakeNetwork(fail=tcp_to_2_fails), FakeSink()
    run(network, sink, target_lists=confirmed_list(), confirm=0, confirm_spacing=0.01)
    assert not [r for r in sink.records if "confirmation" in r]


def only_targets_fail(kind: str, ctx: ProbeContext, fields: dict[str, Any]) -> str | None:
    return "generic_timeout_error" if ctx.role == "target" else None


def test_a_fully_blocked_run_confirms_each_failed_step_within_the_concurrency_bound() -> None:
    network, sink = FakeNetwork(fail=only_targets_fail), FakeSink()
    run(
        network, sink, target_lists=confirmed_list(), confirm=2, confirm_spacing=0.01, concurrency=2
    )
    originals = [r for r in sink.records if r["role"] == "target" and "confirmation" not in r]
    # Confirmed: DNS A/AAAA of both resolvers (4), TCP (3), the target SNI (2: the endpoint's
    # and the domain's, whose fake DNS failures still carry an answer); not the two silent
    # queries, nor the control-SNI `before`/`after` handshakes.
    eligible = [
        r
        for r in originals
        if r.get("resolver_role") != "silent" and r.get("sni_role") != "control"
    ]
    assert len(eligible) == 4 + 3 + 2
    confirmations = [r for r in sink.records if "confirmation" in r]
    assert len(confirmations) == 2 * len(eligible)
    assert network.max_in_flight <= 2


def test_a_stopped_run_does_not_wait_for_pending_confirmations() -> None:
    network, sink = FakeNetwork(fail=tcp_to_2_fails), FakeSink()
    began = time.monotonic()
    result = run(
        network, sink, target_lists=confirmed_list(), confirm=2, confirm_spacing=60, deadline=1.0
    )
    assert time.monotonic() - began < 5
    assert result.interrupted == "deadline" and sink.summary is not None
    assert not [r for r in sink.records if "confirmation" in r] and network.in_flight == 0


# -- the injection probe -----------------------------------------------------------------------


def test_each_target_domain_asks_the_silent_addresses_once_and_never_confirms() -> None:
    def silent_times_out(kind: str, ctx: ProbeContext, fields: dict[str, Any]) -> str | None:
        silent = fields.get("resolver_role") == "silent"
        return "generic_timeout_error" if silent else None

    network, sink = FakeNetwork(fail=silent_times_out), FakeSink()
    run(network, sink, target_lists=confirmed_list(), confirm_spacing=0.01, repeat=2)
    silent = [r for r in sink.records if r.get("resolver_role") == "silent"]
    assert sorted(
        (r["target_id"], r["attempt"], r["resolver_address"], r["query_type"], r["role"])
        for r in silent
    ) == [
        ("domain:a.test", attempt, f"udp://192.0.2.{n}:53", "A", "target")
        for attempt in (0, 1)
        for n in (1, 2)
    ]
    assert not [r for r in sink.records if "confirmation" in r]
