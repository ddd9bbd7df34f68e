"""End-to-end HTTP blockpage verdicts in the namespace lab (issue 13).

Rules: each test applies one of the HTTP scenarios (tests/lab/scenarios.py: http-blockpage,
http-sinkhole, http-inject), runs the real `netprobe run` in the client namespace on
tests/lab/http.yaml (the lab ISP's blockpage and sinkhole described as the list's own
fingerprints: the lab uses documentation addresses, which no bundled fingerprint names), and
compares `netprobe report` with scenarios.yaml: verdicts, evidence words, and the table a
researcher reads (the page's title and the fingerprint). Needs root (skips otherwise, fails
under CI). One lab for the module.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.lab import fixtures
from tests.lab import scenarios as sc
from tests.lab import topology as topo
from tests.lab.lab import Lab
from tests.lab.netprobe_cli import diff, netprobe, run_in_lab, verdicts

lab = fixtures.lab
pytestmark = [pytest.mark.lab, pytest.mark.root]

TRUTH = sc.load_ground_truth()
SCENARIOS = ("http-blockpage", "http-sinkhole", "http-inject")
TITLE = "Blocked by order of the lab ISP"  # tests/lab/servers.py: blockpage_http


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lab-http")


def _run(
    lab: Lab, scenario: str, out: Path, extra: tuple[str, ...] = (), targets: Path | None = None
) -> Path:
    lab.apply(scenario)
    try:
        return run_in_lab(lab, out, targets=targets or lab.targets_for(scenario), extra=extra)
    finally:
        lab.apply("none")


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _problems(scenario: str, path: Path) -> list[str]:
    found = verdicts(path)
    groups = sc.lab_target_groups(Path(sc.__file__).with_name("http.yaml"))
    return sc.verdict_mismatches(TRUTH, scenario, found, groups) + sc.evidence_mismatches(
        TRUTH, scenario, found
    )


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_http_scenario_verdicts(lab: Lab, results: Path, scenario: str) -> None:
    path = _run(lab, scenario, results / scenario)
    problems = _problems(scenario, path)
    assert not problems, f"verdicts under {scenario}:\n  " + "\n  ".join(problems) + f"\n{path}"


def test_the_report_table_shows_the_page_title_and_the_fingerprint(lab: Lab, results: Path) -> None:
    path = _run(lab, "http-blockpage", results / "table")
    shown = netprobe(["report", path, "--no-verify"])  # the lab key is not trusted here
    text = " ".join(shown.stdout.split())  # the table wraps long cells
    assert TITLE in text and "lab.blockpage" in text, shown.stdout
    # What the probe stored: the blockpage answered on port 80 of the address the ISP's
    # resolver gave, and the genuine address gave the real site's page.
    http = [r for r in _records(path) if r.get("type") == "http"]
    blockpage = [r for r in http if r["ip"] == topo.BLOCKPAGE_V4]
    genuine = [r for r in http if r["ip"] == topo.WEB_ADDRESSES["telegram.org"][0]]
    assert blockpage and all(r["status"] == 403 and r["title"] == TITLE for r in blockpage)
    assert genuine and all(r["status"] == 200 and TITLE not in r["title"] for r in genuine)
    assert all(TITLE in (r["body"] or "") for r in blockpage)


def test_no_bodies_stores_no_page_text_and_still_names_the_blockpage(
    lab: Lab, results: Path
) -> None:
    path = _run(lab, "http-blockpage", results / "no-bodies", extra=("--no-bodies",))
    http = [r for r in _records(path) if r.get("type") == "http"]
    assert http and all(r["body"] is None for r in http)
    assert all(r["body_sha256"] and r["title"] for r in http if r["failure"] is None)
    assert not _problems("http-blockpage", path)


def test_without_the_lists_fingerprints_the_inject_scenario_is_no_block(
    lab: Lab, results: Path, tmp_path: Path
) -> None:
    """The conservative rule: the genuine addresses' blockpage is a block only because the list
    knows the page; without the fingerprint (and with every address a control answer) netprobe
    has nothing to contradict it with, and says ok."""
    text = Path(sc.__file__).with_name("http.yaml").read_text()
    bare = tmp_path / "bare.yaml"
    bare.write_text(text[: text.index("fingerprints:")])
    lab.apply("http-inject")
    try:
        path = run_in_lab(lab, results / "bare", targets=bare)
    finally:
        lab.apply("none")
    found = verdicts(path)
    for name in topo.TELEGRAM_NAMES:
        assert found[f"domain:{name}"]["status"] == "ok", found[f"domain:{name}"]


def test_diff_from_a_clean_run_names_the_http_block(lab: Lab, results: Path) -> None:
    """`netprobe diff` none -> http-inject: exactly the web names become blocked (http)."""
    before = _run(lab, "none", results / "diff-before", targets=lab.targets_for("http-inject"))
    after = _run(lab, "http-inject", results / "diff-after")
    status, found = diff(before, after)
    assert status == 1  # something changed, like diff(1)
    changed = {c["target"]: c for c in found["changes"]}
    assert set(changed) == {f"domain:{name}" for name in topo.TELEGRAM_NAMES}
    for change in changed.values():
        assert change["kind"] == "newly_blocked"
        assert (change["after"]["status"], change["after"]["method"]) == ("blocked", "http")
