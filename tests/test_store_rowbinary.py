"""`store.rowbinary`: ClickHouse RowBinary rows of strings and String/Int64/Float64 arrays."""

from __future__ import annotations

import struct

import pytest

from netprobe.store.rowbinary import FLOAT64S, INT64S, STRING, STRINGS, rows


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def row(name: str, ints: list[int], floats: list[float]) -> bytes:
    text = name.encode()
    return (
        varint(len(text)) + text
        + varint(len(ints)) + struct.pack(f"<{len(ints)}q", *ints)
        + varint(len(floats)) + struct.pack(f"<{len(floats)}d", *floats)
    )  # fmt: skip


def test_rows_decode_strings_and_arrays_including_long_ones():
    long_name = "domain:" + "x" * 300  # a length needing two varint bytes
    hours = list(range(480000, 480200))  # 200 elements: a two-byte array length
    body = row("AS45899", [-1, 2**62], [0.3333, 1.0]) + row(long_name, hours, [0.5] * 200)
    decoded = list(rows(body, (STRING, INT64S, FLOAT64S)))
    assert decoded[0][0] == "AS45899"
    assert list(decoded[0][1]) == [-1, 2**62] and list(decoded[0][2]) == [0.3333, 1.0]
    assert decoded[1][0] == long_name and list(decoded[1][1]) == hours


def test_a_truncated_body_is_an_error_naming_the_offset():
    body = row("AS1", [1, 2], [0.5])
    with pytest.raises(ValueError, match="truncated array at byte"):
        list(rows(body[:-3], (STRING, INT64S, FLOAT64S)))


def test_string_arrays_decode_in_order_including_empty_ones():
    names = ["dns", "", "sni" * 50]  # an empty string and one needing a two-byte length
    body = b"".join([varint(3), *(varint(len(n.encode())) + n.encode() for n in names), varint(0)])
    assert list(rows(body, (STRINGS, STRINGS))) == [[names, []]]
    with pytest.raises(ValueError, match="truncated string at byte"):
        list(rows(body[:-3], (STRINGS, STRINGS)))
