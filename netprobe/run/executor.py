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
- Confirmation: when a record needs it (`planner.needs_confirmation`) and some control has
  worked so far (the vantage health of the records seen), its step is re-probed `confirm` times,
  each `confirm_spacing` s after the previous one finished, with the same `attempt` and
  `confirmation: k`. A chain's records are confirmed once the chain is over, so a re-sent target
  SNI cannot fall inside the chain's residual pause. At most `CONFIRM_BACKLOG` x `concurrency`
  steps wait for confirmation at once: beyond that, a job waits before taking the next target.
  A stopped run does not wait for them.
- Confirmation stays proportionate on a silent range: once `SILENT_QUORUM` failed TCP connects of
  a group in a row are confirmed or being confirmed, with no connect of the group (planned or
  re-probe) working since, the group's further failed connects are not re-probed (their planned
  failure stands, unconfirmed); the next working connect in the group resumes confirmation.
- Plain connects (`RunPlan.plain_connect`: an endpoint's lone TCP connect) go to the probes'
  batch engine (`Probes.tcp_batch`, `netprobe.probes.tcp_batch`) when there is one: one feeding
  coroutine (`_feed`, state in `netprobe.run.feed`) takes the jobs in order, keeps at most
  `concurrency` open, starts each plain connect under the same semaphore with no coroutine of
  its own, and runs any other job as a task. A connect's record is then handled as `_probe`
  handles one (labels, sink, tally, silent streak, confirmation), so the file is the same; only
  the order of records finishing together may differ. Without an engine: `concurrency` workers.
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
import functools
import gc
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, cast

from netprobe.model.records import CONFIRMATION, SUMMARY, TCP, format_utc, new_record
from netprobe.model.vocabulary import ROLE_TARGET
from netprobe.options import RunOptions
from netprobe.probes import ProbeContext, Probes, ProbeSettings, TcpBatchEngine, real_probes
from netprobe.run import loop
from netprobe.run.feed import Feed
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
    needs_confirmation,
    select_addresses,
)
from netprobe.run.stop import StopRequest
from netprobe.run.tally import RunTally
from netprobe.targets.lists import TargetList

# The reason a run that reached its deadline reports as `interrupted`.
DEADLINE = "deadline"
# Steps waiting for their confirmations, at most, per unit of concurrency (see the rules).
CONFIRM_BACKLOG = 4
# A group's failed TCP connects are confirmed until this many in a row, with no working connect
# in the group since, are confirmed or being confirmed; then no more until one works (rules).
SILENT_QUORUM = 16

Labels = tuple[tuple[str, Any], ...]


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


