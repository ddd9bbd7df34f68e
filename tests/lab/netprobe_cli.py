"""Driving the real `netprobe` CLI through the lab: run, report, diff, verify.

Rules: `netprobe run` executes in the client namespace (the vantage point); reading commands
(`report`, `diff`, `verify`) run on the host, as a researcher would run them on the copied
file. Every helper fails with the command's stderr when netprobe exits unexpectedly.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.lab.lab import REPO_ROOT, Lab, _child_env


class NetprobeFailed(AssertionError):
    """netprobe exited with an unexpected status; the message holds its output."""


def _check(result: subprocess.CompletedProcess[str], allowed: tuple[int, ...] = (0,)) -> None:
    if result.returncode not in allowed:
        raise NetprobeFailed(
            f"`{' '.join(map(str, result.args))}` exited {result.returncode}\n"
            f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"
        )


def netprobe(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`netprobe ARGS` on the host (outside the lab), capturing text."""
    return subprocess.run(
        [sys.executable, "-m", "netprobe", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=_child_env(),
        timeout=timeout,
    )


def run_in_lab(
    lab: Lab,
    out_dir: Path,
    *,
    repeat: int = 1,
    key: Path | None = None,
    vantage: str = "lab",
    extra: tuple[str, ...] = (),
) -> Path:
    """One `netprobe run` of tests/lab/lab.yaml from the client namespace; the result path."""
    args = [
        "run", str(lab.targets_path), "--out", str(out_dir), "--ca-bundle", str(lab.ca_path),
        "--control-resolver", "https://192.0.2.53/dns-query", "--repeat", str(repeat),
        "--vantage", vantage, "--quiet", *(["--key", str(key)] if key else ["--no-sign"]), *extra,
    ]  # fmt: skip
    result = lab.run_netprobe(args, timeout=180)
    _check(result)
    path = Path(result.stdout.strip().splitlines()[-1])
    assert path.is_file(), f"netprobe run printed {path!r}, which is not a file"
    return path


def _trust(allowed_signers: Path | None) -> list[str]:
    return ["--allowed-signers", str(allowed_signers)] if allowed_signers else ["--no-verify"]


def report(path: Path, allowed_signers: Path | None = None) -> dict[str, Any]:
    """`netprobe report PATH --format json`, parsed."""
    result = netprobe(["report", path, "--format", "json", *_trust(allowed_signers)])
    _check(result)
    return json.loads(result.stdout)


def verdicts(path: Path, allowed_signers: Path | None = None) -> dict[str, dict[str, Any]]:
    """target_id -> verdict ({"status", "method", ...}) from `netprobe report --format json`."""
    found = report(path, allowed_signers)["verdicts"]
    if isinstance(found, dict):
        return found
    return {verdict["target_id"]: verdict for verdict in found}


def diff(old: Path, new: Path, allowed_signers: Path | None = None) -> tuple[int, dict[str, Any]]:
    """`netprobe diff OLD NEW --format json`: (exit status, parsed JSON)."""
    result = netprobe(["diff", old, new, "--format", "json", *_trust(allowed_signers)])
    _check(result, allowed=(0, 1))
    return result.returncode, json.loads(result.stdout)
