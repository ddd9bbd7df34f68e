"""TLS handshakes and DNS queries per second on loopback, with CPU seconds per 1,000 probes.

Builds a throw-away network namespace (only its loopback is up; nothing is routed anywhere) and
in it starts, in a separate process so it does not share netprobe's CPU: an asyncio TLS server
on port 8443 of every 127.x address (a trustme certificate for `example.test` and
`control.test`) and a UDP DNS server on 127.0.0.53:53 that answers every query NXDOMAIN (so no
handshakes follow the lookups). Then runs the real `run_targets` (JSONL writer, unsigned):
  tls: a 127.1.0.0/16 range sampled `--tls` addresses, port 8443, SNI example.test, with the
       control SNI control.test: a pair of handshakes (target, control) per address;
  dns: `--dns` names, A and AAAA, from one probe resolver and one control resolver.
Prints probes/s and CPU seconds (user + system, this process only) per 1,000 probes, as JSON
lines, and the machine's load average.

Usage (root): python bench/bench_rates.py [--tls 2000] [--dns 1000] [--concurrency 200]
                                          [--udp-wait 0.5]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _servers(cert_dir: str, ready: object) -> None:
    import asyncio
    import socket
    import ssl

    import dns.message
    import dns.rcode

    async def main() -> None:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(f"{cert_dir}/cert.pem", f"{cert_dir}/key.pem")

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.close()

        server = await asyncio.start_server(handle, "0.0.0.0", 8443, ssl=ctx, backlog=4096)

        class Dns(asyncio.DatagramProtocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport = transport

            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                try:
                    query = dns.message.from_wire(data)
                except Exception:  # noqa: BLE001 - ignore garbage
                    return
                reply = dns.message.make_response(query)
                reply.set_rcode(dns.rcode.NXDOMAIN)
                self.transport.sendto(reply.to_wire(), addr)  # type: ignore[attr-defined]

        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        sock.bind(("127.0.0.53", 53))
        await loop.create_datagram_endpoint(Dns, sock=sock)
        ready.set()  # type: ignore[attr-defined]
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def _tls_list(n: int) -> str:
    return (
        "name: rates\ngroups:\n  tls:\n    ranges:\n"
        f"      - {{cidr: 127.1.0.0/16, ports: [8443], sample: {n}, sni: example.test}}\n"
        "controls:\n  sni: control.test\n  resolvers: []\n"
    )


def _dns_list(n: int) -> str:
    names = "".join(f"      - n{i}.example.test\n" for i in range(n))
    return f"name: rates\ngroups:\n  dns:\n    domains:\n{names}controls:\n  resolvers: []\n"


def child(args: argparse.Namespace) -> None:
    import multiprocessing

    import trustme

    from netprobe.run.executor import RunOptions, run_targets
    from netprobe.targets.lists import parse_targets

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with tempfile.TemporaryDirectory() as tmp:
        ca = trustme.CA()
        leaf = ca.issue_cert("example.test", "control.test")
        leaf.private_key_pem.write_to_path(f"{tmp}/key.pem")
        leaf.cert_chain_pems[0].write_to_path(f"{tmp}/cert.pem")
        ca.cert_pem.write_to_path(f"{tmp}/ca.pem")
        ready = multiprocessing.Event()
        server = multiprocessing.Process(target=_servers, args=(tmp, ready), daemon=True)
        server.start()
        if not ready.wait(20):
            raise SystemExit("the loopback servers did not start")
        cases = [
            ("tls", _tls_list(args.tls), [], []),
            ("dns", _dns_list(args.dns), ["udp://127.0.0.53:53"], ["udp://127.0.0.53:53"]),
        ]
        for name, text, resolvers, controls in cases:
            out = Path(tmp) / name
            options = RunOptions(
                out_dir=out,
                timeout=5.0,
                concurrency=args.concurrency,
                resolvers=resolvers,
                control_resolvers=controls,
                ca_bundle=f"{tmp}/ca.pem",
                confirm=0,
                deadline=600,
                udp_wait=args.udp_wait,
            )
            tl = parse_targets(text, f"{name}.yaml")
            before = resource.getrusage(resource.RUSAGE_SELF)
            start = time.monotonic()
            result = run_targets([tl], options)
            wall = time.monotonic() - start
            after = resource.getrusage(resource.RUSAGE_SELF)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            kinds: dict[str, int] = {}
            for line in result.path.read_text().splitlines():
                kind = json.loads(line)["type"]
                kinds[kind] = kinds.get(kind, 0) + 1
            n = kinds.get(name, 0)
            print(
                json.dumps(
                    {
                        "case": name,
                        "probes": n,
                        "records": kinds,
                        "failures": dict(result.summary.failures),
                        "wall_s": round(wall, 3),
                        "per_s": round(n / wall, 1),
                        "cpu_s_per_1000": round(cpu / max(1, n) * 1000, 3),
                        "concurrency": args.concurrency,
                        "udp_wait": args.udp_wait,
                    }
                ),
                flush=True,
            )
        server.terminate()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tls", type=int, default=2000, help="addresses (2 handshakes each)")
    parser.add_argument("--dns", type=int, default=1000, help="names (A + AAAA, 2 resolvers)")
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument(
        "--udp-wait",
        type=float,
        default=0.5,
        help="seconds a UDP lookup keeps listening for a second reply (run default 0.5: it "
        "bounds the DNS rate at concurrency / udp_wait)",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    if os.geteuid() != 0:
        raise SystemExit("bench/bench_rates.py needs root (a network namespace)")
    ns = f"nprates-{uuid.uuid4().hex[:6]}"
    print(f"load average before: {os.getloadavg()}  (cores: {os.cpu_count()})")
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        cmd = [sys.executable, __file__, "--child", "--tls", str(args.tls), "--dns",
               str(args.dns), "--concurrency", str(args.concurrency),
               "--udp-wait", str(args.udp_wait)]  # fmt: skip
        subprocess.run(["ip", "netns", "exec", ns, *cmd], check=True, env=env)
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
