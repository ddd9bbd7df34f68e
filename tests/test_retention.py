"""`--keep-days` pruning: only old, finished result files (and their .sig) are deleted."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from netprobe.run.retention import prune_results, result_start_time

NOW = datetime(2025, 6, 30, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("20250526T010000Z_hanoi-vnpt-1.jsonl", datetime(2025, 5, 26, 1, 0, tzinfo=UTC)),
        ("20250526T010000Z_hanoi-vnpt-1.jsonl.sig", datetime(2025, 5, 26, 1, 0, tzinfo=UTC)),
        (".20250526T010000Z_hanoi-vnpt-1.jsonl.partial", None),
        ("20250526T010000Z_hanoi.jsonl.bak", None),
        ("notes.jsonl", None),
        ("20251399T010000Z_bad-date.jsonl", None),
        (".netprobe.run.lock", None),
    ],
)
def test_result_start_time_from_name(name, expected):
    assert result_start_time(name) == expected


def test_prune_deletes_only_old_result_files(tmp_path):
    names = {
        "20250501T000000Z_v.jsonl": True,  # 60 days old
        "20250501T000000Z_v.jsonl.sig": True,
        "20250501T000000Z_v.jsonl.tsr": True,  # its RFC 3161 timestamp goes with it
        "20250629T000000Z_v.jsonl.tsr": False,
        "20250620T115959Z_v.jsonl": True,  # just over 10 days
        "20250620T120001Z_v.jsonl": False,  # just under 10 days
        "20250629T000000Z_v.jsonl": False,
        ".20250501T000000Z_v.jsonl.partial": False,  # a killed run's evidence
        ".netprobe.run.lock": False,
        "netprobe.log": False,
        "20250501T000000Z_v.txt": False,
    }
    for name in names:
        (tmp_path / name).write_text("x")
    (tmp_path / "20250101T000000Z_sub.jsonl").mkdir()  # a folder with a result-like name
    deleted = prune_results(tmp_path, 10, now=NOW)
    assert sorted(p.name for p in deleted) == sorted(n for n, old in names.items() if old)
    remaining = {p.name for p in tmp_path.iterdir()}
    assert remaining == {n for n, old in names.items() if not old} | {"20250101T000000Z_sub.jsonl"}


def test_prune_missing_folder_is_a_no_op(tmp_path):
    assert prune_results(tmp_path / "absent", 1, now=NOW) == []


@pytest.mark.parametrize("keep_days", [0, -1])
def test_prune_rejects_non_positive_days(tmp_path, keep_days):
    with pytest.raises(ValueError, match="keep_days"):
        prune_results(tmp_path, keep_days, now=NOW)
