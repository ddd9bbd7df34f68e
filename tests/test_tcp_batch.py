"""The batched connect engine (netprobe.probes.tcp_batch) against probe_tcp, on loopback only.

Each outcome (connected, refused, timed out; IPv4 and IPv6) is probed both ways and the records
compared field by field (the clock fields by their meaning); then the engine's own promises:
a deadline per connect, nothing recorded after `close()`, many connects at once; and a whole run
with the engine against the same run with `probe_tcp` for every connect. The namespace cases
(a DROP rule, an unreachable network) are in tests/test_lab_tcp_batch.py.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from netprobe.probes import ProbeContext, real_probes
from netprobe.probes.tcp import probe_tcp
from netprobe.probes.tcp_batch import TcpBatch
from netprobe.run.executor import RunOptions, run_targets
from netprobe.run.planner import RunPlan, TcpConnect
from netprobe.targets.lists import parse_targets
from tests.localservers import closed_port, probe_context, tcp_listener
from tests.test_executor import TARGETS

CLOCK = ("t0", "t")


@contextmanager
def full_listener(host: str = "127.0.0.1") -> Iterator[int]:
    """A port whose accept queue is full: the kernel drops further SYNs, so connects time out."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as listener, socket.socket(family) as first:
        listener.bind((host, 0))
        listener.listen(0)  # room for one connection, never accepted
        port = listener.getsockname()[1]
        first.connect((host, port))
        yield port


async def batch_records(
    targets: list[tuple[str, int]], timeout: float, ctx: ProbeContext | None = None
) -> list[dict[str, Any]]:
    """One batch, every target started at once; the records in the order of `targets`."""
    done: dict[int, dict[str, Any]] = {}
    finished = asyncio.Event()
    batch = TcpBatch(timeout=timeout)
    try:
        for i, (ip, port) in enumerate(targets):

            def got(record: Any, i: int = i) -> None:
                done[i] = dict(record)
                if len(done) == len(targets):
                    finished.set()

            batch.start(ctx or probe_context(f"endpoint:{ip}:{port}"), ip, port, got)
        await asyncio.wait_for(finished.wait(), timeout + 5)
    finally:
        batch.close()
    return [done[i] for i in range(len(targets))]


def both_ways(ip: str, port: int, timeout: float = 2.0) -> tuple[dict, dict]:
    """(probe_tcp's record, the batch's record) for ip:port."""
    ctx = probe_context(f"endpoint:{ip}:{port}")
    single = asyncio.run(probe_tcp(ctx, ip, port, timeout=timeout))
    (batched,) = asyncio.run(batch_records([(ip, port)], timeout, ctx))
    return dict(single), batched


def same_record(single: dict, batched: dict) -> None:
    assert list(batched) == list(single)  # same fields, same order
    assert {k: v for k, v in batched.items() if k not in CLOCK} == {
        k: v for k, v in single.items() if k not in CLOCK
    }
    for record in (single, batched):
        assert 0 <= record["t0"] <= record["t"]


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_a_listening_port_connects_as_with_probe_tcp(host: str) -> None:
    with tcp_listener(host) as port:
        single, batched = both_ways(host, port)
    same_record(single, batched)
    assert batched["failure"] is None and batched["failed_operation"] is None


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_a_closed_port_is_refused_as_with_probe_tcp(host: str) -> None:
    single, batched = both_ways(host, closed_port(host))
    same_record(single, batched)
    assert batched["failure"] == "connection_refused"
    assert batched["failed_operation"] == "connect"


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_an_unanswered_connect_times_out_as_with_probe_tcp(host: str) -> None:
    with full_listener(host) as port:
        single, batched = both_ways(host, port, timeout=0.3)
    same_record(single, batched)
    assert batched["failure"] == "generic_timeout_error"
    for record in (single, batched):
        assert 0.3 <= record["t"] - record["t0"] < 0.3 + 0.25


def test_each_deadline_runs_from_its_own_start() -> None:
    async def staggered(port: int) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        batch = TcpBatch(timeout=0.4)
        ctx = probe_context(f"endpoint:127.0.0.1:{port}")
        try:
            batch.start(ctx, "127.0.0.1", port, records.append)
            await asyncio.sleep(0.2)
            batch.start(ctx, "127.0.0.1", port, records.append)
            await asyncio.sleep(0.8)
        finally:
            batch.close()
        return records

    with full_listener() as port:
        first, second = asyncio.run(staggered(port))
    assert second["t0"] - first["t0"] >= 0.2
    for record in (first, second):
        assert record["failure"] == "generic_timeout_error"
        assert 0.4 <= record["t"] - record["t0"] < 0.4 + 0.2  # not the first one's deadline


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_close_drops_the_connects_in_flight_and_their_sockets() -> None:
    records: list[Any] = []

    async def start_then_close(port: int) -> None:
        batch = TcpBatch(timeout=0.3)
        for _ in range(5):
            batch.start(probe_context(), "127.0.0.1", port, records.append)
        assert len(batch) == 5
        batch.close()
        await asyncio.sleep(0.5)  # past the deadline: nothing may fire now
        with pytest.raises(RuntimeError):
            batch.start(probe_context(), "127.0.0.1", port, records.append)

    with full_listener() as port:
        before = open_fds()
        asyncio.run(start_then_close(port))
        assert open_fds() <= before
    assert records == []


