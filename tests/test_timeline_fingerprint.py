"""The summary cache's code fingerprint: computed from the modules a summary depends on, so editing
any of them (even one added later) invalidates every entry, and editing the CLI invalidates none."""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from netprobe.timeline import cache

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("gen_history", ROOT / "bench" / "gen_history.py")
gen_history = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gen_history)


@pytest.fixture
def fresh_fingerprint():
    cache.code_fingerprint.cache_clear()
    yield
    cache.code_fingerprint.cache_clear()


def fingerprint_with(monkeypatch, module: str, source: bytes) -> str:
    real = cache.module_source
    monkeypatch.setattr(cache, "module_source", lambda n: source if n == module else real(n))
    cache.code_fingerprint.cache_clear()
    return cache.code_fingerprint()


def test_the_path_holds_reader_analysis_model_and_timeline_but_not_the_cli():
    modules = set(cache.summary_modules())
    for needed in (
        "netprobe.timeline.files",
        "netprobe.timeline.runs",
        "netprobe.evidence.reader",  # imported inside summarise_file
        "netprobe.analysis",
        "netprobe.analysis.verdict",
        "netprobe.model.records",
        "netprobe.model.vocabulary",
        "netprobe",  # __version__ and the packages themselves run on import
    ):
        assert needed in modules
    assert not any(name.startswith("netprobe.cli") for name in modules)
    assert "netprobe.render.timeline_html" not in modules


def test_editing_a_dependency_changes_the_fingerprint(monkeypatch, fresh_fingerprint):
    before = cache.code_fingerprint()
    for module in ("netprobe.analysis.verdict", "netprobe.model.records", "netprobe.analysis"):
        edited = cache.module_source(module) + b"\n# edited\n"
        assert fingerprint_with(monkeypatch, module, edited) != before, module
        monkeypatch.undo()


def test_editing_a_module_off_the_path_does_not(monkeypatch, fresh_fingerprint):
    before = cache.code_fingerprint()
    edited = cache.module_source("netprobe.cli.cmd_keys") + b"\n# edited\n"
    assert fingerprint_with(monkeypatch, "netprobe.cli.cmd_keys", edited) == before


def test_imports_inside_functions_and_relative_imports_count():
    tree = ast.parse(
        "def f():\n    from netprobe.model import vocabulary\n    import netprobe.diff\n"
        "from . import onset\nfrom ..model.records import encode_line\n"
    )
    names = cache._imported_names(tree, "netprobe.timeline")
    for name in ("netprobe.model.vocabulary", "netprobe.diff", "netprobe.timeline.onset"):
        assert name in names
    assert "netprobe.model.records" in names


def test_every_module_summarising_really_loads_is_in_the_fingerprint(tmp_path):
    # The static reading must cover what actually runs: summarise a signed and an unsigned file
    # in a fresh interpreter and compare the netprobe modules it loaded.
    gen_history.write_history(
        tmp_path, hours=2, onset_hour=1, outage_hour=None, gap_hour=None, ranges=1, signed=1
    )
    files = sorted(str(p) for p in tmp_path.glob("*.jsonl"))
    script = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from netprobe.timeline.files import ReadOptions, summarise_file\n"
        f"signers = {str(tmp_path / 'allowed_signers')!r}  # the signed file's key is trusted\n"
        f"for path in {files!r}:\n"
        "    for verify in (True, False):\n"
        "        options = ReadOptions(verify=verify, allowed_signers=signers)\n"
        "        result = summarise_file(Path(path), options)\n"
        f"        if path == {files[-1]!r} or not verify:  # only the last file is signed\n"
        "            assert type(result).__name__ == 'RunSummary', result\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'netprobe')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT
    )
    loaded = set(json.loads(done.stdout))
    assert "netprobe.analysis.verdict" in loaded
    assert loaded <= set(cache.summary_modules())
