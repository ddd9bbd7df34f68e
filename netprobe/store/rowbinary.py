"""Reading ClickHouse's RowBinary output (pure): strings, String/Int64/Float64 arrays, nothing else.

Rules:
- Only the shapes `store.timeline` asks for: a row is a fixed sequence of `STRING`, `STRINGS`
  (Array(String)), `INT64S` (Array(Int64)) and `FLOAT64S` (Array(Float64)) columns. Lengths are unsigned LEB128 varints,
  numbers little-endian, exactly as ClickHouse 18.16 and current releases write them.
- A truncated or malformed body raises ValueError naming the byte offset.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterator, Sequence

STRING, STRINGS, INT64S, FLOAT64S = "string", "strings", "int64s", "float64s"
_TYPECODE = {INT64S: "q", FLOAT64S: "d"}


def _varint(data: memoryview, offset: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if offset >= len(data):
            raise ValueError(f"RowBinary: truncated length at byte {offset}")
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, offset
        shift += 7


def rows(body: bytes, columns: Sequence[str]) -> Iterator[list]:
    """Decode `body` into rows: str for STRING, a list of str for STRINGS, array('q'/'d') for
    the number arrays."""
    data = memoryview(body)
    offset, end = 0, len(body)
    swap = sys.byteorder != "little"
    while offset < end:
        row: list = []
        for kind in columns:
            length, offset = _varint(data, offset)
            if kind == STRING:
                if offset + length > end:
                    raise ValueError(f"RowBinary: truncated string at byte {offset}")
                row.append(bytes(data[offset : offset + length]).decode("utf-8"))
                offset += length
                continue
            if kind == STRINGS:
                texts = []
                for _ in range(length):
                    size, offset = _varint(data, offset)
                    if offset + size > end:
                        raise ValueError(f"RowBinary: truncated string at byte {offset}")
                    texts.append(bytes(data[offset : offset + size]).decode("utf-8"))
                    offset += size
                row.append(texts)
                continue
            values = array(_TYPECODE[kind])
            size = length * 8
            if offset + size > end:
                raise ValueError(f"RowBinary: truncated array at byte {offset}")
            values.frombytes(data[offset : offset + size])
            if swap:
                values.byteswap()
            row.append(values)
            offset += size
        yield row
