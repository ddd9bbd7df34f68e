"""Pure parts of the runner: which addresses a domain's TLS probes go to, file names, summaries."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from netprobe.model.records import measurement
from netprobe.run.executor import file_stem
from netprobe.run.planner import select_addresses
from netprobe.run.tally import RunSummary


def dns(role: str, resolver: str, *ips: str, qtype: str = "A") -> dict:
    key = "ipv4" if qtype == "A" else "ipv6"
    return measurement(
        "dns",
        target_id="domain:t.me",
        group="web",
        role="target",
        attempt=0,
        t0=0.0,
        t=0.1,
        failure=None if ips else "dns_nxdomain_error",
        failed_operation="resolve",
        hostname="t.me",
        query_type=qtype,
        resolver_address=resolver,
        resolver_role=role,
        answers=[{"answer_type": qtype, key: ip, "ttl": 60} for ip in ips],
    )


@pytest.mark.parametrize(
    ("records", "limit", "expected"),
    [
        # The same address from both views is probed once and names both sources.
        (
            [
                dns("control", "https://c/dns-query", "203.0.113.1"),
                dns("probe", "system", "203.0.113.1"),
            ],
            4,
            [("203.0.113.1", ["control:https://c/dns-query", "probe:system"])],
        ),
        # A probe resolver's odd answer (a blockpage) is kept beside the control answer.
        (
            [
                dns("control", "https://c/dns-query", "203.0.113.1", "203.0.113.2", "203.0.113.3"),
                dns("probe", "system", "192.0.2.200"),
            ],
            2,
            [
                ("203.0.113.1", ["control:https://c/dns-query"]),
                ("192.0.2.200", ["probe:system"]),
            ],
        ),
        # NXDOMAIN at the probe resolver: only control answers remain.
        (
            [dns("probe", "system"), dns("control", "https://c/dns-query", "203.0.113.9")],
            4,
            [("203.0.113.9", ["control:https://c/dns-query"])],
        ),
        # IPv6 answers are probed too.
        (
            [dns("control", "https://c/dns-query", "2001:db8::1", qtype="AAAA")],
            4,
            [("2001:db8::1", ["control:https://c/dns-query"])],
        ),
        ([], 4, []),
    ],
)
def test_select_addresses(records: list[dict], limit: int, expected: list) -> None:
    assert select_addresses(records, limit) == expected


def test_file_stem_is_utc_time_and_safe_vantage() -> None:
    moment = datetime(2025, 5, 26, 1, 2, 3, tzinfo=UTC)
    assert file_stem(moment, "hanoi-vnpt-1") == "20250526T010203Z_hanoi-vnpt-1"
    assert file_stem(moment, "a/b c") == "20250526T010203Z_a-b-c"


def tcp(target: str, role: str, failure: str | None) -> dict:
    return measurement(
        "tcp",
        target_id=target,
        group="control" if role == "control" else "dc",
        role=role,
        attempt=0,
        t0=0.0,
        t=1.0,
        failure=failure,
        failed_operation="connect",
        ip="192.0.2.1",
        port=443,
    )


def test_summary_says_why_an_offline_run_cannot_conclude() -> None:
    summary = RunSummary()
    summary.add(tcp("endpoint:192.0.2.1:443", "control", "network_unreachable"))
    summary.add(tcp("endpoint:198.51.100.1:443", "target", "network_unreachable"))
    problem = summary.vantage_problem()
    assert problem is not None
    assert "control endpoints all failed (network_unreachable x1)" in problem
    assert "no control resolvers were probed" in problem


def test_summary_layers_and_healthy_controls() -> None:
    summary = RunSummary()
    summary.add(tcp("endpoint:192.0.2.1:443", "control", None))
    summary.add(tcp("endpoint:198.51.100.1:443", "target", "generic_timeout_error"))
    summary.add(tcp("endpoint:198.51.100.1:443", "target", None))
    assert summary.vantage_problem() is None
    state = summary.targets["endpoint:198.51.100.1:443"].layers["tcp"].state()
    assert state == "ok 1/2"
    assert summary.to_record_fields()["failures"] == {"generic_timeout_error": 1}


def test_progress_total_matches_the_jobs_without_iterating_huge_ranges() -> None:
    from netprobe.run.planner import count_jobs
    from netprobe.targets.lists import bundled_targets_path, load_targets, parse_targets

    bundled = load_targets(bundled_targets_path())
    jobs = len(bundled.domains()) + sum(1 for _ in bundled.iter_endpoints())
    assert count_jobs([bundled], repeat=2) == 2 * jobs
    huge = parse_targets(
        "groups:\n  r:\n    ranges:\n      - {cidr: 198.18.0.0/15, ports: [443, 80], sample: all}\n",
        "huge.yaml",
    )
    assert count_jobs([huge], repeat=1) == 2 * (2**17 - 2)
