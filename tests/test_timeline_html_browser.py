"""The HTML timeline in a real browser (issue 12): nothing overflows at 1280 or 1920 px.

A fleet history (three networks on three ASNs, blocks starting on different days, plus a network
whose controls always failed) is generated with bench/gen_history.py, rendered by the real
`netprobe timeline --format html`, and opened from a file in headless Chromium (Debian packages
`chromium` and `chromium-driver`, installed by .ci/run) with networking off. A copy of the page
gets an inline script that measures the layout and writes its findings into the DOM, which
`--dump-dom` prints: the page is no wider than the window, no element sticks out of it, no label
or table cell overflows its box, and the tooltips, axis labels and onset marks are there.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from netprobe.cli import app

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("gen_history", ROOT / "bench" / "gen_history.py")
gen_history = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gen_history)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
MEASURE = """
<script>
(function () {
  const limit = document.documentElement.clientWidth;
  const out = {innerWidth: innerWidth, clientWidth: limit,
               scrollWidth: document.documentElement.scrollWidth, sticking_out: [],
               overflowing: []};
  for (const el of document.body.querySelectorAll("*")) {
    const box = el.getBoundingClientRect();
    if (box.width > 0 && box.right > limit + 1) {
      out.sticking_out.push(el.tagName + "." + el.className + " right=" + box.right);
    }
  }
  for (const el of document.querySelectorAll("td, th, .label, h1, h2, h3, p")) {
    if (el.scrollWidth > el.clientWidth + 1) {
      out.overflowing.push(el.tagName + "." + el.className + ": " + el.textContent.slice(0, 60));
    }
  }
  out.cells_with_tooltips = document.querySelectorAll(".strip span[title]").length;
  out.axis_labels = Array.from(document.querySelectorAll(".axis .tick b"), b => b.textContent);
  out.onset_marks = document.querySelectorAll(".axis .onset[title]").length;
  out.groups = Array.from(document.querySelectorAll("h3"), h => h.textContent);
  const pre = document.createElement("pre");
  pre.id = "measured";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>
"""


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("fleet")
    for vantage, asn, onset, hours, seed in (
        ("hanoi-vnpt-1", "AS45899", 30, 60, 1),
        ("hcm-viettel-1", "AS7552", 42, 60, 2),
        ("danang-fpt-1", "AS18403", 999, 48, 3),
    ):
        gen_history.write_history(
            folder / vantage, hours=hours, onset_hour=onset, outage_hour=None, gap_hour=None,
            vantage=vantage, asn=asn, ranges=1, seed=seed,
        )  # fmt: skip
    gen_history.write_history(
        folder / "offline", hours=2, onset_hour=999, outage_hour=0, gap_hour=None,
        vantage="offline-1", asn="AS131429", ranges=1, seed=4,
    )  # fmt: skip
    done = CliRunner().invoke(
        app, ["timeline", str(folder), "--no-verify", "--no-cache", "--format", "html"]
    )
    assert done.exit_code == 0, done.output
    return done.stdout


def measure(page: str, tmp_path: Path, width: int) -> dict:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium chromium-driver)")
    checked = tmp_path / f"page-{width}.html"
    checked.write_text(page.replace("</body>", MEASURE + "</body>"), encoding="utf-8")
    done = subprocess.run(
        [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", "--disable-extensions", f"--user-data-dir={tmp_path / 'profile'}",
            f"--window-size={width},900", "--dump-dom", checked.as_uri(),
        ],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    found = re.search(r'<pre id="measured">(.*?)</pre>', done.stdout, re.S)
    assert found, done.stderr[-2000:]
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))


def test_the_page_itself_fetches_nothing_and_runs_no_script(page: str) -> None:
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert "None" not in page  # no `since=None, until=None, target=None`


@pytest.mark.parametrize("width", [1280, 1920])
def test_nothing_overflows_and_every_part_is_there(page: str, tmp_path: Path, width: int) -> None:
    found = measure(page, tmp_path, width)
    assert found["innerWidth"] == width
    assert found["scrollWidth"] <= found["innerWidth"], found
    assert found["sticking_out"] == [], found["sticking_out"][:10]
    assert found["overflowing"] == [], found["overflowing"][:10]
    assert found["cells_with_tooltips"] > 100
    assert len(found["axis_labels"]) >= 3  # a labelled time axis, UTC
    assert found["onset_marks"] >= 2  # the two blocking networks' onsets, per group
    assert found["groups"][:2] == ["Telegram web names (web)", "Telegram data centres (dc)"]


def test_fleet_summary_names_each_network_with_its_onset(page: str) -> None:
    text = re.sub(r"<[^>]+>", " ", page)
    text = " ".join(text.split())
    assert "AS45899 hanoi-vnpt-1" in text and "AS7552 hcm-viettel-1" in text
    assert re.search(r"Telegram web names blocked by sni from 2025-01-02 05:07-06:07 UTC", text)
    assert re.search(r"Telegram data centres blocked by ip from 2025-01-02 17:07-18:07 UTC", text)
    assert "Telegram web names ok" in text  # FPT never blocked
    assert "no run of this network had a working control" in text  # the offline network
    # Tooltips: time, state and evidence of a sample.
    assert re.search(r'title="domain:telegram\.org: 2025-01-02 06:00 to 2025-01-02 07:00 UTC: '
                     r'blocked; 1 hour\(s\) sampled, 1 looked blocked; worst score [\d.]+ '
                     r'\(tls\); method sni"', page)  # fmt: skip
