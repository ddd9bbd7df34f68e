"""How fast the throughput probe can read: its ceiling on loopback, and the cost of a run's downloads.

Downloads the 1 MiB object of the loopback HTTPS server used by the tests (tests/localservers.py
`object_server`) with the real `probe_throughput`, N times, and prints the rates it measured:
the probe's own ceiling (any link slower than this is measured, not the probe), and the paced
`/slow` path (about 80 KB/s) to show the time cap at work. No address outside 127.0.0.1 is used.

Usage: python bench/throughput_probe.py [--count 10] [--seconds 1.0] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from netprobe.probes.throughput import probe_throughput  # noqa: E402
from netprobe.probes.tls import make_ssl_context  # noqa: E402
from tests.localservers import (  # noqa: E402
    issue_cert,
    make_ca,
    object_server,
    probe_context,
    write_ca_bundle,
)


async def _fetch(port: int, path: str, context, seconds: float) -> dict:
    return dict(
        await probe_throughput(
            probe_context(),
            "127.0.0.1",
            port,
            "example.test",
            path,
            hostname="example.test",
            sni_role="target",
            ssl_context=context,
            timeout=5.0,
            max_bytes=4 << 20,
            max_seconds=seconds,
        )
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10, help="downloads per path (default 10)")
    parser.add_argument("--seconds", type=float, default=1.0, help="time cap (default 1.0)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    ca = make_ca()
    figures: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as folder, object_server(issue_cert(ca)) as server:
        context = make_ssl_context(write_ca_bundle(ca, folder))
        for path in ("/object", "/slow"):
            records = [
                asyncio.run(_fetch(server.port, path, context, args.seconds))
                for _ in range(args.count)
            ]
            rates = [r["rate"] for r in records if r["failure"] is None and r["rate"]]
            figures[path] = {
                "downloads": len(records),
                "failures": sum(1 for r in records if r["failure"]),
                "median_rate_bytes_per_s": round(statistics.median(rates)) if rates else None,
                "min_rate_bytes_per_s": round(min(rates)) if rates else None,
                "median_duration_s": round(statistics.median(r["duration"] for r in records), 4),
                "stopped": sorted({str(r["stopped"]) for r in records}),
            }
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    for path, row in figures.items():
        median = row["median_rate_bytes_per_s"]
        shown = f"{median / 1e6:.1f} MB/s" if median else "-"
        print(
            f"{path:8} {row['downloads']} downloads, {row['failures']} failed, median rate "
            f"{shown}, median duration {row['median_duration_s']} s, stopped {row['stopped']}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
