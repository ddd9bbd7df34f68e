"""`netprobe timeline` (onsets over many runs) and `netprobe schedule` (crontab / systemd text).

Rules: thin commands. `timeline` reads files through `netprobe.timeline.files`, builds the report
with `netprobe.timeline.builder.TimelineBuilder`, and renders it (table, json or csv). `schedule` prints
text from `netprobe.run.schedule` and installs nothing. Exit codes: 0 ok, 2 bad usage or no usable
input file.
"""

from __future__ import annotations

import csv
import enum
import random
import sys
from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from netprobe.cli.app import app
from netprobe.cli.common import EXIT_USAGE, err, fail, out, print_json, warn

STRIP_STYLE = {".": ("·", "dim"), "o": ("▁", "green"), "x": ("█", "red"), "~": ("▄", "yellow")}
STATE_STYLE = {"ok": "green", "blocked": "bold red", "unknown": "dim"}
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
        ..., help="Result files or folders (searched recursively for *.jsonl and .partial files)."
    ),
    target: str = typer.Option(
        None, "--target", help="Show only this target id, e.g. domain:telegram.org."
    ),
    since: str = typer.Option(None, "--since", help="Ignore runs started before this UTC time."),
    until: str = typer.Option(None, "--until", help="Ignore runs started after this UTC time."),
    output_format: TimelineFormat = typer.Option(
        TimelineFormat.table,
        "--format",
        "-f",
        help="table (terminal), json, csv (one row a change) or html (a self-contained page "
        "with a chart per target; redirect it to a file).",
    ),
    edd: float = typer.Option(
        10.0,
        "--edd",
        help="CUSUM expected detection delay in hourly samples (threshold h = edd*mu1/2).",
    ),
    mu1: float = typer.Option(0.7, "--mu1", help="Expected blocking score while blocked (0-1]."),
    window: float = typer.Option(
        6.0,
        "--window",
        help="Hours within which flips of other targets/layers corroborate a change.",
    ),
    no_verify: bool = typer.Option(
        False, "--no-verify", help="Read files without checking signatures (unsigned files too)."
    ),
    allowed_signers: Path = typer.Option(
        None,
        "--allowed-signers",
        help="Only trust files signed by keys in this allowed_signers file.",
    ),
    jobs: int = typer.Option(
        None, "--jobs", "-j", help="Worker processes for reading files. [default: CPU count]"
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
        help="Columns in each target's time strip. [default: 48, or 240 with --format html]",
    ),
) -> None:
    """When did blocking start and end, per network and target, across many result files.

    Runs are grouped by vantage network (probe_asn + vantage). For every target: current state,
    each change with its onset interval (last run seen in the old state, first run in the new),
    method and confidence. Gaps in the data are listed as gaps.

    Example: netprobe timeline results/ --since 2025-05-20 --target domain:telegram.org

    Example: netprobe timeline results/ --format html > timeline.html
    """
    from netprobe.timeline.builder import TimelineBuilder, TimelineOptions
    from netprobe.timeline.files import (
        ReadOptions,
        Skipped,
        expand_paths,
        open_cache,
        read_runs,
    )
    from netprobe.timeline.onset import CusumParams

    try:
        params = CusumParams(mu1=mu1, edd=edd)
    except ValueError as exc:
        fail(f"--edd/--mu1: {exc}")
    if width is None:
        width = 240 if output_format is TimelineFormat.html else 48
    if window <= 0 or width < 4 or (jobs is not None and jobs < 1):
        fail("--window must be positive, --width at least 4 and --jobs at least 1")
    start, end = _time_option(since, "--since"), _time_option(until, "--until")
    if allowed_signers is not None and not allowed_signers.is_file():
        fail(f"--allowed-signers {allowed_signers}: no such file")
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
    )
    builder = TimelineBuilder(
        TimelineOptions(
            params=params,
            window_hours=window,
            since=start,
            until=end,
            target=target,
            strip_width=width,
        )
    )
    skipped: list[Skipped] = []
    cache = None if no_cache else open_cache(read_options)
    try:
        for result in read_runs(files, read_options, jobs=jobs, cache=cache):
            if isinstance(result, Skipped):
                skipped.append(result)
                if len(skipped) <= MAX_SKIP_WARNINGS:
                    warn(
                        f"skipped {result.reason}"
                        if result.reason.startswith(result.path)
                        else f"skipped {result.path}: {result.reason}"
                    )
            else:
                builder.add(result)
    finally:
        if cache is not None:
            cache.close()
            if cache.problem:
                warn(cache.problem)  # the report is complete all the same
    if len(skipped) > MAX_SKIP_WARNINGS:
        warn(f"skipped {len(skipped)} files in all (first {MAX_SKIP_WARNINGS} shown)")
    if builder.runs_seen == 0 and len(skipped) == len(files):
        fail(f"none of the {len(files)} files could be used")
    report = builder.build()
    report["files"] = len(files)
    report["skipped"] = [{"path": s.path, "reason": s.reason} for s in skipped]
    if output_format is TimelineFormat.json:
        print_json(report)
    elif output_format is TimelineFormat.csv:
        _render_csv(report)
    elif output_format is TimelineFormat.html:
        from netprobe.render.timeline_html import render_html

        sys.stdout.write(render_html(report))
    else:
        _render_table(report)


