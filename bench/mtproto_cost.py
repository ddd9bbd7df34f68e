"""What the MTProto probe costs: extra probes in the default run, and round trips per second.

Prints two figures, all on this machine (no packet leaves loopback):
  1. probes: how many MTProto attempts the bundled Telegram list adds to a clean run (every DC
     endpoint that connects gets three), next to the probes the run made before issue 13.
  2. loopback: req_pq_multi -> resPQ round trips per second per transport against a loopback DC
     stand-in (`ServerSession`), sequential, so the figure is the per-attempt CPU and syscall cost
     (obfuscated2's AES-CTR included), not a network figure.

Usage: python bench/mtproto_cost.py [--attempts 300]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from netprobe.probes import ProbeContext
from netprobe.probes import mtproto_wire as wire
from netprobe.probes.mtproto import probe_mtproto
from netprobe.run.plan_mtproto import TRANSPORT_ORDER, is_dc_endpoint
from netprobe.targets.lists import bundled_targets_path, load_targets


async def _dc(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    session = wire.ServerSession(bytes(16))
    try:
        while data := await reader.read(4096):
            writer.write(session.feed(data))
            await writer.drain()
    finally:
        writer.close()


async def _loopback(attempts: int) -> dict[str, float]:
    server = await asyncio.start_server(_dc, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    rates = {}
    for transport in wire.TRANSPORTS:
        ctx = ProbeContext("endpoint:127.0.0.1", "bench", "target", 0, time.monotonic())
        started = time.perf_counter()
        for _ in range(attempts):
            record = await probe_mtproto(ctx, "127.0.0.1", port, transport, timeout=5)
            assert record["res_pq"], record
        rates[transport] = attempts / (time.perf_counter() - started)
    await asyncio.sleep(0.1)  # let the last handler see its client's close
    server.close()
    await server.wait_closed()
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attempts", type=int, default=300, help="round trips per transport")
    args = parser.parse_args()
    bundled = load_targets(bundled_targets_path())
    counts = bundled.counts()
    dcs = sum(1 for e in bundled.target_endpoints() if is_dc_endpoint(e))
    extra = dcs * len(TRANSPORT_ORDER)
    print(
        f"probes: bundled list, {dcs} DC endpoints x {len(TRANSPORT_ORDER)} transports = "
        f"{extra} MTProto attempts on a clean run, next to {counts['probes']} other probes"
    )
    for transport, rate in asyncio.run(_loopback(args.attempts)).items():
        print(f"loopback: {transport:12s} {rate:7.0f} round trips/s (sequential, {args.attempts})")


if __name__ == "__main__":
    main()
