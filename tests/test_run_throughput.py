"""The executor runs the throughput downloads (issue 13) with fake probes: after a working
target-SNI handshake only, control SNI first, one download at a time, never re-probed."""

from __future__ import annotations

import asyncio
from typing import Any

from netprobe.probes import ProbeContext, Probes
from netprobe.targets.lists import parse_targets
from tests.test_executor import FakeNetwork, FakeSink, run

LIST = """\
name: fake
groups:
  web:
    domains: [a.test, bb.test, cc.test, nodl.test]
    download: {a.test: /obj, bb.test: /obj, cc.test: /obj}
controls:
  domains: [control.test]
  sni: control.test
  download: /ctl
"""


class DownloadNetwork(FakeNetwork):
    """FakeNetwork plus a throughput fake that records how many downloads overlap."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.downloads_in_flight = 0
        self.max_downloads_in_flight = 0

    def probes(self) -> Probes:
        return Probes(dns=self.dns, tcp=self.tcp, tls=self.tls, throughput=self.throughput)

    async def throughput(self, ctx: ProbeContext, ip, port, server_name, path, **kw) -> Any:
        self.downloads_in_flight += 1
        self.max_downloads_in_flight = max(self.max_downloads_in_flight, self.downloads_in_flight)
        try:
            await asyncio.sleep(0.01)
            return await self._probe(
                "throughput", ctx, ip=ip, port=port, server_name=server_name, path=path,
                sni_role=kw["sni_role"], sequence=kw["sequence"], max_bytes=kw["max_bytes"],
                max_seconds=kw["max_seconds"],
            )  # fmt: skip
        finally:
            self.downloads_in_flight -= 1


def _fail_bb_target_tls(kind: str, ctx: ProbeContext, fields: dict[str, Any]) -> str | None:
    if kind == "tls" and ctx.target_id == "domain:bb.test" and fields["sni_role"] == "target":
        return "connection_reset"
    return None


def test_downloads_follow_working_handshakes_one_at_a_time() -> None:
    network = DownloadNetwork(fail=_fail_bb_target_tls)
    sink = FakeSink()
    run(network, sink, [parse_targets(LIST, "fake.yaml")], throughput_seconds=2.5)
    downloads = [r for r in sink.records if r["type"] == "throughput"]
    by_target: dict[str, list[dict]] = {}
    for record in downloads:
        by_target.setdefault(record["target_id"], []).append(record)

    # a.test: control SNI first, then the target SNI, after its handshakes, with the caps.
    a = by_target["domain:a.test"]
    assert [(r["server_name"], r["sequence"]) for r in a] == [
        ("control.test", "before"), ("a.test", "target"),
    ]  # fmt: skip
    assert all(r["path"] == "/obj" and r["max_seconds"] == 2.5 for r in a)
    order = [(r["type"], r["target_id"], r.get("sni_role")) for r in sink.records]
    last_tls = max(i for i, key in enumerate(order) if key == ("tls", "domain:a.test", "target"))
    first_download = order.index(("throughput", "domain:a.test", "control"))
    assert last_tls < first_download

    # bb.test's target SNI failed: no download; nodl.test names no object: none either.
    assert "domain:bb.test" not in by_target and "domain:nodl.test" not in by_target
    # control.test: its own name, in the first and the last control round.
    control = by_target["domain:control.test"]
    assert [(r["sni_role"], r["control_round"]) for r in control] == [("target", 0), ("target", 1)]

    assert len(by_target["domain:cc.test"]) == 2  # a.test and cc.test ran at the same time ...
    assert network.max_downloads_in_flight == 1  # ... but their downloads did not
    # ... and each address's two downloads follow each other, control SNI first.
    web = [(r["target_id"], r["ip"], r["sequence"]) for r in downloads if r["role"] == "target"]
    assert [key[2] for key in web] == ["before", "target"] * (len(web) // 2)
    assert all(web[i][:2] == web[i + 1][:2] for i in range(0, len(web), 2))
    # The failed handshake was re-probed (confirm 2); downloads never are.
    assert not any(r.get("confirmation") for r in downloads)
    assert any(r.get("confirmation") for r in sink.records if r["type"] == "tls")
