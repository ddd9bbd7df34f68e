"""Sampled range addresses: an unused address is not a blocked range (table of cases)."""

from __future__ import annotations

import pytest

from netprobe.analysis import analyse
from tests import recordfactory as rf

TIMEOUT, REFUSED = "generic_timeout_error", "connection_refused"


def range_header() -> dict:
    head = rf.header()
    head["groups"]["ranges"] = {
        "label": "Published ranges",
        "kind": "range",
        "expected": None,
        "ranges": ["203.0.113.0/26", "203.0.113.64/26", "2001:db8:5::/48"],
    }
    return head


@pytest.mark.parametrize(
    ("samples", "expected"),
    [
        # Every sample of a range times out while controls work: the range looks blocked.
        (
            {"203.0.113.1": TIMEOUT, "203.0.113.2": TIMEOUT},
            {"203.0.113.1": ("blocked", "ip"), "203.0.113.2": ("blocked", "ip")},
        ),
        # One sample connects: the range is routed; the silent one is probably unused.
        (
            {"203.0.113.1": None, "203.0.113.2": TIMEOUT},
            {"203.0.113.1": ("ok", None), "203.0.113.2": ("inconclusive", None)},
        ),
        # A refusal next to a working sample of the same range: not a block either.
        (
            {"203.0.113.1": None, "203.0.113.3": REFUSED},
            {"203.0.113.1": ("ok", None), "203.0.113.3": ("inconclusive", None)},
        ),
        # Ranges are judged separately: a working sample in another range does not clear this one.
        (
            {"203.0.113.1": TIMEOUT, "203.0.113.65": None},
            {"203.0.113.1": ("blocked", "ip"), "203.0.113.65": ("ok", None)},
        ),
        # IPv6 ranges follow the same rule.
        (
            {"2001:db8:5::1": None, "2001:db8:5::2": TIMEOUT},
            {"2001:db8:5::1": ("ok", None), "2001:db8:5::2": ("inconclusive", None)},
        ),
    ],
)
def test_range_samples(samples: dict[str, str | None], expected: dict[str, tuple]) -> None:
    records = rf.healthy_controls(ipv6=True)
    records += [rf.tcp(ip, 443, failure=failure, group="ranges") for ip, failure in samples.items()]
    analysis = analyse(range_header(), records)
    got = {
        ip: (
            analysis.verdicts[rf.endpoint_id(ip, 443)].status,
            analysis.verdicts[rf.endpoint_id(ip, 443)].method,
        )
        for ip in samples
    }
    assert got == expected


def test_unused_sample_says_why_and_gives_the_timeline_no_score() -> None:
    records = rf.healthy_controls()
    records += [
        rf.tcp("203.0.113.1", group="ranges"),
        rf.tcp("203.0.113.2", failure=TIMEOUT, group="ranges"),
    ]
    verdict = analyse(range_header(), records).verdicts[rf.endpoint_id("203.0.113.2", 443)]
    assert any("probably unused" in note for note in verdict.notes)
    assert verdict.scores["tcp"] is None


def test_explicit_endpoints_are_not_range_samples() -> None:
    # A DC endpoint that times out is blocked even if another address nearby connects.
    records = rf.healthy_controls()
    records += [
        rf.tcp("203.0.113.1", group="dc"),
        rf.tcp("203.0.113.2", failure=TIMEOUT, group="dc"),
    ]
    verdict = analyse(range_header(), records).verdicts[rf.endpoint_id("203.0.113.2", 443)]
    assert (verdict.status, verdict.method) == ("blocked", "ip")
