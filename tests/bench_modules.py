"""The scripts of bench/ that tests use as modules (they are scripts, not part of the package)."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def load_gen_history():
    """bench/gen_history.py as a module (it is a script, not part of the package)."""
    path = Path(__file__).resolve().parent.parent / "bench" / "gen_history.py"
    spec = importlib.util.spec_from_file_location("gen_history", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
