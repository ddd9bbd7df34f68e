"""verify_file / load_result / iter_records: tampering, truncation, trust, streaming."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pytest

from netprobe.evidence import sshsig
from netprobe.evidence.keys import Signer, generate_key
from netprobe.evidence.reader import (
    COMPLETE,
    INVALID,
    PARTIAL,
    UNSIGNED,
    ResultFileError,
    iter_records,
    load_result,
    verify_file,
)
from netprobe.evidence.writer import ResultWriter
from netprobe.model import records

RECORDS = 8
EVERY = 3
# Layout written below: 1 header, 2-3 start pair, 4-6 tcp, 7-8 pair, 9-11 tcp, 12-13 pair,
# 14-15 tcp, 16 summary, 17-18 end pair.
SIGNATURE_LINES = [3, 8, 13, 18]
TCP_LINES = [4, 5, 6, 9, 10, 11, 14, 15]


def tcp_record(i: int) -> dict:
    return records.new_record(records.TCP, target_id=f"endpoint:192.0.2.{i}:443", ip=f"192.0.2.{i}")


def write_file(directory: Path, signer: Signer | None, count: int = RECORDS, every: int = EVERY):
    writer = ResultWriter(directory, "run", signer=signer, checkpoint_every=every)
    writer.write_header(records.new_record(records.HEADER, vantage="test"))
    for i in range(count):
        writer.write(tcp_record(i))
    return writer.close(records.new_record(records.SUMMARY, measurements=count))


@pytest.fixture(scope="module")
def keydir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keys")


@pytest.fixture(scope="module")
def signer(keydir: Path) -> Signer:
    return generate_key(keydir / "alice", "alice")


@pytest.fixture(scope="module")
def other_signer(keydir: Path) -> Signer:
    return generate_key(keydir / "mallory", "mallory")


@pytest.fixture(scope="module")
def signed_bytes(tmp_path_factory: pytest.TempPathFactory, signer: Signer) -> bytes:
    data = write_file(tmp_path_factory.mktemp("signed"), signer).read_bytes()
    types = [json.loads(line)["type"] for line in data.splitlines()]
    assert [i + 1 for i, t in enumerate(types) if t == "signature"] == SIGNATURE_LINES
    assert [i + 1 for i, t in enumerate(types) if t == "tcp"] == TCP_LINES
    return data


def put(tmp_path: Path, data: bytes, name: str = "run.jsonl") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_round_trip_complete(tmp_path: Path, signed_bytes: bytes) -> None:
    result = verify_file(put(tmp_path, signed_bytes))
    assert result.status == COMPLETE
    assert (result.records_covered, result.records_uncovered, result.checkpoints) == (8, 0, 4)
    assert result.lines_total == result.lines_covered == 18
    assert result.trusted is None and result.bad_line is None


def flip_positions(data: bytes) -> list[int]:
    """Every line's first and last two bytes, and every 5th byte (all bytes is 10x slower)."""
    positions = set(range(0, len(data), 5))
    start = 0
    for line in data.splitlines(keepends=True):
        positions |= {start, start + 1, start + len(line) - 2, start + len(line) - 1}
        start += len(line)
    return sorted(positions - {len(data) - 1})  # the final LF: see the next test


