"""Probe kinds. Each module holds one coroutine and one record type (docs/DESIGN.md).

Rules: a probe never raises for a network failure; it returns a record whose `failure` holds an
OONI failure string (see `netprobe.model.failures`). It raises only on bad input or bugs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from netprobe.model import records


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

    def record(
        self,
        kind: str,
        *,
        t0: float,
        failure: str | None,
        failed_operation: str | None,
        **fields: Any,
    ) -> dict[str, Any]:
        """The finished measurement record of this attempt: common fields, then `fields`."""
        return records.measurement(
            kind,
            target_id=self.target_id,
            group=self.group,
            role=self.role,
            attempt=self.attempt,
            t0=t0,
            t=self.now(),
            failure=failure,
            failed_operation=failed_operation,
            **fields,
        )
