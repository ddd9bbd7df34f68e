"""`RunPlan.probe_kinds`: every step a plan can make is of a kind it names, so a run may import
and set up only those kinds (a sweep: the TCP connect probe alone, no dnspython, httpx or
cryptography, no SSL context); and a plain sweep run indeed loads none of them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from netprobe.model.resolvers import parse_resolver
from netprobe.run.plan_http import HttpGet
from netprobe.run.plan_mtproto import MtprotoAttempt
from netprobe.run.plan_throughput import ThroughputFetch
from netprobe.run.planner import Chain, DnsQuery, RunPlan, TcpConnect, TlsHandshake, control_sni
from netprobe.targets.lists import parse_targets
from tests.test_executor import TARGETS

REPO = Path(__file__).resolve().parent.parent
SWEEP = """\
name: sweep
groups:
  sweep:
    ranges:
      - {cidr: 198.51.100.0/28, ports: [80, 443], sample: all}
controls:
  endpoints: ['203.0.113.1:443']
  resolvers: []
"""
CONTROL_DOMAINS_ONLY = """\
name: dc-only
groups:
  dc:
    endpoints: ['192.0.2.1:443', '192.0.2.2:80']
controls:
  domains: [control.test]
  endpoints: ['203.0.113.1:443']
"""
LISTS = {
    "control-domains-only": CONTROL_DOMAINS_ONLY,
    "executor": TARGETS,
    "sweep": SWEEP,
    # the bundled lists and every lab list (scenarios.yaml is the lab's own, not a target list)
    **{
        path.stem: path.read_text()
        for folder in (REPO / "targets", REPO / "tests" / "lab")
        for path in sorted(folder.glob("*.yaml"))
        if path.name != "scenarios.yaml"
    },
}


def step_kinds(step: object) -> set[str]:
    if isinstance(step, DnsQuery):
        return {"dns", "ssl"} if step.resolver.engine in ("dot", "doh") else {"dns"}
    if isinstance(step, TcpConnect):
        return {"tcp"}
    if isinstance(step, TlsHandshake):
        return {"tls", "ssl"}
    if isinstance(step, MtprotoAttempt):
        return {"mtproto"}
    if isinstance(step, HttpGet):
        return {"http"}
    assert isinstance(step, ThroughputFetch), step
    return {"throughput", "ssl"}


def worked(step: object) -> dict:
    """A working record for `step`, with an answer for a DNS query (so follow-ups are planned)."""
    if isinstance(step, DnsQuery):
        answers = [{"answer_type": "A", "ipv4": "192.0.2.7"}] if step.query_type == "A" else []
        return {
            "type": "dns",
            "failure": None,
            "resolver_role": step.resolver_role,
            "resolver_address": step.resolver.address,
            "query_type": step.query_type,
            "answers": answers,
        }
    return {"type": "tcp", "failure": None}


@pytest.mark.parametrize("name", sorted(LISTS))
@pytest.mark.parametrize("resolvers", [["udp://192.0.2.53"], ["https://192.0.2.53/dns-query"]])
def test_every_step_is_of_a_kind_the_plan_names(name: str, resolvers: list[str]) -> None:
    target_list = parse_targets(LISTS[name], f"{name}.yaml")
    specs = [parse_resolver(r) for r in resolvers]
    plan = RunPlan([target_list], 1, specs, specs, 2, control_sni([target_list]), http=True)
    kinds = plan.probe_kinds()
    seen: set[str] = set()
    jobs = [*plan.control_jobs(0), *plan.target_jobs()]
    for job in jobs[:5000]:
        first = list(plan.first_steps(job))
        steps = [s for task in first for s in (task.steps if isinstance(task, Chain) else (task,))]
        follow = plan.follow_up_steps(job, [worked(s) for s in steps])
        for task in [*first, *follow]:
            chain = (*task.steps, task.if_failed, *task.then) if isinstance(task, Chain) else ()
            for step in chain or (task,):
                if step is not None:
                    seen |= step_kinds(step)
    assert seen <= kinds, (name, seen - kinds)
    if name == "sweep":
        assert kinds == {"tcp"}


def test_a_sweep_run_loads_no_dns_http_or_crypto_library(tmp_path: Path) -> None:
    targets = tmp_path / "sweep.yaml"
    # Loopback only: 127.0.0.8/30's samples are refused (nothing listens on these ports).
    targets.write_text(
        SWEEP.replace("198.51.100.0/28", "127.0.0.8/30").replace("203.0.113.1", "127.0.0.1")
    )
    code = (
        "import sys\n"
        "from netprobe.cli import main\n"
        "sys.argv = ['netprobe', 'run', sys.argv[1], '--out', sys.argv[2], '--no-sign', '--quiet',"
        " '--timeout', '1', '--vantage', 'sweep']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = {'dns', 'httpx', 'httpcore', 'cryptography', 'asn1crypto', 'h2'}\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & heavy))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(targets), str(tmp_path / "out")],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout + done.stderr
    assert list((tmp_path / "out").glob("*.jsonl"))
