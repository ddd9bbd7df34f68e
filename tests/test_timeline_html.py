"""The timeline's HTML page: self-contained, escaped, and showing what the JSON says."""

from __future__ import annotations

import re

import pytest

from netprobe.render.timeline_html import CELL_COLOURS, render_html


def document(target_id: str = "domain:telegram.org") -> dict:
    return {
        "parameters": {"mu1": 0.7, "edd": 10.0},
        "runs": 5,
        "files": 5,
        "skipped": [],
        "networks": [
            {
                "probe_asn": "AS45899",
                "vantage": "hanoi<1>",
                "runs": 5,
                "healthy_runs": 5,
                "first_run": "2025-05-25T00:00:00Z",
                "last_run": "2025-05-26T04:00:00Z",
                "strip_start": "2025-05-25T00:00:00Z",
                "strip_end": "2025-05-26T04:00:00Z",
                "gaps": [{"from": "a", "to": "b", "hours": 30, "reason": "no runs"}],
                "targets": [
                    {
                        "target_id": target_id,
                        "state": "blocked",
                        "method": "sni",
                        "strip": "ooo..xx",
                        "changes": [
                            {"layer": "tls", "from": "unknown", "to": "ok", "initial": True},
                            {
                                "layer": "tls",
                                "from": "ok",
                                "to": "blocked",
                                "initial": False,
                                "method": "sni",
                                "last_before": "2025-05-25T21:00:00Z",
                                "first_after": "2025-05-25T22:00:00Z",
                                "confidence_label": "high",
                                "corroborated": True,
                            },
                        ],
                    }
                ],
            }
        ],
    }


def test_page_shows_onset_interval_method_and_gaps() -> None:
    page = render_html(document())
    assert page.startswith("<!doctype html>")
    assert "between 2025-05-25T21:00:00Z and 2025-05-25T22:00:00Z" in page
    assert "(sni)" in page and "corroborated" in page
    assert "30 h, no runs" in page
    # The initial state is not presented as a change.
    assert page.count("&rarr;") == 1


def test_strip_runs_become_one_box_each_with_the_state_colour() -> None:
    # A report without `cells` (JSON from before them): the strip codes, one box per run.
    page = render_html(document())
    boxes = re.findall(
        r'<span style="left:([\d.]+)%;width:calc\(([\d.]+)% \+ 1px\);background:([^"]+)"', page
    )
    assert [colour for _, _, colour in boxes] == [CELL_COLOURS["o"], CELL_COLOURS["x"]]
    widths = [float(w) for _, w, _ in boxes]
    assert widths[0] == pytest.approx(3 / 7 * 100, abs=0.01)  # "ooo..xx": 3 of 7 columns ok
    assert float(boxes[1][0]) == pytest.approx(5 / 7 * 100, abs=0.01)  # the gap shows through


def test_values_are_escaped_and_nothing_is_fetched() -> None:
    page = render_html(document(target_id="<script>alert(1)</script>"))
    assert "<script>" not in page
    assert "&lt;script&gt;" in page and "hanoi&lt;1&gt;" in page
    assert "http://" not in page and "https://" not in page and "<script" not in page


def test_axis_ticks_are_round_utc_times_and_few() -> None:
    from netprobe.render.timeline_axis import Axis, seconds

    start = seconds("2025-05-20T07:30:00Z")
    month = Axis(start, start + 30 * 86400)
    labels = re.findall(r"<b>([^<]+)</b>", month.ticks())
    assert 3 <= len(labels) <= 8 and all(re.fullmatch(r"2025-0[56]-\d\d", x) for x in labels)
    day = re.findall(r"<b>([^<]+)</b>", Axis(start, start + 20 * 3600).ticks())
    assert day[0] == "05-20 09:00" and all(x.endswith(":00") for x in day)
    # The first and last labels are kept inside the axis (no overflow past the window).
    hour = seconds("2025-05-20T08:00:00Z")
    edges = re.findall(r'class="tick( first| last)?"', Axis(hour, hour + 6 * 3600).ticks())
    assert (edges[0], edges[-1]) == (" first", " last") and set(edges[1:-1]) == {""}