class Runner:
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
        self._confirming: set[asyncio.Task[None]] = set()
        # Per group: TCP steps confirmed (or being confirmed) since its last connect that worked.
        self._silent_streak: dict[str, int] = {}
        self._confirm_slots: asyncio.Semaphore | None = None
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
        self._confirm_slots = asyncio.Semaphore(CONFIRM_BACKLOG * max(1, self.options.concurrency))
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
            while self._confirming:
                await asyncio.gather(*list(self._confirming))
            await self._control_round(counted=True)
        finally:
            pending: list[asyncio.Future[None]] = [*self._confirming]
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

    async def _feed(self, jobs: Iterator[Job], *, counted: bool) -> None:
        """`_pool` with the batch engine: one coroutine takes the jobs in order and keeps at most
        `concurrency` of them open; a plain connect starts in the engine under the semaphore (its
        record comes back to `_connected`), any other job runs as a task of its own."""
        assert self._batch is not None and self._semaphore is not None
        batch, semaphore, plan, run_start = self._batch, self._semaphore, self.plan, self._run_start
        feed = Feed(counted, max(1, self.options.concurrency))
        try:
            for job in jobs:
                while feed.open >= feed.limit:
                    await feed.wait()
                feed.open += 1
                step = plan.plain_connect(job)
                if step is None:
                    feed.track(asyncio.ensure_future(self._job(job)), self._job_over)
                    continue
                await semaphore.acquire()
                target = job.target
                ctx = ProbeContext(
                    target.target_id, target.group, target.role, job.attempt, run_start
                )
                done = functools.partial(self._connected, feed, ctx, step, job.record_fields())
                try:
                    batch.start(ctx, step.ip, step.port, done)
                except BaseException:
                    semaphore.release()
                    raise
            while feed.open:
                await feed.wait()
        finally:
            feed.cancelled = True  # connects still in flight (a stopped run) record nothing
            if feed.tasks:
                for task in feed.tasks:
                    task.cancel()
                await asyncio.gather(*feed.tasks, return_exceptions=True)

    def _connected(
        self, feed: Feed, ctx: ProbeContext, step: Step, labels: Labels, record: Any
    ) -> None:
        """A plain connect's record from the batch engine: as `_probe` would handle it."""
        assert self._semaphore is not None
        self._semaphore.release()
        if feed.cancelled:
            return
        try:
            if self._hold is not None and not self._holding:
                # The records of this loop wake-up go to the file in one write (the writer's
                # rules), once the loop's other callbacks of the wake-up have run.
                self._hold()
                self._holding = True
                asyncio.get_running_loop().call_soon(self._flush_held, feed)
            plain = self._recorded(step, labels, record)
            if plain["failure"] is not None and self._wants_confirmation(plain):
                begin = asyncio.ensure_future(self._begin_confirmation(ctx, step))
                feed.track(begin, self._job_over)  # the job is over once its confirmations began
                return
            self._job_over(feed)
        except BaseException as exc:  # the sink failed, or a bug: the feeding coroutine raises it
            feed.fail(exc)

    def _flush_held(self, feed: Feed) -> None:
        """The held records of the last wake-up go out; a failed write fails the pool."""
        self._holding = False
        assert self._flush is not None
        try:
            self._flush()
        except BaseException as exc:
            feed.fail(exc)

    def _job_over(self, feed: Feed) -> None:
        if feed.counted:
            self._done += 1
            self.on_progress(self._done)
        feed.open -= 1
        feed.wake()

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
        results = await _together([self._task(ctx, task, labels) for task in first])
        if any(isinstance(task, Chain) for task in first):
            results = [r for result in results for r in _records(result)]
        follow_ups = self.plan.follow_up_steps(job, cast(list[dict[str, Any]], results))
        if follow_ups:
            await _together([self._task(ctx, task, labels) for task in follow_ups])

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
            await _sleep_at_least(chain.pause)
            records.append(await self._probe(ctx, chain.if_failed, labels, confirm=False))
            steps.append(chain.if_failed)
        elif chain.then and records[-1]["failure"] is None:
            # The throughput downloads after a working handshake: one chain's at a time.
            async with self.settings.downloads or contextlib.nullcontext():
                for step in chain.then:
                    records.append(await self._probe(ctx, step, labels, confirm=False))
                    steps.append(step)
        for step, record in zip(steps, records, strict=True):
            await self._confirm_later(ctx, step, record)
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
            await self._confirm_later(ctx, step, plain)
        return plain

    def _recorded(self, step: Step, labels: Labels, record: Any) -> dict[str, Any]:
        """A probe's record with its labels, written and counted; returned as a plain dict."""
        assert self._sink is not None
        plain = cast(dict[str, Any], record)  # the sink and the tally take plain dicts
        for key, value in step.record_fields():
            plain[key] = value
        for key, value in labels:
            plain[key] = value
        self._sink.write(plain)
        self.summary.add(plain)
        if plain["failure"] is None and plain["type"] == TCP and plain["role"] == ROLE_TARGET:
            self._silent_streak[plain["group"]] = 0  # the group answers: confirm again
        return plain

    async def _confirm_later(self, ctx: ProbeContext, step: Step, record: dict[str, Any]) -> None:
        """Start the confirmations of `record`'s step if it needs them (see the module rules)."""
        if self._wants_confirmation(record):
            await self._begin_confirmation(ctx, step)

    def _wants_confirmation(self, record: dict[str, Any]) -> bool:
        """Whether `record`'s step is to be confirmed now (counted in its group's silent streak)."""
        if (
            self.options.confirm <= 0
            or not needs_confirmation(record)
            or not self.summary.health.healthy
        ):
            return False
        if record["type"] == TCP:
            group = record["group"]
            streak = self._silent_streak.get(group, 0)
            if streak >= SILENT_QUORUM:
                return False  # the group looks wholly silent: enough of it is being confirmed
            self._silent_streak[group] = streak + 1
        return True

    async def _begin_confirmation(self, ctx: ProbeContext, step: Step) -> None:
        """Start `step`'s confirmations once the backlog has room (back-pressure on the job)."""
        assert self._confirm_slots is not None
        await self._confirm_slots.acquire()  # back-pressure: a bounded backlog
        task = asyncio.ensure_future(self._confirm(ctx, step))
        self._confirming.add(task)
        task.add_done_callback(self._confirmed)

    def _confirmed(self, task: asyncio.Task[None]) -> None:
        self._confirming.discard(task)
        assert self._confirm_slots is not None
        self._confirm_slots.release()

    async def _confirm(self, ctx: ProbeContext, step: Step) -> None:
        """Re-probe `step` `confirm` times, each `confirm_spacing` s after the previous one."""
        for k in range(1, self.options.confirm + 1):
            await _sleep_at_least(self.options.confirm_spacing)
            await self._probe(ctx, step, ((CONFIRMATION, k),), confirm=False)


async def _sleep_at_least(seconds: float) -> None:
    """Sleep `seconds` by the monotonic clock: uvloop's timers run on a millisecond clock cached
    per loop iteration, so a plain `asyncio.sleep` there can end a fraction of a millisecond
    early, and a pause or spacing is a promise about the wire."""
    until = time.monotonic() + seconds
    await asyncio.sleep(seconds)
    while (left := until - time.monotonic()) > 0:
        await asyncio.sleep(left + 0.0005)


async def _together(awaitables: list[Awaitable[Any]]) -> list[Any]:
    """`asyncio.gather`, without its task and future for the common job of one step (a sweep)."""
    if len(awaitables) == 1:
        return [await awaitables[0]]
    return await asyncio.gather(*awaitables)


def _records(result: dict[str, Any] | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A task's records: a step's one, a chain's list."""
    return result if isinstance(result, list) else [result]


@contextlib.contextmanager
def _sparse_gc() -> Iterator[None]:
    """The cyclic collector runs less often during the run (`_GC_GEN0` new containers, not 700).

    A sweep makes ~8 container objects per connect (record, context, callbacks, tally) and no
    cycles: at the default threshold the collector ran ~170 times per 8,190 connects and took
    ~35-45 ms of ~0.9 CPU s, finding nothing. What start-up made (modules, typer's commands, the
    plan) is frozen out of the collections during the run. Cycles are still collected (an
    exception's traceback in a long run), only in larger batches; afterwards the threshold is
    restored and the frozen objects are collectable again (a library caller's garbage too).
    """
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(_GC_GEN0, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


# ~2,500 connects' worth of containers between passes: a few MB at most.
_GC_GEN0 = 20_000


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
    with _sparse_gc():
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
