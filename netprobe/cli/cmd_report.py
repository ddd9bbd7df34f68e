"""`netprobe report FILE` (verdicts for one run) and `netprobe diff OLD NEW` (what changed).

Rules: thin commands. Files are read with `netprobe.evidence.reader.load_result` (signatures checked
unless --no-verify), checked by `netprobe.analysis.load.load_run` (the schema checks every reader
shares), analysed with `netprobe.analysis.analyse`, compared with
`netprobe.diff.diff_runs`, and rendered by `netprobe.render.report`. Exit codes: report 0 (whatever it
found), 2 unreadable/invalid input, 7 the signer is not trusted (not in the trust store or
--allowed-signers; the report is printed all the same, with "UNTRUSTED signer SHA256:..." in its
header); diff like diff(1): 0 no status changed, 1 some status changed, 2 unreadable, invalid or
mismatched files (or both files are one run), 6 a run judged nothing (its vantage was unhealthy:
controls failed), whatever changed, 7 a file was skipped for its untrusted signer.
Trust (`netprobe.evidence.trust`): files are checked against the trust store (the local key and
`netprobe keys trust` entries) unless --allowed-signers names another file; --accept-untrusted
uses a file from any signer whose signatures hold.
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
    EXIT_UNTRUSTED,
    ReportFormat,
    fail,
    out,
    print_json,
    warn,
)
from netprobe.cli.trust import ACCEPT_HELP, SIGNERS_HELP, TRUST_HINT, trusted_signers, untrusted

FORMAT_HELP = "table (terminal), json (stable, jq friendly) or markdown."
FORMAT_METAVAR = "table|json|markdown"
NO_VERIFY_HELP = "Read files without checking signatures (needed for unsigned files)."


def _load(path: Path, no_verify: bool, signers: Any) -> tuple[Any, Any]:
    """(loaded result, analysis) or exit 2 with a message naming the file."""
    from netprobe.reports import load_analysed

    try:
        # Nothing reads the records once the run is analysed: free them before the document.
        side: Any = load_analysed(path, verify=not no_verify, signers=signers, keep=_none)
    except Exception as exc:  # noqa: BLE001 - _checked names it, or re-raises a bug
        side = exc
    return _checked(path, side)


def _none(record: dict) -> bool:
    return False


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
        "signer": None
        if verification is None or verification.signer_fingerprint is None
        else {
            "fingerprint": verification.signer_fingerprint,
            "trusted": bool(verification.trusted),
            "principal": verification.principal,
        },
        "finished_at": summary.get("finished_at"),
        "interrupted": summary.get("interrupted"),
        "dropped": loaded.dropped,
    }


@app.command()
def report(
    path: Path = typer.Argument(..., metavar="FILE", help="A result file (results/*.jsonl)."),
    output_format: ReportFormat = typer.Option(
        ReportFormat.table, "--format", "-f", metavar=FORMAT_METAVAR, help=FORMAT_HELP
    ),
    no_verify: bool = typer.Option(False, "--no-verify", help=NO_VERIFY_HELP),
    allowed_signers: Path = typer.Option(
        None, "--allowed-signers", metavar="FILE", help=SIGNERS_HELP
    ),
    accept_untrusted: bool = typer.Option(False, "--accept-untrusted", help=ACCEPT_HELP),
) -> None:
    """Verdicts for one run: each target ok, blocked, down or inconclusive, with evidence.

    Per target: ok, blocked (dns/ip/sni/tls/mitm), down or inconclusive, with the evidence, one
    sentence per target group and the run's metadata.

    The signer must be in the trust store (or --allowed-signers): otherwise the header says
    "UNTRUSTED signer SHA256:..." and the exit code is 7 unless --accept-untrusted.

    Example: netprobe report results/20250526T010000Z_hanoi-vnpt-1.jsonl --format markdown
    """
    from netprobe.render import report as render

    signers = trusted_signers(allowed_signers, no_verify)
    loaded, analysis = _load(path, no_verify, signers)
    document = {"file": _file_info(loaded), **analysis.to_dict()}
    _emit(document, output_format, render.report_markdown, render.report_renderable)
    problem = untrusted(loaded)
    if problem and not accept_untrusted:
        warn(f"{path}: {problem}: the file is not evidence from anyone you trust; {TRUST_HINT}")
        raise typer.Exit(EXIT_UNTRUSTED)
    raise typer.Exit(EXIT_OK)


@app.command()
def diff(
    old_path: Path = typer.Argument(..., metavar="OLD", help="The earlier result file."),
    new_path: Path = typer.Argument(..., metavar="NEW", help="The later result file."),
    output_format: ReportFormat = typer.Option(
        ReportFormat.table, "--format", "-f", metavar=FORMAT_METAVAR, help=FORMAT_HELP
    ),
    no_verify: bool = typer.Option(False, "--no-verify", help=NO_VERIFY_HELP),
    allowed_signers: Path = typer.Option(
        None, "--allowed-signers", metavar="FILE", help=SIGNERS_HELP
    ),
    accept_untrusted: bool = typer.Option(False, "--accept-untrusted", help=ACCEPT_HELP),
) -> None:
    """Compare two runs: which targets got blocked, unblocked or changed method.

    Every target whose status or method changed (newly_blocked, unblocked, method_changed,
    became_down, recovered, became_inconclusive, added, removed), with evidence from both sides,
    plus DNS answers, certificates and resolvers that moved. Exit 0 when no status changed, 1 when
    some did, 2 on bad input, 6 when either run judged nothing (its vantage point was offline:
    controls failed), 7 when a file was skipped because its signer is not trusted, so
    `netprobe diff a b || notify` works in cron. Two copies of one run (same run id) are one run.

    Example: netprobe diff results/20250525T010000Z_hanoi.jsonl results/20250526T010000Z_hanoi.jsonl
    """
    from netprobe.diff import diff_reads, diff_runs, unjudged_message
    from netprobe.render import report as render
    from netprobe.reports import load_analysed_pair

    signers = trusted_signers(allowed_signers, no_verify)
    old_side, new_side = load_analysed_pair(
        old_path, new_path, verify=not no_verify, signers=signers, keep=diff_reads
    )
    old_loaded, old_analysis = _checked(old_path, old_side)
    new_loaded, new_analysis = _checked(new_path, new_side)
    skipped = [
        f"skipped {loaded.path}: {problem}; {TRUST_HINT}"
        for loaded in (old_loaded, new_loaded)
        if (problem := untrusted(loaded)) and not accept_untrusted
    ]
    for message in skipped:
        warn(message)
    if skipped:
        fail("nothing to compare: a file was skipped for its untrusted signer", EXIT_UNTRUSTED)
    old_id, new_id = old_loaded.header.get("run_id"), new_loaded.header.get("run_id")
    if old_id and old_id == new_id and not _same_file(old_path, new_path):
        warn(f"{new_path} is a copy of the run in {old_path} (same run id {old_id}); counted once")
        fail("nothing to compare: OLD and NEW are one run")
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


def _same_file(first: Path, second: Path) -> bool:
    try:
        return first.samefile(second)
    except OSError:
        return False


def _emit(document: dict, output_format: ReportFormat, markdown, renderable) -> None:
    """One document in the chosen format: JSON, markdown text, or a rich table."""
    if output_format is ReportFormat.json:
        print_json(document)
    elif output_format is ReportFormat.markdown:
        out.file.write(markdown(document))
        out.file.flush()
    else:
        out.print(renderable(document))
