"""Helpers shared by CLI commands: consoles, errors, formats and exit codes.

Rules: human output goes to stdout through `out`; progress, warnings and errors go to stderr
through `err`. A bad input ends the command with `fail()`, never with a traceback.
"""

from __future__ import annotations

import enum
import os
import sys
from typing import TYPE_CHECKING, Any, NoReturn, cast

import typer

if TYPE_CHECKING:
    from rich.console import Console

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_UNJUDGED = 6  # diff: a run's vantage was unhealthy, so nothing could be judged
EXIT_UNTRUSTED = 7  # report/diff: a file's signer is not in the trust store (issue 11)
EXIT_NO_TIMESTAMP = 8  # run/timestamp: the file is fine, but no TSA token could be had

# No emoji: ":100:" inside an IPv6 address is not one. When stdout is not a terminal (a file, a
# pipe, cron mail) tables get 160 columns instead of rich's 80, so target ids are not cut short;
# $COLUMNS still wins.
_piped_width = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 160


class _LazyConsole:
    """A rich `Console` made on first use: importing rich costs `--version` and `--help` ~30 ms."""

    __slots__ = ("_kwargs", "_console")  # no __dict__: every other attribute is the console's

    def __init__(self, **kwargs: Any) -> None:
        object.__setattr__(self, "_kwargs", kwargs)
        object.__setattr__(self, "_console", None)

    def _real(self) -> Console:
        console = object.__getattribute__(self, "_console")
        if console is None:
            from rich.console import Console

            console = Console(**object.__getattribute__(self, "_kwargs"))
            object.__setattr__(self, "_console", console)
        return cast("Console", console)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # e.g. `__dict__`: this proxy has none, and says so
            raise AttributeError(name)
        return getattr(self._real(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._real(), name, value)


out = cast("Console", _LazyConsole(soft_wrap=True, emoji=False, width=_piped_width))
err = cast("Console", _LazyConsole(stderr=True, soft_wrap=True, emoji=False))


def escape(text: str) -> str:
    """rich's `escape` (markup-safe text), importing rich only when something is printed."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


class OutputFormat(enum.StrEnum):
    table = "table"
    json = "json"


class ReportFormat(enum.StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"


def default(text: str) -> str:
    """` [default: text]` for a help string whose default is a rule, not a value (typer shows
    plain values itself); `\\[` keeps rich from reading it as markup."""
    return f" \\[default: {text}]"


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print `netprobe: error: message` on stderr and exit with `code`."""
    err.print(f"[bold red]netprobe: error:[/] {escape(message)}", markup=True, highlight=False)
    raise typer.Exit(code)


def warn(message: str) -> None:
    err.print(f"[yellow]netprobe: warning:[/] {escape(message)}", markup=True, highlight=False)


def print_json(data: object) -> None:
    """Write JSON to stdout without rich markup or wrapping (safe for jq)."""
    import json

    # The same text as json.dumps(data, indent=2, ensure_ascii=False), written in pieces: the
    # document of a 34k-record run is ~1 million small strings before it is joined.
    write, pending = sys.stdout.write, []
    for chunk in json.JSONEncoder(indent=2, ensure_ascii=False).iterencode(data):
        pending.append(chunk)
        if len(pending) >= 8192:
            write("".join(pending))
            pending.clear()
    write("".join(pending) + "\n")
    sys.stdout.flush()
