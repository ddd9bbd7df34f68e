"""`analyse(detail=False)` decides exactly like the full analysis, over many generated runs.

The timeline and the ingest workers read thousands of files with `detail=False`; its lean paths
(`verdict._judge_tcp_only` for targets with tcp records only, signs without words) must give the
same statuses, methods, layers, scores, roles and vantage health as `detail=True`. Hypothesis
builds runs of endpoints (several addresses, repeats, failures, re-probes, control rounds, IPv6,
ranges) mixed with domain targets, at healthy and unhealthy vantages.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netprobe.analysis import analyse
from tests import recordfactory as rf

FAILURES = [None, None, "generic_timeout_error", "connection_reset", "connection_refused"]
ADDRESSES = ["149.154.167.51", "91.108.56.10", "91.108.56.11", "2001:db8::10", "10.0.0.1"]
RANGES = {"dc": {"label": "DC", "kind": "endpoint", "expected": None, "ranges": ["91.108.56.0/24"]}}


@st.composite
def endpoint_records(draw) -> list[dict]:
    # Usually one address; sometimes a name with tcp records for several (clients try each).
    ips = draw(st.lists(st.sampled_from(ADDRESSES), min_size=1, max_size=3))
    port = draw(st.sampled_from([443, 80]))
    ip = ips[0]
    target_id = f"endpoint:{ip}:{port}" if ":" not in ip else f"endpoint:[{ip}]:{port}"
    if len(ips) > 1:
        target_id = draw(st.sampled_from(["domain:tcp.example", "domain:other.example"]))
    records = []
    for attempt in range(draw(st.integers(1, 4))):
        for _ in range(draw(st.integers(1, 3))):  # several addresses, or one repeated
            failure = draw(st.sampled_from(FAILURES))
            record = rf.tcp(
                draw(st.sampled_from(ips)),
                port,
                failure=failure,
                attempt=attempt,
                target_id=target_id,
                t0=draw(st.sampled_from([0.2, 50.0, 125.0])),
            )
            records.append(record)
            if failure and draw(st.booleans()):
                records += rf.confirmations(record, draw(st.sampled_from(FAILURES)))[1:]
    return records


@st.composite
def runs(draw) -> tuple[dict, list[dict]]:
    records: list[dict] = []
    controls = draw(st.sampled_from(["healthy", "none", "rounds", "failing"]))
    if controls == "healthy":
        records += rf.healthy_controls(draw(st.integers(1, 2)), ipv6=draw(st.booleans()))
    elif controls == "rounds":
        records += rf.control_round(0, 0.0) + rf.control_round(
            1, 100.0, failure="generic_timeout_error"
        )
    elif controls == "failing":
        records += rf.control_round(0, 0.0, failure="generic_timeout_error")
    for endpoint in draw(st.lists(endpoint_records(), min_size=1, max_size=6)):
        records += endpoint
    if draw(st.booleans()):
        records += rf.domain_ok(rf.CONTROL_DOMAIN.replace("control", "web"), "149.154.167.99")
    groups = dict(rf.header()["groups"])
    if draw(st.booleans()):
        groups.update(RANGES)
    return rf.header(groups=groups), records


def decisions(analysis) -> dict:
    return {
        target_id: (v.status, v.method, v.layers, v.scores, v.role, v.group)
        for target_id, v in analysis.verdicts.items()
    }


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(runs())
def test_lean_analysis_decides_like_the_full_one(run):
    header, records = run
    full = analyse(header, [dict(r) for r in records])
    lean = analyse(header, [dict(r) for r in records], detail=False)
    assert decisions(lean) == decisions(full)
    assert lean.vantage["healthy"] == full.vantage["healthy"]
    assert all(not v.evidence and not v.notes for v in lean.verdicts.values())
