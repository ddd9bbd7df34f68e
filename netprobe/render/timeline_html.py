"""A self-contained HTML page of a timeline report (pure: the `--format json` document in, text out).

Rules:
- No scripts, no external fonts, images or style sheets, nothing fetched: the page is one file
  that a researcher can attach to a report or open offline. Every value from the data is
  HTML-escaped.
- Responsive: no fixed pixel widths. Strips and the time axis are percentage-positioned boxes in
  a CSS grid, labels wrap (`overflow-wrap: anywhere`), so nothing overflows a 1280 px window
  (tests/test_timeline_html_browser.py checks 1280 and 1920 px in headless Chromium).
- The page opens with the per-network summary table (`summary.line` of each network, from
  `netprobe.timeline.fleet`), then one shared time axis for every network (the fleet view): per
  target group, one row per (target, network), the axis labelled in UTC, each onset interval
  (last run seen in the old state to first run in the new) marked on the axis and on its row.
- Each strip cell (the report's `cells`, see `netprobe.timeline.series.strip_cells`) has a
  tooltip (`title`): its hours, state, and the evidence (hours sampled, hours that looked blocked,
  worst score and layer, method). A report without `cells` falls back to the `strip` codes.
- Then per network: runs, the changes with their onset intervals, gaps, and, for a network without
  samples, why it has none. The selection line shows only the parameters that were set.
"""

from __future__ import annotations

from html import escape
from typing import Any

from netprobe.render.timeline_axis import Axis, iso_of, minute, seconds
from netprobe.timeline.fleet import OTHER_GROUP, empty_reason
from netprobe.timeline.series import STRIP_BLOCKED, STRIP_GAP, STRIP_MIXED, STRIP_OK

CELL_COLOURS = {
    STRIP_OK: "#3a9d5d",
    STRIP_BLOCKED: "#c62828",
    STRIP_MIXED: "#f2a900",
    STRIP_GAP: "#dddddd",
}
CODE_STATES = {STRIP_OK: "ok", STRIP_BLOCKED: "blocked", STRIP_MIXED: "mixed", STRIP_GAP: "no data"}

STYLE = """
* { box-sizing: border-box; }
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; max-width: 100%; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 2em; } h3 { font-size: 1em; }
table { border-collapse: collapse; margin: 0.5em 0 1em; width: 100%; table-layout: auto; }
th, td { text-align: left; padding: 0.25em 0.6em; border-bottom: 1px solid #eee;
  vertical-align: top; overflow-wrap: break-word; }
td small { color: #555; display: block; }
code { font-size: 0.95em; overflow-wrap: anywhere; }
.blocked { color: #c62828; font-weight: 600; } .ok { color: #2e7d32; } .unknown { color: #777; }
.legend span { display: inline-block; width: 1em; height: 1em; margin: 0 0.3em 0 1em;
  vertical-align: middle; }
.legend .onset { background: rgba(0, 0, 0, 0.12); outline: 2px solid #222; }
.rows { display: grid; grid-template-columns: minmax(10em, 26%) minmax(0, 1fr);
  column-gap: 0.8em; row-gap: 0.35em; align-items: center; }
.rows > * { min-width: 0; }
.label { overflow-wrap: anywhere; font-size: 0.9em; }
.label .net { color: #555; display: block; font-size: 0.9em; }
.strip, .axis { position: relative; width: 100%; }
.strip { height: 1.2em; background: #dddddd; overflow: hidden; }
.strip span, .axis .onset { position: absolute; top: 0; bottom: 0; }
.strip .onset, .axis .onset { background: rgba(0, 0, 0, 0.12); outline: 2px solid #222;
  min-width: 3px; }
.axis { height: 2.6em; border-bottom: 1px solid #888; }
.axis .tick { position: absolute; bottom: 0; height: 0.5em; border-left: 1px solid #888; }
.axis .tick b { position: absolute; bottom: 0.6em; font-weight: normal; font-size: 0.75em;
  white-space: nowrap; transform: translateX(-50%); }
.axis .tick.first b { transform: none; } .axis .tick.last b { transform: translateX(-100%); }
.axis .onset { top: 0; bottom: auto; height: 0.7em; background: rgba(198, 40, 40, 0.35);
  outline: 1px solid #c62828; }
.why { color: #6d4c00; }
@media (max-width: 900px) { .axis .tick:nth-of-type(even) b { display: none; }
  .rows { grid-template-columns: minmax(8em, 30%) minmax(0, 1fr); } body { margin: 0.8em; } }
.throttled { color: #8e24aa; font-weight: 600; }
code { font-size: 0.95em; }
"""


