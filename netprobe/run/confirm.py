"""The run's confirmations: which failed steps are re-probed, and the re-probes themselves.

Rules (the executor's "Confirmation" rules, netprobe/run/executor.py, kept here):
- A record is confirmed when it needs it (`planner.needs_confirmation`), `confirm` > 0 and some
  control has worked so far (the vantage health of the records seen): its step is re-probed
  `confirm` times, each `confirm_spacing` s after the previous one finished, with the same
  `attempt` and `confirmation: k` (the re-probe is the runner's `probe` callable).
- At most `CONFIRM_BACKLOG` x `concurrency` steps wait for confirmation at once: `begin` waits
  for room first (back-pressure on the job that asks).
- A silent range stays proportionate: once `SILENT_QUORUM` failed TCP connects of a group in a
  row are confirmed or being confirmed, with no connect of the group working since
  (`group_answered`), its further failed connects are not re-probed; the next working connect
  of the group resumes confirmation.
- The confirmations' tasks are `tasks`: the runner waits for them before the end control round
  and cancels them when the run is stopped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from netprobe.model.records import CONFIRMATION, TCP
from netprobe.options import RunOptions
from netprobe.probes import ProbeContext
from netprobe.run.aio import sleep_at_least
from netprobe.run.planner import Step, needs_confirmation
from netprobe.run.tally import RunTally

# Steps waiting for their confirmations, at most, per unit of concurrency (see the rules).
CONFIRM_BACKLOG = 4
# A group's failed TCP connects are confirmed until this many in a row, with no working connect
# in the group since, are confirmed or being confirmed; then no more until one works (rules).
SILENT_QUORUM = 16

Labels = tuple[tuple[str, Any], ...]
# The runner's re-probe: one probe of `step` with these labels, written and counted.
Reprobe = Callable[[ProbeContext, Step, Labels], Awaitable[Any]]


class Confirmations:
    """One run's confirmations (see the module rules)."""

    def __init__(self, options: RunOptions, summary: RunTally, reprobe: Reprobe) -> None:
        self.options = options
        self.summary = summary
        self._reprobe = reprobe
        self.tasks: set[asyncio.Task[None]] = set()
        # Per group: TCP steps confirmed (or being confirmed) since its last connect that worked.
        self._silent_streak: dict[str, int] = {}
        self._slots = asyncio.Semaphore(CONFIRM_BACKLOG * max(1, options.concurrency))

    def group_answered(self, group: str) -> None:
        """A target connect of `group` worked: its failed connects are confirmed again."""
        self._silent_streak[group] = 0

    async def later(self, ctx: ProbeContext, step: Step, record: dict[str, Any]) -> None:
        """Start the confirmations of `record`'s step if it needs them."""
        if self.wanted(record):
            await self.begin(ctx, step)

    def wanted(self, record: dict[str, Any]) -> bool:
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

    async def begin(self, ctx: ProbeContext, step: Step) -> None:
        """Start `step`'s confirmations once the backlog has room (back-pressure on the job)."""
        await self._slots.acquire()  # back-pressure: a bounded backlog
        task = asyncio.ensure_future(self._confirm(ctx, step))
        self.tasks.add(task)
        task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        self._slots.release()

    async def _confirm(self, ctx: ProbeContext, step: Step) -> None:
        """Re-probe `step` `confirm` times, each `confirm_spacing` s after the previous one."""
        for k in range(1, self.options.confirm + 1):
            await sleep_at_least(self.options.confirm_spacing)
            await self._reprobe(ctx, step, ((CONFIRMATION, k),))
