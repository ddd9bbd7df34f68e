"""Sweep benchmark: netprobe against nmap -sT over the same address range, in one invocation.

Builds two network namespaces joined by a veth pair: the prober (`npsw-<id>`) and a "world"
(`npsww-<id>`) in which every address of 198.19.0.0/20 (benchmark space, RFC 2544) is local and
one listener answers ports 80 and 443 on all of them. Then, one after the other in the prober:
  open:    every address answers (8,192 connects; netprobe probes 8,188: a range's network and
           broadcast addresses are skipped), nmap -sT and netprobe, times and the rate ratio;
  dropped: the world drops everything to the upper half (198.19.8.0/21, 4,096 connects unanswered);
           netprobe with `--confirm 0` against the timeout bound N/C x T for the dropped connects,
           then netprobe with the default `--confirm` (what confirmation costs); nmap only with
           `--full` (it takes about 14 minutes).
No packet leaves the machine: the namespaces have no route anywhere but to each other.

Usage (root): python bench/sweep.py [--repeat N] [--full] [--concurrency 1000] [--timeout 2]
                                    [--open-only] [--base DIR]
`--base DIR` also runs another checkout's netprobe (e.g. `git worktree add DIR main`) in each open
round, alternating with this one, so that both meet the same load (paired comparison).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NETPROBE = REPO / ".venv" / "bin" / "netprobe"
CIDR = "198.19.0.0/20"
DROPPED = "198.19.8.0/21"
CONTROL = "198.18.0.1"  # the world's own address: the run's control endpoint
PORTS = (80, 443)

LISTENER = r"""
import selectors, socket, sys
sel = selectors.DefaultSelector()
for port in (80, 443):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(65535); s.setblocking(False)
    sel.register(s, selectors.EVENT_READ)
print("ready", flush=True)
while True:
    for key, _ in sel.select():
        while True:
            try:
                conn, _ = key.fileobj.accept()
            except BlockingIOError:
                break
            conn.close()
