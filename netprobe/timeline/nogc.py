"""`paused_gc()`: no cyclic garbage collection inside a block of a timeline's hot work.

Rules:
- Only around work that makes many container objects but no reference cycles worth finding:
  reading and analysing one file (thousands of fresh records and verdicts, all freed at the end)
  and building the report (a million hourly `Sample` tuples). There the collector ran every 700
  new containers and found nothing: ~5 % of a worker's time and ~30 % of `build()`'s.
- GC is enabled again on leaving only if it was enabled on entering; the collector then runs as
  usual, so a cycle made inside the block is still collected afterwards.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_gc() -> Iterator[None]:
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()
