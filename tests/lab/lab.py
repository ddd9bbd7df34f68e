"""Bring the censorship lab up, switch scenarios, run netprobe inside it, tear it down.

Rules:
- Three namespaces per lab (client, ISP, world) named `nplab-<random suffix>-<role>`, so two
  labs (or two test runs) never collide; the lab's name only picks its state directory
  `/run/netprobe-lab/<name>/` (state.json, CA, certificates, DNS policy, server logs).
- state.json is written before anything is created, so `down` can always clean up a half-built
  lab: it kills the lab's server processes and anything else left inside its namespaces (by
  pid), deletes the namespaces (which removes their veths) and /etc/netns/<ns>/, and the state.
- No namespace has a default route: the client routes only the documentation ranges, via the
  ISP; the ISP routes only the world's ranges. Nothing can leave the machine.
- A scenario's stages (on-path processes, tests/lab/stages.py) are started by `apply` and
  recorded in state.json (`stages`: name -> pid), so the next `apply`, from this process or
  another, stops them by pid; `down` kills them with everything else inside the namespaces.
- Every command that fails raises LabError with the command and its stderr.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from tests.lab import scenarios as sc
from tests.lab import topology as topo

STATE_ROOT = Path("/run/netprobe-lab")
NETNS_ETC = Path("/etc/netns")
REPO_ROOT = Path(__file__).resolve().parents[2]
LAB_TARGETS = Path(__file__).with_name("lab.yaml")
REQUIRED_TOOLS = ("ip", "iptables", "ip6tables", "tc")


class LabError(Exception):
    """The lab could not be built, changed or reached; the message says which command failed."""


def missing_requirements() -> str | None:
    """Why the lab cannot run here (not root, missing tools), or None when it can."""
    if os.geteuid() != 0:
        return "the lab needs root (network namespaces, veth pairs, iptables)"
    missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if missing:
        return f"missing tools: {', '.join(missing)} (Debian: iproute2, iptables)"
    return None


def _run(argv: Sequence[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(argv), capture_output=True, text=True)
    if check and result.returncode != 0:
        raise LabError(f"command failed ({result.returncode}): {' '.join(argv)}\n{result.stderr}")
    return result


def _check_name(name: str) -> None:
    # The name becomes a directory under /run/netprobe-lab: no paths, no hidden names.
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name):
        raise LabError(f"bad lab name {name!r}: use letters, digits, '.', '_' and '-'")


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


@dataclass
class Lab:
    name: str
    suffix: str
    scenario: str = "none"
    pids: dict[str, int] | None = None
    stages: dict[str, int] | None = None

    # --- naming and state ---------------------------------------------------------------

    @property
    def state_dir(self) -> Path:
        return STATE_ROOT / self.name

    @property
    def ca_path(self) -> Path:
        """The lab CA certificate (PEM): pass it to `netprobe run --ca-bundle`."""
        return self.state_dir / "ca.pem"

    @property
    def targets_path(self) -> Path:
        return LAB_TARGETS

    def targets_for(self, scenario_name: str) -> Path:
        """The target list `scenario_name`'s ground truth is written for (tests/lab/*.yaml)."""
        return LAB_TARGETS.with_name(sc.get_scenario(scenario_name).targets)

    def ns(self, role: str) -> str:
        return f"nplab-{self.suffix}-{role}"

    @property
    def namespaces(self) -> list[str]:
        return [self.ns(role) for role in topo.ROLES]

    def _save(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        state = {**asdict(self), "namespaces": self.namespaces, "ca": str(self.ca_path)}
        tmp = self.state_dir / "state.json.tmp"
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        tmp.replace(self.state_dir / "state.json")

    @classmethod
    def load(cls, name: str) -> Lab:
        """The lab called `name`, from its state file; LabError if it is not up."""
        _check_name(name)
        path = STATE_ROOT / name / "state.json"
        try:
            state = json.loads(path.read_text())
        except FileNotFoundError:
            raise LabError(f"no lab named {name!r} is up (no {path})") from None
        return cls(
            state["name"],
            state["suffix"],
            state["scenario"],
            state.get("pids"),
            state.get("stages"),
        )

    @staticmethod
    def names() -> list[str]:
        """Names of every lab with a state directory (up, or half torn down)."""
        if not STATE_ROOT.is_dir():
            return []
        return sorted(path.name for path in STATE_ROOT.iterdir() if path.is_dir())

    # --- bring-up -----------------------------------------------------------------------

    @classmethod
    def create(cls, name: str = "lab") -> Lab:
        """Build the namespaces, links, routes, certificates and servers; scenario `none`."""
        _check_name(name)
        problem = missing_requirements()
        if problem:
            raise LabError(problem)
        if (STATE_ROOT / name / "state.json").exists():
            raise LabError(f"a lab named {name!r} is already up; run `down --name {name}` first")
        lab = cls(name=name, suffix=secrets.token_hex(3), pids={})
        lab._save()
        try:
            lab._build_network()
            lab._write_certificates()
            lab._start_servers()
            lab.apply("none")
            lab._wait_until_reachable()
        except BaseException:
            lab.down()
            raise
        return lab

    @classmethod
    @contextmanager
    def up(cls, name: str | None = None) -> Iterator[Lab]:
        """`with Lab.up() as lab:` a lab that is torn down however the block ends."""
        lab = cls.create(name or f"run-{os.getpid()}-{secrets.token_hex(2)}")
        try:
            yield lab
        finally:
            lab.down()

    def _ip(self, role: str, *args: str) -> None:
        _run(["ip", "-n", self.ns(role), *args])

    def _build_network(self) -> None:
        client, isp, world = (self.ns(role) for role in topo.ROLES)
        for namespace, resolver in ((client, topo.ISP_RESOLVER_V4), (isp, topo.AUTHORITATIVE_V4)):
            # `ip netns exec` bind-mounts this over /etc/resolv.conf: the per-namespace resolver.
            (NETNS_ETC / namespace).mkdir(parents=True, exist_ok=True)
            (NETNS_ETC / namespace / "resolv.conf").write_text(f"nameserver {resolver}\n")
        (NETNS_ETC / world).mkdir(parents=True, exist_ok=True)
        (NETNS_ETC / world / "resolv.conf").write_text(f"nameserver {topo.AUTHORITATIVE_V4}\n")
        for namespace in (client, isp, world):
            _run(["ip", "netns", "add", namespace])
            # No duplicate address detection: link-local and global IPv6 addresses are usable at
            # once (tentative addresses made the first IPv6 connections after bring-up time out).
            keys = ["net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"]
            if namespace == isp:
                keys += ["net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"]
            _run(["ip", "netns", "exec", namespace, "sysctl", "-qw", *keys])
        _run(["ip", "link", "add", "name", topo.CLIENT_IF, "netns", client, "type", "veth",
              "peer", "name", topo.ISP_CLIENT_IF, "netns", isp])  # fmt: skip
        _run(["ip", "link", "add", "name", topo.WORLD_IF, "netns", world, "type", "veth",
              "peer", "name", topo.ISP_WORLD_IF, "netns", isp])  # fmt: skip
        links = (
            ("client", topo.CLIENT_IF, topo.CLIENT_V4, topo.CLIENT_V6),
            ("isp", topo.ISP_CLIENT_IF, topo.ISP_CLIENT_V4, topo.ISP_CLIENT_V6),
            ("isp", topo.ISP_WORLD_IF, topo.ISP_WORLD_V4, topo.ISP_WORLD_V6),
            ("world", topo.WORLD_IF, topo.WORLD_V4, topo.WORLD_V6),
        )
        for role, interface, v4, v6 in links:
            self._ip(role, "addr", "add", f"{v4}/24", "dev", interface)
            # nodad: addresses usable at once (duplicate detection would delay bring-up ~2 s).
            self._ip(role, "addr", "add", f"{v6}/64", "dev", interface, "nodad")
            self._ip(role, "link", "set", interface, "up")
        for role in topo.ROLES:
            self._ip(role, "link", "set", "lo", "up")
        for role, addresses in (
            ("world", topo.WORLD_LOOPBACK_ADDRESSES),
            ("isp", topo.ISP_LOOPBACK_ADDRESSES),
        ):
            for address in addresses:
                prefix = "/128" if ":" in address else "/32"
                self._ip(role, "addr", "add", address + prefix, "dev", "lo", "nodad")
        # AnyIP: every address of the range is local to the world, one listener serves them all.
        self._ip("world", "route", "add", "local", topo.ANYIP_RANGE_V4, "dev", "lo")
        for cidr in topo.DOC_RANGES_V4:
            if cidr != "198.18.0.0/15":
                self._ip("client", "route", "add", cidr, "via", topo.ISP_CLIENT_V4)
        self._ip("client", "route", "add", "198.18.0.0/15", "via", topo.ISP_CLIENT_V4)
        self._ip("client", "-6", "route", "add", topo.DOC_RANGE_V6, "via", topo.ISP_CLIENT_V6)
        for cidr in topo.WORLD_RANGES_V4:
            self._ip("isp", "route", "add", cidr, "via", topo.WORLD_V4)
        self._ip("isp", "-6", "route", "add", topo.DOC_RANGE_V6, "via", topo.WORLD_V6)
        self._ip("world", "route", "add", "198.18.1.0/24", "via", topo.ISP_WORLD_V4)
        self._ip("world", "-6", "route", "add", "2001:db8:1::/64", "via", topo.ISP_WORLD_V6)

    def _write_certificates(self) -> None:
        import trustme

        ca = trustme.CA(organization_name="netprobe lab CA")
        ca.cert_pem.write_to_path(str(self.ca_path))
        world = ca.issue_cert(*topo.WORLD_CERT_IDENTITIES)
        world.private_key_and_cert_chain_pem.write_to_path(str(self.state_dir / "world-cert.pem"))
        blockpage = ca.issue_cert(topo.BLOCKPAGE_NAME, topo.BLOCKPAGE_V4)
        blockpage.private_key_and_cert_chain_pem.write_to_path(
            str(self.state_dir / "blockpage-cert.pem")
        )

    def _start_servers(self, timeout: float = 15.0) -> None:
        processes: dict[str, subprocess.Popen[bytes]] = {}
        for role in ("world", "isp"):
            log = open(self.state_dir / f"{role}.log", "ab")  # noqa: SIM115 - the child owns it
            processes[role] = subprocess.Popen(
                [
                    "ip",
                    "netns",
                    "exec",
                    self.ns(role),
                    sys.executable,
                    "-m",
                    "tests.lab.servers",
                    role,
                    str(self.state_dir),
                ],  # fmt: skip
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=REPO_ROOT,
                env=_child_env(),
                start_new_session=True,
            )
            log.close()
            assert self.pids is not None
            self.pids[role] = processes[role].pid  # `ip netns exec` execs: the server's pid
            self._save()
        deadline = time.monotonic() + timeout
        for role, process in processes.items():
            # poll(), not _alive(): until `ip` has exec'd, /proc shows this process's cmdline.
            while not (self.state_dir / f"{role}.ready").exists():
                if process.poll() is not None or time.monotonic() > deadline:
                    tail = (self.state_dir / f"{role}.log").read_text(errors="replace")[-2000:]
                    raise LabError(f"the {role} server did not start; its log:\n{tail}")
                time.sleep(0.05)

    def _wait_until_reachable(self, timeout: float = 10.0) -> None:
        # The client must reach the world over IPv4 and IPv6 before the lab is handed out.
        probes = [["tcp", topo.DC_V4[0], "443"], ["tcp", topo.DC_V6[0], "443"],
                  ["dns", topo.ISP_RESOLVER_V4, topo.TELEGRAM_NAMES[0], "A"]]  # fmt: skip
        wanted = ["ok", "ok", topo.WEB_ADDRESSES[topo.TELEGRAM_NAMES[0]][0]]
        deadline = time.monotonic() + timeout
        while True:
            result = self.exec(
                [sys.executable, "-m", "tests.lab.check", "--many"],
                input=json.dumps(probes),
                timeout=timeout,
            )
            got = json.loads(result.stdout) if result.returncode == 0 else result.stderr
            if got == wanted:
                return
            if time.monotonic() > deadline:
                raise LabError(f"the lab does not work: {probes} gave {got}, expected {wanted}")
            time.sleep(0.1)

    # --- using it -----------------------------------------------------------------------

    def apply(self, scenario_name: str) -> None:
        """Switch the ISP to `scenario_name` (replacing whatever it did before)."""
        scenario = sc.get_scenario(scenario_name)
        self._stop_stages()
        for role, tables in sc.FLUSHED_CHAINS.items():
            flush = [
                f"{tool} -t {table} -F {chain}"
                for tool in ("iptables", "ip6tables")
                for table, chains in tables.items()
                for chain in chains
            ]
            _run(["ip", "netns", "exec", self.ns(role), "sh", "-ec", "; ".join(flush)])
        isp = self.ns("isp")
        for interface in (topo.ISP_CLIENT_IF, topo.ISP_WORLD_IF):
            _run(["tc", "-n", isp, "qdisc", "del", "dev", interface, "root"], check=False)
        policy = {"mode": scenario.dns_mode, "names": list(topo.TELEGRAM_NAMES)}
        tmp = self.state_dir / "dns-policy.json.tmp"
        tmp.write_text(json.dumps(policy) + "\n")
        tmp.replace(self.state_dir / "dns-policy.json")
        # Stages first: a rule that queues packets to a stage finds it listening.
        for stage in scenario.stages:
            self._start_stage(stage)
        for version, args in scenario.rules:
            tool = "iptables" if version == 4 else "ip6tables"
            _run(["ip", "netns", "exec", isp, tool, "-A", "FORWARD", *args])
        for rule in scenario.table_rules:
            tool = "iptables" if rule.version == 4 else "ip6tables"
            _run(["ip", "netns", "exec", self.ns(rule.role), tool, "-t", rule.table, "-A",
                  rule.chain, *rule.args])  # fmt: skip
        if scenario.throttle:
            for interface in (topo.ISP_CLIENT_IF, topo.ISP_WORLD_IF):
                _run(["tc", "-n", isp, "qdisc", "add", "dev", interface, "root", "tbf",
                      *sc.TBF_ARGS])  # fmt: skip
        for args in scenario.tc:  # the root qdiscs were deleted above, so these never stack
            _run(["tc", "-n", isp, *args])
        # xt_recent lists (residual blocking) outlive a flush and re-add of their rules: empty
        # them, so that every application of a scenario starts without marks.
        clear = 'for f in /proc/net/xt_recent/*; do [ -e "$f" ] && echo / > "$f"; done; true'
        _run(["ip", "netns", "exec", isp, "sh", "-c", clear])
        self.scenario = scenario_name
        self._save()

    def _start_stage(self, stage: sc.Stage, timeout: float = 15.0) -> None:
        args = [arg.replace("{state}", str(self.state_dir)) for arg in stage.args]
        log_path = self.state_dir / f"stage-{stage.name}.log"
        argv = ["ip", "netns", "exec", self.ns(stage.role), sys.executable, "-m", stage.module]
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                [*argv, *args],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                cwd=REPO_ROOT,
                env=_child_env(),
                start_new_session=True,
            )
        if self.stages is None:
            self.stages = {}
        self.stages[stage.name] = process.pid  # `ip netns exec` execs: the stage's own pid
        self._save()
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], timeout)
        line = process.stdout.readline() if ready else b""
        process.stdout.close()
        if not line.strip():
            process.kill()
            process.wait()
            tail = log_path.read_text(errors="replace")[-2000:]
            raise LabError(f"stage {stage.name} ({stage.module}) did not start; its log:\n{tail}")

    def _stop_stages(self) -> None:
        victims = {pid for pid in (self.stages or {}).values() if _is_stage(pid)}
        for pid in victims:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 3
        while any(_exists(pid) for pid in victims):
            _reap(victims)
            if time.monotonic() > deadline:
                for pid in victims:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                deadline = time.monotonic() + 3
            time.sleep(0.02)
        _reap(set((self.stages or {}).values()))  # also stages that had exited by themselves
        self.stages = {}
        self._save()

    def stage_log(self, name: str) -> str:
        """What stage `name` has logged so far (empty if it never ran)."""
        try:
            return (self.state_dir / f"stage-{name}.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def exec(
        self, argv: Sequence[str], role: str = "client", timeout: float | None = 300, **kwargs
    ) -> subprocess.CompletedProcess[str]:
        """Run `argv` inside one of the lab's namespaces (default: the client), capturing text."""
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("cwd", REPO_ROOT)
        return subprocess.run(
            ["ip", "netns", "exec", self.ns(role), *argv],
            text=True,
            env=_child_env(),
            timeout=timeout,
            **kwargs,
        )

    def run_netprobe(
        self, args: Sequence[str], timeout: float | None = 300
    ) -> subprocess.CompletedProcess[str]:
        """`netprobe ARGS` run from the client namespace (the vantage point)."""
        return self.exec([sys.executable, "-m", "netprobe", *args], timeout=timeout)

    def status(self) -> dict:
        """Name, scenario, namespaces (and whether they exist), server pids (and whether alive)."""
        existing = set(_run(["ip", "netns", "list"]).stdout.split())
        return {
            "name": self.name,
            "scenario": self.scenario,
            "ca": str(self.ca_path),
            "targets": str(self.targets_path),
            "namespaces": {ns: ns in existing for ns in self.namespaces},
            "servers": {role: self._alive(pid) for role, pid in (self.pids or {}).items()},
        }

    # --- teardown -----------------------------------------------------------------------

    @staticmethod
    def _alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        # A reused pid would belong to something else; ours are zombies or lab servers.
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False
        return b"tests.lab.servers" in cmdline

    def _pids_inside(self) -> set[int]:
        found: set[int] = set()
        for namespace in self.namespaces:
            result = _run(["ip", "netns", "pids", namespace], check=False)
            found.update(int(pid) for pid in result.stdout.split() if pid.isdigit())
        return found

    def down(self) -> None:
        """Kill the lab's processes, delete its namespaces, /etc/netns entries and state."""
        victims = {pid for pid in (self.pids or {}).values() if self._alive(pid)}
        victims |= self._pids_inside()
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in victims:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline and any(_exists(pid) for pid in victims):
                _reap(victims)
                time.sleep(0.02)
        for namespace in self.namespaces:
            _run(["ip", "netns", "del", namespace], check=False)
            shutil.rmtree(NETNS_ETC / namespace, ignore_errors=True)
        shutil.rmtree(self.state_dir, ignore_errors=True)


def _is_stage(pid: int) -> bool:
    # A stage of ours, not a reused pid: its command line names a stage module.
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"tests.lab.stages" in cmdline or b"tests.doh_h2" in cmdline


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    try:
        return "State:\tZ" not in status.read_text()
    except OSError:
        return False


def _reap(pids: set[int]) -> None:
    # Servers started by this process become zombies when killed; collect those (only those).
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
