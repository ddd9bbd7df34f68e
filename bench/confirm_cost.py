"""What confirmation re-probes cost: extra probes (and wall time) on a clean and a blocked run.

Runs the real executor (`netprobe.run.executor.run_targets`) over the bundled Telegram list with
fake probes (no socket is opened), in four cases:
  clean    every probe works                         -> must cost 0 extra probes
  lossy    each target probe fails with probability --loss (seeded), the field's "5% loss"
  blocked  every target probe fails, the controls work (a fully blocked vantage)
  offline  every probe fails, controls too           -> no confirmation (nothing to confirm against)
A failing fake probe takes --fail-delay seconds (a stand-in for the probe timeout), a working one
--ok-delay; spacings and pauses are scaled the same way (--spacing, --pause), so wall times are
comparable between cases, not with a real run.

Usage: python bench/confirm_cost.py [--confirm 2] [--loss 0.05] [--repeat 1] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from netprobe.probes import ProbeContext, Probes  # noqa: E402
from netprobe.run.executor import RunOptions, run_targets  # noqa: E402
from netprobe.targets.lists import bundled_targets_path, load_targets  # noqa: E402

CASES = ("clean", "lossy", "blocked", "offline")


class CountingSink:
    """Counts records by kind; keeps nothing else (the bench measures the executor only)."""

    def __init__(self) -> None:
        self.records = 0
        self.kinds: Counter[str] = Counter()

    def write_header(self, header: dict[str, Any]) -> None:
        pass

    def write(self, record: dict[str, Any]) -> None:
        self.records += 1
        if record.get("confirmation"):
            self.kinds["confirmation"] += 1
        elif record.get("sequence") == "after":
            self.kinds["after"] += 1
        elif record.get("control_round") is not None:
            self.kinds["control"] += 1
        elif record.get("resolver_role") == "silent":
            self.kinds["silent"] += 1
        else:
            self.kinds["planned target"] += 1

    def close(self, summary: dict[str, Any], *, reason: str = "end") -> Path:
        return Path("/dev/null")


def fake_probes(case: str, args: argparse.Namespace) -> Probes:
    rng = random.Random(1)

    def failure(ctx: ProbeContext, fields: dict[str, Any]) -> str | None:
        if case == "offline":
            return "network_unreachable"
        if fields.get("resolver_role") == "silent":
            return "generic_timeout_error"  # the expected outcome of the injection probe
        if ctx.role != "target" or case == "clean":
            return None
        if case == "blocked" or rng.random() < args.loss:
            return "generic_timeout_error"
        return None

    async def probe(kind: str, ctx: ProbeContext, **fields: Any) -> Any:
        t0 = ctx.now()
        failed = failure(ctx, fields)
        await asyncio.sleep(args.fail_delay if failed else args.ok_delay)
        return ctx.record(kind, t0=t0, failure=failed, failed_operation=failed and kind, **fields)

    async def dns(ctx, hostname, query_type, resolver, *, resolver_role, **settings) -> Any:  # type: ignore[no-untyped-def]
        answers = [{"answer_type": "A", "ipv4": "149.154.167.99", "ttl": 60}]
        return await probe(
            "dns",
            ctx,
            hostname=hostname,
            query_type=query_type,
            resolver_address=resolver.address,
            resolver_role=resolver_role,
            answers=answers if query_type == "A" else [],
        )

    async def tcp(ctx, ip, port, *, timeout) -> Any:  # type: ignore[no-untyped-def]
        return await probe("tcp", ctx, ip=ip, port=port)

    async def tls(ctx, ip, port, server_name, *, sni_role, **settings) -> Any:  # type: ignore[no-untyped-def]
        return await probe("tls", ctx, ip=ip, port=port, server_name=server_name, sni_role=sni_role)

    return Probes(dns=dns, tcp=tcp, tls=tls)


def run_case(case: str, args: argparse.Namespace, confirm: int) -> dict[str, Any]:
    target_list = load_targets(bundled_targets_path())
    sink = CountingSink()
    options = RunOptions(
        resolvers=["udp://192.0.2.53"],
        control_resolvers=["https://198.51.100.53/dns-query"],
        repeat=args.repeat,
        concurrency=args.concurrency,
        confirm=confirm,
        confirm_spacing=args.spacing,
        residual_pause=args.pause,
        deadline=600,
    )
    began = time.monotonic()
    run_targets(
        [target_list],
        options,
        sink_factory=lambda out_dir, stem: sink,
        probes=fake_probes(case, args),
    )
    wall = time.monotonic() - began
    extra = sink.kinds["confirmation"]
    return {
        "case": case,
        "confirm": confirm,
        "records": sink.records,
        "extra_probes": extra,
        "extra_percent": round(100 * extra / max(1, sink.records - extra), 1),
        "after_probes": sink.kinds["after"],
        "wall_seconds": round(wall, 2),
        "kinds": dict(sink.kinds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--confirm", type=int, default=2)
    parser.add_argument("--loss", type=float, default=0.05)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--ok-delay", type=float, default=0.002)
    parser.add_argument("--fail-delay", type=float, default=0.05)
    parser.add_argument("--spacing", type=float, default=0.01)
    parser.add_argument("--pause", type=float, default=0.03)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--case", choices=(*CASES, "all"), default="all")
    args = parser.parse_args()
    cases = CASES if args.case == "all" else (args.case,)
    rows = [run_case(case, args, confirm) for case in cases for confirm in (0, args.confirm)]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(
        f"{'case':<8} {'confirm':>7} {'records':>8} {'extra':>6} {'extra %':>8} "
        f"{'after':>6} {'wall s':>7}"
    )
    for row in rows:
        print(
            f"{row['case']:<8} {row['confirm']:>7} {row['records']:>8} {row['extra_probes']:>6} "
            f"{row['extra_percent']:>8} {row['after_probes']:>6} {row['wall_seconds']:>7}"
        )
    for row in rows:
        if row["case"] in ("clean", "offline") and row["extra_probes"]:
            raise SystemExit(f"a {row['case']} run cost {row['extra_probes']} extra probes")


if __name__ == "__main__":
    main()
