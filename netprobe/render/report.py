"""Turn report and diff dicts (the `--format json` documents) into rich tables or Markdown.

Rules: rendering only, from the same dicts the json format prints, so every format shows the same
facts. Pure: returns renderables or strings; the CLI prints them. Deterministic order.
"""

from __future__ import annotations

from collections import Counter

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from netprobe.model.vocabulary import (
    ADDED,
    BECAME_DOWN,
    BECAME_INCONCLUSIVE,
    BLOCKED,
    DOWN,
    INCONCLUSIVE,
    LAYERS,
    METHOD_CHANGED,
    NEWLY_BLOCKED,
    NEWLY_THROTTLED,
    NOT_APPLICABLE,
    OK,
    RECOVERED,
    REMOVED,
    ROLE_CONTROL,
    THROTTLED,
    UNBLOCKED,
    UNTHROTTLED,
)

STATUS_STYLE = {
    OK: "green",
    BLOCKED: "bold red",
    DOWN: "yellow",
    INCONCLUSIVE: "dim",
    THROTTLED: "bold magenta",
}
KIND_STYLE = {
    NEWLY_BLOCKED: "bold red",
    UNBLOCKED: "green",
    METHOD_CHANGED: "magenta",
    BECAME_DOWN: "yellow",
    RECOVERED: "green",
    BECAME_INCONCLUSIVE: "dim",
    ADDED: "cyan",
    REMOVED: "cyan",
    NEWLY_THROTTLED: "bold magenta",
    UNTHROTTLED: "green",
}
MAX_EVIDENCE_LINES = 4
# A big sweep has thousands of like verdicts: the table shows this many per (group, status), then
# one row counting the rest (a rich table of 17,000 rows takes ~10 s to lay out; JSON has them all).
MAX_ROWS_PER_GROUP_STATUS = 200


def _status_text(status: str | None, method: str | None = None) -> Text:
    if status is None:
        return Text("-", style="dim")
    label = f"{status} ({method})" if method else status
    return Text(label, style=STATUS_STYLE.get(status, ""))


def _state(state: dict | None) -> str:
    if not state:
        return "-"
    return f"{state['status']} ({state['method']})" if state.get("method") else str(state["status"])


def _run_line(run: dict) -> str:
    return (
        f"vantage {run.get('vantage')}  {run.get('probe_asn')}/{run.get('probe_cc')}  "
        f"started {run.get('started_at')}  list {run.get('target_list_name')}  "
        f"netprobe {run.get('software_version')}  run {run.get('run_id')}"
    )


def _file_line(file: dict | None) -> str | None:
    if not file:
        return None
    parts = [str(file.get("path"))]
    if file.get("verification"):
        parts.append(f"signature {file['verification']}")
    signer = file.get("signer")
    if isinstance(signer, dict):
        if signer.get("trusted"):
            parts.append(f"signer {signer.get('principal')} (trusted)")
        else:
            parts.append(f"UNTRUSTED signer {signer.get('fingerprint')}")
    if file.get("finished_at"):
        parts.append(f"finished {file['finished_at']}")
    if file.get("dropped"):
        parts.append(f"{file['dropped']} records dropped")
    return "  ".join(parts)


def _shown_layers(report: dict) -> tuple[str, ...]:
    """The layers some verdict of the report has (`dns/tcp/tls` always; `throughput` only when
    a target had downloads), in client order."""
    present = {name for verdict in report.get("verdicts", []) for name in verdict.get("layers", {})}
    return tuple(name for name in LAYERS if name in present) or LAYERS[:3]


def _layers_cell(layers: dict, shown: tuple[str, ...]) -> str:
    """`ok/blocked/n/a`: each shown layer's status, in client order."""
    return "/".join(layers.get(name, NOT_APPLICABLE) for name in shown)


def _evidence_cell(lines: list[str], notes: list[str]) -> str:
    shown = lines[:MAX_EVIDENCE_LINES]
    if len(lines) > MAX_EVIDENCE_LINES:
        shown.append(f"... {len(lines) - MAX_EVIDENCE_LINES} more (--format json)")
    return "\n".join([*shown, *(f"note: {n}" for n in notes)])


