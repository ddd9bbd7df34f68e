"""Helpers shared by CLI commands: consoles, errors, formats and exit codes.

Rules: human output goes to stdout through `out`; progress, warnings and errors go to stderr
through `err`. A bad input ends the command with `fail()`, never with a traceback.
"""

from __future__ import annotations

import enum
import os
import sys
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

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
out = Console(soft_wrap=True, emoji=False, width=_piped_width)
err = Console(stderr=True, soft_wrap=True, emoji=False)


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

    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()
