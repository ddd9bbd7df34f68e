"""Rendering of `netprobe run`: the progress bar, the closing summary (rich) and its warnings.

Rules: rendering only; the CLI decides where things go (`run_document` is the `--format json`
document, `run_warnings` the lines for stderr). The progress bar draws only when enabled (a
terminal, no --quiet).
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from netprobe.model.vocabulary import LAYERS
from netprobe.run.tally import STATE_FAILED, STATE_NONE, STATE_OK, RunTally

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
    if len(rows) > MAX_ROWS:
        table.caption = f"{len(rows) - MAX_ROWS} more targets not shown; use --format json for all"
    return table


def _cell(state: str) -> str:
    if state.startswith(STATE_OK):
        return f"[green]{state}[/]"
    if state.startswith(STATE_FAILED):
        return f"[red]{state}[/]"
    return state


def run_document(result: Any) -> dict[str, Any]:
    """The `--format json` summary of a finished run (`result`: executor's RunResult)."""
    return {"path": str(result.path), "interrupted": result.interrupted, **result.summary.to_dict()}


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
        return lambda done: self._bar.update(task, completed=done)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
