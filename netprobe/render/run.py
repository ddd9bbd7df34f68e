"""Rendering of `netprobe run`'s closing summary (rich)."""

from __future__ import annotations

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
