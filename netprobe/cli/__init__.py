"""Command-line interface. Each command family lives in its own `cmd_*` module."""

from __future__ import annotations

import importlib
import pkgutil

from netprobe.cli.app import app


def _load_commands() -> None:
    # Importing a command module registers its commands on `app`; new families need no edits here.
    for module in sorted(
        m.name for m in pkgutil.iter_modules(__path__) if m.name.startswith("cmd_")
    ):
        importlib.import_module(f"{__name__}.{module}")


_load_commands()


def main() -> None:
    app()
