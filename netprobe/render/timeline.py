"""Terminal and CSV views of a timeline report (the `--format json` document of `netprobe timeline`).

Rules:
- Rendering only, from the same dict the json format prints, so every format shows the same facts.
  Pure: returns rich renderables or text; the CLI prints them (the table to stdout, the strip
  legend to stderr so a redirected table stays plain).
- Times are shown to the minute (`2025-05-26 01:07`); a change whose old state began before the
  first sample says "start of data".
- The output opens with one summary line per network (the report's `summary.line`, from
  `netprobe.timeline.fleet`: which groups are blocked by what, since when), the same sentence the
  JSON and the HTML page carry.
- A network whose runs all had failing controls has no targets: it says so (`fleet.empty_reason`)
  and lists its gaps, never a state.
- CSV: one row per change (`CSV_FIELDS`), and one row with empty change fields for a target
  without changes.
"""

from __future__ import annotations

import csv
import io

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from netprobe.model.vocabulary import BLOCKED, OK, THROTTLED, UNKNOWN
from netprobe.timeline.fleet import empty_reason
from netprobe.timeline.series import STRIP_BLOCKED, STRIP_GAP, STRIP_MIXED, STRIP_OK

STRIP_STYLE = {
    STRIP_GAP: ("·", "dim"),
    STRIP_OK: ("▁", "green"),
    STRIP_BLOCKED: ("█", "red"),
    STRIP_MIXED: ("▄", "yellow"),
}
STATE_STYLE = {OK: "green", BLOCKED: "bold red", UNKNOWN: "dim", THROTTLED: "bold magenta"}
CSV_FIELDS = [
    "probe_asn", "vantage", "target_id", "state", "layer", "from", "to", "initial",
    "last_before", "first_after", "interval_hours", "spans_gap", "alarm_at", "method",
    "corroborated", "confidence", "confidence_label",
]  # fmt: skip


def timeline_csv(report: dict) -> str:
    """The CSV text: a header line, then one row per change (csv's `\\r\\n` line ends)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, extrasaction="ignore")
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
    return buffer.getvalue()


def strip_text(codes: str) -> Text:
    """A strip of codes as coloured block characters."""
    text = Text()
    for code in codes:
        char, style = STRIP_STYLE.get(code, (code, ""))
        text.append(char, style=style)
    return text


def strip_legend() -> Text:
    """`strip: ▁ ok  █ blocked  ▄ mixed  · no data` (the CLI prints it on stderr)."""
    legend = Text("strip: ")
    for code, label in (
        (STRIP_OK, "ok"),
        (STRIP_BLOCKED, "blocked"),
        (STRIP_MIXED, "mixed"),
        (STRIP_GAP, "no data"),
    ):
        legend.append_text(strip_text(code)).append(f" {label}  ")
    return legend


def short_time(iso_time: str | None) -> str:
    """ "2025-05-26T01:07:31Z" -> "2025-05-26 01:07" (minutes are enough to read an interval)."""
    return "start of data" if iso_time is None else iso_time[:16].replace("T", " ")


def timeline_renderables(report: dict) -> list[RenderableType]:
    """What `netprobe timeline` prints on stdout, in order: per network a line, tables, gaps."""
    parts: list[RenderableType] = []
    if not report["networks"]:
        parts.append(_line("No runs in the selected time range."))
    summaries = [n["summary"]["line"] for n in report["networks"] if n.get("summary")]
    if summaries:
        parts.append(_line("[bold]Summary[/]"))
        parts += [Text(f"  {line}") for line in summaries]
        parts.append(Text(""))
    for network in report["networks"]:
        parts.append(
            _line(
                f"[bold]{network['probe_asn']} {network['vantage']}[/]: {network['runs']} runs "
                f"({network['healthy_runs']} with healthy controls), "
                f"{short_time(network['first_run'])} to {short_time(network['last_run'])}"
            )
        )
        reason = empty_reason(network, report.get("parameters", {}).get("target"))
        if reason is not None:
            # Only runs whose controls failed (gaps, never samples), or a --target not measured.
            parts.append(Text(f"  {reason}"))
        else:
            parts.append(_targets_table(network))
            changes = _changes_table(network)
            if changes is not None:
                parts.append(changes)
        parts += _gaps(network)
    return parts


def _line(markup: str) -> Text:
    # What `Console.print(markup, highlight=False)` shows (the consoles print no emoji codes).
    return Text.from_markup(markup, emoji=False)


def _targets_table(network: dict) -> Table:
    strip_width = len(network["targets"][0]["strip"])
    table = Table(
        caption=f"strip: {short_time(network['strip_start'])} → {short_time(network['strip_end'])}"
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
            short_time(last["first_after"]) if last and not last["initial"] else "",
            last["confidence_label"] if last and not last["initial"] else "",
            strip_text(entry["strip"]),
        )
    return table


def _changes_table(network: dict) -> Table | None:
    changes = [
        (entry["target_id"], c)
        for entry in network["targets"]
        for c in entry["changes"]
        if not c["initial"]
    ]
    if not changes:
        return None
    detail = Table(title="Changes: the onset lies after 'last old' and at or before 'first new'")
    for column in ("target", "layer", "to", "last old", "first new", "method", "corr."):
        detail.add_column(column, no_wrap=True)
    detail.add_column("sure")
    for target_id, c in sorted(changes, key=lambda item: item[1]["first_after"]):
        gap_note = "\n(spans a gap)" if c["spans_gap"] else ""
        detail.add_row(
            target_id,
            c["layer"],
            Text(c["to"], style=STATE_STYLE.get(c["to"], "")),
            short_time(c["last_before"]),
            short_time(c["first_after"]) + gap_note,
            c["method"] or "",
            "yes" if c["corroborated"] else "no",
            f"{c['confidence_label']} {c['confidence']:.2f}",
        )
    return detail


def _gaps(network: dict) -> list[Text]:
    lines = [
        _line(
            f"[yellow]gap[/]: {short_time(gap['from'])} → {short_time(gap['to'])} "
            f"({gap['hours']:g} h, {gap['reason']}): no evidence either way"
        )
        for gap in network["gaps"]
    ]
    return [*lines, Text("")]  # a blank line closes each network