def render_html(doc: dict[str, Any]) -> str:
    """The whole page for a timeline document (as built by `TimelineBuilder.build()`)."""
    networks = doc.get("networks", []) or []
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>netprobe timeline</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>netprobe timeline</h1>",
        f"<p>{_int(doc.get('runs'))} runs from {_int(doc.get('files'))} files; "
        f"{_int(len(doc.get('skipped', []) or []))} files skipped. "
        + _selection(doc.get("parameters", {}) or {})
        + "</p>",
        _summary_table(networks),
        _legend(),
        _fleet(networks),
    ]
    wanted = (doc.get("parameters") or {}).get("target")
    for network in networks:
        parts.append(_network(network, wanted))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _selection(params: dict[str, Any]) -> str:
    """`Selection: since 2025-05-20T00:00:00Z, target domain:x.` (only what was set) and the
    detector's parameters."""
    chosen = [
        f"{label} <code>{escape(str(params[key]))}</code>"
        for key, label in (("since", "since"), ("until", "until"), ("target", "target"))
        if params.get(key) is not None
    ]
    detector = ", ".join(
        f"{key}={escape(str(params[key]))}"
        for key in ("mu1", "edd", "h", "window_hours")
        if params.get(key) is not None
    )
    text = f"Selection: {', '.join(chosen)}. " if chosen else "All runs. "
    return text + (f"Detector: <code>{detector}</code>." if detector else "")


def _summary_table(networks: list[dict[str, Any]]) -> str:
    if not networks:
        return "<p>No runs in the selected time range.</p>"
    rows = [
        "<h2>Summary</h2>",
        "<table><tr><th>network</th><th>what was blocked, by what, from when</th></tr>",
    ]
    for network in networks:
        line = str((network.get("summary") or {}).get("line") or "")
        name = f"{network.get('probe_asn')} {network.get('vantage')}"
        text = line[len(name) + 2 :] if line.startswith(name + ": ") else line
        rows.append(
            f"<tr><td><b>{escape(name)}</b><small>{_int(network.get('runs'))} runs "
            f"({_int(network.get('healthy_runs'))} healthy), "
            f"{escape(minute(network.get('first_run')))} to "
            f"{escape(minute(network.get('last_run')))} UTC</small></td>"
            f"<td>{escape(text)}</td></tr>"
        )
    rows.append("</table>")
    return "\n".join(rows)


def _legend() -> str:
    cells = "".join(
        f'<span style="background:{CELL_COLOURS[code]}"></span>{CODE_STATES[code]}'
        for code in (STRIP_OK, STRIP_BLOCKED, STRIP_MIXED, STRIP_GAP)
    )
    return (
        f'<p class="legend">{cells}<span class="onset"></span>onset interval '
        "(hover a cell or a mark for its time and evidence)</p>"
    )


def _cells(target: dict[str, Any], network: dict[str, Any]) -> list[dict[str, Any]]:
    """The target's cells, or cells made from its strip codes (a report built without them)."""
    if target.get("cells"):
        return list(target["cells"])
    codes = str(target.get("strip") or "")
    start, end = seconds(network.get("strip_start")), seconds(network.get("strip_end"))
    if not codes or start is None or end is None:
        return []
    step = max(end - start, 3600.0) / len(codes)
    cells: list[dict[str, Any]] = []
    begin = 0
    for index in range(1, len(codes) + 1):
        # One box per run of equal codes keeps a year-long page small.
        if index == len(codes) or codes[index] != codes[begin]:
            cells.append(
                {
                    "from": iso_of(start + begin * step),
                    "to": iso_of(start + index * step),
                    "code": codes[begin],
                }
            )
            begin = index
    return cells


