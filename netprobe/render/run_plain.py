"""The parts of `netprobe run`'s rendering that need no rich: the JSON document and the warnings.

Rules: `run_document` is the `--format json` summary, `run_warnings` the lines for stderr (the same
ones as the document's `warnings`): an interrupted run, each control that answered nothing
(`RunTally.control_problems`), a vantage point where no control worked, in that order. Kept apart
from `netprobe.render.run` (rich tables) so that `run --quiet` (every sweep, every cron run) does
not import rich (~25 ms of its start); `netprobe.render.run` re-exports both.
"""

from __future__ import annotations

from typing import Any


def run_document(result: Any) -> dict[str, Any]:
    """The `--format json` summary of a finished run (`result`: executor's RunResult)."""
    return {
        "path": str(result.path),
        "interrupted": result.interrupted,
        **result.summary.to_dict(),
        "warnings": run_warnings(result),
    }


def run_warnings(result: Any) -> list[str]:
    """What the user must be told about a finished run, in order (possibly nothing)."""
    warnings = []
    if result.interrupted == "deadline":
        warnings.append(
            "the run reached its --deadline before every probe finished; the file holds what was measured"
        )
    elif result.interrupted:
        warnings.append(
            f"stopped by {result.interrupted}; the file is closed and signed up to the stop"
        )
    warnings += result.summary.control_problems()
    problem = result.summary.vantage_problem()
    if problem:
        warnings.append(problem)
    return warnings
