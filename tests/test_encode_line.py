"""The fast line encoder (`records.encode_line`: one C encoder made once) writes exactly the bytes
of the generic one (`json.JSONEncoder.encode`, `encode_line_generic`) for every kind of record,
and fails the same way on what JSON cannot hold."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netprobe.model import records
from netprobe.model.records import encode_line, encode_line_generic, measurement


def tcp(failure: str | None, ip: str, **extra: Any) -> dict[str, Any]:
    record = measurement(
        records.TCP, target_id=f"t:{ip}", group="g", role="target", attempt=0,
        t0=0.1234564, t=2.0000005, failure=failure, failed_operation="connect", ip=ip, port=443,
    )  # fmt: skip
    record.update(extra)
    return record


RECORDS = [
    tcp(None, "198.19.3.4"),
    tcp("tcp.connection_refused", "198.19.3.4"),
    tcp("generic_timeout_error", "2001:db8::1", confirmation=2),
    tcp(None, "198.19.0.1", range="198.19.0.0/20", sample=1, attempt=3),
    tcp("unknown_failure: [Errno 101] Network is unreachable", "::1", control_round=4),
    {"schema_version": 1, "type": "header", "note": 'é ünïcode \u2028 \x00 "quoted" \\'},
    {"a": [1, 2.5, -0.0, 1e300, 10**30, True, False, None], "b": {"c": {}, "d": []}},
]


@pytest.mark.parametrize("record", RECORDS)
def test_fast_encoding_is_the_generic_one(record: dict[str, Any]) -> None:
    assert records._C_LINE_ENCODER is not None  # CPython 3.11.4+: the fast path is in use
    assert encode_line(record) == encode_line_generic(record)


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(), JSON, max_size=8))
def test_fast_encoding_is_the_generic_one_for_any_json(record: dict[str, Any]) -> None:
    assert encode_line(record) == encode_line_generic(record)


def test_what_json_cannot_hold_fails_alike_and_the_encoder_recovers() -> None:
    loop: dict[str, Any] = {}
    loop["self"] = loop
    for bad in (loop, {"x": float("nan")}, {"x": float("inf")}, {"x": object()}):
        with pytest.raises((ValueError, TypeError)) as fast:
            encode_line(bad)
        with pytest.raises((ValueError, TypeError)) as generic:
            encode_line_generic(bad)
        assert str(fast.value) == str(generic.value)
    assert encode_line(RECORDS[0]) == encode_line_generic(RECORDS[0])  # no stale markers left
