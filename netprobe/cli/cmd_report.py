"""`netprobe report FILE` (verdicts for one run) and `netprobe diff OLD NEW` (what changed).

Rules: thin commands. Files are read with `netprobe.evidence.reader.load_result` (signatures checked
unless --no-verify), checked by `netprobe.analysis.load.load_run` (the schema checks every reader
shares), analysed with `netprobe.analysis.analyse`, compared with
`netprobe.diff.diff_runs`, and rendered by `netprobe.render.report`. Exit codes: report 0 (whatever it
found), 2 unreadable/invalid input; diff like diff(1): 0 no status changed, 1 some status changed,
2 unreadable, invalid or mismatched files, 6 a run judged nothing (its vantage was unhealthy:
controls failed), whatever changed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from netprobe.cli.app import app
from netprobe.cli.common import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_UNJUDGED,
    ReportFormat,
    fail,
    out,
    print_json,
    warn,
)

FORMAT_HELP = "table (terminal), json (stable, jq friendly) or markdown."
NO_VERIFY_HELP = "Read files without checking signatures (needed for unsigned files)."
SIGNERS_HELP = "Only trust files signed by a key in this OpenSSH allowed_signers file."


def _load(path: Path, no_verify: bool, allowed_signers: Path | None) -> tuple[Any, Any]:
    """(loaded result, analysis) or exit 2 with a message naming the file."""
    from netprobe.reports import load_analysed

    try:
        side: Any = load_analysed(path, verify=not no_verify, allowed_signers=allowed_signers)
    except Exception as exc:  # noqa: BLE001 - _checked names it, or re-raises a bug
        side = exc
    return _checked(path, side)


def _checked(path: Path, side: Any) -> tuple[Any, Any]:
    """A side from `netprobe.reports`: its pair (after its notice), or exit 2 naming the file."""
    from netprobe.analysis.load import RunRefused
    from netprobe.evidence.reader import ResultFileError

    if isinstance(side, ResultFileError):
        fail(str(side))
    if isinstance(side, RunRefused):
        fail(f"{path}: {side}")
    if isinstance(side, OSError):
        fail(f"{path}: {side.strerror or side}")
    if isinstance(side, BaseException):
        raise side
    loaded, analysis = side
    if loaded.notice:
        warn(loaded.notice)
    return loaded, analysis


def _file_info(loaded: Any) -> dict[str, Any]:
    summary = loaded.summary or {}
    verification = loaded.verification
    return {
        "path": str(loaded.path),
        "verification": verification.status if verification is not None else "not verified",
        "finished_at": summary.get("finished_at"),
        "interrupted": summary.get("interrupted"),
        "dropped": loaded.dropped,
    }


@app.command()
def report(
    path: Path = typer.Argument(..., help="A result file (results/*.jsonl)."),
    output_format: ReportFormat = typer.Option(
        ReportFormat.table, "--format", "-f", help=FORMAT_HELP
    ),
    no_verify: bool = typer.Option(False, "--no-verify", help=NO_VERIFY_HELP),
    allowed_signers: Path = typer.Option(None, "--allowed-signers", help=SIGNERS_HELP),
) -> None:
    """Verdicts for one run: per target ok, blocked (dns/ip/sni/tls/mitm), down or inconclusive,
    with the evidence, one sentence per target group and the run's metadata.

    Example: netprobe report results/20250526T010000Z_hanoi-vnpt-1.jsonl --format markdown
    """
    from netprobe.render import report as render

    loaded, analysis = _load(path, no_verify, allowed_signers)
    document = {"file": _file_info(loaded), **analysis.to_dict()}
    _emit(document, output_format, render.report_markdown, render.report_renderable)
    raise typer.Exit(EXIT_OK)


@app.command()
def diff(
    old_path: Path = typer.Argument(..., metavar="OLD", help="The earlier result file."),
    new_path: Path = typer.Argument(..., metavar="NEW", help="The later result file."),
    output_format: ReportFormat = typer.Option(
        ReportFormat.table, "--format", "-f", help=FORMAT_HELP
    ),
    no_verify: bool = typer.Option(False, "--no-verify", help=NO_VERIFY_HELP),
    allowed_signers: Path = typer.Option(None, "--allowed-signers", help=SIGNERS_HELP),
) -> None:
    """Compare two runs: every target whose status or method changed (newly_blocked, unblocked,
    method_changed, became_down, recovered, became_inconclusive, added, removed), with evidence
    from both sides, plus DNS answers, certificates and resolvers that moved. Exit 0 when no status
    changed, 1 when some did, 2 on bad input, 6 when either run judged nothing (its vantage point
    was offline: controls failed), so `netprobe diff a b || notify` works in cron.

    Example: netprobe diff results/20250525T010000Z_hanoi.jsonl results/20250526T010000Z_hanoi.jsonl
    """
    from netprobe.diff import diff_runs, unjudged_message
    from netprobe.render import report as render
    from netprobe.reports import load_analysed_pair

    old_side, new_side = load_analysed_pair(
        old_path, new_path, verify=not no_verify, allowed_signers=allowed_signers
    )
    old_loaded, old_analysis = _checked(old_path, old_side)
    new_loaded, new_analysis = _checked(new_path, new_side)
    result = diff_runs(old_analysis, new_analysis)
    for warning in result.warnings:
        warn(warning)
    document = result.to_dict()
    document["old"]["file"] = _file_info(old_loaded)
    document["new"]["file"] = _file_info(new_loaded)
    _emit(document, output_format, render.diff_markdown, render.diff_renderable)
    if not result.judged():
        warn(unjudged_message(result.unjudged))
        raise typer.Exit(EXIT_UNJUDGED)
    raise typer.Exit(EXIT_FAILURE if result.status_changed() else EXIT_OK)


def _emit(document: dict, output_format: ReportFormat, markdown, renderable) -> None:
    """One document in the chosen format: JSON, markdown text, or a rich table."""
    if output_format is ReportFormat.json:
        print_json(document)
    elif output_format is ReportFormat.markdown:
        out.file.write(markdown(document))
        out.file.flush()
    else:
        out.print(renderable(document))
