"""The event loop a run uses: uvloop when it is installed (the `fast` extra), else asyncio's own.

Rules:
- uvloop is optional: every code path works on the standard loop, and the tests run on both.
- `NETPROBE_EVENT_LOOP=asyncio` forces the standard loop (to compare, or to rule uvloop out when
  chasing a bug); `uvloop` requires it (an error if it is missing). Unset: uvloop if importable.
- The loop is chosen per run: nothing here installs a global event-loop policy.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

ENV = "NETPROBE_EVENT_LOOP"
ASYNCIO, UVLOOP = "asyncio", "uvloop"

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's `new_event_loop`, or None for asyncio's default (see the module rules)."""
    wanted = os.environ.get(ENV, "").strip().lower()
    if wanted == ASYNCIO:
        return None
    try:
        import uvloop
    except ImportError:
        if wanted == UVLOOP:
            raise RuntimeError(f"{ENV}=uvloop, but uvloop is not installed") from None
        return None
    return uvloop.new_event_loop  # type: ignore[no-any-return]


def loop_name() -> str:
    """`uvloop` or `asyncio`: the loop `run` would use now."""
    return ASYNCIO if loop_factory() is None else UVLOOP


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)` on the chosen loop."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)