# ------------------------------------------------------------------ report


def report_renderable(report: dict) -> RenderableType:
    """Run metadata, vantage health, group sentences and a verdict table."""
    parts: list[RenderableType] = []
    run = report.get("run", {})
    parts.append(Text(_run_line(run), style="bold"))
    file_line = _file_line(report.get("file"))
    if file_line:
        parts.append(Text(file_line, style="dim"))
    vantage = report.get("vantage", {})
    health = "healthy" if vantage.get("healthy") else "UNHEALTHY (all verdicts inconclusive)"
    parts.append(
        Text(
            f"vantage point {health}: control resolver "
            f"{'ok' if vantage.get('control_resolver_ok') else 'failing'}, control endpoints "
            f"{'ok' if vantage.get('control_endpoints_ok') else 'failing'}"
        )
    )
    for note in vantage.get("notes", []):
        parts.append(Text(f"  note: {note}", style="yellow"))
    parts.append(Text(""))
    for group in report.get("groups", []):
        line = Text("• ")
        line.append(group["line"], style=STATUS_STYLE.get(group["status"], ""))
        parts.append(line)
    table = Table(title="Verdicts", show_lines=True)
    table.add_column("target")
    table.add_column("group")
    table.add_column("status")
    shown = _shown_layers(report)
    table.add_column("/".join(shown))
    table.add_column("evidence", overflow="fold")
    rows: Counter[tuple[str, str]] = Counter()  # rows per (group, status)
    for verdict in report.get("verdicts", []):
        key = (verdict.get("group", ""), verdict["status"])
        rows[key] += 1
        if rows[key] > MAX_ROWS_PER_GROUP_STATUS:
            continue
        layers = verdict.get("layers", {})
        table.add_row(
            escape(verdict["target_id"])
            + (" (control)" if verdict.get("role") == ROLE_CONTROL else ""),
            escape(verdict.get("group", "")),
            _status_text(verdict["status"], verdict.get("method")),
            _layers_cell(layers, shown),
            escape(_evidence_cell(verdict.get("evidence", []), verdict.get("notes", []))),
        )
    for (group, status), n in rows.items():
        if n > MAX_ROWS_PER_GROUP_STATUS:
            more = n - MAX_ROWS_PER_GROUP_STATUS
            table.add_row(
                f"... {more:,} more",
                escape(group),
                _status_text(status),
                "",
                f"{more:,} more {status} targets of group {escape(group)} (--format json lists all)",
            )
    parts.append(table)
    counts = report.get("counts", {})
    parts.append(Text(", ".join(f"{n} {status}" for status, n in counts.items())))
    return Group(*parts)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", "<br>")


def report_markdown(report: dict) -> str:
    run = report.get("run", {})
    lines = [f"# netprobe report: {run.get('vantage')} {run.get('started_at')}", ""]
    shown = _shown_layers(report)
    lines.append(f"- {_run_line(run)}")
    file_line = _file_line(report.get("file"))
    if file_line:
        lines.append(f"- file: {file_line}")
    vantage = report.get("vantage", {})
    lines.append(f"- vantage point healthy: {'yes' if vantage.get('healthy') else 'no'}")
    lines += [f"- note: {note}" for note in vantage.get("notes", [])]
    lines += ["", "## Summary", ""]
    lines += [f"- {group['line']}" for group in report.get("groups", [])]
    lines += [
        "",
        "## Verdicts",
        "",
        f"| target | group | status | {'/'.join(shown)} | evidence |",
        "|---|---|---|---|---|",
    ]
    for verdict in report.get("verdicts", []):
        status = verdict["status"] + (f" ({verdict['method']})" if verdict.get("method") else "")
        layers = _layers_cell(verdict.get("layers", {}), shown)
        evidence = [*verdict.get("evidence", []), *(f"note: {n}" for n in verdict.get("notes", []))]
        lines.append(
            f"| `{verdict['target_id']}` | {verdict.get('group', '')} | {status} | {layers} | "
            f"{_md_cell(chr(10).join(evidence))} |"
        )
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ diff


