"""A self-contained HTML page of a timeline report (pure: the `--format json` document in, text out).

Rules: no scripts, no external fonts or images, nothing fetched: the page is one file that a
researcher can attach to a report or open offline. Every value from the data is HTML-escaped.
Each target gets an SVG strip (one cell per strip column: ok, blocked, mixed, no data) and its
changes with the onset interval (last run seen in the old state, first run in the new).
"""

from __future__ import annotations

from html import escape
from typing import Any

from netprobe.timeline.series import STRIP_BLOCKED, STRIP_GAP, STRIP_MIXED, STRIP_OK

CELL_COLOURS = {
    STRIP_OK: "#3a9d5d",
    STRIP_BLOCKED: "#c62828",
    STRIP_MIXED: "#f2a900",
    STRIP_GAP: "#dddddd",
}
CELL_WIDTH, CELL_HEIGHT = 4, 18

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
th, td { text-align: left; padding: 0.25em 0.6em; border-bottom: 1px solid #eee; vertical-align: top; }
td.strip { padding: 0.25em 0; }
.blocked { color: #c62828; font-weight: 600; } .ok { color: #2e7d32; } .unknown { color: #777; }
.throttled { color: #8e24aa; font-weight: 600; }
.legend span { display: inline-block; width: 1em; height: 1em; margin: 0 0.3em 0 1em; vertical-align: middle; }
code { font-size: 0.95em; }
"""


def render_html(doc: dict[str, Any]) -> str:
    """The whole page for a timeline document (as built by `TimelineBuilder.build()`)."""
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>netprobe timeline</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>netprobe timeline</h1>",
        f"<p>{_int(doc.get('runs'))} runs from {_int(doc.get('files'))} files; "
        f"{_int(len(doc.get('skipped', []) or []))} files skipped. Detector: "
        f"<code>{escape(_params(doc.get('parameters', {})))}</code></p>",
        _legend(),
    ]
    for network in doc.get("networks", []):
        parts.append(_network(network))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _legend() -> str:
    labels = (
        (STRIP_OK, "ok"),
        (STRIP_BLOCKED, "blocked"),
        (STRIP_MIXED, "mixed"),
        (STRIP_GAP, "no data"),
    )
    cells = "".join(
        f'<span style="background:{CELL_COLOURS[code]}"></span>{label}' for code, label in labels
    )
    return f'<p class="legend">{cells}</p>'


def _network(network: dict[str, Any]) -> str:
    title = f"{network.get('vantage')} ({network.get('probe_asn')})"
    rows = [
        f"<h2>Network {escape(title)}</h2>",
        f"<p>{_int(network.get('runs'))} runs ({_int(network.get('healthy_runs'))} with healthy "
        f"controls) from {escape(str(network.get('first_run')))} to "
        f"{escape(str(network.get('last_run')))}. Strips span "
        f"{escape(str(network.get('strip_start')))} to {escape(str(network.get('strip_end')))}.</p>",
        "<table><tr><th>target</th><th>state</th><th>method</th><th>time strip</th>"
        "<th>changes (onset between last-before and first-after)</th></tr>",
    ]
    for target in network.get("targets", []):
        state = str(target.get("state"))
        rows.append(
            "<tr>"
            f"<td><code>{escape(str(target.get('target_id')))}</code></td>"
            f'<td class="{escape(state)}">{escape(state)}</td>'
            f"<td>{escape(str(target.get('method') or '-'))}</td>"
            f'<td class="strip">{_strip_svg(str(target.get("strip", "")))}</td>'
            f"<td>{_changes(target.get('changes', []))}</td>"
            "</tr>"
        )
    rows.append("</table>")
    gaps = network.get("gaps", [])
    if gaps:
        rows.append("<p>Gaps (no evidence either way):</p><ul>")
        for gap in gaps:
            rows.append(
                f"<li>{escape(str(gap.get('from')))} to {escape(str(gap.get('to')))} "
                f"({escape(str(gap.get('hours')))} h, {escape(str(gap.get('reason')))})</li>"
            )
        rows.append("</ul>")
    return "\n".join(rows)


def _strip_svg(strip: str) -> str:
    width = max(1, len(strip)) * CELL_WIDTH
    cells = []
    start = 0
    for i in range(1, len(strip) + 1):
        # One rect per run of equal cells keeps a year-long page small.
        if i == len(strip) or strip[i] != strip[start]:
            colour = CELL_COLOURS.get(strip[start], CELL_COLOURS[STRIP_GAP])
            cells.append(
                f'<rect x="{start * CELL_WIDTH}" y="0" width="{(i - start) * CELL_WIDTH}" '
                f'height="{CELL_HEIGHT}" fill="{colour}"/>'
            )
            start = i
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{CELL_HEIGHT}" '
        f'role="img" aria-label="time strip">{"".join(cells)}</svg>'
    )


def _changes(changes: list[dict[str, Any]]) -> str:
    real = [c for c in changes if not c.get("initial")]
    if not real:
        return "none"
    items = []
    for change in real:
        items.append(
            f"{escape(str(change.get('layer')))}: {escape(str(change.get('from')))} &rarr; "
            f"{escape(str(change.get('to')))}"
            + (f" ({escape(str(change['method']))})" if change.get("method") else "")
            + f", between {escape(str(change.get('last_before')))} and "
            f"{escape(str(change.get('first_after')))}"
            + (" <b>spans a gap</b>" if change.get("spans_gap") else "")
            + f"; confidence {escape(str(change.get('confidence_label')))}"
            + (" (corroborated)" if change.get("corroborated") else "")
        )
    return "<br>".join(items)


def _params(params: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in params.items())


def _int(value: Any) -> str:
    return escape(str(value if value is not None else 0))
