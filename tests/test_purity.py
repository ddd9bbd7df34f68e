"""The pure modules import no I/O or UI library: no asyncio, socket, ssl, rich or typer, directly
or through another netprobe module, so they stay importable and testable without a network stack
or a terminal (docs/DESIGN.md: pure cores, thin shells).

Each module is imported alone in a fresh interpreter, and its `sys.modules` is checked. Modules
are discovered with pkgutil, so a new module in a pure package is covered without an edit here.
"""

from __future__ import annotations

import importlib.util
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = ("asyncio", "socket", "ssl", "rich", "typer", "dns", "httpx", "httpcore")
# Pure packages (every module in them) and pure single modules.
PURE_PACKAGES = ("netprobe.model", "netprobe.targets", "netprobe.analysis")
PURE_MODULES = (
    "netprobe.diff",
    "netprobe.timeline.onset",
    "netprobe.timeline.runs",
    "netprobe.timeline.series",
    "netprobe.timeline.builder",
    "netprobe.timeline.fleet",
    "netprobe.timeline.nogc",
    "netprobe.options",
    "netprobe.run.tally",
    "netprobe.run.planner",
    "netprobe.probes.mtproto_wire",
    "netprobe.run.plan_mtproto",
    "netprobe.bundle.script",
    "netprobe.run.plan_http",  # issue 13
    "netprobe.run.plan_throughput",
    "netprobe.store.schema",
    "netprobe.export.ooni",
    "netprobe.store.rowbinary",
)
# PENDING: modules allowed to be impure for a while (none now); name each with its reason.
PENDING: set[str] = set()


def _exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def pure_modules() -> list[str]:
    names = set(PURE_MODULES)
    for package_name in PURE_PACKAGES:
        names.add(package_name)
        package = importlib.import_module(package_name)
        for info in pkgutil.walk_packages(package.__path__, prefix=package_name + "."):
            names.add(info.name)
    for name in list(names):
        spec = importlib.util.find_spec(name) if _exists(name) else None
        if spec is not None and spec.submodule_search_locations:  # a pure module became a package
            for info in pkgutil.walk_packages(spec.submodule_search_locations, prefix=name + "."):
                names.add(info.name)
    return sorted(names)


def forbidden_imports(module: str) -> list[str]:
    """The FORBIDDEN names in `sys.modules` after importing `module` alone, in a fresh python."""
    script = (
        "import importlib, json, sys\n"
        f"importlib.import_module({module!r})\n"
        f"print(json.dumps([n for n in {FORBIDDEN!r} if n in sys.modules]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert done.returncode == 0, f"importing {module} failed:\n{done.stderr}"
    return json.loads(done.stdout)


@pytest.mark.parametrize("module", [m for m in pure_modules() if m not in PENDING])
def test_pure_module_imports_no_io_or_ui_library(module):
    assert _exists(module), f"{module} is listed as pure but does not exist"
    assert forbidden_imports(module) == [], f"{module} pulls in I/O or UI libraries"


def test_discovery_covers_every_module_of_the_pure_packages():
    found = pure_modules()
    for package_name in PURE_PACKAGES:
        folder = ROOT.joinpath(*package_name.split("."))
        for source in folder.glob("*.py"):
            name = package_name if source.stem == "__init__" else f"{package_name}.{source.stem}"
            assert name in found


def test_the_check_catches_an_impure_module():
    # The CLI's shared helpers exit through typer (rich only once something is printed), and the
    # report renderer builds rich tables: the check must see both.
    assert "typer" in forbidden_imports("netprobe.cli.common")
    assert "rich" in forbidden_imports("netprobe.render.report")
