"""Probe kinds. Each module holds one coroutine and one record type (docs/DESIGN.md).

Rules: a probe never raises for a network failure; it returns a record whose `failure` holds an
OONI failure string (see `netprobe.failures`). It raises only on bad input or bugs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True)
class ProbeContext:
    """What a probe needs to label its record; the runner makes one per attempt."""

    target_id: str
    group: str
    role: str  # "target" | "control"
    attempt: int
    run_start: float  # time.monotonic() at the start of the run

    def now(self) -> float:
        """Seconds since the run start (the `t0`/`t` clock)."""
        return time.monotonic() - self.run_start
