"""`netprobe targets show|check`: inspect and validate target lists.

Rules: thin commands over `netprobe.targets.lists`; tables go to stdout, errors to stderr; a bad or
unreadable list exits 2 with `file:line: field: message`, never a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from netprobe.cli.app import app
from netprobe.cli.common import EXIT_USAGE, OutputFormat, err, fail, out, print_json
from netprobe.targets.lists import TargetError, TargetList, bundled_targets_path, load_targets

targets_app = typer.Typer(
    help="Inspect and validate target lists (YAML).\n\nExample: netprobe targets show",
    no_args_is_help=True,
)
app.add_typer(targets_app, name="targets")


def describe_targets(target_list: TargetList) -> dict[str, Any]:
    """Everything `targets show` prints, as JSON-ready data."""
    group_counts = target_list.group_counts()
    groups = {}
    for name, group in target_list.groups.items():
        groups[name] = {
            "label": group.label,
            "kind": group.kind,
            "expected": group.expected,
            **group_counts[name],
            "domain_ports": sorted({p for d in group.domains for p in d.ports}),
            "ranges_detail": [
                {
                    "cidr": spec.cidr,
                    "sample": "all" if spec.sample is None else spec.sample,
                    "addresses": spec.size(),
                    "ports": list(spec.ports),
                    "sni": spec.sni,
                }
                for spec in group.ranges
            ],
        }
    controls = target_list.controls
    return {
        "name": target_list.name,
        "description": target_list.description,
        "file": target_list.filename,
        "sha256": target_list.sha256,
        "counts": target_list.counts(),
        "groups": groups,
        "expected_ranges": target_list.expected_ranges,
        "controls": {
            "domains": [d.name for d in controls.domains],
            "endpoints": [e.target_id.removeprefix("endpoint:") for e in controls.endpoints],
            "sni": controls.sni,
            "resolvers": controls.resolvers,
        },
        "settings": target_list.settings,
    }


def _load_or_fail(path: Path | None) -> TargetList:
    try:
        return load_targets(path if path is not None else bundled_targets_path())
    except TargetError as exc:
        fail(str(exc))


def _render(info: dict[str, Any]) -> None:
    out.print(f"[bold]{escape(info['name'])}[/]  {escape(info['file'])}", highlight=False)
    if info["description"]:
        out.print(escape(info["description"]), highlight=False)
    out.print(f"sha256 {info['sha256']}", highlight=False)

    groups = Table(title="Groups", title_justify="left")
    groups.add_column("group")
    groups.add_column("kind", no_wrap=True)
    for column in ("domains", "endpoints", "ranges", "range eps"):
        groups.add_column(column, justify="right", no_wrap=True)
    groups.add_column("expected", no_wrap=True)
    for name, group in info["groups"].items():
        groups.add_row(
            f"[bold]{escape(name)}[/]\n{escape(group['label'])}",
            group["kind"],
            str(group["domains"]),
            str(group["endpoints"]),
            str(group["ranges"]),
            str(group["range_endpoints"]),
            group["expected"] or "-",
        )
    out.print(groups)

    ranges = Table(title="Ranges", title_justify="left")
    for column in ("group", "cidr", "sample", "addresses", "ports", "sni"):
        ranges.add_column(column)
    for name, group in info["groups"].items():
        for spec in group["ranges_detail"]:
            ports = ",".join(map(str, spec["ports"]))
            ranges.add_row(
                name,
                spec["cidr"],
                str(spec["sample"]),
                str(spec["addresses"]),
                ports,
                spec["sni"] or "-",
            )
    if ranges.row_count:
        out.print(ranges)

    expected = Table(title="Expected ranges", title_justify="left")
    expected.add_column("name")
    expected.add_column("CIDRs")
    for name, cidrs in info["expected_ranges"].items():
        expected.add_row(name, " ".join(cidrs))
    if expected.row_count:
        out.print(expected)

    controls = Table(title="Controls", title_justify="left")
    controls.add_column("kind")
    controls.add_column("values")
    for kind, values in info["controls"].items():
        shown = " ".join(values) if isinstance(values, list) else values
        controls.add_row(kind, shown or "-")
    out.print(controls)

    totals = Table(title="Per run", title_justify="left")
    totals.add_column("count")
    totals.add_column("n", justify="right")
    for key, value in info["counts"].items():
        totals.add_row(key.replace("_", " "), str(value))
    out.print(totals)


@targets_app.command("show")
def show(
    file: Path = typer.Argument(
        None, help="Target list YAML file. Default: the bundled Telegram list."
    ),
    output_format: OutputFormat = typer.Option(
        OutputFormat.table, "--format", "-f", help="Output format: table or json."
    ),
) -> None:
    """Show what a target list probes: groups, ranges, expected ranges, controls and counts.

    The counts include how many DNS queries a run sends to each resolver.

    Example: netprobe targets show targets/example.yaml --format json
    """
    info = describe_targets(_load_or_fail(file))
    if output_format == OutputFormat.json:
        print_json(info)
    else:
        _render(info)


@targets_app.command("check")
def check(
    files: list[Path] = typer.Argument(..., help="Target list YAML files to validate."),
) -> None:
    """Validate target lists: print `ok: FILE (N targets)` or the error for each file.

    Every file is checked; the exit code is 2 if any file is bad.

    Example: netprobe targets check targets/*.yaml
    """
    bad = 0
    for path in files:
        try:
            target_list = load_targets(path)
        except TargetError as exc:
            bad += 1
            err.print(f"[bold red]netprobe: error:[/] {escape(str(exc))}", highlight=False)
            continue
        count = target_list.counts()["targets"]
        out.print(f"ok: {escape(str(path))} ({count} targets)", highlight=False)
    if bad:
        raise typer.Exit(EXIT_USAGE)
