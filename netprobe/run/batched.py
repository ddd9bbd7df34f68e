"""The executor's batched pool: plain connects started in the batch engine, one feeding coroutine.

Rules (the executor's "Plain connects" rule, netprobe/run/executor.py):
- One feeding coroutine (`_feed`, its state a `netprobe.run.feed.Feed`) takes a pool's jobs in
  order and keeps at most `concurrency` open: each plain connect (`RunPlan.plain_connect`)
  starts in the engine (`Probes.tcp_batch`) under the run's semaphore with no coroutine of its
  own, any other job runs as a task (`Runner._job`).
- A connect's record comes back to `_connected`, which handles it as `Runner._probe` handles a
  record (labels, sink, tally, silent streak, confirmation): the file is the same, only the
  order of records finishing together may differ.
- A sink that can hold lines (`ResultWriter.hold`/`flush`) holds the records of one loop
  wake-up and writes them once the wake-up's callbacks have run (`_flush_held`, scheduled by
  the first of them): one write for up to `concurrency` records, and a failed write fails the
  pool like any other error of a callback.
- `BatchedPool` is a mixin of `Runner`: its methods share the runner's state, declared below.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterator
from typing import Any

from netprobe.options import RunOptions
from netprobe.probes import ProbeContext, TcpBatchEngine
from netprobe.run.confirm import Confirmations, Labels
from netprobe.run.feed import Feed
from netprobe.run.planner import Job, RunPlan, Step


class BatchedPool:
    """`Runner._pool` with the batch engine (see the module rules)."""

    # The runner's state (netprobe.run.executor.Runner sets it).
    options: RunOptions
    plan: RunPlan
    confirmations: Confirmations
    on_progress: Callable[[int], None]
    _batch: TcpBatchEngine | None
    _semaphore: asyncio.Semaphore | None
    _run_start: float
    _done: int
    _hold: Callable[[], None] | None  # the sink's `hold`, if it has one
    _flush: Callable[[], None] | None
    _holding: bool  # a flush of held records is scheduled

    async def _job(self, job: Job) -> None:
        raise NotImplementedError  # the runner's: a job's tasks and follow-ups

    def _recorded(self, step: Step, labels: Labels, record: Any) -> dict[str, Any]:
        raise NotImplementedError  # the runner's: label, write and count a record

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
            if plain["failure"] is not None and self.confirmations.wanted(plain):
                begin = asyncio.ensure_future(self.confirmations.begin(ctx, step))
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