def cut_positions(data: bytes) -> list[int]:
    """Cuts at, just after, inside and just before the end of every line."""
    cuts, start = set(), 0
    for line in data.splitlines(keepends=True):
        cuts |= {start, start + 1, start + len(line) // 2, start + len(line) - 1}
        start += len(line)
    return sorted(cuts - {0})


def test_flipping_any_byte_is_invalid_and_names_the_line(tmp_path: Path, signed_bytes: bytes):
    line_of = []  # 1-based line number of every byte
    for number, line in enumerate(signed_bytes.splitlines(keepends=True), start=1):
        line_of += [number] * len(line)
    path = tmp_path / "run.jsonl"
    for position in flip_positions(signed_bytes):
        tampered = bytearray(signed_bytes)
        tampered[position] ^= 0x01
        path.write_bytes(tampered)
        result = verify_file(path)
        line = line_of[position]
        next_signature = min(s for s in SIGNATURE_LINES if s >= line)
        assert result.status == INVALID, (position, result)
        assert line <= result.bad_line <= next_signature, (position, line, result)
        assert f"line {result.bad_line}" in result.message


def test_damaged_final_newline_is_not_complete(tmp_path: Path, signed_bytes: bytes) -> None:
    result = verify_file(put(tmp_path, signed_bytes[:-1] + b"\x0b"))
    assert result.status == PARTIAL and result.lines_covered == 13


def expected_counts(data: bytes, cut: int) -> tuple[int, int, int]:
    """(lines covered, records covered, records uncovered) for the first `cut` bytes."""
    lines = data.splitlines(keepends=True)
    complete, used = 0, 0
    while complete < len(lines) and used + len(lines[complete]) <= cut:
        used += len(lines[complete])
        complete += 1
    covered = max([s for s in SIGNATURE_LINES if s <= complete], default=0)
    records_covered = len([n for n in TCP_LINES if n < covered])
    uncovered = len([n for n in TCP_LINES if covered < n <= complete])
    torn = data[used:cut]
    if (
        torn
        and complete > 0
        and not any(
            f'"type":"{t}"'.encode() in torn for t in ("checkpoint", "signature", "summary")
        )
    ):
        uncovered += 1
    return covered, records_covered, uncovered


def test_truncation_anywhere_is_partial_with_the_right_counts(tmp_path: Path, signed_bytes: bytes):
    path = tmp_path / "run.jsonl.partial"
    for cut in cut_positions(signed_bytes):
        path.write_bytes(signed_bytes[:cut])
        result = verify_file(path)
        assert result.status == PARTIAL, (cut, result)
        got = (result.lines_covered, result.records_covered, result.records_uncovered)
        assert got == expected_counts(signed_bytes, cut), (cut, result)


@pytest.mark.parametrize("signature_line", SIGNATURE_LINES[:-1])
def test_truncation_at_each_checkpoint(tmp_path: Path, signed_bytes: bytes, signature_line: int):
    kept = b"".join(signed_bytes.splitlines(keepends=True)[:signature_line])
    result = verify_file(put(tmp_path, kept))
    assert result.status == PARTIAL
    assert result.lines_covered == result.lines_total == signature_line
    assert result.records_uncovered == 0
    assert result.records_covered == len([n for n in TCP_LINES if n < signature_line])


def test_empty_file_is_invalid(tmp_path: Path) -> None:
    assert verify_file(put(tmp_path, b"")).status == INVALID


def edit(lines: list[bytes], operation: str) -> list[bytes]:
    lines = list(lines)
    if operation == "swap neighbours":
        lines[3], lines[4] = lines[4], lines[3]
    elif operation == "swap across checkpoints":
        lines[4], lines[8] = lines[8], lines[4]
    elif operation == "duplicate a record":
        lines.insert(5, lines[4])
    elif operation == "delete a record":
        del lines[4]
    elif operation == "delete a middle checkpoint pair":
        del lines[6:8]
    elif operation == "duplicate a checkpoint pair":
        lines[8:8] = lines[6:8]
    elif operation == "swap two signed segments":
        lines[3:13] = lines[8:13] + lines[3:8]
    elif operation == "move the summary up":
        lines.insert(13, lines.pop(15))
    elif operation == "append after the end":
        lines.append(lines[3])
    elif operation == "delete the header":
        del lines[0]
    elif operation == "replace a record by a hand-made one":
        lines[4] = records.encode_line(tcp_record(99))
    return lines


@pytest.mark.parametrize(
    "operation",
    [
        "swap neighbours",
        "swap across checkpoints",
        "duplicate a record",
        "delete a record",
        "delete a middle checkpoint pair",
        "duplicate a checkpoint pair",
        "swap two signed segments",
        "move the summary up",
        "append after the end",
        "delete the header",
        "replace a record by a hand-made one",
    ],
)
def test_reorder_duplicate_delete_is_invalid(tmp_path: Path, signed_bytes: bytes, operation: str):
    data = b"".join(edit(signed_bytes.splitlines(keepends=True), operation))
    result = verify_file(put(tmp_path, data))
    assert result.status == INVALID, result
    assert result.bad_line is not None and f"line {result.bad_line}" in result.message


def allowed_file(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "allowed_signers"
    path.write_text("".join(line + "\n" for line in lines))
    return path


def test_trusted_signer(tmp_path: Path, signed_bytes: bytes, signer: Signer) -> None:
    allowed = allowed_file(tmp_path, signer.allowed_signers_line())
    result = verify_file(put(tmp_path, signed_bytes), allowed_signers=allowed)
    assert (result.status, result.trusted, result.principal) == (COMPLETE, True, "alice")
    assert result.signer_fingerprint == signer.fingerprint


@pytest.mark.parametrize("entry", ["other key", "wrong namespace"])
def test_untrusted_signer_is_invalid(
    tmp_path: Path, signed_bytes: bytes, signer: Signer, other_signer: Signer, entry: str
) -> None:
    if entry == "other key":
        line = other_signer.allowed_signers_line()
    else:
        line = signer.allowed_signers_line().replace(sshsig.NAMESPACE, "git")
    result = verify_file(put(tmp_path, signed_bytes), allowed_signers=allowed_file(tmp_path, line))
    assert (result.status, result.trusted, result.bad_line) == (INVALID, False, 3)
    assert "not listed" in result.message
    with pytest.raises(ResultFileError, match="INVALID"):
        load_result(tmp_path / "run.jsonl", allowed_signers=tmp_path / "allowed_signers")


class ImpostorSigner:
    """Names one key in the header but signs with another (or in another namespace)."""

    def __init__(self, named: Signer, signing: Signer, namespace: str = sshsig.NAMESPACE):
        self.named, self.signing, self.namespace = named, signing, namespace

    def header_info(self) -> dict:
        return self.named.header_info()

    def sign_digest(self, digest: bytes) -> bytes:
        return sshsig.sign_digest(self.signing._private_key, self.namespace, digest)


@pytest.mark.parametrize("case", ["other key than the header", "wrong namespace"])
def test_bad_signer_or_namespace(tmp_path: Path, signer: Signer, other_signer: Signer, case: str):
    if case == "wrong namespace":
        impostor = ImpostorSigner(signer, signer, "file")
    else:
        impostor = ImpostorSigner(signer, other_signer)
    result = verify_file(write_file(tmp_path, impostor))
    assert (result.status, result.bad_line) == (INVALID, 3)


def test_unsigned_file(tmp_path: Path) -> None:
    path = write_file(tmp_path, None)
    result = verify_file(path)
    assert (result.status, result.records_uncovered, result.checkpoints) == (UNSIGNED, 8, 0)
    with pytest.raises(ResultFileError, match="--no-verify"):
        load_result(path)
    loaded = load_result(path, verify=False)
    assert len(loaded.records) == 8 and loaded.summary is not None and loaded.dropped == 0


def test_load_partial_uses_only_signed_records(tmp_path: Path, signed_bytes: bytes) -> None:
    cut = signed_bytes.index(b"\n", signed_bytes.index(b'"ip":"192.0.2.4"')) + 20  # torn line 11
    path = put(tmp_path, signed_bytes[:cut], ".run.jsonl.partial")
    loaded = load_result(path)
    assert [r["ip"] for r in loaded.records] == ["192.0.2.0", "192.0.2.1", "192.0.2.2"]
    assert loaded.summary is None and loaded.header["vantage"] == "test"
    assert loaded.dropped == 3  # 192.0.2.3, 192.0.2.4 and the torn one
    assert "dropped 3" in loaded.notice
    unverified = load_result(path, verify=False)
    assert len(unverified.records) == 5 and unverified.dropped == 1
    verification, stream = iter_records(path)
    assert verification.status == PARTIAL
    assert [r["type"] for r in stream] == ["header", "tcp", "tcp", "tcp"]


def test_garbage_lines(tmp_path: Path, signed_bytes: bytes) -> None:
    lines = signed_bytes.splitlines(keepends=True)
    for damaged in (lines[:4] + [b"\x00\x00\x00\n"] + lines[5:], lines[:8] + [b"{oops\n"]):
        result = verify_file(put(tmp_path, b"".join(damaged)))
        assert (result.status, result.bad_line) == (
            INVALID,
            len(damaged) if len(damaged) == 9 else 5,
        )
    # A torn tail of zero bytes (what a power cut can leave) is only unsigned, not an edit.
    result = verify_file(put(tmp_path, b"".join(lines[:8]) + b"\x00" * 4096))
    assert (result.status, result.records_uncovered) == (PARTIAL, 1)


def test_records_are_the_bytes_that_were_verified(tmp_path: Path, signed_bytes: bytes) -> None:
    # The file is read once: editing it after verification cannot slip records past the check.
    path = put(tmp_path, signed_bytes)
    _verification, stream = iter_records(path)
    path.write_bytes(signed_bytes.replace(b"192.0.2.1", b"192.0.2.9"))
    ips = {r.get("ip") for r in stream if r["type"] == "tcp"}
    assert "192.0.2.1" in ips and "192.0.2.9" not in ips


def test_unreadable_file_raises_with_its_name(tmp_path: Path) -> None:
    with pytest.raises(ResultFileError, match="missing.jsonl"):
        verify_file(tmp_path / "missing.jsonl")


def test_verification_streams_in_constant_memory(tmp_path: Path, signer: Signer) -> None:
    path = write_file(tmp_path, signer, count=30_000, every=256)
    assert path.stat().st_size > 2_000_000
    tracemalloc.start()
    try:
        result = verify_file(path)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (result.status, result.records_covered) == (COMPLETE, 30_000)
    assert peak < 300_000, peak
