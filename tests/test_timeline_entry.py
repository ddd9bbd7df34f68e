"""The summary cache's entry layout (timeline/entry.py): a summary comes back exactly (values,
key order, shared parts decoded once but never shared as mutable dicts), anything else is a
ValueError (a miss). Reading through the cache: tests/test_timeline_cache.py."""

from __future__ import annotations

import json
import math
import zlib

import pytest

from netprobe.timeline import cache as cache_module
from netprobe.timeline import entry
from netprobe.timeline.cache import decode_summary, encode_summary
from netprobe.timeline.runs import RunSummary


def summary(**changes) -> RunSummary:
    fields = {
        "started_at": 1735693620.25,
        "probe_asn": "AS45899",
        "vantage": "hanoi-1 ü",
        "run_id": "r1",
        "healthy": True,
        # Not in sorted order, with the edge values a score can take.
        "scores": {
            ("endpoint:1.2.3.4:443", "tcp"): 0.3333,
            ("domain:telegram.org", "tls"): 1.0,
            ("domain:telegram.org", "dns"): -0.0,
            ("domain:x", "tcp"): 2.5,
        },
        "methods": {"domain:telegram.org": "sni", "endpoint:1.2.3.4:443": "ip"},
        "unscored": ("domain:a", "domain:b"),
        "groups": {"domain:telegram.org": "web", "endpoint:1.2.3.4:443": "dc"},
        "group_labels": {"web": "Telegram web names", "dc": "Telegram DCs"},
    }
    fields.update(changes)
    return RunSummary(**fields)


@pytest.mark.parametrize(
    "run",
    [
        summary(),
        summary(healthy=False, methods={}, unscored=(), groups={}, group_labels={}),
        summary(scores={}),
        summary(scores={("domain:n", "tcp"): math.nan, ("domain:i", "tcp"): math.inf}),
    ],
)
def test_a_summary_comes_back_exactly_with_its_key_order(run):
    back = decode_summary(encode_summary(run), source="f.jsonl")
    assert back.source == "f.jsonl"
    for name in ("started_at", "probe_asn", "vantage", "run_id", "healthy", "unscored"):
        assert getattr(back, name) == getattr(run, name)
    for name in ("scores", "methods", "groups", "group_labels"):
        assert list(getattr(back, name).items()) == list(getattr(run, name).items()) or (
            name == "scores" and repr(back.scores) == repr(run.scores)  # NaN != NaN
        )
    assert [math.copysign(1, s) for s in back.scores.values()] == [
        math.copysign(1, s) for s in run.scores.values()
    ]


def test_entries_share_decoded_parts_but_never_a_dict():
    entry._PARTS.clear()
    first = decode_summary(encode_summary(summary(run_id="a")))
    second = decode_summary(encode_summary(summary(run_id="b", started_at=1.0)))
    assert (first.run_id, second.run_id, second.started_at) == ("a", "b", 1.0)
    assert list(first.scores)[0] is list(second.scores)[0]  # one key tuple for both
    for name in ("scores", "methods", "groups", "group_labels"):
        assert getattr(first, name) is not getattr(second, name)
    first.groups["domain:telegram.org"] = "changed"
    assert decode_summary(encode_summary(summary())).groups["domain:telegram.org"] == "web"


def test_anything_but_a_whole_entry_is_a_value_error():
    blob = encode_summary(summary())
    old_layout = zlib.compress(json.dumps({"started_at": 1.0, "scores": []}).encode(), 1)
    damaged = [
        b"",
        b"not zlib",
        old_layout,
        blob[:-1],
        blob + b"\0",
        blob[:20],
        b"NPT4" + b"\xff" * 40,
    ]
    for at in (10, 30, len(blob) - 3):  # a flipped bit in the header, a part, a score
        damaged.append(blob[:at] + bytes([blob[at] ^ 0x10]) + blob[at + 1 :])
    for bad in damaged:
        entry._PARTS.clear()
        with pytest.raises(ValueError):
            decode_summary(bad)


def test_the_layout_version_is_part_of_every_key(monkeypatch):
    cache_module.code_fingerprint.cache_clear()
    before = cache_module.code_fingerprint()
    monkeypatch.setattr(cache_module, "FORMAT", cache_module.FORMAT + 1)
    cache_module.code_fingerprint.cache_clear()
    try:
        assert cache_module.code_fingerprint() != before
    finally:
        monkeypatch.undo()
        cache_module.code_fingerprint.cache_clear()
    assert "netprobe.timeline.entry" in cache_module.summary_modules()