def test_many_connects_at_once_each_get_their_record() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1024)
        port = listener.getsockname()[1]
        refused = closed_port()
        targets = [("127.0.0.1", port if i % 3 else refused) for i in range(600)]
        records = asyncio.run(batch_records(targets, 5.0))
    for (ip, target_port), record in zip(targets, records, strict=True):
        assert (record["ip"], record["port"]) == (ip, target_port)
        expected = None if target_port == port else "connection_refused"
        assert record["failure"] == expected


def test_a_bad_address_raises_before_any_record() -> None:
    records: list[Any] = []

    async def bad() -> None:
        batch = TcpBatch(timeout=1)
        try:
            with pytest.raises(ValueError):
                batch.start(probe_context(), "not-an-ip", 443, records.append)
        finally:
            batch.close()

    asyncio.run(bad())
    assert records == []


def test_plain_connects_are_exactly_the_jobs_with_one_tcp_step_and_no_follow_up() -> None:
    target_list = parse_targets(TARGETS, "fake.yaml")
    plan = RunPlan([target_list], 1, [], [], 2, "control.test")
    jobs = [*plan.control_jobs(0), *plan.target_jobs()]
    plain = [job for job in jobs if plan.plain_connect(job) is not None]
    assert {job.group for job in plain} == {"r", "control"}  # the range samples, the control
    for job in jobs:
        step = plan.plain_connect(job)
        first = list(plan.first_steps(job))
        worked = [{"type": "tcp", "failure": None}]
        if step is not None:
            assert first == [step] and isinstance(step, TcpConnect)
            assert not plan.follow_up_steps(job, worked)
        else:
            lone_connect = len(first) == 1 and isinstance(first[0], TcpConnect)
            assert not lone_connect or plan.follow_up_steps(job, worked)  # a DC endpoint


LOOPBACK_LIST = """\
name: loop
groups:
  hosts:
    endpoints: [{endpoints}]
  sweep:
    ranges:
      - {{cidr: 127.0.0.8/29, ports: [{closed}, {in_range}], sample: all}}
controls:
  endpoints: ['127.0.0.1:{listening}']
  resolvers: []
"""


class ListSink:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.summary: dict[str, Any] | None = None

    def write_header(self, header: dict[str, Any]) -> None:
        pass

    def write(self, record: dict[str, Any]) -> None:
        self.records.append(record)

    def close(self, summary: dict[str, Any], *, reason: str = "end") -> Path:
        self.summary = summary
        return Path("loop.jsonl")


def run_loopback(batched: bool, ports: dict[str, int]) -> ListSink:
    """A run of LOOPBACK_LIST: a listener on 127.0.0.1 (the control) and on 127.0.0.9 (in the
    range, where every other sample is refused), a closed port and a full one (timeouts)."""
    endpoints = ", ".join(f"'127.0.0.1:{ports[p]}'" for p in ("closed", "timed_out"))
    text = LOOPBACK_LIST.format(endpoints=endpoints, **ports)
    probes = real_probes()
    if not batched:
        from dataclasses import replace

        probes = replace(probes, tcp_batch=None)
    sink = ListSink()
    progress: list[int] = []
    run_targets(
        [parse_targets(text, "loop.yaml")],
        RunOptions(timeout=0.3, concurrency=4, confirm=1, confirm_spacing=0.0, deadline=20.0),
        sink_factory=lambda out_dir, stem: sink,
        probes=probes,
        on_progress=progress.append,
    )
    assert progress == list(range(1, len(progress) + 1))
    return sink


def test_a_run_with_the_engine_writes_the_records_of_a_run_without_it() -> None:
    with (
        tcp_listener() as listening,
        tcp_listener("127.0.0.9") as in_range,
        full_listener() as timed_out,
    ):
        ports = {
            "listening": listening,
            "in_range": in_range,
            "closed": closed_port(),
            "timed_out": timed_out,
        }
        runs = [run_loopback(batched, ports) for batched in (True, False)]

    def key(record: dict[str, Any]) -> tuple:
        return (record["target_id"], record.get("control_round", -1), record.get("confirmation", 0))

    def without_clock(sink: ListSink) -> list[dict[str, Any]]:
        return sorted(
            ({k: v for k, v in r.items() if k not in CLOCK} for r in sink.records), key=key
        )

    with_engine, without = runs
    assert without_clock(with_engine) == without_clock(without)
    assert with_engine.summary is not None and without.summary is not None
    drop = ("finished_at", "duration")
    assert {k: v for k, v in with_engine.summary.items() if k not in drop} == {
        k: v for k, v in without.summary.items() if k not in drop
    }
    failures = {r["failure"] for r in with_engine.records}
    assert failures == {None, "connection_refused", "generic_timeout_error"}
    assert any(r.get("confirmation") for r in with_engine.records)  # confirmations ran too


def test_real_probes_have_the_engine_on_linux() -> None:
    assert real_probes().tcp_batch is TcpBatch
