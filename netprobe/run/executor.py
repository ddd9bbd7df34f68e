"""The run's executor: run a plan's probes concurrently, stream records to a sink, stop on time.

Rules:
- Memory does not grow with the number of targets: jobs come from the plan's lazy iterators and
  are pulled by a fixed pool of `concurrency` workers; each record goes to the sink as soon as
  its probe finishes, in the order probes finish.
- At most `concurrency` probes are in flight at once (one semaphore around every probe call;
  pauses and spacings wait outside it).
- Order of a run: control round 0 (every control job) before any target job; the target jobs;
  meanwhile another control round every `control_interval` seconds (counted from the previous
  round's start); then the confirmations still pending; then the end control round. A run cut
  short by its deadline or a stop therefore always starts with round 0.
- Confirmation (`netprobe.run.confirm`): a failed step that needs it is re-probed `confirm`
  times, `confirm_spacing` s apart, while some control has worked; a chain's records once the
  chain is over (a re-sent target SNI never falls inside its residual pause); at most
  `CONFIRM_BACKLOG` x `concurrency` steps wait for it (then a job waits before taking the next
  target); a silent range's group stops being confirmed after `SILENT_QUORUM` failed connects
  in a row until one of its connects works. A stopped run does not wait for confirmations.
- Plain connects (`RunPlan.plain_connect`: an endpoint's lone TCP connect) go to the probes'
  batch engine (`Probes.tcp_batch`) when there is one, fed by one coroutine with no coroutine
  per connect (`netprobe.run.batched`); a sink that can hold lines gets the records of one loop
  wake-up in one write. Without an engine: `concurrency` workers.
- Only the probe kinds the plan may use are imported, before the run (`RunPlan.probe_kinds`);
  the SSL context and DoH clients are made only when a probe may use them.
- The plan's labels (`sequence`, `pause`, `control_round`, `confirmation`) are appended to a
  probe's record by the executor, after the probe's own fields; the probes know nothing of them.
- Probes are reached only through the `netprobe.probes.Probes` interface (`real_probes()` by
  default), so a whole run can be executed with fake probes; what to probe is the planner's.
- A probe's network failure is data in its record; the executor never turns it into an exception.
- The run ends when every job is done, at `deadline` seconds (interrupted "deadline") or at a
  `StopRequest` (interrupted = its reason, e.g. "SIGTERM"); what was measured stays in the file.
  Signals are the CLI's business: it installs the handlers and calls `StopRequest.stop`.
- Nothing here looks up the probe's own public address, and nothing here prints: progress is
  reported through the `on_progress` callback (jobs done, of `count_jobs`: the start and end
  control rounds and the target jobs; extra control rounds and confirmations are not counted,
  so the count never passes the total), so the CLI decides what the user sees.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, cast

from netprobe.model.records import SUMMARY, TCP, format_utc, new_record
from netprobe.model.vocabulary import ROLE_TARGET
from netprobe.options import RunOptions
from netprobe.probes import ProbeContext, Probes, ProbeSettings, TcpBatchEngine, real_probes
from netprobe.run import loop
from netprobe.run.aio import sleep_at_least, sparse_gc, task_records, together
from netprobe.run.batched import BatchedPool
from netprobe.run.confirm import CONFIRM_BACKLOG, SILENT_QUORUM, Confirmations, Labels
from netprobe.run.header import (
    DEFAULT_CONTROL_RESOLVERS,
    build_header,
    resolve_option_resolvers,
)
from netprobe.run.planner import (
    Chain,
    Job,
    RunPlan,
    Step,
    Task,
    control_sni,
    count_jobs,
    select_addresses,
)
from netprobe.run.stop import StopRequest
from netprobe.run.tally import RunTally
from netprobe.targets.lists import TargetList

# The reason a run that reached its deadline reports as `interrupted`.
DEADLINE = "deadline"


@dataclass
class RunResult:
    path: Path
    summary: RunTally
    interrupted: str | None  # None, "deadline", or a signal name


class RecordSink(Protocol):
    """What the runner writes to: `netprobe.evidence.writer.ResultWriter` or a test double."""

    def write_header(self, header: dict[str, Any]) -> None: ...
    def write(self, record: dict[str, Any]) -> None: ...
    def close(self, summary: dict[str, Any], *, reason: str = "end") -> Path: ...


def file_stem(started: datetime, vantage: str) -> str:
    """`20250526T010000Z_hanoi-vnpt` : UTC start time and vantage name, safe for any filesystem."""
    from netprobe.evidence.format import file_stem as stem  # the one definition of file names

    return stem(started, vantage)


class Runner(BatchedPool):
    """One run over one or more target lists. Create, then `await run(sink, header)`."""

    def __init__(
        self,
        target_lists: list[TargetList],
        options: RunOptions,
        *,
        on_progress: Callable[[int], None] | None = None,
        probes: Probes | None = None,
    ) -> None:
        self.target_lists = target_lists
        self.options = options
        self.on_progress = on_progress or (lambda done: None)
        self.probe_resolvers, self.control_resolvers = resolve_option_resolvers(
            target_lists, options
        )
        self.plan = RunPlan(
            target_lists=target_lists,
            repeat=options.repeat,
            probe_resolvers=self.probe_resolvers,
            control_resolvers=self.control_resolvers,
            max_addresses_per_domain=options.max_addresses_per_domain,
            control_sni=control_sni(target_lists),
            residual_pause=options.residual_pause,
            # issue 13: a Probes without http plans none (the real probes have it)
            http=probes is None or probes.http is not None,
            throughput_bytes=options.throughput_bytes,
            throughput_seconds=options.throughput_seconds,
        )
        kinds = self.plan.probe_kinds()
        # Only the probe kinds the plan may use are imported, before the run starts (a probe
        # module imported during a run would stall the probes in flight).
        self.probes = probes if probes is not None else real_probes(kinds)
        ssl_context: Any = None  # no probe of this plan uses it (`RunPlan.probe_kinds`)
        doh_clients = None
        if "ssl" in kinds:  # loading the CA store is most of a small run's set-up
            from netprobe.probes.doh import DohClients
            from netprobe.probes.tls import make_ssl_context

            ssl_context = make_ssl_context(options.ca_bundle)
            doh_clients = DohClients(ssl_context)  # one pooled client per DoH resolver per run
        self.settings = ProbeSettings(
            timeout=options.timeout,
            udp_wait=options.udp_wait,
            ssl_context=ssl_context,
            doh_clients=doh_clients,
            http_body_limit=options.http_body_limit if options.bodies else 0,
            downloads=asyncio.Lock(),  # throughput downloads one at a time (plan_throughput)
        )
        self.summary = RunTally()
        self._semaphore: asyncio.Semaphore | None = None
        self._sink: RecordSink | None = None
        self._run_start = 0.0
        self._done = 0
        self.confirmations = Confirmations(options, self.summary, self._reprobe)
        self._batch: TcpBatchEngine | None = None  # the run's plain connects (probes.tcp_batch)
        self._hold: Callable[[], None] | None = None  # the sink's `hold`, if it has one
        self._flush: Callable[[], None] | None = None
        self._holding = False  # a flush of held records is scheduled
        self._rounds = 0  # control rounds started so far
        self._last_round_start = 0.0

    async def run(
        self, sink: RecordSink, header: dict[str, Any], stop: StopRequest | None = None
    ) -> str | None:
        """Run every job, writing to `sink`. Returns None, "deadline" or the stop's reason."""
        self._sink = sink
        # A sink that can hold lines (`ResultWriter.hold`/`flush`) gets each wake-up's batched
        # connects in one write; a sink without them gets every record as it comes.
        self._hold = getattr(sink, "hold", None)
        self._flush = getattr(sink, "flush", None) if self._hold is not None else None
        self._semaphore = asyncio.Semaphore(max(1, self.options.concurrency))
        self._run_start = time.monotonic()
        if self.probes.tcp_batch is not None:
            self._batch = self.probes.tcp_batch(timeout=self.settings.timeout)
        sink.write_header(header)
        work = asyncio.ensure_future(self._phases())
        stopped_by: list[str] = []

        def halt(reason: str) -> None:
            if not stopped_by and not work.done():
                stopped_by.append(reason)
                work.cancel()

        if stop is not None:
            stop._attach(asyncio.get_running_loop(), halt)
        ticker = asyncio.ensure_future(self._checkpoint_ticker(sink))
        try:
            await asyncio.wait_for(asyncio.shield(work), timeout=self.options.deadline)
        except TimeoutError:
            if not stopped_by:
                stopped_by.append(DEADLINE)
            work.cancel()
        except asyncio.CancelledError:
            if not stopped_by:
                raise
        finally:
            ticker.cancel()
            if stop is not None:
                stop._detach()
            if not work.done():
                work.cancel()
            try:
                await work
            except asyncio.CancelledError:
                pass
            if self._batch is not None:
                self._batch.close()  # a stopped run's connects in flight make no record
                self._batch = None
            if self.settings.doh_clients is not None:
                await self.settings.doh_clients.aclose()
        return stopped_by[0] if stopped_by else None

    async def _checkpoint_ticker(self, sink: RecordSink) -> None:
        """Give the writer a chance to sign every second, so quiet stretches are covered too."""
        due = getattr(sink, "checkpoint_if_due", None)
        if due is None:
            return
        while True:
            await asyncio.sleep(1.0)
            due()

    async def _phases(self) -> None:
        """The whole run in order (see the module rules); pending confirmations die with it."""
        targets_done = asyncio.Event()
        ticker: asyncio.Future[None] | None = None
        try:
            await self._control_round(counted=True)
            ticker = asyncio.ensure_future(self._control_ticker(targets_done))
            await self._pool(self.plan.target_jobs(), counted=True)
            targets_done.set()
            await ticker  # lets a round in progress finish; starts no new one
            while self.confirmations.tasks:
                await asyncio.gather(*list(self.confirmations.tasks))
            await self._control_round(counted=True)
        finally:
            pending: list[asyncio.Future[None]] = [*self.confirmations.tasks]
            if ticker is not None and not ticker.done():
                pending.append(ticker)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)

    async def _pool(self, jobs: Iterator[Job], *, counted: bool) -> None:
        """Run `jobs` with `concurrency` workers; `counted` jobs advance the progress."""
        if self._batch is not None:
            await self._feed(jobs, counted=counted)
            return

        async def worker() -> None:
            for job in jobs:  # a shared generator: each job is taken by exactly one worker
                await self._job(job)
                if counted:
                    self._done += 1
                    self.on_progress(self._done)

        await asyncio.gather(*(worker() for _ in range(max(1, self.options.concurrency))))

    async def _control_round(self, *, counted: bool) -> None:
        """One control round: every control job, numbered in the order rounds start."""
        control_round = self._rounds
        self._rounds += 1
        self._last_round_start = time.monotonic()
        await self._pool(self.plan.control_jobs(control_round), counted=counted)

    async def _control_ticker(self, targets_done: asyncio.Event) -> None:
        """While target jobs run: a control round every `control_interval` s since the last one."""
        while True:
            wait = self._last_round_start + self.options.control_interval - time.monotonic()
            try:
                await asyncio.wait_for(targets_done.wait(), timeout=max(0.0, wait))
                return
            except TimeoutError:
                pass
            await self._control_round(counted=False)

    async def _job(self, job: Job) -> None:
        """A job's first tasks together, then the follow-ups planned from their records."""
        target = job.target
        ctx = ProbeContext(
            target.target_id, target.group, target.role, job.attempt, self._run_start
        )
        labels = job.record_fields()
        first = self.plan.first_steps(job)
        results = await together([self._task(ctx, task, labels) for task in first])
        if any(isinstance(task, Chain) for task in first):
            results = [r for result in results for r in task_records(result)]
        follow_ups = self.plan.follow_up_steps(job, cast(list[dict[str, Any]], results))
        if follow_ups:
            await together([self._task(ctx, task, labels) for task in follow_ups])

    def _task(
        self, ctx: ProbeContext, task: Task, labels: Labels
    ) -> Awaitable[dict[str, Any] | list[dict[str, Any]]]:
        if isinstance(task, Chain):
            return self._chain(ctx, task, labels)
        return self._probe(ctx, task, labels)

    async def _chain(self, ctx: ProbeContext, chain: Chain, labels: Labels) -> list[dict[str, Any]]:
        """The chain's steps one after another, its `if_failed` step after the pause if the last
        one failed; then the confirmations its records need."""
        steps: list[Step] = list(chain.steps)
        records = [await self._probe(ctx, step, labels, confirm=False) for step in steps]
        if chain.if_failed is not None and records[-1]["failure"] is not None:
            await sleep_at_least(chain.pause)
            records.append(await self._probe(ctx, chain.if_failed, labels, confirm=False))
            steps.append(chain.if_failed)
        elif chain.then and records[-1]["failure"] is None:
            # The throughput downloads after a working handshake: one chain's at a time.
            async with self.settings.downloads or contextlib.nullcontext():
                for step in chain.then:
                    records.append(await self._probe(ctx, step, labels, confirm=False))
                    steps.append(step)
        for step, record in zip(steps, records, strict=True):
            await self.confirmations.later(ctx, step, record)
        return records

    async def _probe(
        self, ctx: ProbeContext, step: Step, labels: Labels = (), *, confirm: bool = True
    ) -> dict[str, Any]:
        """One probe under the semaphore; its record goes to the sink as soon as it is back."""
        assert self._semaphore is not None and self._sink is not None
        async with self._semaphore:
            record = await step.call(self.probes, ctx, self.settings)
        plain = self._recorded(step, labels, record)
        if plain["failure"] is not None and confirm:
            await self.confirmations.later(ctx, step, plain)
        return plain

    def _reprobe(self, ctx: ProbeContext, step: Step, labels: Labels) -> Awaitable[Any]:
        """A confirmation's re-probe (`Confirmations`): never itself confirmed."""
        return self._probe(ctx, step, labels, confirm=False)

    def _recorded(self, step: Step, labels: Labels, record: Any) -> dict[str, Any]:
        """A probe's record with its labels, written and counted; returned as a plain dict."""
        assert self._sink is not None
        plain: dict[str, Any] = record  # the sink and the tally take plain dicts
        for key, value in step.record_fields():
            plain[key] = value
        for key, value in labels:
            plain[key] = value
        self._sink.write(plain)
        self.summary.add(plain)
        if plain["failure"] is None and plain["type"] == TCP and plain["role"] == ROLE_TARGET:
            self.confirmations.group_answered(plain["group"])  # confirm its failures again
        return plain


