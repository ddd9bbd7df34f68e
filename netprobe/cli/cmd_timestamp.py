"""`netprobe timestamp FILE... --tsa URL`: get (or re-get) the RFC 3161 token of finished files.

Rules: thin command over `netprobe.evidence.tsa_client.timestamp_file` (the same call as
`run --tsa`); the token proves the file existed when the TSA signed it, so a token fetched
later proves a later time. Exit codes: 0 every file got its `.tsr`, 8 some did not (TSA
unreachable or bad reply), 2 bad usage or a missing file. An existing `.tsr` is replaced only
with `--force`.
"""

from __future__ import annotations

from pathlib import Path

import typer

from netprobe.cli.app import app
from netprobe.cli.common import (
    EXIT_NO_TIMESTAMP,
    EXIT_OK,
    OutputFormat,
    fail,
    out,
    print_json,
    warn,
)
from netprobe.cli.timestamps import tsa_ca_path


@app.command()
def timestamp(
    files: list[Path] = typer.Argument(
        ..., metavar="FILE...", help="Finished result files (.jsonl)."
    ),
    tsa: str = typer.Option(
        None, "--tsa", metavar="URL", help="The TSA's URL. \\[default: tsa in the config file]"
    ),
    tsa_ca: Path = typer.Option(
        None,
        "--tsa-ca",
        metavar="FILE",
        help="PEM CA certificate(s) the TSA must chain to. \\[default: tsa_ca in the config file]",
    ),
    force: bool = typer.Option(False, "--force", help="Replace an existing FILE.tsr."),
    output_format: OutputFormat = typer.Option(
        OutputFormat.table, "--format", "-f", metavar="table|json", help="table or json."
    ),
) -> None:
    """Get an RFC 3161 timestamp for finished result files (only their SHA-256 is sent).

    The TSA's signed token is kept as FILE.tsr, e.g. after `run --tsa` found the TSA unreachable (exit 8).

    Example: netprobe timestamp results/20250526T010000Z_hanoi.jsonl --tsa http://timestamp.example/
    """
    from netprobe.evidence.tsa_client import timestamp_file, tsr_path
    from netprobe.render.timestamp import stamp_dict, stamp_line, stamp_warning

    url = tsa or _config_tsa()
    if not url:
        fail("--tsa: no TSA URL given (and no tsa in the config file)")
    ca = tsa_ca_path(tsa_ca)
    for path in files:
        if not path.is_file():
            fail(f"{path}: no such result file")
        if tsr_path(path).exists() and not force:
            fail(f"{tsr_path(path)} already exists (use --force to replace it)")
    results = [timestamp_file(path, url, ca=ca) for path in files]
    if output_format == OutputFormat.json:
        print_json([stamp_dict(item) for item in results])
    for item in results:
        if item.problem:
            warn(stamp_warning(item))
        elif output_format != OutputFormat.json:
            out.print(stamp_line(item), highlight=False)
    raise typer.Exit(EXIT_NO_TIMESTAMP if any(i.problem for i in results) else EXIT_OK)


def _config_tsa() -> str | None:
    from netprobe.config import read_config_file

    try:
        item = read_config_file(None).get("tsa")
    except ValueError as exc:
        fail(str(exc))
    return item.value if item is not None else None
