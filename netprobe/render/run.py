"""Rendering of `netprobe run`: the progress bar, the closing summary (rich) and its warnings.

Rules: rendering only; the CLI decides where things go (`run_document` is the `--format json`
document, `run_warnings` the lines for stderr, the same ones as the document's `warnings`). The
warnings are, in order: an interrupted run, each control that answered nothing (`RunTally.
control_problems`), a vantage point where no control worked.
The closing summary (`run_renderables`) reads top-down: first the controls and the vantage
health (every control resolver, control SNI and control target, never cut), then the targets
grouped by their group: a group whose targets all saw the same thing is one line (`web (3
targets, all alike)`), other groups list their targets under the group's name. Only target
rows are capped (`MAX_ROWS`, the rest is in `--format json`). A cell is green only when every
attempt worked (`ok`), yellow when some did (`ok 2/3`), red when none did or a silent address
answered (`fail: ...`, `injected`). Failure strings are never cut mid-word: when the table's
narrowest layout does not fit the console, each target is printed as a block, one layer a line.
The progress bar draws only when enabled (a terminal, no --quiet). The JSON document and the
warnings, which need no rich, are `netprobe.render.run_plain`'s (re-exported here).
"""

from __future__ import annotations

import time
from typing import Any

from rich import box
from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from netprobe.model.vocabulary import LAYERS, ROLE_CONTROL
from netprobe.render.run_plain import run_document as run_document
from netprobe.render.run_plain import run_warnings as run_warnings
from netprobe.run.tally import (
    STATE_FAILED,
    STATE_INJECTED,
    STATE_NONE,
    STATE_OK,
    ControlCount,
    RunTally,
    TargetCount,
)

MAX_ROWS = 60
LABEL_MAX = 40  # a longer target id folds rather than squeeze the layer columns
TITLE = "Reachability seen in this run (verdicts: netprobe report FILE)"


def shown_layers(summary: RunTally) -> tuple[str, ...]:
    """dns, tcp and tls always; a later layer (mtproto, http, throughput) when a target has it."""
    present = {layer for target in summary.targets.values() for layer in target.layers}
    return tuple(layer for i, layer in enumerate(LAYERS) if i < 3 or layer in present)


def _edges(layers: tuple[str, ...]) -> int:
    return 1 + len(layers) + 1  # SIMPLE_HEAD: an edge a side, a blank between columns


