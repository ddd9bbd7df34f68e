"""The fleet view of `netprobe timeline` (issues 12 and 14): one sentence per network saying which
groups are blocked, by what, from when; the same sentence in the terminal, the JSON and the page.

Histories come from bench/gen_history.py: two networks whose blocks start on different hours,
one never blocked, one whose controls always failed.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from netprobe.cli import app
from netprobe.timeline.fleet import network_summary, onset_text

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("gen_history", ROOT / "bench" / "gen_history.py")
gen_history = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gen_history)
runner = CliRunner()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fleet")
    for vantage, asn, onset, seed in (
        ("hanoi-vnpt-1", "AS45899", 20, 1),
        ("hcm-viettel-1", "AS7552", 30, 2),
        ("danang-fpt-1", "AS18403", 999, 3),
    ):
        gen_history.write_history(
            folder / vantage, hours=40, onset_hour=onset, outage_hour=None, gap_hour=None,
            vantage=vantage, asn=asn, ranges=1, seed=seed,
        )  # fmt: skip
    gen_history.write_history(
        folder / "offline", hours=2, onset_hour=999, outage_hour=0, gap_hour=None,
        vantage="offline-1", asn="AS131429", ranges=1, seed=4,
    )  # fmt: skip
    return folder


def timeline(*args: str):
    done = runner.invoke(app, ["timeline", *args, "--no-verify", "--no-cache", "--jobs", "1"])
    assert done.exit_code == 0, done.output
    return done


def test_json_carries_each_networks_summary_and_each_targets_group(fleet: Path) -> None:
    report = json.loads(timeline(str(fleet), "-f", "json").stdout)
    lines = {n["vantage"]: n["summary"]["line"] for n in report["networks"]}
    assert lines["hanoi-vnpt-1"].startswith(
        "AS45899 hanoi-vnpt-1: Telegram web names blocked by sni from 2025-01-01 19:07-20:07 UTC;"
    )
    assert (
        "Telegram data centres blocked by ip from 2025-01-01 19:07-20:07 UTC"
        in lines["hanoi-vnpt-1"]
    )
    assert "from 2025-01-02 05:07-06:07 UTC" in lines["hcm-viettel-1"]
    assert lines["danang-fpt-1"] == (
        "AS18403 danang-fpt-1: Telegram web names ok; Telegram data centres ok; Telegram ranges ok"
    )
    assert "no run of this network had a working control" in lines["offline-1"]
    vnpt = next(n for n in report["networks"] if n["vantage"] == "hanoi-vnpt-1")
    groups = {t["target_id"]: t["group"] for t in vnpt["targets"]}
    assert groups["domain:telegram.org"] == "web"
    assert groups["endpoint:149.154.175.50:443"] == "dc"
    web = vnpt["summary"]["groups"][0]
    assert (web["group"], web["state"], web["method"]) == ("web", "blocked", "sni")
    assert web["blocked"] == web["targets"] > 1
    assert "cells" not in vnpt["targets"][0]  # the tooltips' evidence is for the page only


def test_terminal_output_opens_with_the_same_summary(fleet: Path) -> None:
    report = json.loads(timeline(str(fleet), "-f", "json").stdout)
    text = " ".join(timeline(str(fleet)).stdout.split())
    assert text.startswith("Summary")
    for network in report["networks"]:
        assert " ".join(network["summary"]["line"].split()) in text


def test_page_shows_only_the_parameters_that_were_set(fleet: Path) -> None:
    page = timeline(str(fleet), "-f", "html", "--since", "2025-01-01T10:00Z").stdout
    assert "Selection: since <code>2025-01-01T10:00:00Z</code>." in page
    assert "until" not in page.split("<h2>")[0] and "None" not in page


def test_a_partly_blocked_group_and_a_block_present_from_the_start() -> None:
    def target(target_id: str, state: str, changes: list) -> dict:
        return {"target_id": target_id, "group": "dc", "state": state, "method": "ip",
                "changes": changes}  # fmt: skip

    start = {"layer": "tcp", "from": "unknown", "to": "blocked", "initial": True,
             "last_before": None, "first_after": "2025-05-26T03:04:00Z"}  # fmt: skip
    network = {
        "probe_asn": "AS45899", "vantage": "vnpt", "healthy_runs": 3,
        "group_labels": {"dc": "DCs"},
        "targets": [target("endpoint:a", "blocked", [start]), target("endpoint:b", "ok", [])],
    }  # fmt: skip
    assert network_summary(network)["line"] == (
        "AS45899 vnpt: 1 of 2 DCs blocked by ip since the start of the data "
        "(first sample 2025-05-26 03:04 UTC)"
    )
    assert onset_text("2025-05-25T23:00:00Z", "2025-05-26T01:00:00Z") == (
        "from 2025-05-25 23:00 to 2025-05-26 01:00 UTC"
    )
