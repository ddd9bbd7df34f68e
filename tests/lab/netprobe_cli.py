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
    repeat: int | None = 1,
    key: Path | None = None,
    vantage: str = "lab",
    extra: tuple[str, ...] = (),
    targets: Path | None = None,
    control_resolver: str | None = "https://192.0.2.53/dns-query",
    allowed: tuple[int, ...] = (0,),
    timeout: float = 180,
) -> Path:
    """One `netprobe run` of a lab target list (default tests/lab/lab.yaml) from the client
    namespace; the result path. `repeat=None` and `control_resolver=None` leave those to the
    list and netprobe's defaults; `allowed` are the exit statuses taken as success."""
    args = [
        "run", str(targets or lab.targets_path), "--out", str(out_dir),
        "--ca-bundle", str(lab.ca_path), "--vantage", vantage, "--quiet",
        *(["--control-resolver", control_resolver] if control_resolver else []),
        *(["--repeat", str(repeat)] if repeat is not None else []),
        *(["--key", str(key)] if key else ["--no-sign"]), *extra,
    ]  # fmt: skip
    result = lab.run_netprobe(args, timeout=timeout)
    _check(result, allowed)
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
