"""ResultWriter.hold/flush: held lines go out in one write, the file's bytes do not change, and a
checkpoint, close or abandon never leaves a held line behind (issue 16's batched writes)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from netprobe.evidence.keys import Signer, generate_key
from netprobe.evidence.reader import COMPLETE, PARTIAL, verify_file
from netprobe.evidence.writer import ResultWriter
from netprobe.model import records
from tests.test_writer import tcp_record


@pytest.fixture
def signer(tmp_path: Path) -> Signer:
    return generate_key(tmp_path / "key" / "id_ed25519", "tester")


def _run(out_dir: Path, signer: Signer | None, count: int, held_every: int) -> Path:
    """`count` records; with `held_every` > 0 they are held and flushed in groups of that many."""
    writer = ResultWriter(out_dir, "run", signer=signer, checkpoint_every=7)
    writer.write_header(records.new_record(records.HEADER, vantage="test"))
    for i in range(count):
        if held_every and i % held_every == 0:
            writer.flush()
            writer.hold()
        writer.write(tcp_record(i))
    return writer.close(records.new_record(records.SUMMARY, measurements=count))


@pytest.mark.parametrize("signed", [True, False])
def test_held_lines_make_the_same_file_in_fewer_writes(
    tmp_path: Path, signer: Signer, signed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = signer if signed else None
    plain = _run(tmp_path / "plain", key, 50, 0)
    writes: list[int] = []
    real_write = os.write

    def counting(fd: int, data: bytes) -> int:
        writes.append(len(data))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", counting)
    held = _run(tmp_path / "held", key, 50, 10)
    monkeypatch.undo()
    # Ed25519 signatures are deterministic: even the checkpoints' signatures are equal.
    assert held.read_bytes() == plain.read_bytes()
    if signed:
        assert (
            plain.with_suffix(".jsonl.sig").read_bytes()
            == held.with_suffix(".jsonl.sig").read_bytes()
        )
        assert verify_file(held).status == COMPLETE
    lines = plain.read_bytes().count(b"\n")
    assert 0 < len(writes) < lines / 2  # many lines per write (the .sig is one more)


def test_nothing_held_reaches_the_file_before_flush(tmp_path: Path) -> None:
    writer = ResultWriter(tmp_path, "run", signer=None)
    writer.write_header(records.new_record(records.HEADER))
    size = writer.partial_path.stat().st_size
    writer.hold()
    writer.write(tcp_record(1))
    writer.write(tcp_record(2))
    assert writer.partial_path.stat().st_size == size
    writer.flush()
    assert writer.partial_path.stat().st_size == writer.bytes_written > size
    writer.flush()  # nothing held: nothing happens
    writer.write(tcp_record(3))  # not held any more: written at once
    assert writer.partial_path.stat().st_size == writer.bytes_written
    writer.abandon()


def test_a_checkpoint_writes_the_held_lines_and_its_pair(tmp_path: Path, signer: Signer) -> None:
    writer = ResultWriter(tmp_path, "run", signer=signer, checkpoint_every=3)
    writer.write_header(records.new_record(records.HEADER))
    writer.hold()
    for i in range(4):  # the third record's checkpoint covers three; the fourth stays held
        writer.write(tcp_record(i))
    on_disk = writer.partial_path.read_bytes()
    assert on_disk.count(b"\n") == writer.lines_written - 1
    result = verify_file(writer.partial_path)
    assert (result.status, result.records_covered, result.records_uncovered) == (PARTIAL, 3, 0)
    writer.abandon()  # the held fourth record is written out before the file is closed
    result = verify_file(writer.partial_path)
    assert (result.status, result.records_covered, result.records_uncovered) == (PARTIAL, 3, 1)
