"""The HTML timeline's time axis: times to percentages of the page width, and labelled ticks.

Rules: pure (text in, text out); every time is UTC; at most `MAX_TICKS` ticks, on round hours or
days (`TICK_HOURS`); the first and last label are kept inside the axis (no overflow).
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from typing import Any

TICK_HOURS = (1, 2, 3, 6, 12, 24, 48, 72, 168, 336, 720, 1440, 2160, 4320, 8760)
MAX_TICKS = 8


def seconds(iso_time: Any) -> float | None:
    if not isinstance(iso_time, str):
        return None
    try:
        return datetime.fromisoformat(iso_time.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def minute(iso_time: Any) -> str:
    return str(iso_time)[:16].replace("T", " ") if iso_time else "start of data"


def iso_of(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Axis:
    """The shared time axis: seconds to a percentage of the width."""

    def __init__(self, start: float, end: float) -> None:
        self.start, self.span = start, max(end - start, 1.0)

    def at(self, seconds: float) -> float:
        return max(0.0, min(100.0, (seconds - self.start) / self.span * 100.0))

    def box(self, start: float, end: float, *, seam: bool = False) -> str:
        """`left:..%;width:..%`; `seam` adds a pixel so neighbouring cells show no hairline."""
        left, width = self.at(start), max(self.at(end) - self.at(start), 0.0)
        return f"left:{left:.3f}%;width:" + (
            f"calc({width:.3f}% + 1px)" if seam else f"{width:.3f}%"
        )

    def ticks(self) -> str:
        hours = self.span / 3600.0
        step = next((h for h in TICK_HOURS if hours / h <= MAX_TICKS), TICK_HOURS[-1]) * 3600
        first = (self.start // step + (1 if self.start % step else 0)) * step
        marks = [first + i * step for i in range(int((self.start + self.span - first) // step) + 1)]
        out = []
        for moment in marks:
            when = datetime.fromtimestamp(moment, UTC)
            label = when.strftime("%Y-%m-%d") if step >= 86400 else when.strftime("%m-%d %H:%M")
            edge = " first" if self.at(moment) < 8 else " last" if self.at(moment) > 92 else ""
            out.append(
                f'<span class="tick{edge}" style="left:{self.at(moment):.3f}%">'
                f"<b>{escape(label)}</b></span>"
            )
        return "".join(out)