def _fleet(networks: list[dict[str, Any]]) -> str:
    """Every network's targets on one time axis, grouped by target group."""
    rows: dict[str, list[tuple[dict, dict]]] = {}
    labels: dict[str, str] = {}
    bounds: list[float] = []
    for network in networks:
        labels = {**(network.get("group_labels") or {}), **labels}
        for target in network.get("targets", []) or []:
            rows.setdefault(target.get("group") or OTHER_GROUP, []).append((target, network))
            for cell in _cells(target, network):
                bounds += [s for s in (seconds(cell.get("from")), seconds(cell.get("to"))) if s]
    if not bounds:
        return ""
    axis = Axis(min(bounds), max(bounds))
    several = len(networks) > 1
    parts = [
        "<h2>Timeline" + (" of every network on one time axis" if several else "") + " (UTC)</h2>"
    ]
    order = [g for g in labels if g in rows] + sorted(g for g in rows if g not in labels)
    for group in order:
        members = sorted(rows[group], key=lambda item: (item[0].get("target_id"), _name(item[1])))
        label = labels.get(group, group)
        parts.append(
            f"<h3>{escape(label)}"
            + (f" <small>({escape(group)})</small>" if label != group else "")
            + "</h3>"
        )
        marks = _axis_onsets(members, axis)
        parts.append(f'<div class="rows"><div></div><div class="axis">{axis.ticks()}{marks}</div>')
        for target, network in members:
            parts.append(_row(target, network, axis, several))
        parts.append("</div>")
    return "\n".join(parts)


def _name(network: dict[str, Any]) -> str:
    return f"{network.get('probe_asn')} {network.get('vantage')}"


def _row(target: dict[str, Any], network: dict[str, Any], axis: Axis, several: bool) -> str:
    state = str(target.get("state"))
    method = f" ({escape(str(target['method']))})" if target.get("method") else ""
    net = f'<span class="net">{escape(_name(network))}</span>' if several else ""
    cells = []
    for cell in _cells(target, network):
        start, end = seconds(cell.get("from")), seconds(cell.get("to"))
        code = str(cell.get("code"))
        if start is None or end is None or code == STRIP_GAP and "hours" not in cell:
            continue
        colour = CELL_COLOURS.get(code, CELL_COLOURS[STRIP_GAP])
        cells.append(
            f'<span style="{axis.box(start, end, seam=True)};background:{colour}" '
            f'title="{escape(_cell_title(cell, target))}"></span>'
        )
    return (
        f'<div class="label"><code>{escape(str(target.get("target_id")))}</code> '
        f'<span class="{escape(state)}">{escape(state)}{method}</span>{net}</div>'
        f'<div class="strip" title="no data: no healthy run then">{"".join(cells)}'
        f"{_onsets(target, axis)}</div>"
    )


def _cell_title(cell: dict[str, Any], target: dict[str, Any]) -> str:
    text = (
        f"{target.get('target_id')}: {minute(cell.get('from'))} to "
        f"{minute(cell.get('to'))} UTC: {CODE_STATES.get(str(cell.get('code')), 'no data')}"
    )
    if "hours" not in cell:
        return text
    if not cell.get("hours"):
        return text + "; no sample (no healthy run)"
    text += f"; {cell['hours']} hour(s) sampled, {cell.get('blocked_hours', 0)} looked blocked"
    if cell.get("worst") is not None:
        text += f"; worst score {cell['worst']}" + (
            f" ({cell['layer']})" if cell.get("layer") else ""
        )
    if cell.get("method"):
        text += f"; method {cell['method']}"
    return text