CSV_FIELDS = [
    "probe_asn", "vantage", "target_id", "state", "layer", "from", "to", "initial",
    "last_before", "first_after", "interval_hours", "spans_gap", "alarm_at", "method",
    "corroborated", "confidence", "confidence_label",
]  # fmt: skip


def _render_csv(report: dict) -> None:
    writer = csv.DictWriter(sys.stdout, fieldnames=CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    for network in report["networks"]:
        for entry in network["targets"]:
            base = {
                "probe_asn": network["probe_asn"],
                "vantage": network["vantage"],
                "target_id": entry["target_id"],
                "state": entry["state"],
            }
            for change in entry["changes"] or [{}]:
                writer.writerow({**base, **change})


def _strip_text(codes: str) -> Text:
    text = Text()
    for code in codes:
        char, style = STRIP_STYLE.get(code, (code, ""))
        text.append(char, style=style)
    return text


def _short(iso_time: str | None) -> str:
    # "2025-05-26T01:07:31Z" -> "2025-05-26 01:07" (minutes are enough to read an interval).
    return "start of data" if iso_time is None else iso_time[:16].replace("T", " ")


def _render_table(report: dict) -> None:
    if not report["networks"]:
        out.print("No runs in the selected time range.")
    for network in report["networks"]:
        out.print(
            f"[bold]{network['probe_asn']} {network['vantage']}[/]: {network['runs']} runs "
            f"({network['healthy_runs']} with healthy controls), {_short(network['first_run'])} "
            f"to {_short(network['last_run'])}",
            highlight=False,
        )
        if not network["targets"]:
            # Only runs whose controls failed: they are gaps, and a gap is never a sample.
            out.print(
                "  no target has a sample: no run of this network had a working control "
                "(resolver or endpoint), so nothing here can be judged.",
                highlight=False,
            )
            _render_gaps(network)
            continue
        strip_width = len(network["targets"][0]["strip"])
        table = Table(
            caption=f"strip: {_short(network['strip_start'])} → {_short(network['strip_end'])}"
        )
        table.add_column("target", no_wrap=True)
        table.add_column("state", no_wrap=True)
        table.add_column("method", no_wrap=True)
        table.add_column("since", no_wrap=True)
        table.add_column("sure", no_wrap=True)
        table.add_column("strip", no_wrap=True, min_width=strip_width)
        for entry in network["targets"]:
            last = next((c for c in reversed(entry["changes"]) if c["to"] == entry["state"]), None)
            table.add_row(
                entry["target_id"],
                Text(entry["state"], style=STATE_STYLE.get(entry["state"], "")),
                entry["method"] or "",
                _short(last["first_after"]) if last and not last["initial"] else "",
                last["confidence_label"] if last and not last["initial"] else "",
                _strip_text(entry["strip"]),
            )
        out.print(table)
        changes = [
            (entry["target_id"], c)
            for entry in network["targets"]
            for c in entry["changes"]
            if not c["initial"]
        ]
        if changes:
            detail = Table(
                title="Changes: the onset lies after 'last old' and at or before 'first new'"
            )
            for column in ("target", "layer", "to", "last old", "first new", "method", "corr."):
                detail.add_column(column, no_wrap=True)
            detail.add_column("sure")
            for target_id, c in sorted(changes, key=lambda item: item[1]["first_after"]):
                gap_note = "\n(spans a gap)" if c["spans_gap"] else ""
                detail.add_row(
                    target_id,
                    c["layer"],
                    Text(c["to"], style=STATE_STYLE.get(c["to"], "")),
                    _short(c["last_before"]),
                    _short(c["first_after"]) + gap_note,
                    c["method"] or "",
                    "yes" if c["corroborated"] else "no",
                    f"{c['confidence_label']} {c['confidence']:.2f}",
                )
            out.print(detail)
        _render_gaps(network)
    legend = Text("strip: ")
    for code, label in (("o", "ok"), ("x", "blocked"), ("~", "mixed"), (".", "no data")):
        legend.append_text(_strip_text(code)).append(f" {label}  ")
    err.print(legend)


def _render_gaps(network: dict) -> None:
    for gap in network["gaps"]:
        out.print(
            f"[yellow]gap[/]: {_short(gap['from'])} → {_short(gap['to'])} "
            f"({gap['hours']:g} h, {gap['reason']}): no evidence either way",
            highlight=False,
        )
    out.print()


@app.command()
def schedule(
    every: str = typer.Option("1h", "--every", help="Interval: 15m, 30m, 1h, 2h, 6h or 1d."),
    systemd: bool = typer.Option(
        False, "--systemd", help="Print a systemd service + timer pair instead of a crontab line."
    ),
    config: Path = typer.Option(
        None, "--config", help="Config file the scheduled run should use (made absolute)."
    ),
    out_dir: Path = typer.Option(
        None, "--out", help="Folder for result files. [default: the config's `out`, else ./results]"
    ),
    log: Path = typer.Option(
        None, "--log", help="Log file for the runs. [default: <out>/netprobe.log]"
    ),
    user: str = typer.Option(None, "--user", help="systemd only: run the service as this user."),
    write_dir: Path = typer.Option(
        None, "--write", help="systemd only: also write the two unit files into this folder."
    ),
    seed: int = typer.Option(
        None, "--seed", hidden=True, help="Seed for the random offset (tests)."
    ),
) -> None:
    """Print a ready crontab line (or systemd units) for running netprobe regularly.

    Nothing is installed: the text goes to stdout, how to install it goes to stderr.

    Example: netprobe schedule --every 1h --config ~/.config/netprobe/config.yaml
    """
    from netprobe.config import ConfigError, load_config
    from netprobe.run.schedule import (
        cron_instructions,
        crontab_line,
        parse_every,
        run_command,
        systemd_instructions,
        systemd_units,
    )

    try:
        interval = parse_every(every)
    except ValueError as exc:
        fail(str(exc))
    if not systemd and (user or write_dir):
        fail("--user and --write only apply with --systemd")
    settings: dict = {}
    if config is not None:
        config = config.expanduser().resolve()
        try:
            settings = load_config(config)
        except ConfigError as exc:
            fail(str(exc))
    results = out_dir.expanduser().resolve() if out_dir else None
    effective_out = results or Path(settings.get("out") or Path("results").resolve())
    log_path = str(log.expanduser().resolve()) if log else settings.get("log")
    log_path = log_path or str(effective_out / "netprobe.log")
    if results is None and "out" not in settings:
        results = effective_out  # cron starts in $HOME: never rely on a relative default
    argv = run_command(
        [sys.executable, "-m", "netprobe"],
        config=str(config) if config else None,
        out=str(results) if results else None,
        log=log_path,
    )
    rng = random.Random(seed)
    if not systemd:
        line = crontab_line(interval, argv, log_path, rng)
        sys.stdout.write(line + "\n")
        err.print(cron_instructions(line), highlight=False, markup=False)
        return
    units = systemd_units(interval, argv, log_path, working_dir=str(effective_out), user=user)
    for name, text in units.items():
        sys.stdout.write(f"# ---- {name} ----\n{text}\n")
    if write_dir is not None:
        try:
            write_dir.mkdir(parents=True, exist_ok=True)
            for name, text in units.items():
                (write_dir / name).write_text(text, encoding="utf-8")
        except OSError as exc:
            fail(f"cannot write units into {write_dir}: {exc}", EXIT_USAGE)
        err.print(f"wrote {', '.join(units)} into {write_dir}", highlight=False, markup=False)
    err.print(systemd_instructions(system_wide=user is not None or _is_root()), markup=False)


def _is_root() -> bool:
    import os

    return os.geteuid() == 0
