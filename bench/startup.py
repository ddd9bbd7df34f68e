"""Start-up benchmark: `netprobe --version`, `--help`, and a `run` of the bundled list offline.

Times each command `--repeat` times (wall clock, child CPU) and prints the minimum and median
against the targets (--version/--help < 0.15 s; the offline run < 1.5 s). The offline run is
`netprobe run` of the bundled Telegram list inside a fresh network namespace whose only interface
is loopback, so every probe fails at once ("network unreachable") and nothing leaves the machine;
it needs root (skipped with a note otherwise). Also lists the heavy libraries that
`--version` imports (there should be none of httpx, rich, cryptography, dnspython).

Usage: python bench/startup.py [--repeat 10]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV = REPO / ".venv" / "bin"
HEAVY = ("httpx", "rich", "cryptography", "dns", "yaml", "h2", "uvloop")
# Timed as an installed netprobe starts: from compiled .pyc files. With PYTHONDONTWRITEBYTECODE
# set (some shells and tools set it), an editable install would compile every netprobe module
# from source on each start (~30 % of `--help` on this machine), which no user pays.
ENV = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}


def timed(cmd: list[str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, check=False, env=ENV)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr[-800:]!r}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def report(name: str, runs: list[tuple[float, float]], target: float) -> None:
    walls = [w for w, _ in runs]
    best, median = min(walls), statistics.median(walls)
    cpu = statistics.median(c for _, c in runs)
    verdict = "PASS" if median < target else ("PASS (min)" if best < target else "FAIL")
    print(
        f"{name:34s} min {best:.3f} s  median {median:.3f} s  cpu {cpu:.3f} s  "
        f"target < {target:g} s: {verdict}"
    )


def heavy_imports() -> list[str]:
    code = (
        "import sys; sys.argv = ['netprobe', '--version']\n"
        "from netprobe.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "real = {m.split('.')[0] for m, mod in sys.modules.items()\n"
        "        if type(mod).__name__ != '_StandInModule'}  # cli/lazy_rich's stand-ins\n"
        f"print(sorted(real & set({HEAVY!r})))"
    )
    done = subprocess.run([str(VENV / "python"), "-c", code], capture_output=True, text=True)
    return done.stdout.strip().splitlines()[-1:]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    netprobe = str(VENV / "netprobe")
    print(f"load average before: {os.getloadavg()}  (cores: {os.cpu_count()})")
    for flag in ("--version", "--help"):
        timed([netprobe, flag])  # warm the page cache and the .pyc files
        report(f"netprobe {flag}", [timed([netprobe, flag]) for _ in range(args.repeat)], 0.15)
    print(f"heavy libraries imported by --version: {heavy_imports()[0]}")
    if os.geteuid() != 0 or shutil.which("ip") is None:
        print("offline run: skipped (needs root and iproute2 for a network namespace)")
        return
    ns = f"np-off-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        runs = []
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(max(3, args.repeat // 2)):
                cmd = ["ip", "netns", "exec", ns, netprobe, "run", "--out", f"{tmp}/r{i}",
                       "--vantage", "offline", "--no-sign", "--quiet"]  # fmt: skip
                runs.append(timed(cmd))
        report("netprobe run (bundled list, offline)", runs, 1.5)
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
