"""Record golden result files from the lab: `sudo python3 -m tests.lab.record_golden [CASE...]`.

Rules: for each case (a scenario name; default `GOLDEN_CASES`) it runs netprobe once under
`none` (old.jsonl) and once under the scenario (new.jsonl), unsigned, and copies both into
`tests/golden/<case>/`. A recording is saved only if netprobe's verdicts match the ground truth
in scenarios.yaml, so a flaky run cannot become a golden file. Afterwards it runs
`tests/golden/regen.py` on the recorded cases to write their expected report/diff JSON.
Review `git diff tests/golden` before committing.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.lab import scenarios as sc
from tests.lab.lab import REPO_ROOT, Lab, LabError, _child_env
from tests.lab.netprobe_cli import run_in_lab, verdicts

GOLDEN_DIR = REPO_ROOT / "tests" / "golden"
GOLDEN_CASES = ("ip-blackhole", "sni-reset", "dns-nxdomain", "dns-redirect", "tcp-reset")


def record(lab: Lab, case: str, work: Path) -> Path:
    """Record one case into tests/golden/<case>/; returns that directory."""
    truth = sc.load_ground_truth()
    groups = sc.lab_target_groups(lab.targets_path)
    lab.apply("none")
    old = run_in_lab(lab, work / case, vantage="lab-baseline")
    lab.apply(case)
    try:
        new = run_in_lab(lab, work / case, vantage=f"lab-{case}")
    finally:
        lab.apply("none")
    for scenario, path in (("none", old), (case, new)):
        problems = sc.verdict_mismatches(truth, scenario, verdicts(path), groups)
        if problems:
            raise LabError(
                f"{case}: {path} disagrees with the ground truth:\n" + "\n".join(problems)
            )
    target = GOLDEN_DIR / case
    target.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(old, target / "old.jsonl")
    shutil.copyfile(new, target / "new.jsonl")
    return target


def main(argv: list[str]) -> int:
    cases = argv or list(GOLDEN_CASES)
    unknown = [case for case in cases if case not in sc.SCENARIOS or case == "none"]
    if unknown:
        print(
            f"record_golden: unknown or uncensored scenario: {', '.join(unknown)}", file=sys.stderr
        )
        return 2
    with tempfile.TemporaryDirectory(prefix="netprobe-golden-") as work, Lab.up() as lab:
        recorded = [record(lab, case, Path(work)) for case in cases]
    for case_dir in recorded:
        print(f"recorded {case_dir.relative_to(REPO_ROOT)}")
    regen = GOLDEN_DIR / "regen.py"
    if regen.exists():
        subprocess.run(
            [sys.executable, str(regen), *map(str, recorded)],
            check=True,
            cwd=REPO_ROOT,
            env=_child_env(),
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
