"""The batched connect engine against probe_tcp in a namespace of its own (needs root).

The namespace has only loopback, with two documentation addresses on it: 192.0.2.1 (a listener
on one port, nothing on another: refused) and 192.0.2.2, whose packets a DROP rule discards
(timeouts), 192.0.2.9 (the sweep's control); 198.51.100.1 has no route (an immediate `network_unreachable`). Each case is probed
by `probe_tcp` and by `TcpBatch` inside the namespace, and the records compared; then a whole
`netprobe run` of a small sweep with the engine, against the same run without it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.lab.fixtures import require_lab

pytestmark = pytest.mark.root

REPO = Path(__file__).resolve().parent.parent
OPEN, DROPPED, CONTROL = "192.0.2.1", "192.0.2.2", "192.0.2.9"

BOTH_WAYS = r"""
import asyncio, json, socket, sys
from netprobe.probes.tcp import probe_tcp
from netprobe.probes.tcp_batch import TcpBatch
from tests.localservers import probe_context

listener = socket.socket(); listener.bind(("192.0.2.1", 0)); listener.listen(64)
port = listener.getsockname()[1]
cases = [("192.0.2.1", port), ("192.0.2.1", port + 1 if port < 65535 else port - 1),
         ("192.0.2.2", 80), ("198.51.100.1", 80)]

async def batched():
    records, batch = {}, TcpBatch(timeout=0.5)
    for i, (ip, p) in enumerate(cases):
        batch.start(probe_context(f"endpoint:{ip}:{p}"), ip, p, lambda r, i=i: records.__setitem__(i, dict(r)))
    while len(records) < len(cases):
        await asyncio.sleep(0.05)
    batch.close()
    return [records[i] for i in range(len(cases))]

async def single():
    return [dict(await probe_tcp(probe_context(f"endpoint:{ip}:{p}"), ip, p, timeout=0.5))
            for ip, p in cases]

print(json.dumps({"single": asyncio.run(single()), "batched": asyncio.run(batched())}))
"""

SWEEP = """\
name: sweep
groups:
  sweep:
    ranges:
      - {cidr: 192.0.2.0/30, ports: [PORT, 81], sample: all}
controls:
  endpoints: ['192.0.2.9:PORT']
  resolvers: []
"""

RUN_BOTH = r"""
import json, socket, sys
from dataclasses import replace
from pathlib import Path
from netprobe.probes import real_probes
from netprobe.run import prepare
from netprobe.run.executor import run_targets
from netprobe.options import RunOptions

listener = socket.socket(); listener.bind(("0.0.0.0", 0)); listener.listen(64)
port = listener.getsockname()[1]
path = Path(sys.argv[1]) / "sweep.yaml"
path.write_text(sys.argv[2].replace("PORT", str(port)))
lists = prepare.load_target_lists([str(path)])
out = {}
for name, batch in (("batched", True), ("single", False)):
    probes = real_probes(["tcp"]) if batch else replace(real_probes(["tcp"]), tcp_batch=None)
    options = RunOptions(out_dir=Path(sys.argv[1]) / name, vantage=name, timeout=0.5,
                         concurrency=3, confirm=1, confirm_spacing=0.0, resolvers=["system"])
    result = run_targets(lists, options, probes=probes)
    out[name] = [json.loads(line) for line in result.path.read_text().splitlines()]
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def namespace() -> Iterator[str]:
    require_lab()
    name = f"nptb-{uuid.uuid4().hex[:6]}"

    def ip(*args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True)

    ip("netns", "add", name)
    try:
        ip("-n", name, "link", "set", "lo", "up")
        for address in (OPEN, DROPPED, CONTROL):
            ip("-n", name, "addr", "add", f"{address}/32", "dev", "lo")
        subprocess.run(
            ["ip", "netns", "exec", name, "iptables", "-A", "INPUT", "-d", DROPPED, "-j", "DROP"],
            check=True, capture_output=True,
        )  # fmt: skip
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)


def in_namespace(namespace: str, script: str, *args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        ["ip", "netns", "exec", namespace, sys.executable, "-c", script, *args],
        capture_output=True, text=True, timeout=120, env=env, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def without_clock(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in ("t0", "t", "finished_at", "duration")}


def test_every_outcome_makes_the_record_probe_tcp_makes(namespace: str) -> None:
    both = in_namespace(namespace, BOTH_WAYS)
    for single, batched in zip(both["single"], both["batched"], strict=True):
        assert list(batched) == list(single)
        assert without_clock(batched) == without_clock(single)
    failures = [r["failure"] for r in both["batched"]]
    assert failures == [None, "connection_refused", "generic_timeout_error", "network_unreachable"]
    dropped = both["batched"][2]
    assert 0.5 <= dropped["t"] - dropped["t0"] < 0.5 + 0.25


def test_a_sweep_run_with_the_engine_writes_what_one_without_it_writes(
    namespace: str, tmp_path: Path
) -> None:
    runs = in_namespace(namespace, RUN_BOTH, str(tmp_path), SWEEP)

    def measurements(lines: list[dict]) -> list[dict]:
        kept = [without_clock(r) for r in lines if r["type"] == "tcp"]
        return sorted(kept, key=lambda r: json.dumps(r, sort_keys=True))

    assert measurements(runs["batched"]) == measurements(runs["single"])
    summaries = [without_clock(lines[-1]) for lines in (runs["batched"], runs["single"])]
    assert summaries[0] == summaries[1] and summaries[0]["type"] == "summary"
    failures = {r["failure"] for r in runs["batched"] if r["type"] == "tcp"}
    assert failures == {None, "connection_refused", "generic_timeout_error"}
    assert any(r.get("confirmation") for r in runs["batched"])
