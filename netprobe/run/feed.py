"""The state of one batched pool of the executor (`Runner._feed`): its open jobs and tasks.

Rules:
- One feeding coroutine takes a pool's jobs in order and keeps at most `limit` of them open (a
  plain connect in the batch engine, or any other job as a task); it sleeps in `wait()` while
  the pool is full, and whatever ends a job calls `wake()` (at most one wake-up is pending).
- A job's task that raised, or a callback that failed (the sink's disk is full), is `fail`ed
  here and raised by the feeding coroutine's next `wait()`: an error is never lost in a loop
  callback.
- `cancelled` is set when the pool ends early: records of connects still in flight are then
  dropped, as a cancelled probe makes none.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


class Feed:
    """One `Runner._feed`'s state: its open jobs, its tasks, and its one wake-up at a time."""

    __slots__ = ("counted", "limit", "open", "tasks", "waiter", "error", "cancelled")

    def __init__(self, counted: bool, limit: int) -> None:
        self.counted = counted
        self.limit = limit
        self.open = 0  # jobs taken and not over yet
        self.tasks: set[asyncio.Future[Any]] = set()
        self.waiter: asyncio.Future[None] | None = None
        self.error: BaseException | None = None
        self.cancelled = False

    async def wait(self) -> None:
        """Until a job is over (or one failed: then its exception is raised here)."""
        if self.error is None:
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        if self.error is not None:
            raise self.error

    def wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
        self.wake()

    def track(self, task: asyncio.Future[Any], over: Callable[[Feed], None]) -> None:
        """`task` is an open job's: `over(self)` once it ends well, `fail` if it raised."""
        self.tasks.add(task)

        def ended(task: asyncio.Future[Any]) -> None:
            self.tasks.discard(task)
            if task.cancelled() or self.cancelled:
                return
            exc = task.exception()
            if exc is not None:
                self.fail(exc)
                return
            try:
                over(self)
            except BaseException as error:
                self.fail(error)

        task.add_done_callback(ended)
