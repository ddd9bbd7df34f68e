"""Benchmark of the probe engine: probes per second, CPU per 1,000 probes, peak RSS.

Runs entirely on this machine (needs root for the network namespace cases):
  1. connect: TCP connects to listening loopback addresses (a 127.x range, one listener, inside
     a namespace so the wildcard listener is not exposed).
  2. timeouts: 10,000 connects into a namespace whose firewall drops every packet; compares the
     wall time with the bound 1.2 x ceil(N / concurrency) x timeout.
  3. memory: 50,000 endpoint targets (a sampled /15 in the same dropping namespace), peak RSS.
Each case runs the real `netprobe.run.executor.run_targets` (with the JSONL writer, unsigned) in a
child process so that peak RSS is per case.

Usage: python bench/bench_probes.py [--case connect|timeouts|memory|all]
No packet leaves the machine: loopback, or a namespace with no route out.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _target_list(cidr: str, port: int, sample: int | str) -> str:
    return (
        "name: bench\n"
        "groups:\n"
        "  bench:\n"
        "    label: benchmark range\n"
        f"    ranges:\n      - {{cidr: {cidr}, ports: [{port}], sample: {sample}}}\n"
    )


def _listen(port: int, ready: object) -> None:
    import asyncio

    async def serve() -> None:
        server = await asyncio.start_server(lambda r, w: w.close(), "0.0.0.0", port, backlog=4096)
        ready.set()  # type: ignore[attr-defined]
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


def child(args: argparse.Namespace) -> None:
    """Run one case in this process and print its figures as JSON."""

    from netprobe.run.executor import RunOptions, run_targets
    from netprobe.targets.lists import parse_targets

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    server = None
    if args.listen:
        # The listener runs in its own process so that it does not share netprobe's CPU core/GIL;
        # one wildcard listener answers every 127.x.y.z (loopback is a /8) in the namespace.
        import multiprocessing

        ready = multiprocessing.Event()
        server = multiprocessing.Process(target=_listen, args=(args.port, ready), daemon=True)
        server.start()
        ready.wait(10)
    tl = parse_targets(_target_list(args.cidr, args.port, args.sample), "bench.yaml")
    with tempfile.TemporaryDirectory() as out:
        options = RunOptions(
            out_dir=Path(out),
            timeout=args.timeout,
            concurrency=args.concurrency,
            control_resolvers=[],
            resolvers=[],
            deadline=3600,
        )
        before = resource.getrusage(resource.RUSAGE_SELF)
        start = time.monotonic()
        result = run_targets([tl], options)
        wall = time.monotonic() - start
        after = resource.getrusage(resource.RUSAGE_SELF)
        size = result.path.stat().st_size
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    n = result.summary.measurements
    print(
        json.dumps(
            {
                "probes": n,
                "failures": dict(result.summary.failures),
                "wall_s": round(wall, 3),
                "probes_per_s": round(n / wall, 1),
                "cpu_s_per_1000": round(cpu / n * 1000, 3),
                "peak_rss_mb": round(after.ru_maxrss / 1024, 1),
                "file_mb": round(size / 1e6, 2),
            }
        )
    )
    if server is not None:
        server.terminate()


def _run_child(extra: list[str], netns: str | None = None) -> dict:
    cmd = [sys.executable, __file__, "--child", *extra]
    if netns:
        cmd = ["ip", "netns", "exec", netns, *cmd]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"benchmark child failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


class DroppingNamespace:
    """A namespace whose route to 198.18.0.0/15 leads into a second, silent namespace.

    The sink namespace does not forward, so every SYN is dropped there without an answer: the
    same as a firewall's DROP, seen from the prober. Nothing is routed anywhere else.
    """

    def __init__(self) -> None:
        suffix = uuid.uuid4().hex[:6]
        self.name, self.sink = f"npbench-{suffix}", f"npsink-{suffix}"

    def __enter__(self) -> str:
        if os.geteuid() != 0:
            raise SystemExit("the benchmark needs root (network namespaces)")
        try:
            for ns in (self.name, self.sink):
                _ip("netns", "add", ns)
                _ip("-n", ns, "link", "set", "lo", "up")
            _ip(
                "-n",
                self.name,
                "link",
                "add",
                "v0",
                "type",
                "veth",
                "peer",
                "name",
                "v1",
                "netns",
                self.sink,
            )
            _ip("-n", self.name, "addr", "add", "192.0.2.1/30", "dev", "v0")
            _ip("-n", self.sink, "addr", "add", "192.0.2.2/30", "dev", "v1")
            _ip("-n", self.name, "link", "set", "v0", "up")
            _ip("-n", self.sink, "link", "set", "v1", "up")
            _ip("-n", self.name, "route", "add", "198.18.0.0/15", "via", "192.0.2.2")
        except BaseException:
            self.__exit__()
            raise
        return self.name

    def __exit__(self, *exc: object) -> None:
        for ns in (self.name, self.sink):
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--case", default="all", choices=["connect", "timeouts", "memory", "all"])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--cidr", default="127.1.0.0/18")
    parser.add_argument("--port", type=int, default=18443)
    parser.add_argument("--sample", default="10000")
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--listen", action="store_true")
    args = parser.parse_args()
    if args.child:
        args.sample = args.sample if args.sample == "all" else int(args.sample)
        child(args)
        return
    cases = ["connect", "timeouts", "memory"] if args.case == "all" else [args.case]
    for case in cases:
        if case == "connect":
            with DroppingNamespace() as ns:  # its loopback only: the listener is not exposed
                figures = _run_child(
                    [
                        "--listen",
                        "--cidr",
                        "127.1.0.0/18",
                        "--sample",
                        "10000",
                        "--concurrency",
                        "256",
                    ],
                    netns=ns,
                )
            print(f"connect  (10,000 loopback connects, concurrency 256): {figures}")
            print(
                f"  target >= 2,000 probes/s: {'PASS' if figures['probes_per_s'] >= 2000 else 'FAIL'}"
            )
        elif case == "timeouts":
            concurrency, timeout = 1000, 1.0
            with DroppingNamespace() as ns:
                figures = _run_child(
                    [
                        "--cidr",
                        "198.18.0.0/17",
                        "--sample",
                        "10000",
                        "--concurrency",
                        str(concurrency),
                        "--timeout",
                        str(timeout),
                    ],
                    netns=ns,
                )
            bound = 1.2 * math.ceil(10000 / concurrency) * timeout
            print(
                f"timeouts (10,000 dropped connects, concurrency {concurrency}, timeout {timeout}s): {figures}"
            )
            print(
                f"  bound 1.2 x ceil(N/C) x T = {bound:.1f}s: {'PASS' if figures['wall_s'] <= bound else 'FAIL'}"
            )
        elif case == "memory":
            with DroppingNamespace() as ns:
                figures = _run_child(
                    [
                        "--cidr",
                        "198.18.0.0/15",
                        "--sample",
                        "50000",
                        "--concurrency",
                        "2500",
                        "--timeout",
                        "1",
                    ],
                    netns=ns,
                )
            print(f"memory   (50,000 targets, concurrency 2500): {figures}")
            print(
                f"  target peak RSS < 250 MB: {'PASS' if figures['peak_rss_mb'] < 250 else 'FAIL'}"
            )


if __name__ == "__main__":
    main()
