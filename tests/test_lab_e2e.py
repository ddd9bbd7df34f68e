"""End-to-end: the real `netprobe` binary through the censorship lab, checked against the
ground truth in tests/lab/scenarios.yaml.

Rules: for every scenario, a baseline run (none), a run under the scenario, and a run after
going back to none; `netprobe report` must give each target its expected verdict, and
`netprobe diff` must report exactly the expected changes (newly blocked, then unblocked), with
the expected methods. Needs root (skips otherwise, fails under CI). One lab for the module.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.lab import fixtures
from tests.lab import scenarios as sc
from tests.lab.lab import Lab
from tests.lab.netprobe_cli import diff, netprobe, run_in_lab, verdicts

# The shared lab fixture (tests/lab/fixtures.py), bound here so pytest finds it.
lab = fixtures.lab
pytestmark = [pytest.mark.lab, pytest.mark.root]

TRUTH = sc.load_ground_truth()
BLOCK_KIND = TRUTH["diff_kinds"]["block"]
RECOVERY_KIND = TRUTH["diff_kinds"]["recovery"]
# Throttling loses packets on purpose: three attempts let netprobe tell loss from a block.
REPEAT = {"throttle": 3}
# The classic scenarios, on lab.yaml; the field scenarios have tests/test_lab_field.py.
CENSORING = [name for name, s in sc.SCENARIOS.items() if name != "none" and not s.field]


@pytest.fixture(scope="module")
def groups(lab: Lab) -> dict[str, str]:
    return sc.lab_target_groups(lab.targets_path)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lab-results")


def _explain(title: str, problems: list[str], *paths: Path) -> str:
    return f"{title}:\n  " + "\n  ".join(problems) + "\nfiles: " + " ".join(map(str, paths))


def test_repeated_none_runs_show_no_change(lab: Lab, groups, results: Path) -> None:
    lab.apply("none")
    runs = [run_in_lab(lab, results / "none", vantage=f"none{i}") for i in range(3)]
    for path in runs:
        problems = sc.verdict_mismatches(TRUTH, "none", verdicts(path), groups)
        assert not problems, _explain("false positives under scenario none", problems, path)
    for old, new in zip(runs, runs[1:], strict=False):
        status, changes = diff(old, new)
        assert changes["changes"] == [], _explain("none vs none", [str(changes)], old, new)
        assert status == 0


@pytest.mark.parametrize("scenario", CENSORING)
def test_scenario_is_detected_and_recovery_reported(
    lab: Lab,
    groups: dict[str, str],
    results: Path,
    scenario: str,
) -> None:
    out = results / scenario
    repeat = REPEAT.get(scenario, 1)
    lab.apply("none")
    baseline = run_in_lab(lab, out, repeat=repeat, vantage="baseline")
    lab.apply(scenario)
    try:
        censored = run_in_lab(lab, out, repeat=repeat, vantage="censored")
    finally:
        lab.apply("none")
    recovered = run_in_lab(lab, out, repeat=repeat, vantage="recovered")

    problems = sc.verdict_mismatches(TRUTH, scenario, verdicts(censored), groups)
    assert not problems, _explain(f"verdicts under {scenario}", problems, censored)

    expected = sc.expected_changes(TRUTH, scenario, groups)
    status, block_diff = diff(baseline, censored)
    problems = sc.diff_mismatches(block_diff["changes"], expected, BLOCK_KIND)
    assert not problems, _explain(f"diff none -> {scenario}", problems, baseline, censored)
    assert status == (1 if expected else 0)

    back = {target_id: TRUTH["default"] for target_id in expected}
    status, recovery_diff = diff(censored, recovered)
    problems = sc.diff_mismatches(recovery_diff["changes"], back, RECOVERY_KIND)
    assert not problems, _explain(f"diff {scenario} -> none", problems, censored, recovered)
    assert status == (1 if expected else 0)


def _final_signature(path: Path) -> tuple[bytes, bytes]:
    """(signed bytes, armored SSHSIG) for the file's last signature line."""
    data = path.read_bytes()
    lines = data.splitlines(keepends=True)
    last = max(i for i, line in enumerate(lines) if json.loads(line)["type"] == "signature")
    signed = b"".join(lines[:last])
    blob = base64.b64encode(base64.b64decode(json.loads(lines[last])["sshsig"])).decode()
    body = "\n".join(blob[i : i + 70] for i in range(0, len(blob), 70))
    armored = f"-----BEGIN SSH SIGNATURE-----\n{body}\n-----END SSH SIGNATURE-----\n"
    return signed, armored.encode()


def test_signed_lab_file_verifies_with_netprobe_and_ssh_keygen(
    lab: Lab,
    results: Path,
    tmp_path: Path,
) -> None:
    key = tmp_path / "lab_key"
    created = netprobe(["keygen", "--out", key, "--principal", "lab-vantage"])
    assert created.returncode == 0, created.stderr
    public_key = Path(f"{key}.pub").read_text().split()
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(
        f'lab-vantage namespaces="netprobe-result@v1" {public_key[0]} {public_key[1]}\n'
    )
    lab.apply("sni-reset")
    try:
        path = run_in_lab(lab, results / "signed", key=key, vantage="signed")
    finally:
        lab.apply("none")

    verified = netprobe(["verify", path, "--allowed-signers", allowed])
    assert verified.returncode == 0, verified.stdout + verified.stderr
    # Verdicts from a signed file, trusting only this key.
    assert verdicts(path, allowed)["domain:t.me"]["status"] == "blocked"

    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen not installed (Debian: openssh-client)")
    signed, armored = _final_signature(path)
    signature = tmp_path / "result.sig"
    signature.write_bytes(armored)
    stock = subprocess.run(
        ["ssh-keygen", "-Y", "verify", "-f", str(allowed), "-I", "lab-vantage",
         "-n", "netprobe-result@v1", "-s", str(signature)],
        input=signed,
        capture_output=True,
    )  # fmt: skip
    assert stock.returncode == 0, stock.stderr.decode()

    tampered = bytearray(signed)
    tampered[tampered.index(b"t.me")] ^= 0x20  # one flipped letter in a measurement
    rejected = subprocess.run(
        ["ssh-keygen", "-Y", "verify", "-f", str(allowed), "-I", "lab-vantage",
         "-n", "netprobe-result@v1", "-s", str(signature)],
        input=bytes(tampered),
        capture_output=True,
    )  # fmt: skip
    assert rejected.returncode != 0


def test_report_table_prints_lab_addresses_verbatim(lab: Lab, results: Path) -> None:
    # IPv6 addresses like 2001:db8:100::50 contain ":100:", which rich would turn into an emoji
    # unless the table disables emoji codes; a researcher must see the address as probed.
    lab.apply("none")
    path = run_in_lab(lab, results / "table", vantage="table")
    shown = subprocess.run(
        [sys.executable, "-m", "netprobe", "report", str(path), "--no-verify"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "250"},
    )
    assert shown.returncode == 0, shown.stderr
    assert "endpoint:[2001:db8:100::50]:443" in shown.stdout
