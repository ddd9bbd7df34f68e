"""`netprobe.reports`: loading and analysing the two sides of a diff, in a child process or here,
gives the same analyses; a side that cannot be read comes back as its exception."""

from __future__ import annotations

import pytest

from netprobe import reports
from netprobe.analysis.load import RunRefused
from netprobe.diff import diff_runs
from netprobe.evidence.reader import ResultFileError
from tests.test_analysis_golden import GOLDEN

OLD, NEW = GOLDEN / "ip-blackhole" / "old.jsonl", GOLDEN / "ip-blackhole" / "new.jsonl"


def _diff(pair) -> dict:
    (_, old), (_, new) = pair
    return diff_runs(old, new).to_dict()


@pytest.mark.parametrize("threshold", [0, 10**12])  # 0: the old side in a forked child
def test_pair_is_the_same_in_a_child_or_here(monkeypatch, threshold):
    monkeypatch.setattr(reports, "PARALLEL_BYTES", threshold)
    pair = reports.load_analysed_pair(OLD, NEW, verify=False)
    old_loaded, old_analysis = reports.load_analysed(OLD, verify=False)
    assert pair[0][0].records == old_loaded.records
    assert pair[0][1].to_dict() == old_analysis.to_dict()
    diff = _diff(pair)
    assert [c["kind"] for c in diff["changes"]] and all(
        c["kind"] == "newly_blocked" for c in diff["changes"]
    )


@pytest.mark.parametrize("threshold", [0, 10**12])
def test_unreadable_and_refused_sides_come_back_as_exceptions(tmp_path, monkeypatch, threshold):
    monkeypatch.setattr(reports, "PARALLEL_BYTES", threshold)
    refused = tmp_path / "old.jsonl"
    header = OLD.read_text().splitlines()[0].replace('"schema_version":1', '"schema_version":99')
    refused.write_text(header + "\n")
    old_side, new_side = reports.load_analysed_pair(
        refused, tmp_path / "missing.jsonl", verify=False
    )
    assert isinstance(old_side, RunRefused) and "schema_version 99" in str(old_side)
    assert isinstance(new_side, ResultFileError) and "missing.jsonl" in str(new_side)
