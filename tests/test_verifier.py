"""The sans-I/O verifier (netprobe.evidence.verifier) and the format definitions it checks.

The central property: the events and the verdict depend only on the bytes, never on how they
were split into `feed()` calls.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from netprobe.evidence import format as fmt
from netprobe.evidence import verifier as verifier_module
from netprobe.evidence.keys import Signer, generate_key
from netprobe.evidence.reader import verify_file
from netprobe.evidence.verifier import (
    Checkpoint,
    Done,
    Header,
    Invalid,
    Record,
    Torn,
    Verifier,
)
from netprobe.evidence.writer import ResultWriter
from netprobe.model import records


def tcp_record(i: int) -> dict:
    return records.new_record(records.TCP, target_id=f"endpoint:192.0.2.{i}:443", ip=f"192.0.2.{i}")


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> Signer:
    return generate_key(tmp_path_factory.mktemp("keys") / "alice", "alice")


def written(directory: Path, signer: Signer | None, count: int = 8, every: int = 3) -> bytes:
    writer = ResultWriter(directory, "run", signer=signer, checkpoint_every=every)
    writer.write_header(records.new_record(records.HEADER, vantage="test"))
    for i in range(count):
        writer.write(tcp_record(i))
    return writer.close(records.new_record(records.SUMMARY, measurements=count)).read_bytes()


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory, signer: Signer) -> bytes:
    return written(tmp_path_factory.mktemp("signed"), signer)


@pytest.fixture(scope="module")
def unsigned(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return written(tmp_path_factory.mktemp("unsigned"), None)


def run(chunks, allowed=None, **options) -> list:
    machine = Verifier(allowed, **options)
    events: list = []
    for chunk in chunks:
        if machine.done:
            break
        events += machine.feed(chunk)
    if not machine.done:
        events += machine.close()
    return events


def comparable(events: list) -> list:
    """Events as plain data (Done's Verification as a dict)."""
    out = []
    for event in events:
        if isinstance(event, Done):
            out.append(("Done", event.verification.to_dict()))
        else:
            out.append((type(event).__name__, *[getattr(event, f) for f in event.__slots__]))
    return out


def splits(data: bytes, rng: random.Random, parts: int) -> list[bytes]:
    cuts = sorted(rng.sample(range(1, len(data)), min(parts, len(data) - 1))) if data else []
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


def variants(data: bytes) -> dict[str, bytes]:
    """The file as written, torn, truncated, edited and extended: every verdict the machine has."""
    lines = data.splitlines(keepends=True)
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x01
    return {
        "as written": data,
        "torn inside a record": data[: data.index(b'"192.0.2.4"') + 3],
        "torn inside a signature": data[: len(data) - 20],
        "cut after a checkpoint": b"".join(lines[:8]),
        "one byte flipped": bytes(flipped),
        "two lines swapped": b"".join(lines[:3] + [lines[4], lines[3]] + lines[5:]),
        "a line after the end": data + lines[3],
        "garbage line": b"".join(lines[:5] + [b"{oops\n"] + lines[5:]),
        "header only, torn": data[:10],
        "empty": b"",
    }


def test_same_events_whatever_the_chunking(signed: bytes, unsigned: bytes) -> None:
    rng = random.Random(20251202)
    for source in (signed, unsigned):
        for name, data in variants(source).items():
            expected = comparable(run([data]))
            by_byte = [data[i : i + 1] for i in range(len(data))]
            by_line = data.splitlines(keepends=True)
            assert comparable(run(by_byte)) == expected, name
            assert comparable(run(by_line)) == expected, name
            assert comparable(run([data, b"", b""])) == expected, name
            for _ in range(25):  # random split points, from a few to many chunks
                chunks = splits(data, rng, rng.choice([1, 2, 5, 17, 60]))
                assert comparable(run(chunks)) == expected, (name, [len(c) for c in chunks])


def test_verdict_matches_verify_file(tmp_path: Path, signed: bytes, unsigned: bytes) -> None:
    path = tmp_path / "run.jsonl"
    for source in (signed, unsigned):
        for name, data in variants(source).items():
            path.write_bytes(data)
            from_file = verify_file(path).to_dict()
            done = run([data], path=path)[-1]
            assert done.verification.to_dict() == from_file, name


def test_complete_file_events_in_order(signed: bytes) -> None:
    events = run([signed])
    kinds = [type(e).__name__ for e in events]
    assert kinds == (
        ["Header", "Checkpoint"]
        + ["Record"] * 3
        + ["Checkpoint"]
        + ["Record"] * 3
        + ["Checkpoint"]
        + ["Record"] * 3  # two tcp records and the summary
        + ["Checkpoint", "Done"]
    )
    checkpoints = [e for e in events if isinstance(e, Checkpoint)]
    assert [(c.seq, c.reason, c.final) for c in checkpoints] == [
        (0, "start", False),
        (1, "interval", False),
        (2, "interval", False),
        (3, "end", True),
    ]
    assert checkpoints[-1].covered_bytes == len(signed)
    done = events[-1]
    assert done.verification.status == fmt.COMPLETE
    assert done.verification.covered_sha512 == checkpoints[-1].covered_sha512


def test_raw_is_the_line_as_written(signed: bytes) -> None:
    lines = signed.split(b"\n")
    for event in run([signed]):
        if isinstance(event, Header | Record):
            assert event.raw == lines[event.line - 1]
            assert json.loads(event.raw) == event.record


def test_records_wait_for_their_checkpoint(signed: bytes) -> None:
    # What a reader keeps: records seen since the last Checkpoint are not covered yet.
    cut = signed[: signed.index(b'"192.0.2.4"') + 3]
    covered, waiting = [], []
    for event in run([cut]):
        if isinstance(event, Header | Record):
            waiting.append(event.record)
        elif isinstance(event, Checkpoint):
            covered += waiting
            waiting = []
    assert [r.get("ip") for r in covered] == [None, "192.0.2.0", "192.0.2.1", "192.0.2.2"]
    assert [r["ip"] for r in waiting] == ["192.0.2.3"]


def test_collected_records_are_the_covered_ones_whatever_the_chunking(signed: bytes) -> None:
    rng = random.Random(7)
    for name, data in variants(signed).items():
        covered, waiting = [], []
        for event in run([data]):  # the reference: Record events, kept until a Checkpoint
            if isinstance(event, Header | Record):
                waiting.append(event.record)
            elif isinstance(event, Checkpoint):
                covered += waiting
                waiting = []
        for _ in range(10):
            events = run(splits(data, rng, rng.choice([1, 3, 40])), records=False, collect=True)
            assert not any(isinstance(e, Header | Record) for e in events)
            collected = [r for e in events if isinstance(e, Checkpoint) for r in e.records]
            assert collected == covered, name


def test_torn_last_line_is_reported_at_close(signed: bytes) -> None:
    machine = Verifier()
    cut = signed[: signed.index(b'"192.0.2.4"') + 3]
    events = machine.feed(cut)
    assert not any(isinstance(e, Torn) for e in events)  # maybe more bytes are coming
    torn, done = machine.close()
    assert isinstance(torn, Torn) and torn.counted and torn.raw.endswith(b'"ip":"19')
    assert done.verification.status == fmt.PARTIAL
    assert done.verification.records_uncovered == 2  # 192.0.2.3 and the torn one
    # A torn structural line (here the final signature) is not counted as a record: only the
    # two tcp records after the last valid checkpoint are.
    torn, done = run([signed[:-20]])[-2:]
    assert not torn.counted and done.verification.records_uncovered == 2


def test_an_edit_stops_the_machine(signed: bytes) -> None:
    lines = signed.splitlines(keepends=True)
    machine = Verifier()
    events = machine.feed(b"".join(lines[:4]) + b'{"schema_version":1,"type":"tcp","ip":"x"}\n')
    events += machine.feed(b"".join(lines[4:]))
    invalid, done = events[-2:]
    assert isinstance(invalid, Invalid) and isinstance(done, Done)
    assert invalid.line == 8 and "line 8" in invalid.reason  # the next checkpoint's count
    assert done.verification.status == fmt.INVALID and done.verification.bad_line == 8
    assert machine.done
    with pytest.raises(RuntimeError):
        machine.feed(b"more")
    with pytest.raises(RuntimeError):
        machine.close()


def test_empty_input_is_invalid_without_a_line() -> None:
    invalid, done = run([])
    assert (invalid.line, invalid.reason) == (None, "empty file")
    assert done.verification.status == fmt.INVALID


def test_unsigned_file(unsigned: bytes) -> None:
    events = run([unsigned])
    assert not any(isinstance(e, Checkpoint) for e in events)
    assert events[-1].verification.status == fmt.UNSIGNED


def test_without_records_only_the_verdict(signed: bytes) -> None:
    events = run([signed], records=False)
    assert not any(isinstance(e, Header | Record) for e in events)
    assert events[-1].verification.to_dict() == run([signed])[-1].verification.to_dict()


def test_overlong_line_is_invalid_even_in_small_pieces(monkeypatch, signed: bytes) -> None:
    header = signed.split(b"\n", 1)[0] + b"\n"
    monkeypatch.setattr(verifier_module, "_MAX", len(header) + 10)
    machine = Verifier()
    events = machine.feed(header)
    for _ in range(100):  # no LF ever comes: the machine must not buffer without bound
        if machine.done:
            break
        events += machine.feed(b"x" * 7)
    invalid, done = events[-2:]
    assert isinstance(invalid, Invalid) and invalid.line == 2 and "longer than" in invalid.reason
    assert done.verification.bad_line == 2


# --- format.py ----------------------------------------------------------------------------------


def test_file_names() -> None:
    started = datetime(2025, 5, 26, 1, 2, 3, tzinfo=UTC)
    stem = fmt.file_stem(started, "hanoi/vnpt 1")
    assert stem == "20250526T010203Z_hanoi-vnpt-1"
    assert fmt.file_stem(started, "") == "20250526T010203Z_unnamed"
    assert fmt.result_name(stem) == f"{stem}.jsonl"
    assert fmt.partial_name(stem) == f".{stem}.jsonl.partial"
    assert fmt.sig_name(stem) == f"{stem}.jsonl.sig"
    for name in (fmt.result_name(stem), fmt.sig_name(stem)):
        assert fmt.result_start_time(name) == started
    assert fmt.result_start_time(fmt.partial_name(stem)) is None
    assert fmt.is_result_file(fmt.result_name(stem))
    assert fmt.is_result_file(fmt.partial_name(stem))
    assert not fmt.is_result_file(fmt.sig_name(stem))
    assert not fmt.is_result_file(f"{stem}.jsonl.partial")  # only the writer's hidden name


def test_checkpoint_and_signature_lines_are_exact() -> None:
    line = fmt.checkpoint_line(3, 11, 1599, "interval")
    assert line == (
        b'{"schema_version":1,"type":"checkpoint","seq":3,"lines":11,"bytes":1599,'
        b'"reason":"interval"}\n'
    )
    signature = fmt.signature_line(3, b"\x00\xff")
    assert signature == (
        b'{"schema_version":1,"type":"signature","seq":3,"namespace":"netprobe-result@v1",'
        b'"hash_alg":"sha512","sshsig":"AP8="}\n'
    )
    for raw in (line, signature):
        assert fmt.is_as_written(json.loads(raw), raw[:-1])
    assert not fmt.is_as_written(json.loads(line), line[:-1].replace(b",", b", ", 1))
    with pytest.raises(ValueError, match="reason"):
        fmt.checkpoint_line(0, 1, 2, "whenever")


def test_reasons_and_sshsig_decoding() -> None:
    assert fmt.allowed_reasons(0, False) == ("start",)
    assert fmt.allowed_reasons(0, True) == ("start",)
    assert fmt.allowed_reasons(4, False) == ("interval", "signal")
    assert fmt.allowed_reasons(4, True) == ("end", "signal")
    assert fmt.decode_sshsig("AP8=") == b"\x00\xff"
    for bad in ("AP9=", "AP8", "A P8=", 5, None):
        with pytest.raises(ValueError):
            fmt.decode_sshsig(bad)


def test_decode_line() -> None:
    assert fmt.decode_line(b'{"type":"tcp"}') == {"type": "tcp"}
    assert fmt.decode_line(b' {"type":"tcp"}\r') == {"type": "tcp"}
    for bad in (b"", b"{}", b'{"type":1}', b"[1]", b'{"type":"x"} {}', b"\xff", b"nul"):
        assert fmt.decode_line(bad) is None, bad


def test_a_record_whose_length_changed_is_named_as_an_edit_not_as_moved_lines(
    signed: bytes,
) -> None:
    lines = signed.splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if b'"192.0.2.1"' in line)
    edited = lines[at].replace(b'"192.0.2.1"', b'"192.0.2.111"')  # 2 bytes longer
    invalid = next(
        e
        for e in run([b"".join([*lines[:at], edited, *lines[at + 1 :]])])
        if isinstance(e, Invalid)
    )
    assert "2 byte(s) longer than when it was signed" in invalid.reason
    assert "a record before it was edited" in invalid.reason
    assert "added" not in invalid.reason and "reordered" not in invalid.reason


