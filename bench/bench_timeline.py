"""Time `netprobe timeline`'s pipeline over a folder of result files (see gen_history.py).

Prints files, total seconds, files/s and peak RSS (this process and its worker processes,
from resource.getrusage), plus the onset found for one web target, as one JSON object.

Example: python bench/bench_timeline.py /tmp/history --allowed-signers /tmp/history/allowed_signers
Run twice with `--cache /tmp/cache.sqlite3` to time a first (cold) and a repeated (warm) timeline.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from netprobe.model.target_ids import domain_id  # noqa: E402
from netprobe.timeline.builder import TimelineBuilder, TimelineOptions  # noqa: E402
from netprobe.timeline.files import (  # noqa: E402
    ReadOptions,
    Skipped,
    expand_paths,
    open_cache,
    read_runs,
)


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--no-verify", action="store_true", help="skip signature checks")
    parser.add_argument("--allowed-signers", default=None, help="allowed_signers file")
    parser.add_argument("--jobs", type=int, default=None, help="worker processes")
    parser.add_argument("--last", type=int, default=None, help="only the last N files")
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="use this summary cache file (as `netprobe timeline` does); default: no cache",
    )
    args = parser.parse_args()
    started = time.perf_counter()
    files, _ = expand_paths([args.folder])
    if args.last:
        files = files[-args.last :]
    options = ReadOptions(verify=not args.no_verify, allowed_signers=args.allowed_signers)
    builder = TimelineBuilder(TimelineOptions())
    skipped = 0
    cache = open_cache(options, args.cache) if args.cache else None
    for result in read_runs(files, options, jobs=args.jobs, cache=cache):
        if isinstance(result, Skipped):
            skipped += 1
        else:
            builder.add(result)
    if cache is not None:
        cache.close()
    read_done = time.perf_counter()
    report = builder.build()
    finished = time.perf_counter()
    onset = None
    for network in report["networks"]:
        for target in network["targets"]:
            if target["target_id"] == domain_id("telegram.org"):
                onset = [c for c in target["changes"] if not c["initial"]]
    elapsed = finished - started
    print(
        json.dumps(
            {
                "files": len(files),
                "skipped": skipped,
                "cache_hits": cache.hits if cache else None,
                "cache_misses": cache.misses if cache else None,
                "runs": report["runs"],
                "seconds": round(elapsed, 2),
                "read_seconds": round(read_done - started, 2),
                "build_seconds": round(finished - read_done, 2),
                "files_per_second": round(len(files) / elapsed, 1) if elapsed else None,
                "cpu_seconds_main": round(_cpu(resource.RUSAGE_SELF), 2),
                "cpu_seconds_workers": round(_cpu(resource.RUSAGE_CHILDREN), 2),
                "peak_rss_mib_main": round(
                    resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
                ),
                "peak_rss_mib_worker": round(
                    resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1
                ),
                "onset_telegram_org": onset,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
