"""The request that ends a run early (a signal, the CLI's business); see `netprobe.run.executor`.

Rules: `stop()` is safe from a signal handler or any thread and never blocks; the first reason
wins. The executor attaches its loop while a run is on and detaches it after.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class StopRequest:
    """Asks a run to stop early, with a reason (a signal name such as "SIGTERM").

    `stop()` may be called from a signal handler, another thread or the run's own loop, before
    or during the run; the first reason wins and later calls do nothing. No lock is taken (a
    signal handler could interrupt its holder): each side writes its field, then reads the other.
    """

    def __init__(self) -> None:
        self.reason: str | None = None
        self._wake: Callable[[str], None] | None = None

    def stop(self, reason: str) -> None:
        """Request the stop; returns at once (the run winds down on its own event loop)."""
        if self.reason is not None:
            return
        self.reason = reason
        wake = self._wake
        if wake is not None:
            wake(reason)

    def _attach(self, loop: asyncio.AbstractEventLoop, halt: Callable[[str], None]) -> None:
        """Called by the executor in its loop; `halt` may then be called more than once."""

        def wake(reason: str) -> None:
            try:
                loop.call_soon_threadsafe(halt, reason)
            except RuntimeError:
                pass  # the loop has closed: the run is over, there is nothing left to stop

        self._wake = wake
        if self.reason is not None:
            halt(self.reason)  # requested before the run started: stop at once

    def _detach(self) -> None:
        self._wake = None
