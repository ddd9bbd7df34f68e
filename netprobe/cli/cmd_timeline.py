"""`netprobe timeline`: onsets of blocking over many result files, per network and target.

Rules: a thin command. It parses the options, finds the files (`netprobe.timeline.files`), builds
the report with `netprobe.timeline.report.timeline_report` and prints it with
`netprobe.render.timeline` (table, csv) or `netprobe.render.timeline_html`; json is the report
itself. Skipped files (unreadable, invalid, or signed by a key not in the trust store) are warned
about as they are met (the first `MAX_SKIP_WARNINGS`); a second copy of a run (same run id) is
warned about, naming both files, and not counted. Exit
codes: 0 ok, 2 bad usage (e.g. a --target no run measured: the message lists close matches) or
no usable input file.
"""

from __future__ import annotations

import enum
import sys
from pathlib import Path

import typer

from netprobe.cli.app import app
from netprobe.cli.common import default, err, fail, out, print_json, warn

MAX_SKIP_WARNINGS = 10


class TimelineFormat(enum.StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    html = "html"


def _time_option(text: str | None, flag: str) -> float | None:
    from netprobe.timeline.runs import parse_time

    if text is None:
        return None
    try:
        return parse_time(text)
    except ValueError:
        fail(f"{flag} {text!r}: expected a UTC time like 2025-05-26 or 2025-05-26T01:00Z")


@app.command()
def timeline(
    paths: list[Path] = typer.Argument(
        None,
        metavar="FILE_OR_DIR",
        help="Result files or folders (searched recursively for *.jsonl and .partial files). "
        "\\[default: none: required unless --clickhouse]",
        show_default=False,
    ),
    target: str = typer.Option(
        None,
        "--target",
        metavar="TARGET_ID",
        help="Show only this target id, e.g. domain:telegram.org." + default("every target"),
    ),
    since: str = typer.Option(
        None,
        "--since",
        metavar="TIME",
        help="Ignore runs started before this UTC time (2025-05-26 or 2025-05-26T01:00Z)."
        + default("the first run"),
    ),
    until: str = typer.Option(
        None,
        "--until",
        metavar="TIME",
        help="Ignore runs started after this UTC time." + default("the last run"),
    ),
    output_format: TimelineFormat = typer.Option(
        TimelineFormat.table,
        "--format",
        "-f",
        metavar="table|json|csv|html",
        help="table (terminal), json, csv (one row a change) or html (a self-contained page "
        "with a chart per target; redirect it to a file).",
    ),
    edd: float = typer.Option(
        10.0,
        "--edd",
        metavar="N",
        help="CUSUM expected detection delay in hourly samples (threshold h = edd*mu1/2).",
    ),
    mu1: float = typer.Option(
        0.7, "--mu1", metavar="SCORE", help="Expected blocking score while blocked (0-1]."
    ),
    window: float = typer.Option(
        6.0,
        "--window",
        metavar="HOURS",
        help="Hours within which flips of other targets/layers corroborate a change.",
    ),
    no_verify: bool = typer.Option(
        False, "--no-verify", help="Read files without checking signatures (unsigned files too)."
    ),
    allowed_signers: Path = typer.Option(
        None,
        "--allowed-signers",
        metavar="FILE",
        help="Trust the keys in this allowed_signers (or .pub) file instead of the trust store. "
        "\\[default: the trust store, see `netprobe keys list`]",
    ),
    accept_untrusted: bool = typer.Option(
        False,
        "--accept-untrusted",
        help="Use files whose signer is not trusted instead of skipping them.",
    ),
    jobs: int = typer.Option(
        None,
        "--jobs",
        "-j",
        metavar="N",
        help="Worker processes for reading files." + default("CPU count"),
    ),
    no_cache: bool = typer.Option(
        False,
        "--no-cache",
        help="Verify and analyse every file again instead of reusing the summaries of files seen "
        "before (kept in ~/.cache/netprobe/timeline.sqlite3 or $NETPROBE_CACHE_DIR, keyed by "
        "file content).",
    ),
    width: int = typer.Option(
        None,
        "--width",
        metavar="N",
        help="Columns in each target's time strip." + default("48, or 240 with --format html"),
    ),
    clickhouse: str = typer.Option(
        None,
        "--clickhouse",
        metavar="URL",
        help="Read the runs from this ClickHouse store (see `netprobe ingest`) instead of files, "
        "e.g. http://127.0.0.1:8123/netprobe." + default("read FILE_OR_DIR"),
    ),
    asn: list[str] = typer.Option(
        None,
        "--asn",
        metavar="ASN",
        help="With --clickhouse: only this network's ASN (repeatable), e.g. AS45899."
        + default("every network"),
    ),
    vantage: list[str] = typer.Option(
        None,
        "--vantage",
        metavar="NAME",
        help="With --clickhouse: only this vantage (repeatable)." + default("every vantage"),
    ),
) -> None:
    """When did blocking start and end, per network and target, across many result files.

    Runs are grouped by vantage network (probe_asn + vantage). For every target: current state,
    each change with its onset interval (last run seen in the old state, first run in the new),
    method and confidence. Gaps in the data are listed as gaps.

    Example: netprobe timeline results/ --since 2025-05-20 --target domain:telegram.org

    Example: netprobe timeline results/ --format html > timeline.html

    Example: netprobe timeline --clickhouse http://127.0.0.1:8123/netprobe --asn AS45899
    """
    from netprobe.timeline.builder import TimelineOptions
    from netprobe.timeline.files import ReadOptions, Skipped, expand_paths
    from netprobe.timeline.onset import CusumParams
    from netprobe.timeline.report import timeline_report

    try:
        params = CusumParams(mu1=mu1, edd=edd)
    except ValueError as exc:
        fail(f"--edd/--mu1: {exc}")
    if width is None:
        width = 240 if output_format is TimelineFormat.html else 48
    if window <= 0 or width < 4 or (jobs is not None and jobs < 1):
        fail("--window must be positive, --width at least 4 and --jobs at least 1")
    start, end = _time_option(since, "--since"), _time_option(until, "--until")
    if clickhouse is not None or asn or vantage:
        options = TimelineOptions(
            params=params, window_hours=window, since=start, until=end, target=target,
            strip_width=width, cells=output_format is TimelineFormat.html,
        )  # fmt: skip
        _from_store(clickhouse, paths, options, asn or [], vantage or [], output_format)
        return
    if not paths:
        fail("give result files or folders, or --clickhouse URL")
    from netprobe.cli.trust import trusted_signers

    trusted_signers(allowed_signers, no_verify)  # a bad trust store is a usage error, named
    files, missing = expand_paths(paths)
    for item in missing:
        fail(f"{item.path}: {item.reason}")
    if not files:
        fail("no result files (*.jsonl) found in " + ", ".join(str(p) for p in paths))
    read_options = ReadOptions(
        verify=not no_verify,
        allowed_signers=str(allowed_signers) if allowed_signers else None,
        since=start,
        until=end,
        accept_untrusted=accept_untrusted,
    )
    options = TimelineOptions(
        params=params,
        window_hours=window,
        since=start,
        until=end,
        target=target,
        strip_width=width,
        cells=output_format is TimelineFormat.html,  # the page's tooltips need the evidence
    )
    warned = 0

    def on_skip(item: Skipped) -> None:
        nonlocal warned
        warned += 1
        if warned <= MAX_SKIP_WARNINGS:
            reason = item.reason  # some reasons (the reader's) already start with the path
            warn(
                f"skipped {reason}"
                if reason.startswith(item.path)
                else f"skipped {item.path}: {reason}"
            )

    result = timeline_report(
        files,
        read_options,
        options,
        jobs=jobs,
        use_cache=not no_cache,
        on_skip=on_skip,
        on_duplicate=lambda item: warn(item.message()),
    )
    if result.cache_problem:
        warn(result.cache_problem)  # the report is complete all the same
    if len(result.skipped) > MAX_SKIP_WARNINGS:
        warn(f"skipped {len(result.skipped)} files in all (first {MAX_SKIP_WARNINGS} shown)")
    if result.runs == 0 and len(result.skipped) == len(files):
        fail(f"none of the {len(files)} files could be used")
    _check_target(target, result.report)
    _print(result.report, output_format)


def _from_store(url, paths, options, asns, vantages, output_format) -> None:
    from netprobe.store.client import ClickHouse, StoreError
    from netprobe.store.timeline import store_timeline

    if url is None:
        fail("--asn and --vantage select networks of a store: add --clickhouse URL")
    if paths:
        fail("give either PATHS or --clickhouse URL, not both")
    try:
        with ClickHouse(url) as client:
            report = store_timeline(client, options, asns=asns, vantages=vantages)
    except StoreError as exc:
        fail(str(exc))
    if report["runs"] == 0:
        fail("the store holds no run for these networks and times")
    _check_target(options.target, report)
    _print(report, output_format)


def _check_target(target: str | None, report: dict) -> None:
    """Exit 2 when `--target` names no target of the runs read, with the close matches."""
    if target is None or report.get("target_found", True):
        return
    close = report.get("close_matches") or []
    hint = (
        "did you mean " + ", ".join(close) + "?"
        if close
        else "target ids look like domain:telegram.org or endpoint:149.154.167.51:443 "
        "(`netprobe report FILE` lists a run's)"
    )
    fail(f"--target {target}: no target matches in the {report.get('runs', 0)} runs read; {hint}")


def _print(report: dict, output_format: TimelineFormat) -> None:
    if output_format is TimelineFormat.json:
        print_json(report)
    elif output_format is TimelineFormat.csv:
        from netprobe.render.timeline import timeline_csv

        sys.stdout.write(timeline_csv(report))
    elif output_format is TimelineFormat.html:
        from netprobe.render.timeline_html import render_html

        sys.stdout.write(render_html(report))
    else:
        from netprobe.render.timeline import strip_legend, timeline_renderables

        for part in timeline_renderables(report):
            out.print(part)
        err.print(strip_legend())
