"""The README documents every command and option the CLI has, and every --help has an example.

Modelled on sqlite-utils: the docs are tested against the CLI itself, so they cannot drift.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer.main

from netprobe.cli import app

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def all_commands() -> list[tuple[str, Any]]:
    root = typer.main.get_command(app)
    found: list[tuple[str, Any]] = []

    def walk(prefix: str, command: Any) -> None:
        if hasattr(command, "commands"):  # a group (typer vendors its own click)
            for name, sub in command.commands.items():
                walk(f"{prefix} {name}".strip(), sub)
        else:
            found.append((prefix, command))

    walk("", root)
    return found


COMMANDS = all_commands()


def is_option(param: Any) -> bool:
    return param.param_type_name == "option"


def test_every_command_is_known() -> None:
    names = {name for name, _ in COMMANDS}
    expected = {"run", "verify", "keygen", "report", "diff", "timeline", "schedule"}
    assert expected <= names
    assert {"targets show", "targets check"} <= names


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=[n for n, _ in COMMANDS])
def test_command_in_readme_with_every_option(name: str, command: Any) -> None:
    assert f"netprobe {name}" in README, f"README does not mention `netprobe {name}`"
    for param in command.params:
        if is_option(param) and not param.hidden:
            longest = max(param.opts, key=len)
            if longest in ("--help",):
                continue
            assert longest in README, f"`netprobe {name}` option {longest} is not in README.md"


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=[n for n, _ in COMMANDS])
def test_help_has_an_example_and_explains_every_option(name: str, command: Any) -> None:
    assert "Example" in (command.help or ""), f"`netprobe {name} --help` has no example"
    for param in command.params:
        if is_option(param) and not param.hidden and "--help" not in param.opts:
            assert param.help, f"`netprobe {name}` option {param.opts} has no help text"