def _states(target: TargetCount, layers: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(
        target.layers[layer].state() if layer in target.layers else STATE_NONE for layer in layers
    )


def summary_rows(summary: RunTally) -> tuple[list[tuple[str, tuple[str, ...]]], list[Any], int]:
    """(control rows, target rows, hidden target rows). A target row is (label, states) or a
    group heading (label, None); labels are rich markup. States follow `shown_layers`."""
    layers = shown_layers(summary)
    controls = [
        (escape(t.target_id), _states(t, layers))
        for t in summary.targets.values()
        if t.role == ROLE_CONTROL
    ]
    groups: dict[str, list[TargetCount]] = {}
    for target in summary.targets.values():
        if target.role != ROLE_CONTROL:
            groups.setdefault(target.group, []).append(target)
    rows: list[Any] = []
    for group, members in groups.items():
        states = {_states(t, layers) for t in members}
        if len(members) > 1 and len(states) == 1:
            label = f"[bold]{escape(group)}[/] ({len(members)} targets, all alike)"
            rows.append((label, states.pop()))
            continue
        rows.append((f"[bold]{escape(group)}[/]", None))
        rows += [(f"  {escape(t.target_id)}", _states(t, layers)) for t in members]
    hidden = max(0, len(rows) - MAX_ROWS)
    return controls, rows[:MAX_ROWS], hidden


def _count_line(kind: str, name: str, count: ControlCount, noun: str) -> str:
    style = "green" if count.answered == count.attempts else "yellow" if count.answered else "red"
    line = f"{kind} {escape(name)}: [{style}]{count.answered}/{count.attempts} {noun} answered[/]"
    if count.failures:
        line += f" ({escape(count.top_failures())})"
    return line


def health_lines(summary: RunTally) -> list[str]:
    """The vantage health and every control's count, one markup line each."""
    problem = summary.vantage_problem()
    if problem:
        lines = [f"[bold red]vantage point:[/] {escape(problem)}"]
    else:
        lines = [
            "[bold]vantage point:[/] [green]healthy[/] (a control lookup or connection worked)"
        ]
    for address, count in summary.resolver_controls.items():
        lines.append(_count_line("control resolver", address, count, "lookups"))
    for name, count in summary.sni_controls.items():
        lines.append(_count_line("control SNI", name, count, "handshakes"))
    endpoints = summary.control_endpoints
    if endpoints.attempts:
        style = "green" if not endpoints.failures else "yellow" if endpoints.ok else "red"
        lines.append(
            f"control endpoints: [{style}]{endpoints.ok}/{endpoints.attempts} connections made[/]"
        )
    if summary.control_problems():
        lines.append("[yellow]some controls failed: see the warnings below[/]")
    return lines


def _label_width(rows: list[Any]) -> int:
    return min(LABEL_MAX, max(Text.from_markup(label).cell_len for label, _ in rows))


def _table(rows: list[Any], title: str | None, width: int, layers: tuple[str, ...]) -> Table:
    """The table, its column widths set so that no word of a state is cut (`_fits` first)."""
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left")
    table.add_column("target", overflow="fold", width=_label_width(rows))
    for layer, layer_width in zip(layers, _layer_widths(rows, width, layers), strict=True):
        table.add_column(layer, width=layer_width)
    for label, states in rows:
        cells = [""] * len(layers) if states is None else [cell_markup(s) for s in states]
        table.add_row(label, *cells)
    return table


def _layer_widths(rows: list[Any], width: int, layers: tuple[str, ...]) -> list[int]:
    """Each layer column's width: its longest word, then the room left shared out, a column
    never wider than its longest state."""
    widths = [_layer_width(rows, index, layers) for index in range(len(layers))]
    wanted = [
        max([len(layers[i]), *(len(states[i]) for _, states in rows if states)])
        for i in range(len(layers))
    ]
    room = width - _edges(layers) - (_label_width(rows) + 2) - sum(w + 2 for w in widths)
    while room > 0 and any(w < t for w, t in zip(widths, wanted, strict=True)):
        for i in range(len(widths)):
            if room > 0 and widths[i] < wanted[i]:
                widths[i] += 1
                room -= 1
    return widths


def _longest_word(texts: list[str]) -> int:
    return max((len(word) for text in texts for word in text.split()), default=1)


def _fits(rows: list[Any], width: int, layers: tuple[str, ...]) -> bool:
    """Whether the table fits with no target label folded and no failure word cut: each
    column as wide as its longest word (the labels whole), plus rich's padding of 1 a side
    and the box's separators."""
    needed = _label_width(rows) + 2
    for index in range(len(layers)):
        needed += _layer_width(rows, index, layers) + 2
    return needed + _edges(layers) <= width


def _layer_width(rows: list[Any], index: int, layers: tuple[str, ...]) -> int:
    """The longest word of a layer column (its name included)."""
    return _longest_word([layers[index], *(states[index] for _, states in rows if states)])


def _blocks(rows: list[Any], title: str | None, layers: tuple[str, ...]) -> Table:
    """The narrow layout: a target (or group) line, then one indented line per layer."""
    grid = Table.grid()
    grid.add_column(overflow="fold")
    if title:
        grid.add_row(f"[italic]{escape(title)}[/]")
    for label, states in rows:
        grid.add_row(label)
        lines = Table.grid(padding=(0, 1))
        lines.add_column(width=10, justify="right")
        lines.add_column()
        for layer, state in zip(layers, states or (), strict=False):
            if state != STATE_NONE:
                lines.add_row(layer, cell_markup(state))
        if lines.row_count:
            grid.add_row(lines)
    return grid


def run_renderables(summary: RunTally, width: int = 80) -> list[RenderableType]:
    """The closing summary for a console `width` columns wide (see the module rules)."""
    controls, rows, hidden = summary_rows(summary)
    health = Table.grid()  # a grid wraps at spaces, even on a soft-wrapping console
    health.add_column(overflow="fold")
    health.add_row(f"[italic]{escape(TITLE)}[/]")
    health.add_row("[bold underline]Controls and vantage health[/]")
    for line in health_lines(summary):
        health.add_row(line)
    parts: list[RenderableType] = [health]
    for title, these in (("control targets", controls), ("targets by group", rows)):
        if not these:
            continue
        layers = shown_layers(summary)
        fits = _fits(these, width, layers)
        parts.append(_table(these, title, width, layers) if fits else _blocks(these, title, layers))
    if hidden:
        note = Table.grid()
        note.add_column()
        note.add_row(f"{hidden} more target rows not shown; --format json lists every target")
        parts.append(note)
    return parts


def run_table(summary: RunTally, width: int = 80) -> Group:
    """The closing summary as one renderable (`run_renderables` in a group)."""
    return Group(*run_renderables(summary, width))


def cell_markup(state: str) -> str:
    text = escape(state)  # a failure string may hold brackets
    if state == STATE_OK:
        return f"[green]{text}[/]"
    if state.startswith(STATE_OK):
        return f"[yellow]{text}[/]"
    if state.startswith(STATE_FAILED) or state == STATE_INJECTED:
        return f"[red]{text}[/]"
    return text


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
