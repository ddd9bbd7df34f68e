"""`netprobe timeline` end to end over generated result files (bench/gen_history.py)."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from netprobe.cli import app
from netprobe.model.records import format_utc

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("gen_history", ROOT / "bench" / "gen_history.py")
gen_history = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gen_history)

runner = CliRunner()
HOURS, ONSET, OUTAGE, GAP = 72, 50, 12, 20  # gap: hours 20-49 have no files at all


def at_hour(hour: int):
    return gen_history.START + timedelta(hours=hour)


def iso_hour(hour: int) -> str:
    return format_utc(at_hour(hour))[:13]  # "2025-01-01T05": runs start a few minutes past


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("history")
    gen_history.write_history(
        folder, hours=HOURS, onset_hour=ONSET, outage_hour=OUTAGE, gap_hour=GAP, ranges=2, signed=4
    )
    return folder


def timeline(*args: str):
    return runner.invoke(app, ["timeline", *args])


def test_json_reports_the_onset_interval_the_gap_and_the_outage(history):
    result = timeline(str(history), "--no-verify", "--format", "json", "--jobs", "1")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    (network,) = report["networks"]
    assert (network["probe_asn"], network["vantage"]) == ("AS45899", "bench-vnpt")
    assert network["runs"] == HOURS - 30
    targets = {t["target_id"]: t for t in network["targets"]}
    web = targets["domain:telegram.org"]
    assert web["state"] == "blocked" and web["method"] == "sni"
    (onset,) = [c for c in web["changes"] if not c["initial"]]
    # The block started at hour 50, right after the 30 h hole: the interval must span the hole.
    assert onset["last_before"].startswith(iso_hour(GAP - 1))
    assert onset["first_after"].startswith(iso_hour(ONSET))
    assert onset["spans_gap"] and onset["corroborated"] and onset["layer"] == "tls"
    dc = targets["endpoint:149.154.175.50:443"]
    assert dc["state"] == "blocked" and dc["method"] == "ip"
    # The outage (controls failing at hours 12-13) and the gap are gaps, not blocks.
    gaps = [(g["from"][:13], g["to"][:13], g["reason"]) for g in network["gaps"]]
    assert gaps == [
        (iso_hour(OUTAGE - 1), iso_hour(OUTAGE + 2), "controls failing"),
        (iso_hour(GAP - 1), iso_hour(GAP + 30), "no runs"),
    ]
    changes = [c for t in targets.values() for c in t["changes"] if not c["initial"]]
    assert {c["to"] for c in changes} == {"blocked"}  # nothing else fired


def test_table_has_one_row_per_target_with_a_strip(history, monkeypatch):
    from netprobe.cli.common import out

    monkeypatch.setattr(out, "width", 160)
    result = timeline(str(history), "--no-verify", "--target", "domain:t.me", "--width", "24")
    assert result.exit_code == 0, result.output
    assert "AS45899 bench-vnpt" in result.stdout
    assert result.stdout.count("domain:t.me") == 2  # summary row + the change row
    assert "█" in result.stdout and "▁" in result.stdout and "·" in result.stdout
    assert "gap" in result.stdout and "controls failing" in result.stdout


def test_csv_has_one_row_per_change(history):
    result = timeline(str(history), "--no-verify", "--format", "csv", "--since", iso_hour(45))
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    row = next(r for r in rows if r["target_id"] == "domain:telegram.org" and r["layer"] == "tls")
    assert row["to"] == "blocked" and row["first_after"].startswith(iso_hour(ONSET))


def test_unsigned_files_are_skipped_when_verifying(history):
    signers = history / "allowed_signers"
    result = timeline(str(history), "--allowed-signers", str(signers), "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["runs"] == 4  # only the signed files are used
    assert len(report["skipped"]) == HOURS - 30 - 4
    assert "UNSIGNED" in result.stderr and "--no-verify" in result.stderr


def test_partial_file_from_a_killed_run_is_read_up_to_its_last_signature(history, tmp_path):
    signed = sorted(history.glob("*.jsonl"))[-1]
    data = signed.read_bytes().splitlines(keepends=True)
    partial = tmp_path / f".{signed.name}.partial"
    partial.write_bytes(b"".join(data[:-3]) + b'{"schema_version":1,"ty')  # torn last line
    result = timeline(str(tmp_path), "--allowed-signers", str(history / "allowed_signers"),
                      "--format", "json")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["runs"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["/nonexistent/results"], "/nonexistent/results: no such file or folder"),
        (["{history}", "--since", "yesterday"], "--since 'yesterday'"),
        (["{history}", "--edd", "0"], "edd must be positive"),
        (["{history}", "--mu1", "1.5"], "mu1"),
        (["{empty}"], "no result files"),
    ],
)
def test_bad_input_exits_2_without_traceback(history, tmp_path, args, message):
    args = [a.format(history=history, empty=tmp_path) for a in args]
    result = timeline(*args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_no_usable_file_exits_2(tmp_path):
    (tmp_path / "20250101T000000Z_x.jsonl").write_text("not json\n")
    result = timeline(str(tmp_path), "--no-verify")
    assert result.exit_code == 2
    assert "none of the 1 files could be used" in result.stderr


def test_only_offline_runs_say_nothing_can_be_judged(tmp_path):
    # Both runs have failing controls (the volunteer's line was down): no samples, no verdicts.
    gen_history.write_history(
        tmp_path, hours=2, onset_hour=99, outage_hour=0, gap_hour=None, ranges=2
    )
    result = timeline(str(tmp_path), "--no-verify")
    assert result.exit_code == 0, result.output
    assert "2 runs (0 with healthy controls)" in result.stdout
    assert "no target has a sample" in result.stdout
    report = json.loads(timeline(str(tmp_path), "--no-verify", "--format", "json").stdout)
    assert report["networks"][0]["targets"] == []


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_mistyped_target_says_no_target_matches_with_close_matches(history, fmt):
    result = timeline(str(history), "--no-verify", "--target", "domain:telgram.org", "-f", fmt)
    assert result.exit_code == 2, result.output
    assert "--target domain:telgram.org: no target matches" in result.stderr
    assert "did you mean domain:telegram.org" in result.stderr
    assert "working control" not in result.output
    assert "Traceback" not in result.output


def test_target_without_prefix_suggests_the_id(history):
    result = timeline(str(history), "--no-verify", "--target", "telegram.org")
    assert result.exit_code == 2
    assert "domain:telegram.org" in result.stderr


def test_known_target_is_found(history):
    result = timeline(str(history), "--no-verify", "--target", "domain:t.me", "-f", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["target_found"] is True and report["close_matches"] == []


def test_offline_runs_with_a_real_target_still_say_nothing_can_be_judged(tmp_path):
    gen_history.write_history(
        tmp_path, hours=2, onset_hour=99, outage_hour=0, gap_hour=None, ranges=2
    )
    result = timeline(str(tmp_path), "--no-verify", "--target", "domain:telegram.org")
    assert result.exit_code == 0, result.output
    assert "no target has a sample" in result.stdout
    typo = timeline(str(tmp_path), "--no-verify", "--target", "domain:telgram.org")
    assert typo.exit_code == 2 and "did you mean domain:telegram.org" in typo.stderr
