"""Confirmation stays proportionate on a silent range (netprobe/run/executor.py, SILENT_QUORUM):
a wholly silent range gets a quorum of its failures confirmed, not every address; a range that
answers in between gets every failure confirmed."""

from __future__ import annotations

from typing import Any

from netprobe.probes import ProbeContext
from netprobe.run.executor import SILENT_QUORUM
from netprobe.targets.lists import parse_targets
from tests.test_executor import FakeNetwork, FakeSink, connect_path, run  # noqa: F401 (fixture)

RANGES = """\
name: ranges
groups:
  silent:
    ranges:
      - {cidr: 198.18.0.0/24, sample: all}
  flaky:
    ranges:
      - {cidr: 198.18.1.0/24, sample: all}
controls:
  endpoints: [203.0.113.1:443]
"""


def silent_and_flaky(kind: str, ctx: ProbeContext, fields: dict[str, Any]) -> str | None:
    if ctx.role != "target":
        return None
    last = int(fields["ip"].rsplit(".", 1)[1])
    if ctx.group == "silent":
        return "generic_timeout_error"  # every address, every time
    return "generic_timeout_error" if last % 3 == 0 else None  # every third address


def test_a_silent_range_confirms_a_quorum_and_a_flaky_one_every_failure() -> None:
    network, sink = FakeNetwork(fail=silent_and_flaky), FakeSink()
    tl = parse_targets(RANGES, "ranges.yaml")
    run(network, sink, target_lists=[tl], confirm=2, confirm_spacing=0.01, concurrency=16)

    def failed(group: str) -> set[str]:
        return {
            r["target_id"]
            for r in sink.records
            if r["group"] == group and r["failure"] and "confirmation" not in r
        }

    def confirmed(group: str) -> set[str]:
        return {r["target_id"] for r in sink.records if r["group"] == group and "confirmation" in r}

    assert len(failed("silent")) == 254  # every address was probed and failed
    assert len(confirmed("silent")) == SILENT_QUORUM  # a quorum was re-probed, not all 254
    assert confirmed("flaky") == failed("flaky") and len(failed("flaky")) == 84
    # Each confirmed step got its `confirm` re-probes.
    reprobes = [r for r in sink.records if r["group"] == "silent" and "confirmation" in r]
    assert len(reprobes) == 2 * SILENT_QUORUM
