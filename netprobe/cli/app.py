"""The typer application object; command modules attach to it with `@app.command()`.

Rules: `--help` lists the commands in workflow order (`COMMAND_ORDER`; a command not named there,
e.g. one a new `cmd_*` module adds, follows in the order it registered). A flag (an option that
takes no value) shows no type in `--help`; every other option names its value with a metavariable
(`FILE`, `DIR`, `N`, `SECONDS`, ...) declared where the option is, never a Python type
(tests/test_help.py walks every command's help).
The top-level page (`netprobe --help`, `netprobe` alone) is click's plain-text help, not typer's
rich one: the same usage, description, example, options and commands (each summary in full,
wrapped, never cut with `...`), without importing rich to draw boxes (~30-40 ms of a 0.15 s
start); each command's own page stays typer's rich help.
"""

from __future__ import annotations

import copy
from typing import Any

import typer
from typer.core import TyperGroup

from netprobe import __version__
from netprobe.cli import lazy_rich

lazy_rich.install()  # `--help` without markdown-it and pygments (see lazy_rich)

COMMAND_ORDER = (
    "run",
    "report",
    "diff",
    "timeline",
    "verify",
    "bundle",
    "export",
    "ingest",
    "keygen",
    "targets",
    "schedule",
)


def _plain_flags(command: Any, ctx: Any) -> None:
    """Flags (and the help option) of `command` and its subcommands show no `<bool>` type, and
    arguments show their metavariable alone: `FILE...`, `[FILE]...`, never `{FILE}`/`<path>`."""
    help_option = command.get_help_option(ctx)
    for param in [*command.params, *([help_option] if help_option is not None else [])]:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
        elif param.param_type_name == "argument":
            _argument_display(param)
    for sub in getattr(command, "commands", {}).values():
        _plain_flags(sub, ctx)


def _argument_display(param: Any) -> None:
    if getattr(param, "_netprobe_display", False):
        return  # get_command runs for every help page: change each argument once
    param._netprobe_display = True
    name = param.metavar or param.name.upper()
    more = "..." if param.nargs != 1 else ""
    shown = f"{name}{more}"
    usage_text = shown if param.required else f"[{name}]{more}"
    param.metavar = shown  # the name column of the rich help

    def make_metavar(ctx: Any, *, usage: bool = False) -> str:
        return usage_text if usage else shown  # typer's own would add braces in the usage line

    param.make_metavar = make_metavar
    # The type column: the metavariable says it. A copy, as str's type object is shared.
    param.type = copy.copy(param.type)
    param.type.get_metavar = lambda *args, **kwargs: ""


class _OrderedGroup(TyperGroup):
    """The root group: commands in `COMMAND_ORDER`, flags without a type (see module rules)."""

    def list_commands(self, ctx: Any) -> list[str]:
        names = super().list_commands(ctx)
        known = [name for name in COMMAND_ORDER if name in names]
        return known + [name for name in names if name not in known]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            _plain_flags(command, ctx)
        return command

    def format_help(self, ctx: Any, formatter: Any) -> None:
        _plain_flags(self, ctx)
        # Past TyperGroup's rich formatter to click's plain one (see the module rules).
        super(TyperGroup, self).format_help(ctx, formatter)

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if not args and self.no_args_is_help and not ctx.resilient_parsing:
            # typer would draw this page as a rich error box; the plain page, exit status 2.
            typer.echo(ctx.get_help(), color=ctx.color)
            ctx.exit(2)
        return super().parse_args(ctx, args)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """One row per command, its whole summary (click's own would cut it to fit one line)."""
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=1_000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


app = typer.Typer(
    name="netprobe",
    cls=_OrderedGroup,
    help=(
        "Measure whether a network service is reachable from here, and prove when and how it "
        "stops being reachable (DNS, IP or TLS SNI blocking), with signed results.\n\n"
        "Example: netprobe run   (probes the bundled Telegram list, writes results/*.jsonl)"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # The plain top-level page (module rules) fills the terminal up to 120 columns (click: 80).
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120},
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"netprobe {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        callback=_version_callback,
        is_eager=True,
        help="Print the version and exit.",
    ),
) -> None:
    """netprobe: reachability measurements with signed, comparable results."""
