"""End-to-end throttling verdicts in the lab (issue 13): the real `netprobe run` in the client
namespace on tests/lab/throughput.yaml, judged by `netprobe report`/`diff --format json`.

Rules: each scenario is applied fresh (tests/lab/scenarios.py) and its verdicts compared with
scenarios.yaml. Beside the verdicts, each test checks from the stored records that the scenario
did what it claims (the ground truth of the mechanics): under `sni-throttle` the target SNI's
downloads run at about 150 kbit/s while the control SNI's on the same addresses are fast; under
`slow-link` every download, control SNI and control site included, is slow. Needs root (skips
otherwise, fails under CI). One lab for the module.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netprobe.analysis.throughput import THRESHOLD
from netprobe.model.vocabulary import NEWLY_THROTTLED, UNTHROTTLED
from tests.lab import fixtures
from tests.lab import scenarios as sc
from tests.lab.lab import Lab
from tests.lab.netprobe_cli import diff, run_in_lab, verdicts

lab = fixtures.lab
pytestmark = [pytest.mark.lab, pytest.mark.root]

TRUTH = sc.load_ground_truth()
THROTTLED_NAMES = ("domain:telegram.org", "domain:t.me")
# 150 kbit/s is 18.75 kB/s of payload at best; allow for slow start and headers, never more.
THROTTLED_MAX_RATE = 25_000.0
SLOW_LINK_MAX_RATE = 140_000.0  # 1 Mbit/s = 125 kB/s


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lab-throughput")


LIST = Path(sc.__file__).with_name("throughput.yaml")


def _run(lab: Lab, scenario: str, out: Path) -> Path:
    """One run of throughput.yaml under `scenario` (the baseline `none` too)."""
    lab.apply(scenario)
    try:
        return run_in_lab(lab, out, targets=LIST)
    finally:
        lab.apply("none")


def _downloads(path: Path) -> list[dict]:
    lines = path.read_text().splitlines()
    return [r for r in map(json.loads, lines) if r.get("type") == "throughput"]


def _problems(scenario: str, path: Path) -> list[str]:
    found = verdicts(path)
    targets = sc.lab_target_groups(LIST)
    return sc.verdict_mismatches(TRUTH, scenario, found, targets) + sc.evidence_mismatches(
        TRUTH, scenario, found
    )


def test_sni_throttle_is_throttled_by_sni_and_diffs_as_newly_throttled(
    lab: Lab, results: Path
) -> None:
    baseline = _run(lab, "none", results)
    throttled = _run(lab, "sni-throttle", results)

    assert sc.get_scenario("sni-throttle").targets == LIST.name
    problems = _problems("sni-throttle", throttled)
    assert not problems, "\n".join(problems) + f"\nfile: {throttled}"
    assert not _problems("none", baseline), baseline

    # The mechanics: per address, the target SNI crawls while the control SNI flies.
    downloads = [r for r in _downloads(throttled) if r["role"] == "target"]
    assert {r["target_id"] for r in downloads} == set(THROTTLED_NAMES)
    for record in downloads:
        if record["sni_role"] == "target" and record["failure"] is None:
            assert record["rate"] < THROTTLED_MAX_RATE, record
            assert record["stopped"] == "time_cap", record
    pairs = {}
    for record in downloads:
        pairs.setdefault((record["target_id"], record["ip"]), {})[record["sni_role"]] = record
    ratios = [
        pair["target"]["rate"] / pair["control"]["rate"]
        for pair in pairs.values()
        if pair["target"]["failure"] is None and pair["control"]["failure"] is None
    ]
    assert ratios and max(ratios) < THRESHOLD, ratios

    status, document = diff(baseline, throttled)
    assert status == 1
    assert {(c["target"], c["kind"]) for c in document["changes"]} == {
        (name, NEWLY_THROTTLED) for name in THROTTLED_NAMES
    }
    status, back = diff(throttled, baseline)
    assert {(c["target"], c["kind"]) for c in back["changes"]} == {
        (name, UNTHROTTLED) for name in THROTTLED_NAMES
    }


def test_slow_link_is_slow_for_everyone_and_stays_ok(lab: Lab, results: Path) -> None:
    path = _run(lab, "slow-link", results)
    problems = _problems("slow-link", path)
    assert not problems, "\n".join(problems) + f"\nfile: {path}"
    found = verdicts(path)
    assert all(v["status"] == "ok" for v in found.values()), found

    # The mechanics: every download (target SNI, control SNI, control site) was slow.
    downloads = [r for r in _downloads(path) if r["failure"] is None]
    assert {r["sni_role"] for r in downloads} == {"target", "control"}
    assert any(r["role"] == "control" for r in downloads)
    assert all(r["rate"] < SLOW_LINK_MAX_RATE for r in downloads), [
        (r["target_id"], r["server_name"], r["rate"]) for r in downloads
    ]


def test_ip_throttle_is_throttled_by_ip(lab: Lab, results: Path) -> None:
    path = _run(lab, "ip-throttle", results)
    problems = _problems("ip-throttle", path)
    assert not problems, "\n".join(problems) + f"\nfile: {path}"

    # The mechanics: both SNIs crawl on the Telegram addresses; the control site flies.
    downloads = [r for r in _downloads(path) if r["failure"] is None]
    web = [r for r in downloads if r["role"] == "target"]
    assert {r["sni_role"] for r in web} == {"target", "control"}
    assert all(r["rate"] < THROTTLED_MAX_RATE for r in web), [(r["ip"], r["rate"]) for r in web]
    control_site = [r["rate"] for r in downloads if r["role"] == "control"]
    assert control_site and min(control_site) > 4 * max(r["rate"] for r in web)
