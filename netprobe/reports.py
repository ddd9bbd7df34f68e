"""Result files -> analysed runs, for `report` and `diff` (an I/O edge: files, one child process).

Rules:
- `load_analysed(path, ...)` reads one file with `evidence.reader.load_result` (signatures checked
  unless `verify=False`), checks it with `analysis.load.load_run` (the one door) and analyses it:
  `(LoadedResult, RunAnalysis)`. It raises what those raise (`ResultFileError`, `RunRefused`,
  `OSError`); the CLI turns them into messages.
- `load_analysed_pair(old, new, ...)` gives both sides, each as its pair or the exception it
  raised (the caller reports the old side's first, as if read one after the other). The old side
  is read in a forked child while this process reads the new one: loading and analysing a big
  run is CPU-bound, and the two are independent. Files too small to be worth a process (or a
  platform without fork) are read here, one after the other. Results are the same either way.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from netprobe.analysis import RunAnalysis
    from netprobe.evidence.reader import LoadedResult

# Below this many bytes in all, a child process costs more than it saves (~50 ms to start).
PARALLEL_BYTES = 2_000_000


Keep = Callable[[dict[str, Any]], bool]


def load_analysed(
    path: Path, *, verify: bool = True, signers: Any = None, keep: Keep | None = None
) -> tuple[LoadedResult, RunAnalysis]:
    """One file, loaded, checked and analysed (see the module rules).

    `keep`: once analysed, only the measurement records it accepts stay in `loaded.records` and
    `analysis.records` (`report` keeps none, `diff` those `diff.diff_reads` accepts), so a big
    run's records are freed before its document is built (and not pickled back from a child).
    """
    from netprobe.analysis import analyse
    from netprobe.analysis.load import load_run
    from netprobe.evidence.reader import load_result

    loaded = load_result(path, verify=verify, signers=signers)
    run = load_run(loaded.header, loaded.records)
    if keep is None:
        return loaded, analyse(run.header, run.records)
    loaded.used, loaded.records = len(loaded.records), []  # run.records: the one reference left
    analysis = analyse(run.header, run.records, keep=keep)  # frees them as it judges
    loaded.records = analysis.records
    return loaded, analysis


def _side(path: Path, verify: bool, signers: Any, keep: Keep | None = None) -> Any:
    try:
        return load_analysed(path, verify=verify, signers=signers, keep=keep)
    except Exception as exc:  # noqa: BLE001 - handed to the caller, who reports it
        return exc


def _size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


# What the forked child reads: keys do not pickle, so the child inherits them instead.
_INHERITED: tuple[bool, Any, Keep | None] = (True, None, None)


def _old_side(path: Path) -> Any:
    verify, signers, keep = _INHERITED
    return _side(path, verify, signers, keep)


def load_analysed_pair(
    old: Path, new: Path, *, verify: bool = True, signers: Any = None, keep: Keep | None = None
) -> tuple[Any, Any]:
    """(old side, new side): each `(LoadedResult, RunAnalysis)` or the exception it raised."""
    parallel = (
        _size(old) + _size(new) >= PARALLEL_BYTES
        and "fork" in multiprocessing.get_all_start_methods()
        and (os.cpu_count() or 1) > 1
    )
    if not parallel:
        return _side(old, verify, signers, keep), _side(new, verify, signers, keep)
    global _INHERITED
    _INHERITED = (verify, signers, keep)  # set before the pool forks its worker at submit
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool:
        future = pool.submit(_old_side, old)
        new_side = _side(new, verify, signers, keep)
        try:
            old_side = future.result()
        except Exception:  # noqa: BLE001 - the child died or its result did not pickle
            old_side = _side(old, verify, signers, keep)
    return old_side, new_side
