"""`netprobe export --ooni`: verified result files as OONI measurements, one .ooni.jsonl each.

Rules: a thin command. It resolves the trust store and the paths, calls
`netprobe.export.files.export_ooni` and prints what was written. Exit codes: 0 every file
exported, 1 some file refused (the rest are written), 2 bad usage.
"""

from __future__ import annotations

import enum
from pathlib import Path

import typer

from netprobe.cli.app import app
from netprobe.cli.common import default, fail, out, print_json, warn


class ExportFormat(enum.StrEnum):
    table = "table"
    json = "json"


@app.command()
def export(
    paths: list[Path] = typer.Argument(
        ..., metavar="FILE_OR_DIR...", help="Result files or folders (searched recursively)."
    ),
    ooni: bool = typer.Option(
        False,
        "--ooni",
        help="Write OONI data-format measurements (df-000-base 0.2.0): a `telegram` measurement "
        "per run of a Telegram list, an `urlgetter` measurement per target otherwise.",
    ),
    out_dir: Path = typer.Option(
        ..., "--out", metavar="DIR", help="Folder for the <stem>.ooni.jsonl files."
    ),
    allowed_signers: Path = typer.Option(
        None,
        "--allowed-signers",
        metavar="FILE",
        help="Trust store (OpenSSH allowed_signers) to verify against."
        + default("the trust store, see `netprobe keys list`"),
    ),
    output_format: ExportFormat = typer.Option(
        ExportFormat.table,
        "--format",
        "-f",
        metavar="table|json",
        help="table (one line) or json (every file, with why).",
    ),
) -> None:
    """Export verified runs in another tool's format (today: OONI's, with --ooni).

    Each measurement's annotations carry netprobe's verdict, the rule version and the signed
    file's SHA-256.

    Example: netprobe export --ooni results/ --out ooni/
    """
    from netprobe.cli.cmd_ingest import _trust_store
    from netprobe.export.files import export_ooni
    from netprobe.timeline.files import expand_paths

    if not ooni:
        fail("choose a format: --ooni")
    trust = _trust_store(allowed_signers)
    files, missing = expand_paths(paths)
    for item in missing:
        fail(f"{item.path}: {item.reason}")
    if not files:
        fail("no result files (*.jsonl) found in " + ", ".join(str(p) for p in paths))
    report = export_ooni(files, out_dir, trust)
    for refused in report.rejected:
        warn(f"refused {refused['path']}: {refused['reason']}")
    if output_format is ExportFormat.json:
        print_json(report.to_dict())
    else:
        total = sum(written["measurements"] for written in report.written)
        out.print(
            f"{len(report.written)} files exported ({total} OONI measurements) to {out_dir}, "
            f"{len(report.rejected)} refused"
        )
    if report.rejected:
        raise typer.Exit(1)
