"""`--help` reads like a well-kept CLI (issue 12): every command's help page, as a user sees it.

Each help page is rendered by the real CLI (a command's page is typer's rich help, 200 columns
wide; the top-level page is click's plain text): no Python type
names (`<bool>`, `<list[Path]>`, `<path>`, `{path}`), a metavariable for every option that takes a
value, a shown default for every option and argument that is not required, `-f` wherever there is
`--format`, and an example. The command list is in workflow order, one line per command.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from netprobe.cli import app
from netprobe.cli.app import COMMAND_ORDER

runner = CliRunner()
PYTHON_TYPES = re.compile(
    r"<(?:bool|int|integer|float|str|text|path|Path|list\[[^\]]*\]|dict|tuple|datetime)>"
    r"|\{[a-z_]+(?:\.\.\.)?\}|\{[A-Z_]+\}|list\[|\bNoneType\b"
)
METAVARIABLE = re.compile(r"^[A-Z][A-Z_]*(\.\.\.)?$|^[a-z]+(\|[a-z]+)+$")


def help_page(*words: str) -> str:
    done = runner.invoke(app, [*words, "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert done.exit_code == 0, done.output
    return done.output


def commands() -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []

    def walk(prefix: str, command: Any) -> None:
        found.append((prefix, command))
        for name, sub in getattr(command, "commands", {}).items():
            walk(f"{prefix} {name}".strip(), sub)

    walk("", typer.main.get_command(app))
    return found


COMMANDS = commands()


def takes_a_value(param: Any) -> bool:
    return not getattr(param, "is_flag", False) and not param.hidden


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=[n or "netprobe" for n, _ in COMMANDS])
def test_help_page_names_values_shows_defaults_and_has_an_example(name: str, command: Any) -> None:
    page = help_page(*name.split())
    assert not PYTHON_TYPES.findall(page), f"`netprobe {name} --help`: {PYTHON_TYPES.findall(page)}"
    assert "Example" in page, f"`netprobe {name} --help` has no example"
    params = [p for p in command.params if takes_a_value(p) and "--help" not in p.opts]
    for param in params:
        shown = page_metavar(param)
        assert shown and METAVARIABLE.match(shown), f"netprobe {name} {param.opts}: {shown!r}"
        if param.param_type_name == "option":
            assert shown in page, f"netprobe {name} {param.opts}: metavar {shown} not shown"
    optional = [p for p in params if not p.required]
    # typer prints `[default: ...]` for plain defaults; the help text spells out the others
    assert page.count("[default:") >= len(optional), f"`netprobe {name} --help` lacks defaults"
    for param in optional:
        plain = param.show_default and param.default not in (None, [], ())
        assert plain or "[default:" in (param.help or ""), f"netprobe {name} {param.opts}"
    formats = [p for p in command.params if "--format" in p.opts]
    assert all("-f" in p.opts for p in formats), f"`netprobe {name}`: --format without -f"


def page_metavar(param: Any) -> str | None:
    metavar = param.metavar
    return metavar.rstrip(".") + ("..." if metavar.endswith("...") else "") if metavar else None


def test_commands_are_listed_in_workflow_order_with_one_line_summaries() -> None:
    # The top-level page is click's plain text (cli/app.py): "  name  summary" rows. The real
    # CLI, as a 200-column terminal shows it (typer's CliRunner pins click's width to 80).
    page = subprocess.run(
        [sys.executable, "-m", "netprobe", "--help"],
        env={**os.environ, "COLUMNS": "200"}, capture_output=True, text=True, timeout=60,
        check=True,
    ).stdout  # fmt: skip
    assert "╭" not in page and "│" not in page
    commands_section = page.split("\nCommands:\n", 1)[1]
    listed = re.findall(r"^  (\w+) +(\S.*?) *$", commands_section, re.MULTILINE)
    names = [name for name, _ in listed]
    known = [name for name in COMMAND_ORDER if name in names]
    assert names[: len(known)] == known, names
    assert names[:4] == ["run", "report", "diff", "timeline"]
    root = typer.main.get_command(app)
    assert set(names) == set(root.commands)  # one line each: no command's summary wraps
    for _, summary in listed:
        assert len(summary) <= 100 and summary.endswith((".", ")")), summary


def test_top_level_help_is_plain_text_with_full_summaries_and_the_options() -> None:
    # At 80 columns a summary wraps onto the next line but is never cut short with "...".
    done = runner.invoke(app, ["--help"], env={"COLUMNS": "80"})
    assert done.exit_code == 0, done.output
    page = done.output
    assert page.startswith("Usage: ") and "Example: netprobe run" in page
    assert "--version" in page and "-h, --help" in page
    flat = " ".join(page.split())
    root = typer.main.get_command(app)
    for name, command in root.commands.items():
        assert f"{name} {command.get_short_help_str(limit=1_000)}" in flat, name
    assert "..." not in page.split("\nCommands:\n", 1)[1]
    bare = runner.invoke(app, [], env={"COLUMNS": "80"})
    assert bare.exit_code == 2 and bare.output == page  # `netprobe` alone: the same page


def test_a_flag_shows_no_type_and_run_help_shows_every_default() -> None:
    page = help_page("run")
    assert re.search(r"--no-sign +Write an explicitly unsigned file", page), page
    for row in ("--timeout +-t +SECONDS", "--out +-o +DIR", "--resolver +-r +RESOLVER"):
        assert re.search(row, page), row
    for default in ("[default: 5.0]", "[default: results]", "[default: keep every file]"):
        assert default in page
