"""Command-line interface. Each command family lives in its own `cmd_*` module."""

from __future__ import annotations

import importlib
import pkgutil

from netprobe.cli.app import app

# `--help` lists commands in the order they register. These families keep the order they have
# always had (schedule after timeline); any other `cmd_*` module loads after them, by name.
_HELP_ORDER = ("cmd_keys", "cmd_report", "cmd_run", "cmd_timeline", "cmd_schedule")


def _load_commands() -> None:
    # Importing a command module registers its commands on `app`; new families need no edits here.
    found = {m.name for m in pkgutil.iter_modules(__path__) if m.name.startswith("cmd_")}
    ordered = [name for name in _HELP_ORDER if name in found]
    for module in ordered + sorted(found - set(ordered)):
        importlib.import_module(f"{__name__}.{module}")


_load_commands()


def main() -> None:
    app()
