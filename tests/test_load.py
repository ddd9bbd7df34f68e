"""netprobe.analysis.load: the schema checks every reader applies (report, diff, timeline)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from netprobe.analysis import check_records as exported_check_records
from netprobe.analysis.load import RunRefused, check_header, check_records, load_run
from netprobe.cli import app
from tests import recordfactory as rf

runner = CliRunner()
V2_MESSAGE = "header schema_version 2; this netprobe reads 1"


def good_records() -> list[dict]:
    return rf.healthy_controls() + rf.domain_ok("telegram.org", "203.0.113.10")


def test_check_records_is_still_importable_from_analysis() -> None:
    assert exported_check_records is check_records


def test_header_checks() -> None:
    assert check_header(rf.header()) is None
    assert check_header(rf.header(schema_version=2)) == V2_MESSAGE
    assert check_header(rf.header(schema_version="1")) == (
        "header schema_version '1'; this netprobe reads 1"
    )
    assert check_header(rf.header(schema_version=True)) is not None
    assert check_header(None) == "no header line covered by a valid signature"
    assert check_header(rf.summary()) == "no header line covered by a valid signature"


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("target_id", "", "field 'target_id' must be a non-empty string"),
        ("target_id", 7, "field 'target_id' must be a non-empty string"),
        ("attempt", "0", "field 'attempt' must be an integer, got '0'"),
        ("failure", 3, "field 'failure' must be null or a string, got 3"),
        ("ip", None, "field 'ip' must be a string, got None"),
        ("port", "443", "field 'port' must be an integer, got '443'"),
        ("port", True, "field 'port' must be an integer, got True"),
        ("answers", "x", "field 'answers' must be a list, got 'x'"),
        ("peer_certificates", {}, "field 'peer_certificates' must be a list, got {}"),
        ("schema_version", 2, "schema_version 2 is not the header's 1"),
        ("schema_version", 1.0, "schema_version 1.0 is not the header's 1"),
    ],
)
def test_record_checks_name_the_record_and_field(field, value, words) -> None:
    records = good_records() + [
        rf.tls("203.0.113.10", 443, "telegram.org", hostname="telegram.org")
    ]
    records[-1][field] = value
    problem = check_records(records)
    assert problem is not None and words in problem
    assert problem.startswith(f"measurement record {len(records)} (tls ")


def test_unusual_but_valid_records_pass() -> None:
    records = good_records()
    records[0]["attempt"] = True  # an int, as before the fast path existed
    records.append({"type": "future_kind", "anything": 1})  # not a measurement: not checked
    records.append("not a dict")
    assert check_records(records) is None


def test_load_run_splits_and_checks() -> None:
    records = good_records()
    run = load_run(rf.header(), [*records, rf.summary(len(records)), {"type": "x"}])
    assert run.records == records and run.summary == rf.summary(len(records))
    with pytest.raises(RunRefused, match="schema_version 2; this netprobe reads 1"):
        load_run(rf.header(schema_version=2), records)
    next(r for r in records if r["type"] == "tcp")["port"] = "443"
    with pytest.raises(RunRefused, match="field 'port'"):
        load_run(rf.header(), records)


# --- every reader refuses the same files ------------------------------------------------------


def write(folder: Path, name: str, hour: int, records: list[dict], **header) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    head = rf.header(run_id=f"{hour:032x}", started_at=f"2025-05-26T{hour:02d}:00:00.000000Z")
    head.update(header)
    return rf.write_result(folder / name, head, records)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "results"
    write(folder, "20250526T010000Z_lab-1.jsonl", 1, good_records())
    write(folder, "20250526T020000Z_lab-1.jsonl", 2, good_records(), schema_version=2)
    return folder


def test_timeline_skips_a_newer_schema_file_with_a_warning(folder: Path) -> None:
    newer = folder / "20250526T020000Z_lab-1.jsonl"
    result = runner.invoke(app, ["timeline", str(folder), "--no-verify", "--no-cache",
                                 "--format", "json", "--jobs", "1"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"skipped {newer}: {V2_MESSAGE}" in " ".join(result.stderr.split())
    report = json.loads(result.stdout)
    assert report["skipped"] == [{"path": str(newer), "reason": V2_MESSAGE}]
    assert report["runs"] == 1


def test_report_and_diff_refuse_it_with_the_same_message(folder: Path) -> None:
    newer = folder / "20250526T020000Z_lab-1.jsonl"
    older = folder / "20250526T010000Z_lab-1.jsonl"
    for args in (["report", str(newer)], ["diff", str(older), str(newer)]):
        result = runner.invoke(app, [*args, "--no-verify"])
        assert result.exit_code == 2, result.output
        assert f"{newer}: {V2_MESSAGE}" in " ".join(result.stderr.split())


def test_a_record_that_does_not_belong_is_refused_everywhere(tmp_path: Path) -> None:
    records = good_records()
    records[2]["schema_version"] = 2
    path = write(tmp_path / "r", "20250526T030000Z_lab-1.jsonl", 3, records)
    write(tmp_path / "r", "20250526T040000Z_lab-1.jsonl", 4, good_records())
    report = runner.invoke(app, ["report", str(path), "--no-verify"])
    assert report.exit_code == 2 and "does not belong to this file" in report.stderr
    timeline = runner.invoke(app, ["timeline", str(tmp_path / "r"), "--no-verify", "--no-cache",
                                   "--format", "json", "--jobs", "1"])  # fmt: skip
    assert timeline.exit_code == 0, timeline.output
    (skipped,) = json.loads(timeline.stdout)["skipped"]
    assert skipped["path"] == str(path) and "does not belong to this file" in skipped["reason"]


def test_signed_newer_schema_file_verifies_but_is_not_analysed(tmp_path: Path) -> None:
    from netprobe.evidence.keys import generate_key
    from netprobe.evidence.writer import ResultWriter

    signer = generate_key(tmp_path / "key", "lab")
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(signer.allowed_signers_line() + "\n")
    out = tmp_path / "results"
    for hour, version in ((5, 1), (6, 2)):
        head = rf.header(run_id=f"{hour:032x}", started_at=f"2025-05-26T{hour:02d}:00:00.000000Z")
        head["schema_version"] = version
        writer = ResultWriter(out, f"20250526T0{hour}0000Z_lab-1", signer=signer)
        writer.write_header(head)
        for record in good_records():
            writer.write(record)
        writer.close(rf.summary())
    newer = out / "20250526T060000Z_lab-1.jsonl"
    verified = runner.invoke(app, ["verify", str(newer), "--allowed-signers", str(allowed)])
    assert verified.exit_code == 0, verified.output  # the signatures are fine
    timeline = runner.invoke(app, ["timeline", str(out), "--allowed-signers", str(allowed),
                                   "--no-cache", "--format", "json", "--jobs", "1"])  # fmt: skip
    assert timeline.exit_code == 0, timeline.output
    assert json.loads(timeline.stdout)["skipped"] == [{"path": str(newer), "reason": V2_MESSAGE}]
    report = runner.invoke(app, ["report", str(newer), "--allowed-signers", str(allowed)])
    assert report.exit_code == 2 and V2_MESSAGE in " ".join(report.stderr.split())
