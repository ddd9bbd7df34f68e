"""Rendering of `netprobe run`: the progress bar, the closing summary (rich) and its warnings.

Rules: rendering only; the CLI decides where things go (`run_document` is the `--format json`
document, `run_warnings` the lines for stderr, the same ones as the document's `warnings`). The
warnings are, in order: an interrupted run, each control that answered nothing (`RunTally.
control_problems`), a vantage point where no control worked. The table colours a layer green
only when every attempt worked (`ok`), yellow when some did (`ok 2/3`), red when none did or a
silent address answered (`fail: ...`, `injected`); when a control failed, its caption points at
the warnings. The progress bar draws only when enabled (a terminal, no --quiet).
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from netprobe.model.vocabulary import LAYERS
from netprobe.run.tally import STATE_FAILED, STATE_INJECTED, STATE_NONE, STATE_OK, RunTally

MAX_ROWS = 60


def run_table(summary: RunTally) -> Table:
    """One row per target: what each layer saw. Long runs show the first rows and a count."""
    table = Table(title="Reachability seen in this run (verdicts: netprobe report FILE)")
    table.add_column("target", overflow="fold")
    table.add_column("group")
    table.add_column("role")
    for layer in LAYERS:
        table.add_column(layer)
    rows = list(summary.targets.values())
    for target in rows[:MAX_ROWS]:
        cells = [
            _cell(target.layers[layer].state()) if layer in target.layers else STATE_NONE
            for layer in LAYERS
        ]
        table.add_row(escape(target.target_id), escape(target.group), target.role, *cells)
    captions = []
    if len(rows) > MAX_ROWS:
        captions.append(f"{len(rows) - MAX_ROWS} more targets not shown; use --format json for all")
    if summary.control_problems():
        captions.append("[yellow]some controls failed: see the warnings below[/]")
    if captions:
        table.caption = "\n".join(captions)
    return table


def _cell(state: str) -> str:
    text = escape(state)  # a failure string may hold brackets
    if state == STATE_OK:
        return f"[green]{text}[/]"
    if state.startswith(STATE_OK):
        return f"[yellow]{text}[/]"
    if state.startswith(STATE_FAILED) or state == STATE_INJECTED:
        return f"[red]{text}[/]"
    return text


def run_document(result: Any) -> dict[str, Any]:
    """The `--format json` summary of a finished run (`result`: executor's RunResult)."""
    return {
        "path": str(result.path),
        "interrupted": result.interrupted,
        **result.summary.to_dict(),
        "warnings": run_warnings(result),
    }


def run_warnings(result: Any) -> list[str]:
    """What the user must be told about a finished run, in order (possibly nothing)."""
    warnings = []
    if result.interrupted == "deadline":
        warnings.append(
            "the run reached its --deadline before every probe finished; the file holds what was measured"
        )
    elif result.interrupted:
        warnings.append(
            f"stopped by {result.interrupted}; the file is closed and signed up to the stop"
        )
    warnings += result.summary.control_problems()
    problem = result.summary.vantage_problem()
    if problem:
        warnings.append(problem)
    return warnings


class progress_bar:
    """A rich progress bar on `console`, or nothing (disabled); yields `on_progress(done)`."""

    def __init__(self, console: Console, *, enabled: bool, total: int) -> None:
        self.console, self.enabled, self.total = console, enabled, total
        self._bar: Any = None

    def __enter__(self) -> Any:
        if not self.enabled:
            return None
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._bar = Progress(
            TextColumn("probing"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )
        self._bar.start()
        task = self._bar.add_task("probing", total=self.total)
        shown = [0.0]  # when the bar was last updated

        def on_progress(done: int) -> None:
            # Called once per job: at most 10 redraws a second (rich's refresh rate), and the last.
            now = time.monotonic()
            if now - shown[0] >= 0.1 or done >= self.total:
                shown[0] = now
                self._bar.update(task, completed=done)

        return on_progress

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
