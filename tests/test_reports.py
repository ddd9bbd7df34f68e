"""`netprobe.reports`: loading and analysing the two sides of a diff, in a child process or here,
gives the same analyses; a side that cannot be read comes back as its exception."""

from __future__ import annotations

import pytest

from netprobe import reports
from netprobe.analysis.load import RunRefused
from netprobe.diff import diff_runs
from netprobe.evidence.reader import ResultFileError
from tests.bench_modules import load_gen_history
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


def _runs() -> list[tuple[dict, list[dict]]]:
    """Golden runs and generated ones with range samples (ok, blocked, offline)."""
    import json
    import random
    from datetime import timedelta

    runs = []
    for path in sorted(GOLDEN.glob("*/*.jsonl")):
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        runs.append((lines[0], lines[1:]))
    gen = load_gen_history()
    rng = random.Random(3)
    for hour, (blocked, offline) in enumerate([(False, False), (True, False), (False, True)]):
        started = gen.START + timedelta(hours=hour)
        records = gen.run_records(rng, blocked=blocked, offline=offline, ranges=300)
        header = gen.header(started, "v", "AS64500")
        # The range rule: samples of 91.108.56.0/24 and 91.108.57.0/24 (in a blocked run a few of
        # the first connect, so its others are inconclusive, the second's stay blocked)
        header["groups"]["ranges"]["ranges"] = ["91.108.56.0/24", "91.108.57.0/24"]
        if blocked:
            for record in records:
                if record.get("ip") in ("91.108.56.7", "91.108.56.9"):
                    record["failure"] = record["failed_operation"] = None
        runs.append((header, records))
    return runs


@pytest.mark.parametrize("case", range(13))
def test_analysis_that_frees_its_records_is_the_same(case):
    """`keep` (report and diff): the records are freed as targets are judged, same analysis."""
    from netprobe.analysis import analyse
    from netprobe.diff import diff_reads

    runs = _runs()
    header, records = runs[case % len(runs)]
    full = analyse(header, [dict(r) for r in records])
    given = [dict(r) for r in records]
    freed = analyse(header, given, keep=diff_reads)
    assert given == []
    assert freed.to_dict() == full.to_dict()
    assert freed.records == [r for r in full.records if diff_reads(r)]
    assert diff_runs(full, full).to_dict() == diff_runs(freed, freed).to_dict()


def test_diff_of_freed_runs_is_the_same():
    from netprobe.analysis import analyse
    from netprobe.diff import diff_reads

    runs = _runs()
    for (old_header, old), (new_header, new) in zip(runs, runs[1:], strict=False):
        full = diff_runs(analyse(old_header, list(old)), analyse(new_header, list(new)))
        freed = diff_runs(
            analyse(old_header, [dict(r) for r in old], keep=diff_reads),
            analyse(new_header, [dict(r) for r in new], keep=diff_reads),
        )
        assert freed.to_dict() == full.to_dict()


def test_notice_counts_the_records_used_when_none_are_kept(tmp_path):
    """A PARTIAL file's notice names the records used, also when `keep` dropped them all."""
    import random

    from netprobe.evidence.keys import generate_key, read_allowed_signers
    from netprobe.evidence.writer import ResultWriter

    gen = load_gen_history()
    signer = generate_key(tmp_path / "key", "t")
    records = gen.run_records(random.Random(1), blocked=False, offline=False, ranges=5)
    stem = "20250101T000000Z_t"
    with ResultWriter(tmp_path, stem, signer=signer, checkpoint_every=20) as writer:
        writer.write_header(gen.header(gen.START, "t", "AS1"))
        for record in records:
            writer.write(record)
        path = writer.close(gen.summary(records, gen.START))
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-3]))  # no summary, no final checkpoint: a killed run
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(signer.allowed_signers_line() + "\n")
    signers = read_allowed_signers(allowed)
    full, _ = reports.load_analysed(path, signers=signers)
    slim, _ = reports.load_analysed(path, signers=signers, keep=lambda record: False)
    assert full.notice and "PARTIAL" in full.notice and full.records
    assert slim.notice == full.notice and slim.records == []
