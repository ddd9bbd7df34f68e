"""Regenerate the expected json of every golden case from its recorded result files.

Usage: python tests/golden/regen.py [CASE_DIR ...]   (default: every dir under tests/golden/)

Each case dir holds `old.jsonl` and `new.jsonl` (recorded in the namespace lab); this writes
`expected_report.json` (the analysis of new.jsonl) and `expected_diff.json` (old -> new). Files
are read without signature checks (the lab key is not trusted here) and without any path, so the
output depends only on the records. Review `git diff` before committing what this writes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from netprobe.analysis import analyse
from netprobe.diff import diff_runs
from netprobe.evidence.reader import load_result

HERE = Path(__file__).resolve().parent


def expected_documents(case: Path) -> tuple[dict, dict]:
    """(report, diff) documents for one case, as plain json values."""
    old = load_result(case / "old.jsonl", verify=False)
    new = load_result(case / "new.jsonl", verify=False)
    old_analysis = analyse(old.header, old.records)
    new_analysis = analyse(new.header, new.records)
    report = new_analysis.to_dict()
    diff = diff_runs(old_analysis, new_analysis).to_dict()
    # Round-trip through json so tuples/ints compare exactly as they will be read back.
    return json.loads(json.dumps(report)), json.loads(json.dumps(diff))


def write_expected(case: Path) -> None:
    report, diff = expected_documents(case)
    for name, data in (("expected_report.json", report), ("expected_diff.json", diff)):
        (case / name).write_text(
            json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False) + "\n"
        )
    print(f"{case}: wrote expected_report.json, expected_diff.json")


def main(argv: list[str]) -> int:
    cases = [Path(a) for a in argv] or sorted(
        d for d in HERE.iterdir() if (d / "old.jsonl").exists() and (d / "new.jsonl").exists()
    )
    for case in cases:
        write_expected(case)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
