"""A fleet benchmark: 20 vantages on 5 ASNs, 90 days hourly, ingested into ClickHouse.

Prints, as one JSON object: files and records generated (and how long that took), the ingest
rate (records/s, target >= 50,000 on the 2-core machine) and the wall time of the fleet timeline
query over the store (`netprobe timeline --clickhouse`, target < 10 s), plus each network's
web-name onset as a sanity check.

- Files are generated directly (records from `gen_history.run_records`, checkpoints and SSHSIG
  signatures made here exactly as `evidence.writer` makes them: header, start checkpoint,
  records, summary, end checkpoint), each vantage with its own key; all go in one trust store.
- The machine is shared, so next to each wall time it prints the CPU seconds spent (this process,
  its reaped children: the ingest workers, and the server it started, from /proc) and the load
  average: `*_cpu_seconds` and the records per CPU-second do not depend on the other work.
- Without `--clickhouse URL` a ClickHouse server is started on loopback with its data in a
  temporary folder (`tests/clickhouse_server.py`, Debian's clickhouse-server) and stopped after.

Example: python bench/fleet.py                        # the full fleet (43,200 files)
Example: python bench/fleet.py --vantages 4 --days 7  # a quick look
Example: python bench/fleet.py --out /tmp/fleet --keep; python bench/fleet.py --out /tmp/fleet --reuse
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import gen_history  # noqa: E402

from netprobe.evidence import format as fmt  # noqa: E402
from netprobe.evidence.keys import generate_key, load_signer  # noqa: E402
from netprobe.model.records import encode_line  # noqa: E402

# (ASN, ISP, onset day of the web/DC block or None)
NETWORKS = [
    ("AS45899", "vnpt", 26),
    ("AS7552", "viettel", 45),
    ("AS18403", "fpt", 60),
    ("AS24086", "viettel-4g", 45),
    ("AS131429", "mobifone", None),
]


def _vantages(count: int) -> list[tuple[str, str, int | None]]:
    return [
        (asn, f"{isp}-{index // len(NETWORKS) + 1}", onset)
        for index, (asn, isp, onset) in ((i, NETWORKS[i % len(NETWORKS)]) for i in range(count))
    ]


def _signed_file(head: dict, records: list[dict], signer) -> bytes:
    """The bytes `evidence.writer` writes for these records (start and end checkpoints)."""
    hasher = hashlib.sha512()
    parts: list[bytes] = []

    def add(line: bytes) -> None:
        parts.append(line)
        hasher.update(line)

    def checkpoint(seq: int, reason: str, lines: int) -> None:
        add(fmt.checkpoint_line(seq, lines, sum(map(len, parts)), reason))
        add(fmt.signature_line(seq, signer.sign_digest(hasher.copy().digest())))

    add(encode_line({**head, "signer": signer.header_info()}))
    checkpoint(0, fmt.START, 1)
    for record in records:
        add(encode_line(record))
    started = gen_history.datetime.fromisoformat(head["started_at"].replace("Z", "+00:00"))
    add(encode_line(gen_history.summary(records, started)))
    checkpoint(1, fmt.END, len(parts))
    return b"".join(parts)


def _write_vantage(job: tuple) -> tuple[int, int]:
    out, index, asn, vantage, onset_day, days, ranges = job
    signer = load_signer(out / "keys" / vantage)
    rng = random.Random(index)
    folder = out / vantage
    folder.mkdir(parents=True, exist_ok=True)
    outage = rng.randrange(24, days * 24 - 24) if days > 3 else None
    files = records_total = 0
    for hour in range(days * 24):
        started = gen_history.START + timedelta(hours=hour, minutes=7, seconds=rng.randrange(60))
        blocked = onset_day is not None and hour >= onset_day * 24 + index % 5
        offline = outage is not None and outage <= hour < outage + 2
        records = gen_history.run_records(rng, blocked=blocked, offline=offline, ranges=ranges)
        head = gen_history.header(started, vantage, asn)
        head["run_id"] = uuid.UUID(int=(index << 32) + hour).hex
        name = f"{started.strftime(fmt.STEM_TIME_FORMAT)}_{vantage}.jsonl"
        (folder / name).write_bytes(_signed_file(head, records, signer))
        files += 1
        records_total += len(records)
    return files, records_total


def _cpu_split(server_pid: int | None) -> tuple[float, float, float]:
    """CPU seconds so far of (this process, its reaped children: the ingest workers, the server
    if ours): where ingest time goes, apart from the wall clock."""
    times = os.times()
    server = 0.0
    if server_pid is not None:
        fields = Path(f"/proc/{server_pid}/stat").read_text().rsplit(")", 1)[1].split()
        server = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return times.user + times.system, times.children_user + times.children_system, server


def _cpu(server_pid: int | None) -> float:
    """CPU seconds so far of this process, its reaped children and the server (if ours)."""
    return sum(_cpu_split(server_pid))


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def generate(out: Path, vantages: int, days: int, ranges: int, jobs: int) -> tuple[int, int]:
    (out / "keys").mkdir(parents=True, exist_ok=True)
    lines = []
    plan = _vantages(vantages)
    for _asn, vantage, _onset in plan:
        key = out / "keys" / vantage
        signer = load_signer(key) if key.exists() else generate_key(key, vantage)
        lines.append(signer.allowed_signers_line())
    (out / "allowed_signers").write_text("\n".join(lines) + "\n")
    work = [
        (out, index, asn, vantage, onset, days, ranges)
        for index, (asn, vantage, onset) in enumerate(plan)
    ]
    with get_context("fork").Pool(jobs) as pool:
        done = pool.map(_write_vantage, work, chunksize=1)
    return sum(f for f, _ in done), sum(r for _, r in done)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vantages", type=int, default=20)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--ranges", type=int, default=10, help="range endpoints per run")
    parser.add_argument("--out", type=Path, help="folder for the files [default: a temp folder]")
    parser.add_argument("--clickhouse", help="an existing server's URL [default: start one]")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument(
        "--reuse", action="store_true", help="ingest the files already in --out (kept by --keep)"
    )
    args = parser.parse_args()

    from netprobe.store.client import ClickHouse
    from netprobe.store.ingest import ingest_files
    from netprobe.store.timeline import store_timeline
    from netprobe.timeline.builder import TimelineOptions
    from netprobe.timeline.files import expand_paths

    scratch = Path(tempfile.mkdtemp(prefix="netprobe-fleet-"))
    out = args.out or scratch / "files"
    server = None
    try:
        t0 = time.perf_counter()
        if args.reuse and args.out and (out / "allowed_signers").exists():
            files = records = -1  # counted by the ingest below
        else:
            files, records = generate(out, args.vantages, args.days, args.ranges, args.jobs)
        generated = time.perf_counter() - t0
        url = args.clickhouse
        if url is None:
            from tests.clickhouse_server import ClickHouseServer

            server = ClickHouseServer(scratch / "clickhouse")
            server.start()
            url = server.url + "/fleet_bench"
        paths, _missing = expand_paths([out])
        pid = server.process.pid if server is not None and server.process is not None else None
        with ClickHouse(url, timeout=600.0) as client:
            load_before = _load()
            t1, c1 = time.perf_counter(), _cpu_split(pid)
            report = ingest_files(client, paths, out / "allowed_signers", jobs=args.jobs)
            ingest_s = time.perf_counter() - t1
            split = [round(b - a, 1) for a, b in zip(c1, _cpu_split(pid), strict=True)]
            ingest_cpu = sum(b - a for a, b in zip(c1, _cpu_split(pid), strict=True))
            load_after = _load()
            t2, c2 = time.perf_counter(), _cpu(pid)
            timeline = store_timeline(client, TimelineOptions())
            timeline_s, timeline_cpu = time.perf_counter() - t2, _cpu(pid) - c2
        if files < 0:
            files, records = len(paths), report.records
        onsets = {}
        for network in timeline["networks"]:
            web = next(
                (t for t in network["targets"] if t["target_id"] == "domain:telegram.org"), None
            )
            change = next((c for c in (web or {}).get("changes", []) if not c["initial"]), None)
            onsets[f"{network['probe_asn']} {network['vantage']}"] = (
                f"{change['to']} by {change['method']} after {change['first_after']}"
                if change
                else (web or {}).get("state")
            )
        print(
            json.dumps(
                {
                    "vantages": args.vantages,
                    "days": args.days,
                    "files": files,
                    "records": records,
                    "generate_seconds": round(generated, 1),
                    "ingested_files": len(report.ingested),
                    "rejected_files": len(report.rejected),
                    "ingest_seconds": round(ingest_s, 1),
                    "ingest_records_per_second": round(report.records / ingest_s),
                    "ingest_cpu_seconds": round(ingest_cpu, 1),
                    "ingest_records_per_cpu_second": round(report.records / ingest_cpu),
                    "ingest_cpu_main_workers_server": split,
                    "load_average_before_ingest": load_before,
                    "load_average_after_ingest": load_after,
                    "timeline_query_seconds": round(timeline_s, 2),
                    "timeline_cpu_seconds": round(timeline_cpu, 2),
                    "load_average_after_timeline": _load(),
                    "timeline_runs": timeline["runs"],
                    "networks": len(timeline["networks"]),
                    "web_onsets": onsets,
                },
                indent=1,
            )
        )
    finally:
        if server is not None:
            server.stop()
        if not args.keep or args.reuse:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
