"""Golden replay of the analysis: recorded lab runs must still analyse (and diff) exactly as
recorded.

Every `tests/golden/<case>/` holds `old.jsonl`, `new.jsonl` (recorded in the namespace lab),
`expected_report.json` (the analysis of new.jsonl) and `expected_diff.json` (old -> new); each case
is re-analysed and must match exactly. After an intended change of the rules, regenerate the
expectations with `python tests/golden/regen.py` and review the git diff.

Missing golden files are an error, never a skip: the cases below must be there, complete.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parent / "golden"
CASE_FILES = ("old.jsonl", "new.jsonl", "expected_report.json", "expected_diff.json")
# The cases recorded today; more may be added (they are replayed too), none may vanish.
EXPECTED_CASES = ("dns-nxdomain", "dns-redirect", "ip-blackhole", "sni-reset", "tcp-reset")


def _case_dirs() -> list[str]:
    if not GOLDEN.is_dir():
        return []
    return sorted(d.name for d in GOLDEN.iterdir() if d.is_dir() and not d.name.startswith("_"))


def _regen():
    spec = importlib.util.spec_from_file_location("golden_regen", GOLDEN / "regen.py")
    assert spec is not None and spec.loader is not None, "tests/golden/regen.py is missing"
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_golden_case_is_there_and_complete():
    assert GOLDEN.is_dir(), f"{GOLDEN} is missing"
    found = _case_dirs()
    missing = [name for name in EXPECTED_CASES if name not in found]
    assert not missing, f"golden cases missing from {GOLDEN}: {missing}"
    for name in found:
        absent = [f for f in CASE_FILES if not (GOLDEN / name / f).is_file()]
        assert not absent, f"golden case {name} lacks {absent}"


@pytest.mark.parametrize("name", sorted(set(EXPECTED_CASES) | set(_case_dirs())))
def test_golden_replay(name):
    case = GOLDEN / name
    for file in CASE_FILES:
        assert (case / file).is_file(), f"{case / file} is missing"
    report, diff = _regen().expected_documents(case)
    assert report == json.loads((case / "expected_report.json").read_text())
    assert diff == json.loads((case / "expected_diff.json").read_text())
