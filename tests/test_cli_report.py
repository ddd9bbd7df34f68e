"""`netprobe report` and `netprobe diff` through typer's CliRunner, on files written here.

The golden replay of recorded lab runs lives beside the analysis tests (test_analysis_golden.py).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from netprobe.cli import app
from tests import recordfactory as rf

TG = "telegram.org"
GOOD = "203.0.113.10"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def ok_records() -> list[dict]:
    return rf.healthy_controls() + rf.domain_ok(TG, GOOD) + [rf.tcp("203.0.113.50", 443)]


def blocked_records() -> list[dict]:
    records = rf.healthy_controls() + rf.domain_lookups(TG, [GOOD], [GOOD])
    records += rf.tls_pair(GOOD, TG, target_failure="connection_reset")
    return records + [rf.tcp("203.0.113.50", 443, failure="generic_timeout_error")]


def write(tmp_path: Path, name: str, records: list[dict], **header) -> Path:
    # Each file its own run (two files with one run id are one run: diff refuses to compare them).
    header.setdefault("run_id", hashlib.sha256(name.encode()).hexdigest()[:32])
    return rf.write_result(tmp_path / name, rf.header(**header), records)


def test_report_json(runner, tmp_path):
    path = write(tmp_path, "new.jsonl", blocked_records())
    result = runner.invoke(app, ["report", str(path), "--no-verify", "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    verdicts = {v["target_id"]: v for v in data["verdicts"]}
    assert (verdicts[f"domain:{TG}"]["status"], verdicts[f"domain:{TG}"]["method"]) == (
        "blocked",
        "sni",
    )
    assert verdicts["endpoint:203.0.113.50:443"]["method"] == "ip"
    assert data["file"]["verification"] == "not verified"
    assert data["run"]["vantage"] == "lab-1"
    assert any(g["line"].startswith("DC endpoints: blocked by ip") for g in data["groups"])


@pytest.mark.parametrize(
    ("fmt", "needle"), [("table", "blocked (sni)"), ("markdown", "## Verdicts")]
)
def test_report_table_and_markdown(runner, tmp_path, fmt, needle):
    path = write(tmp_path, "new.jsonl", blocked_records())
    result = runner.invoke(app, ["report", str(path), "--no-verify", "--format", fmt])
    assert result.exit_code == 0, result.output
    assert needle in result.stdout
    assert "Web names: blocked by sni" in result.stdout


def test_unsigned_file_needs_no_verify(runner, tmp_path):
    path = write(tmp_path, "new.jsonl", ok_records())
    result = runner.invoke(app, ["report", str(path)])
    assert result.exit_code == 2
    assert "UNSIGNED" in result.stderr and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, "new.jsonl"),  # missing file
        (b"not json\n", "not a netprobe result header"),
    ],
)
def test_unreadable_files_exit_2(runner, tmp_path, content, words):
    path = tmp_path / "new.jsonl"
    if content is not None:
        path.write_bytes(content)
    result = runner.invoke(app, ["report", str(path), "--no-verify"])
    assert result.exit_code == 2
    assert words in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_bad_field_is_named(runner, tmp_path):
    records = ok_records()
    records[-1]["port"] = "443"
    path = write(tmp_path, "new.jsonl", records)
    result = runner.invoke(app, ["report", str(path), "--no-verify"])
    assert result.exit_code == 2
    assert "field 'port'" in result.stderr and "new.jsonl" in result.stderr


def test_signed_file_is_verified(runner, tmp_path):
    from netprobe.evidence.keys import generate_key
    from netprobe.evidence.writer import ResultWriter

    signer = generate_key(tmp_path / "key", "lab")
    writer = ResultWriter(tmp_path, "run", signer=signer)
    writer.write_header(rf.header())
    for record in blocked_records():
        writer.write(record)
    path = writer.close(rf.summary())
    trusted = runner.invoke(app, ["keys", "trust", f"{tmp_path / 'key'}.pub", "--principal", "lab"])
    assert trusted.exit_code == 0, trusted.output
    result = runner.invoke(app, ["report", str(path), "--format", "json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)["file"]
    assert document["verification"] == "COMPLETE"
    assert document["signer"] == {
        "fingerprint": signer.fingerprint,
        "trusted": True,
        "principal": "lab",
    }


def test_diff_against_itself_exits_0(runner, tmp_path):
    path = write(tmp_path, "a.jsonl", blocked_records())
    result = runner.invoke(app, ["diff", str(path), str(path), "--no-verify", "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["changes"] == [] and not any(data["summary"].values())


def test_diff_status_change_exits_1_with_stable_json(runner, tmp_path):
    old = write(tmp_path, "old.jsonl", ok_records())
    new = write(tmp_path, "new.jsonl", blocked_records())
    result = runner.invoke(app, ["diff", str(old), str(new), "--no-verify", "--format", "json"])
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    assert {"old", "new", "changes", "summary"} <= set(data)
    kinds = {c["target"]: c["kind"] for c in data["changes"]}
    assert kinds == {f"domain:{TG}": "newly_blocked", "endpoint:203.0.113.50:443": "newly_blocked"}
    assert data["summary"]["newly_blocked"] == 2
    assert data["old"]["file"]["path"].endswith("old.jsonl")
    for fmt in ("table", "markdown"):
        shown = runner.invoke(app, ["diff", str(old), str(new), "--no-verify", "--format", fmt])
        assert shown.exit_code == 1 and "newly_blocked" in shown.stdout


def test_diff_of_different_target_lists_warns_and_lists_added_removed(runner, tmp_path):
    old = write(tmp_path, "old.jsonl", ok_records(), vantage="hanoi")
    new = write(
        tmp_path,
        "new.jsonl",
        ok_records()[:-1] + rf.domain_ok("t.me", "203.0.113.20"),
        vantage="saigon",
        target_files=[{"name": "other.yaml", "sha256": "b" * 64}],
    )
    result = runner.invoke(app, ["diff", str(old), str(new), "--no-verify", "--format", "json"])
    assert result.exit_code == 0, result.output
    kinds = sorted(c["kind"] for c in json.loads(result.stdout)["changes"])
    assert kinds == ["added", "removed"]
    assert "different vantage points" in result.stderr
    assert "different target lists" in result.stderr


def test_diff_unreadable_exits_2(runner, tmp_path):
    good = write(tmp_path, "a.jsonl", ok_records())
    result = runner.invoke(app, ["diff", str(good), str(tmp_path / "missing.jsonl"), "--no-verify"])
    assert result.exit_code == 2
    assert "missing.jsonl" in result.stderr


def offline_records() -> list[dict]:
    """A run from a vantage point that was offline: every control and every lookup timed out."""
    timeout = "generic_timeout_error"
    records = [{**r, "failure": timeout} for r in rf.healthy_controls()]
    return records + rf.domain_lookups(
        TG, None, None, probe_failure=timeout, control_failure=timeout
    )


@pytest.mark.parametrize("fmt", ["table", "markdown", "json"])
def test_diff_of_offline_runs_exits_6_and_says_nothing_was_judged(runner, tmp_path, fmt):
    old = write(tmp_path, "old.jsonl", offline_records())
    new = write(tmp_path, "new.jsonl", offline_records())
    result = runner.invoke(app, ["diff", str(old), str(new), "--no-verify", "--format", fmt])
    assert result.exit_code == 6, result.output
    assert "nothing could be judged in the old run and the new run" in result.stderr
    assert "no control measurement succeeded" in result.stdout
    if fmt == "json":
        data = json.loads(result.stdout)
        assert data["judged"] is False
        assert [u["run"] for u in data["unjudged"]] == ["old", "new"]
    else:
        assert "nothing judged in the old run" in result.stdout.lower()
        assert "nothing judged in the new run" in result.stdout.lower()
        assert "meaningless" in result.stdout


def test_diff_with_one_offline_run_exits_6_not_1(runner, tmp_path):
    old = write(tmp_path, "old.jsonl", ok_records())
    new = write(tmp_path, "new.jsonl", offline_records())
    result = runner.invoke(app, ["diff", str(old), str(new), "--no-verify", "--format", "json"])
    assert result.exit_code == 6, result.output
    data = json.loads(result.stdout)
    assert [u["run"] for u in data["unjudged"]] == ["new"]
    assert "nothing could be judged in the new run" in result.stderr
    healthy = runner.invoke(app, ["diff", str(old), str(old), "--no-verify", "--format", "json"])
    assert healthy.exit_code == 0 and json.loads(healthy.stdout)["judged"] is True
