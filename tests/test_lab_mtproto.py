"""MTProto through the censorship lab (issue 13): protocol DPI on the plain transports, per DC.

Rules: the real `netprobe run` in the client namespace on tests/lab/field-mtproto.yaml (the DC
stand-ins of lab.yaml, which answer req_pq_multi with resPQ over all three transports), judged
against tests/lab/scenarios.yaml: with no censorship every DC is `ok`; under `mtproto-dpi` (the
ISP drops segments whose payload starts with 0xeeeeeeee or 0xef, via iptables u32) every DC is
`blocked (protocol)` with evidence naming the transports; under `mtproto-dpi-partial` only one
DC is, the others stay `ok`. `netprobe diff` reports exactly those changes. Needs root (skips
otherwise, fails under CI). One lab for the module.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.lab import fixtures
from tests.lab import scenarios as sc
from tests.lab.lab import Lab
from tests.lab.netprobe_cli import diff, run_in_lab, verdicts

lab = fixtures.lab
pytestmark = [pytest.mark.lab, pytest.mark.root]

TRUTH = sc.load_ground_truth()
SCENARIOS = ("mtproto-dpi", "mtproto-dpi-partial")


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lab-mtproto")


def _explain(title: str, problems: list[str], *paths: Path) -> str:
    return f"{title}:\n  " + "\n  ".join(problems) + "\nfiles: " + " ".join(map(str, paths))


def _records(path: Path, kind: str) -> list[dict]:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return [r for r in lines if r.get("type") == kind]


@pytest.fixture(scope="module")
def baseline(lab: Lab, results: Path) -> Path:
    lab.apply("none")
    return run_in_lab(
        lab, results / "none", targets=lab.targets_for(SCENARIOS[0]), vantage="baseline"
    )


def test_every_dc_answers_every_transport_without_censorship(lab: Lab, baseline: Path) -> None:
    targets = lab.targets_for(SCENARIOS[0])
    groups = sc.lab_target_groups(targets)
    problems = sc.verdict_mismatches(TRUTH, "none", verdicts(baseline), groups)
    assert not problems, _explain("verdicts under none", problems, baseline)
    attempts = _records(baseline, "mtproto")
    # 5 DC endpoints x 3 transports, each a resPQ with a server nonce and a fingerprint.
    assert len(attempts) == 15
    assert {(r["transport"], r["res_pq"]) for r in attempts} == {
        ("intermediate", True),
        ("abridged", True),
        ("obfuscated2", True),
    }
    assert all(len(r["server_nonce"]) == 32 and r["fingerprints"] for r in attempts)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_protocol_dpi_is_blocked_protocol_per_dc(
    lab: Lab, results: Path, baseline: Path, scenario: str
) -> None:
    targets = lab.targets_for(scenario)
    groups = sc.lab_target_groups(targets)
    lab.apply(scenario)
    try:
        censored = run_in_lab(lab, results / scenario, targets=targets, vantage="censored")
    finally:
        lab.apply("none")
    found = verdicts(censored)
    problems = sc.verdict_mismatches(TRUTH, scenario, found, groups)
    problems += sc.evidence_mismatches(TRUTH, scenario, found)
    assert not problems, _explain(f"verdicts under {scenario}", problems, censored)

    # What the records show: connect works, plain transports time out with nothing back,
    # obfuscated2 gets its resPQ, on the blocked DCs.
    blocked = {t for t, v in sc.expected_changes(TRUTH, scenario, groups).items()}
    for record in _records(censored, "mtproto"):
        if record["target_id"] not in blocked or record.get("confirmation"):
            continue
        if record["transport"] == "obfuscated2":
            assert record["res_pq"] is True, record
        else:
            assert record["failure"] == "generic_timeout_error", record
            assert record["failed_operation"] == "mtproto_handshake"
            assert record["bytes_received"] == 0 and record["bytes_sent"] > 0

    status, changes = diff(baseline, censored)
    expected = sc.expected_changes(TRUTH, scenario, groups)
    problems = sc.diff_mismatches(changes["changes"], expected, TRUTH["diff_kinds"]["block"])
    assert not problems, _explain(f"diff none -> {scenario}", problems, baseline, censored)
    assert status == 1
