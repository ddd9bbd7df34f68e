"""`netprobe targets show|check`: inspect and validate target lists.

Rules: thin commands over `netprobe.targets.lists`; what `show` prints comes from
`netprobe.render.targets` (tables to stdout, errors to stderr). A bad or unreadable list exits 2
with `file:line: field: message`, never a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from netprobe.cli.app import app
from netprobe.cli.common import (
    EXIT_USAGE,
    OutputFormat,
    default,
    err,
    escape,
    fail,
    out,
    print_json,
    warn,
)

if TYPE_CHECKING:  # imported by the commands themselves: `--help` stays fast
    from netprobe.targets.lists import TargetList

targets_app = typer.Typer(
    help="Inspect and validate target lists (YAML).\n\nExample: netprobe targets show\n\n"
    "Example: netprobe targets check targets/*.yaml",
    no_args_is_help=True,
)
app.add_typer(targets_app, name="targets")


def _load_or_fail(path: Path | None) -> TargetList:
    from netprobe.targets.lists import TargetError, bundled_targets_path, load_targets

    try:
        return load_targets(path if path is not None else bundled_targets_path())
    except TargetError as exc:
        fail(str(exc))


@targets_app.command("show")
def show(
    file: Path = typer.Argument(
        None,
        metavar="FILE",
        help="Target list YAML file." + default("the bundled Telegram list"),
        show_default=False,
    ),
    output_format: OutputFormat = typer.Option(
        OutputFormat.table, "--format", "-f", metavar="table|json", help="table or json."
    ),
    addresses: bool = typer.Option(
        False,
        "--addresses",
        help="List each range's sampled addresses (the first 32 and how many in all) and the "
        "samples skipped because they are explicit endpoints.",
    ),
) -> None:
    """Show what a target list probes: groups, ranges, expected ranges, controls and counts.

    The counts include how many DNS queries a run sends to each resolver, and `probes`: a run of
    more than 65,536 needs `netprobe run --allow-large`.

    Example: netprobe targets show targets/example.yaml --format json
    """
    from netprobe.render.targets import describe_targets, targets_renderables

    info = describe_targets(_load_or_fail(file), addresses=addresses)
    if output_format == OutputFormat.json:
        print_json(info)
    else:
        for part in targets_renderables(info):
            out.print(part)


@targets_app.command("check")
def check(
    files: list[Path] = typer.Argument(
        ..., metavar="FILE", help="Target list YAML files to validate."
    ),
) -> None:
    """Validate target lists: print `ok: FILE (N targets)` or the error for each file.

    Every file is checked; the exit code is 2 if any file is bad. A list whose run would send
    more than 65,536 probes gets a warning (`netprobe run` refuses it without --allow-large).

    Example: netprobe targets check targets/*.yaml
    """
    from netprobe.targets.lists import (
        LARGE_RUN_PROBES,
        TargetError,
        large_run_message,
        load_targets,
    )

    bad = 0
    for path in files:
        try:
            target_list = load_targets(path)
        except TargetError as exc:
            bad += 1
            err.print(f"[bold red]netprobe: error:[/] {escape(str(exc))}", highlight=False)
            continue
        counts = target_list.counts()
        out.print(f"ok: {escape(str(path))} ({counts['targets']} targets)", highlight=False)
        if counts["probes"] > LARGE_RUN_PROBES:
            warn(f"{path}: {large_run_message(counts['probes'])}")
    if bad:
        raise typer.Exit(EXIT_USAGE)