def test_a_removed_record_is_named_as_such(signed: bytes) -> None:
    lines = signed.splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if b'"192.0.2.1"' in line)
    invalid = next(
        e for e in run([b"".join([*lines[:at], *lines[at + 1 :]])]) if isinstance(e, Invalid)
    )
    assert "1 line(s) were removed before it" in invalid.reason


def test_long_digit_runs_decode_as_the_stdlib_whatever_the_chunking(
    tmp_path: Path, signer: Signer
) -> None:
    # The verifier finds lines with 19+ digits in a row once per chunk (format.long_digit_lines);
    # such a line must still go to the stdlib (orjson would make a float of a 70-bit int), also
    # when it starts in one chunk and ends in the next.
    writer = ResultWriter(tmp_path, "run", signer=signer, checkpoint_every=3)
    writer.write_header(records.new_record(records.HEADER, vantage="test"))
    for i in range(8):
        record = tcp_record(i)
        if i % 3 == 0:
            record["big"] = 2**70 + i
            record["digits"] = "7" * (18 + i)
        writer.write(record)
    data = writer.close(records.new_record(records.SUMMARY, measurements=8)).read_bytes()
    expected = [repr(json.loads(line)) for line in data.splitlines()[1:] if b'"tcp"' in line]
    assert "1180591620717411303424" in expected[0]  # an int, not 1.1805916207174113e+21
    rng = random.Random(19)
    for chunks in [[data], data.splitlines(keepends=True)] + [
        splits(data, rng, rng.choice([2, 7, 30, 200])) for _ in range(30)
    ]:
        found = [repr(e.record) for e in run(chunks) if isinstance(e, Record)]
        assert found[:-1] == expected, [len(c) for c in chunks]  # the last one: the summary


def test_long_digit_lines_are_the_lines_with_a_long_digit_run() -> None:
    rng = random.Random(5)
    for _ in range(300):
        lines = [
            bytes(rng.choice(b"0123456789a:\xd9\x10") for _ in range(rng.randint(0, 60)))
            for _ in range(rng.randint(1, 6))
        ]
        data = b"\n".join(lines)
        wanted = {i for i, line in enumerate(lines) if fmt.has_long_digit_run(line)}
        assert fmt.long_digit_lines(data) == wanted, data