def diff_renderable(diff: dict) -> RenderableType:
    parts: list[RenderableType] = [
        Text(f"old: {_run_line(diff.get('old', {}))}", style="bold"),
        Text(f"new: {_run_line(diff.get('new', {}))}", style="bold"),
    ]
    unjudged = diff.get("unjudged") or []
    for item in unjudged:
        parts.append(Text(f"NOTHING JUDGED in the {item['run']} run: {item['reason']}", "bold red"))
    summary = diff.get("summary", {})
    counted = ", ".join(f"{n} {kind}" for kind, n in summary.items() if n) or "no changes"
    if unjudged:
        counted += " (meaningless: nothing could be judged, see above)"
    parts.append(Text(f"changes: {counted}"))
    if diff.get("changes"):
        table = Table(title="Changed targets", show_lines=True)
        for column in ("target", "change", "before", "after", "evidence (after)"):
            table.add_column(column, overflow="fold")
        kinds: Counter[tuple[str, str]] = Counter()  # rows per (group, kind)
        for change in diff["changes"]:
            key = (change.get("group", ""), change["kind"])
            kinds[key] += 1
            if kinds[key] > MAX_ROWS_PER_GROUP_STATUS:
                continue
            evidence = change.get("evidence", {})
            table.add_row(
                escape(change["target"]),
                Text(change["kind"], style=KIND_STYLE.get(change["kind"], "")),
                _state(change.get("before")),
                _state(change.get("after")),
                escape(_evidence_cell(evidence.get("after") or evidence.get("before") or [], [])),
            )
        for (group, kind), n in kinds.items():
            if n > MAX_ROWS_PER_GROUP_STATUS:
                more = n - MAX_ROWS_PER_GROUP_STATUS
                where = f" of group {escape(group)}" if group else ""
                table.add_row(
                    f"... {more:,} more",
                    Text(kind, style=KIND_STYLE.get(kind, "")),
                    "",
                    "",
                    f"{more:,} more {kind} targets{where} (--format json lists all)",
                )
        parts.append(table)
    if diff.get("notable"):
        table = Table(title="Other changes")
        for column in ("kind", "target", "what", "before", "after"):
            table.add_column(column, overflow="fold")
        for item in diff["notable"]:
            table.add_row(
                item["kind"],
                escape(item.get("target", "")),
                escape(str(item.get("key", ""))),
                escape(_value(item.get("before"))),
                escape(_value(item.get("after"))),
            )
        parts.append(table)
    return Group(*parts)


def _value(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "(none)"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def diff_markdown(diff: dict) -> str:
    lines = ["# netprobe diff", ""]
    lines.append(f"- old: {_run_line(diff.get('old', {}))}")
    lines.append(f"- new: {_run_line(diff.get('new', {}))}")
    lines += [f"- warning: {w}" for w in diff.get("warnings", [])]
    unjudged = diff.get("unjudged") or []
    lines += [f"- **nothing judged in the {u['run']} run**: {u['reason']}" for u in unjudged]
    summary = diff.get("summary", {})
    counted = ", ".join(f"{n} {k}" for k, n in summary.items() if n) or "none"
    if unjudged:
        counted += " (meaningless: nothing could be judged)"
    lines.append("- changes: " + counted)
    if diff.get("changes"):
        lines += [
            "",
            "## Changed targets",
            "",
            "| target | change | before | after | evidence |",
            "|---|---|---|---|---|",
        ]
        for change in diff["changes"]:
            evidence = change.get("evidence", {})
            text = [f"before: {e}" for e in evidence.get("before", [])]
            text += [f"after: {e}" for e in evidence.get("after", [])]
            lines.append(
                f"| `{change['target']}` | {change['kind']} | {_state(change.get('before'))} | "
                f"{_state(change.get('after'))} | {_md_cell(chr(10).join(text))} |"
            )
    if diff.get("notable"):
        lines += [
            "",
            "## Other changes",
            "",
            "| kind | target | what | before | after |",
            "|---|---|---|---|---|",
        ]
        for item in diff["notable"]:
            cells = [
                item["kind"],
                item.get("target", ""),
                str(item.get("key", "")),
                _value(item.get("before")),
                _value(item.get("after")),
            ]
            lines.append("| " + " | ".join(_md_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"
