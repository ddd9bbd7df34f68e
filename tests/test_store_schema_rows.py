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
