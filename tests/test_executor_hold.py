"""The executor's batched writes (issue 16): the plain connects that end in one loop wake-up are
held by a sink that can hold (`ResultWriter.hold`/`flush`) and flushed together afterwards; a
failed flush fails the run; a sink without `hold` still gets every record as it comes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from netprobe.evidence.reader import UNSIGNED, verify_file
from netprobe.evidence.writer import ResultWriter
from netprobe.model import records
from netprobe.run.executor import run_targets
from tests.test_executor import FakeNetwork, FakeSink, endpoints_list, options


class HoldingSink(FakeSink):
    """A FakeSink with `hold`/`flush`: logs each record as held or not, and each flush."""

    def __init__(self, fail_flush: bool = False) -> None:
        super().__init__()
        self.held = False
        self.events: list[str] = []
        self.fail_flush = fail_flush

    def hold(self) -> None:
        self.held = True

    def flush(self) -> None:
        if self.fail_flush:
            raise OSError(28, "No space left on device")
        self.held = False
        self.events.append("flush")

    def write(self, record: dict[str, Any]) -> None:
        super().write(record)
        self.events.append("held" if self.held else "direct")


def _run(sink: FakeSink, count: int) -> Any:
    network = FakeNetwork(delay=lambda kind, ctx: 0.01)  # the connects end together
    network.batched = True
    return run_targets(
        [endpoints_list(count)],
        options(concurrency=64, resolvers=[], control_resolvers=[], confirm=0),
        sink_factory=lambda out_dir, stem: sink,
        probes=network.probes(),
    )


def test_connects_ending_together_are_held_and_flushed_together() -> None:
    sink = HoldingSink()
    result = _run(sink, 200)
    assert result.summary.measurements == len(sink.records) == 200
    assert sink.events.count("held") == 200  # every batched connect's record is held
    assert sink.events[-1] == "flush"  # and the last of them flushed before the run ended
    flushes = sink.events.count("flush")
    assert 1 <= flushes < 200 / 4  # many records per flush


def test_a_failed_flush_fails_the_run() -> None:
    with pytest.raises(OSError, match="No space"):
        _run(HoldingSink(fail_flush=True), 50)


def test_a_sink_without_hold_gets_each_record_as_it_comes() -> None:
    sink = FakeSink()
    result = _run(sink, 50)
    assert result.summary.measurements == len(sink.records) == 50


def test_a_held_run_writes_the_same_records_to_a_real_file(tmp_path: Path) -> None:
    writers: list[ResultWriter] = []

    def factory(out_dir: Path, stem: str) -> ResultWriter:
        writers.append(ResultWriter(tmp_path, stem, signer=None))
        return writers[-1]

    network = FakeNetwork(delay=lambda kind, ctx: 0.01)
    network.batched = True
    result = run_targets(
        [endpoints_list(120)],
        options(concurrency=32, resolvers=[], control_resolvers=[], confirm=0),
        sink_factory=factory,
        probes=network.probes(),
    )
    lines = result.path.read_bytes().splitlines(keepends=True)
    written = [records.encode_line(r) for _, r in network.finished]
    # header, then every record in the order the connects ended, then the summary
    assert lines[1:-1] == written
    assert verify_file(result.path).status == UNSIGNED
