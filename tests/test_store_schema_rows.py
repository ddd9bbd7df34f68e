"""The TabSeparated rows `store.schema` writes: the fast paths give the values the plain
conversions give (times as `repr(float(value or 0.0))`, layers as their JSON).

Rules: pure (no server); each case is one the fast path could get wrong.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

from netprobe.store import schema

COMMON = {
    "file_sha256": "a" * 64,
    "ingest_id": "0" * 32,
    "run_id": "r",
    "probe_asn": "AS1",
    "vantage": "v",
    "start_time": "2025-01-01 00:00:00",
    "started_us": 1,
}


def _times(record: dict) -> tuple[str, str]:
    fields = schema.measurement_tsv(COMMON, 1, record, None).decode().split("\t")
    at = schema.MEASUREMENT_COLUMNS.index("t0")
    return fields[at], fields[at + 1]


def test_times_are_the_plain_conversion() -> None:
    base = {"type": "tcp", "target_id": "x"}
    for t0, t in [(-0.0, 0.0), (1, 2.5), (None, True), (0, 1e-07), (float("nan"), 3.0)]:
        expected = (repr(float(t0 or 0.0)), repr(float(t or 0.0)))
        assert _times({**base, "t0": t0, "t": t}) == expected
    assert _times(base) == ("0.0", "0.0")


def _layers_field(layers: dict) -> str:
    verdict = SimpleNamespace(
        target_id="x", group="g", role="target", status="ok", method=None, layers=layers, scores={}
    )
    fields = schema.verdict_tsv("", verdict).rstrip("\n").split("\t")
    return fields[schema.VERDICT_COLUMNS.index("layers") - 8]


def test_layers_are_their_json_even_when_equal_keys_differ() -> None:
    # ("dns", 1) == ("dns", True) as keys; their JSON differs, so neither may reuse the other.
    for layers in [{"dns": "ok"}, {"dns": 1}, {"dns": True}, {"dns": "ok"}, {"dns": [1]}]:
        assert _layers_field(layers) == json.dumps(layers, separators=(",", ":"))
    assert _layers_field({"tcp": "a\tb"}) == '{"tcp":"a\\\\tb"}'


def test_rows_repeated_with_equal_but_different_values_are_their_own_text() -> None:
    # The fast path formats values as they are: each row must be the plain conversion
    # (`_measurement_tsv_escaped`) for values that compare equal (1 == True == 1.0, -0.0 == 0.0).
    base = {"type": "dns", "target_id": "x", "t0": 0.5, "t": 1.5}
    fixed = schema._fixed_fields(COMMON)
    for _round in range(2):
        for value in [1, True, 1.0, 0, False, -0.0, 0.0, "1", None]:
            for field in ("failure", "hostname", "attempt", "port", "rcode"):
                record = {**base, field: value}
                fast = schema.measurement_tsv(COMMON, 7, record, None, fixed)
                raw = schema._json(record).encode()
                assert fast == schema._measurement_tsv_escaped(COMMON, 7, record, raw), record


def test_fields_and_run_fields_that_need_escaping_are_escaped() -> None:
    record = {"type": "tcp", "target_id": "x", "failure": "a\tb", "hostname": "c\\d"}
    for _round in range(2):
        fields = schema.measurement_tsv(COMMON, 1, record, None).decode().split("\t")
        assert fields[schema.MEASUREMENT_COLUMNS.index("failure")] == "a\\tb"
        assert fields[schema.MEASUREMENT_COLUMNS.index("hostname")] == "c\\\\d"
    odd_run = {**COMMON, "run_id": "r\tx"}
    fields = schema.measurement_tsv(odd_run, 1, {"type": "tcp", "target_id": "x"}, None)
    assert fields.decode().split("\t")[2] == "r\\tx"
