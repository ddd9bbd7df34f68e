"""The typer application object; command modules attach to it with `@app.command()`."""

from __future__ import annotations

import typer

from netprobe import __version__
from netprobe.cli import lazy_rich

lazy_rich.install()  # `--help` without markdown-it and pygments (see lazy_rich)

app = typer.Typer(
    name="netprobe",
    help=(
        "Measure whether a network service is reachable from here, and prove when and how it "
        "stops being reachable (DNS, IP or TLS SNI blocking), with signed results.\n\n"
        "Example: netprobe run   (probes the bundled Telegram list, writes results/*.jsonl)"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
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