def run_targets(
    target_lists: list[TargetList],
    options: RunOptions,
    *,
    signer: Any | None = None,
    on_progress: Callable[[int], None] | None = None,
    sink_factory: Callable[[Path, str], RecordSink] | None = None,
    probes: Probes | None = None,
    stop: StopRequest | None = None,
) -> RunResult:
    """Run a whole measurement and write its result file; the library entry point of `run`.

    `probes` replaces the real probes (tests); `stop` lets the caller end the run early (the CLI
    calls `stop.stop("SIGTERM")` from its signal handler): the file is then closed with a signed
    `signal` checkpoint.
    """
    runner = Runner(target_lists, options, on_progress=on_progress, probes=probes)
    started = datetime.now(UTC)
    run_id = uuid.uuid4().hex
    header = build_header(
        target_lists, options, runner.probe_resolvers, runner.control_resolvers, started, run_id
    )
    stem = file_stem(started, options.vantage)
    if sink_factory is None:
        from netprobe.evidence.writer import ResultWriter

        sink: RecordSink = ResultWriter(
            options.out_dir,
            stem,
            signer=signer,
            checkpoint_every=options.checkpoint_every,
            checkpoint_seconds=options.checkpoint_seconds,
        )
    else:
        sink = sink_factory(options.out_dir, stem)
    began = time.monotonic()
    with sparse_gc():
        interrupted = loop.run(runner.run(sink, cast(dict[str, Any], header), stop))
    summary_record = new_record(
        SUMMARY,
        finished_at=format_utc(datetime.now(UTC)),
        duration=round(time.monotonic() - began, 3),
        interrupted=interrupted,
        **runner.summary.to_record_fields(),
    )
    reason = "signal" if interrupted and interrupted != DEADLINE else "end"
    path = sink.close(summary_record, reason=reason)
    return RunResult(path=path, summary=runner.summary, interrupted=interrupted)


__all__ = [
    "CONFIRM_BACKLOG",  # re-exported from netprobe.run.confirm
    "SILENT_QUORUM",  # re-exported from netprobe.run.confirm
    "DEFAULT_CONTROL_RESOLVERS",  # re-exported from netprobe.run.header
    "RunOptions",
    "RunResult",
    "Runner",
    "StopRequest",  # re-exported from netprobe.run.stop
    "run_targets",
    "select_addresses",  # re-exported from netprobe.run.planner
    "file_stem",
    "count_jobs",  # re-exported from netprobe.run.planner
    "resolve_option_resolvers",  # re-exported from netprobe.run.header
]