def _axis_onsets(members: list[tuple[dict, dict]], axis: Axis) -> str:
    """The group's onset intervals on its axis: one mark per (network, interval), its tooltip
    naming the network and the targets that changed then."""
    found: dict[tuple[str, float, float], list[str]] = {}
    for target, network in members:
        for change in target.get("changes", []) or []:
            first = seconds(change.get("first_after"))
            if change.get("initial") or first is None:
                continue
            last = seconds(change.get("last_before")) or first
            key = (_name(network), last, first)
            found.setdefault(key, []).append(
                f"{target.get('target_id')} {change.get('layer')} to {change.get('to')}"
            )
    marks = []
    for (name, last, first), what in sorted(found.items(), key=lambda item: item[0][1:]):
        title = (
            f"{name}: onset between {minute(iso_of(last))} and {minute(iso_of(first))} UTC: "
            f"{len(what)} change(s): {', '.join(what[:6])}{', ...' if len(what) > 6 else ''}"
        )
        marks.append(
            f'<span class="onset" style="{axis.box(last, first)}" title="{escape(title)}"></span>'
        )
    return "".join(marks)


def _onsets(target: dict[str, Any], axis: Axis) -> str:
    marks = []
    for change in target.get("changes", []) or []:
        first = seconds(change.get("first_after"))
        if change.get("initial") or first is None:
            continue
        last = seconds(change.get("last_before")) or first
        what = (
            f"{target.get('target_id')} {change.get('layer')}: "
            f"{change.get('from')} to {change.get('to')}"
            + (f" ({change['method']})" if change.get("method") else "")
            + f", onset between {minute(change.get('last_before'))} and "
            f"{minute(change.get('first_after'))} UTC"
        )
        marks.append(
            f'<span class="onset" style="{axis.box(last, first)}" title="{escape(what)}"></span>'
        )
    return "".join(marks)


def _network(network: dict[str, Any], wanted: str | None) -> str:
    rows = [
        f"<h2>Network {escape(_name(network))}</h2>",
        f"<p>{_int(network.get('runs'))} runs ({_int(network.get('healthy_runs'))} with healthy "
        f"controls) from {escape(minute(network.get('first_run')))} to "
        f"{escape(minute(network.get('last_run')))} UTC.</p>",
    ]
    reason = empty_reason(network, wanted)
    if reason is not None:
        rows.append(f'<p class="why">No samples: {escape(reason)}</p>')
    changes = [
        (target, change)
        for target in network.get("targets", []) or []
        for change in target.get("changes", []) or []
        if not change.get("initial")
    ]
    if changes:
        rows.append(
            "<table><tr><th>target</th><th>change</th><th>onset between (UTC)</th>"
            "<th>confidence</th></tr>"
        )
        for target, change in sorted(changes, key=lambda item: str(item[1].get("first_after"))):
            rows.append(
                f"<tr><td><code>{escape(str(target.get('target_id')))}</code></td>"
                f"<td>{_change(change)}</td>"
                f"<td>between {escape(str(change.get('last_before')))} and "
                f"{escape(str(change.get('first_after')))}"
                + (" <b>spans a gap</b>" if change.get("spans_gap") else "")
                + f"</td><td>{escape(str(change.get('confidence_label')))}"
                + (" (corroborated)" if change.get("corroborated") else "")
                + "</td></tr>"
            )
        rows.append("</table>")
    elif reason is None:
        rows.append("<p>No changes: every target kept its state.</p>")
    gaps = network.get("gaps", []) or []
    if gaps:
        rows.append("<p>Gaps (no evidence either way):</p><ul>")
        for gap in gaps:
            rows.append(
                f"<li>{escape(str(gap.get('from')))} to {escape(str(gap.get('to')))} "
                f"({escape(str(gap.get('hours')))} h, {escape(str(gap.get('reason')))})</li>"
            )
        rows.append("</ul>")
    return "\n".join(rows)


def _change(change: dict[str, Any]) -> str:
    return (
        f"{escape(str(change.get('layer')))}: {escape(str(change.get('from')))} &rarr; "
        f"{escape(str(change.get('to')))}"
        + (f" ({escape(str(change['method']))})" if change.get("method") else "")
    )


def _int(value: Any) -> str:
    return escape(str(value if value is not None else 0))
