"""Readers benchmark: `report`, `diff` and `verify` of a big signed run (time and peak RSS).

Writes two signed runs of about 34,000 records each (the synthetic records of
`bench/gen_history.py`: web names, DCs and --ranges range endpoints, two attempts; the second run
blocked), with the writer's default checkpoints (every 256 records), then times each command in a
child process (wall, CPU, peak RSS), `--repeat` times, and prints the medians against the targets
(report/diff < 2 s and < 100 MB peak RSS; verify < 1 s).

Usage: python bench/bench_readers.py [--ranges 16833] [--repeat 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import gen_history as gen  # noqa: E402

NETPROBE = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "netprobe"


def write_runs(out: Path, ranges: int) -> tuple[Path, Path, Path]:
    """Two signed runs (ok, then blocked) and the allowed_signers file."""
    from netprobe.evidence.keys import generate_key
    from netprobe.evidence.writer import ResultWriter

    signer = generate_key(out / "bench-key", "bench")
    signers = out / "allowed_signers"
    signers.write_text(signer.allowed_signers_line() + "\n")
    rng = random.Random(1)
    paths = []
    for hour, blocked in ((0, False), (1, True)):
        started = gen.START + timedelta(hours=hour)
        records = gen.run_records(rng, blocked=blocked, offline=False, ranges=ranges)
        stem = f"{started.strftime('%Y%m%dT%H%M%SZ')}_bench"
        with ResultWriter(out, stem, signer=signer) as writer:
            writer.write_header(gen.header(started, "bench", "AS64500"))
            for record in records:
                writer.write(record)
            paths.append(writer.close(gen.summary(records, started)))
    return paths[0], paths[1], signers


def timed(cmd: list[str]) -> tuple[float, float, float, int]:
    """(wall s, CPU s, peak RSS MB, exit code) of one child process."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.stderr is not None
    err = proc.stderr.read().decode()
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {err[-800:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, proc.returncode


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ranges", type=int, default=16833, help="range endpoints per run")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="write the runs here and keep them")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}  (cores: {os.cpu_count()})")
    with tempfile.TemporaryDirectory() as tmp:
        out = args.keep or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        a, b, signers = write_runs(out, args.ranges)
        lines = sum(1 for _ in a.open("rb"))
        print(
            f"run files: {a.name} {b.name}: {lines:,} lines, {a.stat().st_size / 1e6:.1f} MB each"
        )
        np_ = str(NETPROBE)
        cases = {
            "report": ([np_, "report", str(a), "--allowed-signers", str(signers)], 2.0, 100),
            "report --format json": (
                [np_, "report", str(b), "--allowed-signers", str(signers), "--format", "json"],
                2.0,
                100,
            ),
            "diff": ([np_, "diff", str(a), str(b), "--allowed-signers", str(signers)], 2.0, 100),
            "verify": ([np_, "verify", str(a), "--allowed-signers", str(signers)], 1.0, None),
        }
        for name, (cmd, wall_target, rss_target) in cases.items():
            runs = [timed(cmd) for _ in range(args.repeat)]
            wall = statistics.median(r[0] for r in runs)
            cpu = statistics.median(r[1] for r in runs)
            rss = max(r[2] for r in runs)
            ok = wall < wall_target and (rss_target is None or rss < rss_target)
            limits = f"< {wall_target:g} s" + (f", < {rss_target} MB" if rss_target else "")
            print(
                f"{name:22s} wall {wall:5.2f} s (runs {', '.join(f'{r[0]:.2f}' for r in runs)})"
                f"  cpu {cpu:5.2f} s  peak RSS {rss:6.1f} MB  target {limits}: "
                f"{'PASS' if ok else 'FAIL'}"
            )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
