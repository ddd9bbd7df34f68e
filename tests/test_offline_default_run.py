"""The default run (bundled Telegram list) where nothing can leave: it must finish and say why.

The run happens in a network namespace that this test creates with only a loopback interface,
so every probe fails at once with `network_unreachable` and no packet leaves the machine. Needs
root: skips without it, fails under CI.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _require_root() -> None:
    problem = None
    if os.geteuid() != 0:
        problem = "needs root to create a network namespace"
    elif shutil.which("ip") is None:
        problem = "needs iproute2 (ip)"
    if problem:
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)


@pytest.fixture()
def offline_namespace() -> Iterator[str]:
    _require_root()
    name = f"npoff-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def test_default_run_offline_finishes_and_says_why_it_cannot_conclude(
    tmp_path: Path, offline_namespace: str
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "NETPROBE_CONFIG"}
    env.update(
        XDG_DATA_HOME=str(tmp_path / "data"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        PYTHONPATH=str(REPO),
    )
    done = subprocess.run(
        ["ip", "netns", "exec", offline_namespace, sys.executable, "-m", "netprobe", "run",
         "--out", str(tmp_path / "results"), "--format", "json"],
        capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "created signing key" in done.stderr  # first run, in one line
    assert "cannot conclude" in done.stderr
    summary = json.loads(done.stdout)
    assert summary["vantage_problem"].startswith("cannot conclude")
    assert summary["failures"] and set(summary["failures"]) <= {
        "network_unreachable",
        "host_unreachable",
        "connection_refused",
    }
    path = Path(summary["path"])
    assert path.exists() and path.with_name(path.name + ".sig").exists()
    verify = subprocess.run(
        [sys.executable, "-m", "netprobe", "verify", str(path)],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert verify.returncode == 0, verify.stdout + verify.stderr
    report = subprocess.run(
        [sys.executable, "-m", "netprobe", "report", str(path), "--format", "json"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert report.returncode == 0, report.stderr
    verdicts = json.loads(report.stdout)["verdicts"]
    statuses = {
        v["status"] for v in (verdicts.values() if isinstance(verdicts, dict) else verdicts)
    }
    assert statuses == {"inconclusive"}, "an offline vantage point never produces a 'blocked'"