"""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True)


class Sweep:
    """The two namespaces and the listener; `with Sweep() as s:` then `s.run(cmd)`."""

    def __init__(self) -> None:
        suffix = uuid.uuid4().hex[:6]
        self.prober, self.world = f"npsw-{suffix}", f"npsww-{suffix}"
        self.listener: subprocess.Popen[str] | None = None

    def __enter__(self) -> Sweep:
        if os.geteuid() != 0:
            raise SystemExit("bench/sweep.py needs root (network namespaces)")
        try:
            for ns in (self.prober, self.world):
                _ip("netns", "add", ns)
                _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", self.prober, "link", "add", "v0", "type", "veth", "peer", "name", "v1",
                "netns", self.world)  # fmt: skip
            _ip("-n", self.prober, "addr", "add", "192.0.2.1/30", "dev", "v0")
            _ip("-n", self.world, "addr", "add", "192.0.2.2/30", "dev", "v1")
            _ip("-n", self.prober, "link", "set", "v0", "up")
            _ip("-n", self.world, "link", "set", "v1", "up")
            _ip("-n", self.prober, "route", "add", "198.18.0.0/15", "via", "192.0.2.2")
            _ip("-n", self.world, "addr", "add", f"{CONTROL}/32", "dev", "lo")
            _ip("-n", self.world, "route", "add", "local", CIDR, "dev", "lo", "table", "local")
            for key, value in (("net.core.somaxconn", "65535"),
                               ("net.ipv4.tcp_max_syn_backlog", "65535")):  # fmt: skip
                self.sh(self.world, "sysctl", "-qw", f"{key}={value}")
            self.sh(self.prober, "sysctl", "-qw", "net.ipv4.ip_local_port_range=1024 65000")
            self.sh(self.prober, "sysctl", "-qw", "net.ipv4.tcp_tw_reuse=1")
            self.listener = subprocess.Popen(
                ["ip", "netns", "exec", self.world, sys.executable, "-c", LISTENER],
                stdout=subprocess.PIPE,
                text=True,
            )
            assert self.listener.stdout is not None
            if self.listener.stdout.readline().strip() != "ready":
                raise SystemExit("the listener did not start")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self.listener is not None:
            self.listener.kill()
            self.listener.wait()
        for ns in (self.prober, self.world):
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)

    def sh(self, ns: str, *cmd: str) -> None:
        subprocess.run(["ip", "netns", "exec", ns, *cmd], check=True)

    def drop_upper_half(self, on: bool) -> None:
        self.sh(self.world, "iptables", "-A" if on else "-D", "INPUT", "-d", DROPPED, "-j", "DROP")

    def timed(self, cmd: list[str]) -> tuple[float, float, str]:
        """(wall s, CPU s of the command and its children, stdout) of `cmd` in the prober."""
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.monotonic()
        done = subprocess.run(
            ["ip", "netns", "exec", self.prober, *cmd], capture_output=True, text=True
        )
        wall = time.monotonic() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            raise SystemExit(f"{cmd[0]} failed ({done.returncode}):\n{done.stderr[-2000:]}")
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return wall, cpu, done.stdout


def target_list(path: Path) -> Path:
    ports = ", ".join(str(p) for p in PORTS)
    path.write_text(
        "name: sweep\n"
        "groups:\n"
        "  sweep:\n"
        "    label: benchmark range\n"
        f"    ranges:\n      - {{cidr: {CIDR}, ports: [{ports}], sample: all}}\n"
        "controls:\n"
        f"  endpoints: ['{CONTROL}:443']\n"
        "  resolvers: []\n"
    )
    return path


def nmap_cmd(args: argparse.Namespace) -> list[str]:
    return ["nmap", "-sT", "-Pn", "-n", "-T5", "--max-retries", "0",
            "--max-rtt-timeout", f"{args.timeout:g}s", "-p", ",".join(map(str, PORTS)),
            "-oG", "-", CIDR]  # fmt: skip


def netprobe_cmd(
    args: argparse.Namespace, tl: Path, out: Path, confirm: int | None, base: str | None = None
) -> list[str]:
    # The base checkout runs on this venv's interpreter with its own package first on the path.
    prog = ["env", f"PYTHONPATH={base}", str(NETPROBE.parent / "python"), "-m", "netprobe"]
    cmd = [*(prog if base else [str(NETPROBE)]), "run", str(tl), "--out", str(out), "--vantage", "sweep", "--no-sign",
           "--concurrency", str(args.concurrency), "--timeout", f"{args.timeout:g}",
           "--quiet"]  # fmt: skip
    if confirm is not None:
        cmd += ["--confirm", str(confirm)]
    return cmd


def nmap_open_ports(stdout: str) -> int:
    return sum(line.count("/open/") for line in stdout.splitlines() if line.startswith("Host:"))


def netprobe_figures(stdout: str, out: Path) -> dict[str, object]:
    """Probes, failures, re-probes and the run's own duration (its summary: start-up excluded)."""
    figures: dict[str, object] = {}
    for path in out.glob("*.jsonl"):
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        summary = next((r for r in reversed(lines) if r.get("type") == "summary"), {})
        figures["probes"] = summary.get("measurements")
        figures["failures"] = summary.get("failures")
        figures["re-probes"] = sum(1 for r in lines if r.get("confirmation"))
        figures["run_duration_s"] = next(
            (r.get("duration") for r in reversed(lines) if r.get("type") == "summary"), None
        )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement (3)")
    parser.add_argument("--full", action="store_true", help="also nmap's dropped case (~14 min)")
    parser.add_argument("--concurrency", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--skip-confirm", action="store_true", help="no default-confirm run")
    parser.add_argument("--open-only", action="store_true", help="only the open sweep")
    parser.add_argument("--base", help="another checkout's netprobe to alternate with (paired)")
    args = parser.parse_args()
    n_all = 4096 * len(PORTS)
    n_dropped = 2048 * len(PORTS)
    bound = n_dropped / args.concurrency * args.timeout
    waves = math.ceil(n_dropped / args.concurrency) * args.timeout
    # A regular install compiles the package's bytecode; an editable one under
    # PYTHONDONTWRITEBYTECODE would recompile every module at each start (~0.2 s of a run).
    for tree in (REPO, *([Path(args.base)] if args.base else [])):
        subprocess.run(
            [str(NETPROBE.parent / "python"), "-m", "compileall", "-q", str(tree / "netprobe")],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    print(f"load average before: {os.getloadavg()}  (cores: {os.cpu_count()})")
    print(f"nmap:     {' '.join(nmap_cmd(args))}")
    with tempfile.TemporaryDirectory() as tmp, Sweep() as sweep:
        tl = target_list(Path(tmp) / "sweep.yaml")
        print(f"netprobe: {' '.join(netprobe_cmd(args, tl, Path(tmp) / 'out', 0))}")
        nm: list[float] = []
        np_: list[float] = []
        np_cpus: list[float] = []
        runs: list[float] = []
        base_walls: list[float] = []
        base_cpus: list[float] = []
        for i in range(args.repeat):
            wall, cpu, stdout = sweep.timed(nmap_cmd(args))
            nm.append(wall)
            print(
                f"  open    nmap     {wall:6.2f} s  cpu {cpu:5.2f} s  open ports {nmap_open_ports(stdout)}"
            )
            out = Path(tmp) / f"o{i}"
            wall, cpu, stdout = sweep.timed(netprobe_cmd(args, tl, out, 0))
            np_.append(wall)
            np_cpus.append(cpu)
            figures = netprobe_figures(stdout, out)
            runs.append(float(figures.get("run_duration_s") or wall))
            print(f"  open    netprobe {wall:6.2f} s  cpu {cpu:5.2f} s  {figures}")
            if args.base:
                out = Path(tmp) / f"b{i}"
                wall, cpu, stdout = sweep.timed(netprobe_cmd(args, tl, out, 0, args.base))
                base_walls.append(wall)
                base_cpus.append(cpu)
                figures = netprobe_figures(stdout, out)
                print(f"  open    base     {wall:6.2f} s  cpu {cpu:5.2f} s  {figures}")
        nmap_rate = n_all / statistics.median(nm)
        np_rate = (n_all - 4) / statistics.median(np_)
        print(
            f"OPEN    median nmap {statistics.median(nm):.2f} s ({nmap_rate:,.0f} connects/s), "
            f"netprobe {statistics.median(np_):.2f} s ({np_rate:,.0f}/s): "
            f"netprobe at {np_rate / nmap_rate:.2f}x nmap's rate (target >= 0.5x)"
        )
        # Each round's own ratio (nmap and netprobe back to back): the spread under this load.
        ratios = sorted(
            nm_wall / np_wall * (n_all - 4) / n_all
            for nm_wall, np_wall in zip(nm, np_, strict=True)
        )
        per_1000 = statistics.median(np_cpus) / (n_all - 4) * 1000
        print(
            f"OPEN    per round {ratios[0]:.2f}-{ratios[-1]:.2f}x; netprobe cpu median "
            f"{statistics.median(np_cpus):.2f} s ({min(np_cpus):.2f}-{max(np_cpus):.2f}): "
            f"{per_1000:.3f} CPU s per 1,000 probes"
        )
        run_rate = (n_all - 4) / statistics.median(runs)
        print(
            f"OPEN    the run alone (summary duration, start-up excluded): median "
            f"{statistics.median(runs):.2f} s ({run_rate:,.0f}/s): {run_rate / nmap_rate:.2f}x"
        )
        if base_walls:
            base_rate = (n_all - 4) / statistics.median(base_walls)
            base_ratios = sorted(
                nm_wall / b_wall * (n_all - 4) / n_all
                for nm_wall, b_wall in zip(nm, base_walls, strict=True)
            )
            print(
                f"OPEN    base median {statistics.median(base_walls):.2f} s, cpu "
                f"{statistics.median(base_cpus):.2f} s "
                f"({statistics.median(base_cpus) / (n_all - 4) * 1000:.3f} per 1,000 probes): "
                f"{base_rate / nmap_rate:.2f}x nmap's rate (per round "
                f"{base_ratios[0]:.2f}-{base_ratios[-1]:.2f}x)"
            )
        if args.open_only:
            print(f"load average after: {os.getloadavg()}")
            return
        sweep.drop_upper_half(True)
        walls = []
        for i in range(args.repeat):
            out = Path(tmp) / f"d{i}"
            wall, cpu, stdout = sweep.timed(netprobe_cmd(args, tl, out, 0))
            walls.append(wall)
            print(
                f"  dropped netprobe --confirm 0 {wall:6.2f} s  cpu {cpu:5.2f} s  "
                f"{netprobe_figures(stdout, out)}"
            )
        med = statistics.median(walls)
        print(
            f"DROPPED median netprobe --confirm 0 {med:.2f} s; bound N/C x T = {n_dropped}/"
            f"{args.concurrency} x {args.timeout:g} s = {bound:.2f} s: {med / bound:.2f}x "
            f"(target <= 1.2x); against the wave bound ceil(N/C) x T = {waves:.2f} s (no "
            f"schedule can beat it at this concurrency): {med / waves:.2f}x"
        )
        if not args.skip_confirm:
            out = Path(tmp) / "dc"
            wall, cpu, stdout = sweep.timed(netprobe_cmd(args, tl, out, None))
            print(
                f"DROPPED netprobe, default --confirm: {wall:.2f} s, cpu {cpu:.2f} s, "
                f"{netprobe_figures(stdout, out)}: confirmation costs {wall - med:+.2f} s"
            )
        if args.full:
            wall, cpu, stdout = sweep.timed(nmap_cmd(args))
            print(f"DROPPED nmap {wall:.2f} s cpu {cpu:.2f} s (netprobe {wall / med:.0f}x faster)")
        sweep.drop_upper_half(False)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
