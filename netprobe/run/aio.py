"""Small asyncio and interpreter helpers of the run (netprobe/run/executor.py).

Rules: no state of their own; each says why the plain library call is not enough.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import Awaitable, Iterator
from typing import Any

# ~2,500 connects' worth of containers between passes: a few MB at most (`sparse_gc`).
GC_GEN0 = 20_000


async def sleep_at_least(seconds: float) -> None:
    """Sleep `seconds` by the monotonic clock: uvloop's timers run on a millisecond clock cached
    per loop iteration, so a plain `asyncio.sleep` there can end a fraction of a millisecond
    early, and a pause or spacing is a promise about the wire."""
    until = time.monotonic() + seconds
    await asyncio.sleep(seconds)
    while (left := until - time.monotonic()) > 0:
        await asyncio.sleep(left + 0.0005)


async def together(awaitables: list[Awaitable[Any]]) -> list[Any]:
    """`asyncio.gather`, without its task and future for the common job of one step (a sweep)."""
    if len(awaitables) == 1:
        return [await awaitables[0]]
    return await asyncio.gather(*awaitables)


def task_records(result: dict[str, Any] | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A task's records: a step's one, a chain's list."""
    return result if isinstance(result, list) else [result]


@contextlib.contextmanager
def sparse_gc() -> Iterator[None]:
    """The cyclic collector runs less often during the run (`GC_GEN0` new containers, not 700).

    A sweep makes ~8 container objects per connect (record, context, callbacks, tally) and no
    cycles: at the default threshold the collector ran ~170 times per 8,190 connects and took
    ~35-45 ms of ~0.9 CPU s, finding nothing. What start-up made (modules, typer's commands, the
    plan) is frozen out of the collections during the run. Cycles are still collected (an
    exception's traceback in a long run), only in larger batches; afterwards the threshold is
    restored and the frozen objects are collectable again (a library caller's garbage too).
    """
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(GC_GEN0, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
