"""Retention for `netprobe run --keep-days N`: delete result files older than N days.

Rules:
- Only finished result files are candidates: names `<%Y%m%dT%H%M%SZ>_<vantage>.jsonl` (and their
  detached `.jsonl.sig` and timestamp `.jsonl.tsr`) directly inside `out_dir`, as `netprobe.evidence.format.RESULT_NAME`
  spells them. The age comes from the UTC start time in the name, not from mtime (copies and
  backups change mtime).
- Never touched: `.partial` files (a live or killed run), the lock file, logs, sub-folders and
  anything else whose name does not match.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from netprobe.evidence.format import RESULT_NAME, result_start_time

__all__ = ["RESULT_NAME", "prune_results", "result_start_time"]


def prune_results(out_dir: Path, keep_days: float, *, now: datetime | None = None) -> list[Path]:
    """Delete result files (and their `.sig`) that started more than `keep_days` ago.

    Returns the deleted paths, sorted. `keep_days` must be positive.
    """
    if not keep_days > 0:
        raise ValueError(f"keep_days must be a positive number of days, got {keep_days!r}")
    cutoff = (now or datetime.now(UTC)) - timedelta(days=keep_days)
    deleted: list[Path] = []
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return deleted
    for path in sorted(out_dir.iterdir()):
        started = result_start_time(path.name)
        if started is None or started >= cutoff or not path.is_file():
            continue
        path.unlink(missing_ok=True)
        deleted.append(path)
    return deleted
