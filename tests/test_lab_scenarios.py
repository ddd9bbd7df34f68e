"""The lab's data, checked without root: addressing plan, DNS rewriting, ground truth, and the
comparison helpers the end-to-end tests rely on."""

from __future__ import annotations

import ipaddress

import dns.message
import dns.rcode
import pytest

from tests.lab import fixtures
from tests.lab import scenarios as sc
from tests.lab import topology as topo
from tests.lab.__main__ import main as lab_main
from tests.lab.lab import LAB_TARGETS

DOC_RANGES = [
    ipaddress.ip_network(cidr)
    for cidr in (
        "192.0.2.0/24",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "198.18.0.0/15",
        "2001:db8::/32",
    )
]
TRUTH = sc.load_ground_truth()
GROUPS = sc.lab_target_groups(LAB_TARGETS)
STATUSES = {"ok", "blocked", "down", "inconclusive"}
METHODS = {None, "dns", "ip", "sni", "tls", "mitm"}


def _in_doc_ranges(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return any(ip in network for network in DOC_RANGES if network.version == ip.version)


def _all_lab_addresses() -> list[str]:
    plain = [
        topo.CLIENT_V4, topo.CLIENT_V6, topo.ISP_CLIENT_V4, topo.ISP_CLIENT_V6,
        topo.ISP_WORLD_V4, topo.ISP_WORLD_V6, topo.WORLD_V4, topo.WORLD_V6,
        *topo.WORLD_LOOPBACK_ADDRESSES, *topo.ISP_LOOPBACK_ADDRESSES,
    ]  # fmt: skip
    networks = [topo.ANYIP_RANGE_V4, *topo.DOC_RANGES_V4, topo.DOC_RANGE_V6, *topo.EXPECTED_RANGES]
    return (
        plain
        + [str(ipaddress.ip_network(cidr).network_address) for cidr in networks]
        + [str(ipaddress.ip_network(cidr).broadcast_address) for cidr in networks]
    )


@pytest.mark.parametrize("address", _all_lab_addresses())
def test_every_lab_address_is_in_a_documentation_range(address: str) -> None:
    assert _in_doc_ranges(address)


def test_every_probed_target_is_in_a_documentation_range() -> None:
    for target_id in GROUPS:
        if target_id.startswith("endpoint:"):
            host = target_id.removeprefix("endpoint:").rsplit(":", 1)[0].strip("[]")
            assert _in_doc_ranges(host), target_id


def test_ground_truth_names_only_real_targets_and_groups() -> None:
    # A typo in scenarios.yaml would otherwise silently fall back to the default (ok).
    for name, entry in TRUTH["scenarios"].items():
        for target_id in (entry or {}).get("targets", {}):
            assert target_id in GROUPS, f"{name}: {target_id} is not probed by lab.yaml"
        for group in (entry or {}).get("groups", {}):
            assert group in set(GROUPS.values()), f"{name}: no group {group!r} in lab.yaml"


def test_ground_truth_uses_the_verdict_vocabulary() -> None:
    for name in sc.SCENARIOS:
        for target_id, group in GROUPS.items():
            verdict = sc.expected_verdict(TRUTH, name, target_id, group)
            assert verdict["status"] in STATUSES and verdict["method"] in METHODS, (name, verdict)
            assert (verdict["status"] == "blocked") == (verdict["method"] is not None)


@pytest.mark.parametrize(
    ("scenario", "blocked"),
    [
        ("none", set()),
        ("throttle", set()),
        ("dns-nxdomain", {("domain:t.me", "dns"), ("domain:telegram.org", "dns")}),
        ("sni-drop", {("domain:web.telegram.org", "sni")}),
        (
            "ip-blackhole",
            {("endpoint:198.51.100.50:5222", "ip"), ("endpoint:[2001:db8:100::50]:443", "ip")},
        ),
        ("tcp-reset", {("endpoint:198.51.100.50:80", "ip")}),
    ],
)
def test_expected_changes_include(scenario: str, blocked: set[tuple[str, str]]) -> None:
    changes = sc.expected_changes(TRUTH, scenario, GROUPS)
    assert blocked <= {(target, verdict["method"]) for target, verdict in changes.items()}
    assert bool(changes) == bool(blocked)
    # Controls are never censored.
    assert not any(GROUPS[target] == "control" for target in changes)


def test_tcp_reset_spares_port_5222_and_blocks_the_range() -> None:
    changes = sc.expected_changes(TRUTH, "tcp-reset", GROUPS)
    assert "endpoint:198.51.100.50:5222" not in changes
    ranges = [target for target, group in GROUPS.items() if group == "ranges"]
    assert ranges and all(changes[target]["method"] == "ip" for target in ranges)


@pytest.mark.parametrize(
    ("verdicts", "problem"),
    [
        ({"domain:t.me": {"status": "blocked", "method": "sni"}}, None),
        (
            {"domain:t.me": {"status": "blocked", "method": "ip"}},
            "expected blocked/sni, got blocked/ip",
        ),
        ({"domain:t.me": {"status": "ok", "method": None}}, "expected blocked/sni, got ok/None"),
        ({}, "domain:t.me: missing from the report"),
    ],
)
def test_verdict_mismatches(verdicts: dict, problem: str | None) -> None:
    groups = {"domain:t.me": "web"}
    problems = sc.verdict_mismatches(TRUTH, "sni-reset", verdicts, groups)
    if problem is None:
        assert problems == []
    else:
        assert len(problems) == 1 and problem in problems[0]


BLOCKED_SNI = {"status": "blocked", "method": "sni"}


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ([{"target": "domain:t.me", "kind": "newly_blocked", "after": BLOCKED_SNI}], None),
        ([], "expected a newly_blocked change, diff reports none"),
        (
            [
                {
                    "target": "domain:t.me",
                    "kind": "newly_blocked",
                    "after": {"status": "blocked", "method": "dns"},
                }
            ],
            "got newly_blocked -> blocked/dns",
        ),
        (
            [
                {"target": "domain:t.me", "kind": "newly_blocked", "after": BLOCKED_SNI},
                {
                    "target": "domain:control.example",
                    "kind": "became_down",
                    "before": {"status": "ok"},
                    "after": {"status": "down"},
                },
            ],
            "domain:control.example: unexpected became_down change (ok -> down)",
        ),
    ],
)
def test_diff_mismatches(changes: list[dict], problem: str | None) -> None:
    problems = sc.diff_mismatches(changes, {"domain:t.me": BLOCKED_SNI}, "newly_blocked")
    if problem is None:
        assert problems == []
    else:
        assert len(problems) == 1 and problem in problems[0]


def _query(name: str, rdtype: str) -> dns.message.Message:
    return dns.message.make_query(name, rdtype)


@pytest.mark.parametrize(
    ("name", "rdtype", "rcode", "answers"),
    [
        ("telegram.org", "A", "NOERROR", ["203.0.113.10"]),
        ("T.ME.", "AAAA", "NOERROR", ["2001:db8:113::12"]),
        ("control.example", "A", "NOERROR", ["192.0.2.80"]),
        ("telegram.org", "MX", "NOERROR", []),
        ("nowhere.example", "A", "NXDOMAIN", []),
    ],
)
def test_world_dns_answers(name: str, rdtype: str, rcode: str, answers: list[str]) -> None:
    response = topo.answer_query(_query(name, rdtype))
    assert dns.rcode.to_text(response.rcode()) == rcode
    assert [item.to_text() for rrset in response.answer for item in rrset] == answers


@pytest.mark.parametrize(
    ("mode", "rdtype", "rcode", "answers"),
    [
        ("nxdomain", "A", "NXDOMAIN", []),
        ("bogon", "A", "NOERROR", ["127.0.0.1"]),
        ("bogon", "AAAA", "NOERROR", ["::1"]),
        ("redirect", "A", "NOERROR", [topo.BLOCKPAGE_V4]),
        ("redirect", "AAAA", "NOERROR", [topo.BLOCKPAGE_V6]),
    ],
)
def test_isp_rewrites(mode: str, rdtype: str, rcode: str, answers: list[str]) -> None:
    response = topo.rewritten_answer(_query("web.telegram.org", rdtype), mode)
    assert dns.rcode.to_text(response.rcode()) == rcode
    assert [item.to_text() for rrset in response.answer for item in rrset] == answers


@pytest.mark.parametrize(
    ("name", "censored"),
    [
        ("telegram.org", True),
        ("web.telegram.org.", True),
        ("T.Me", True),
        ("nottelegram.org", False),
        ("control.example", False),
    ],
)
def test_name_is_censored(name: str, censored: bool) -> None:
    assert topo.name_is_censored(name, topo.TELEGRAM_NAMES) is censored


def test_sni_rules_match_only_client_hellos_to_443() -> None:
    for name in ("sni-reset", "sni-drop"):
        for _version, args in sc.SCENARIOS[name].rules:
            assert args[args.index("--dport") + 1] == "443"


def test_lab_list_names_every_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    assert lab_main(["list"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert listed == list(sc.SCENARIOS)


def test_lab_commands_on_a_missing_lab_fail_clearly(capsys: pytest.CaptureFixture[str]) -> None:
    assert lab_main(["scenario", "sni-reset", "--name", "no-such-lab-xyz"]) == 2
    assert "no lab named 'no-such-lab-xyz' is up" in capsys.readouterr().err


@pytest.mark.parametrize(("ci", "outcome"), [(None, "skipped"), ("true", "failed")])
def test_lab_tests_skip_locally_but_fail_under_ci(
    monkeypatch: pytest.MonkeyPatch, ci: str | None, outcome: str
) -> None:
    monkeypatch.setattr(fixtures, "missing_requirements", lambda: "the lab needs root")
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    expected = pytest.skip.Exception if outcome == "skipped" else pytest.fail.Exception
    with pytest.raises(expected, match="the lab needs root"):
        fixtures.require_lab()


def test_lab_tests_run_when_the_machine_can(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fixtures, "missing_requirements", lambda: None)
    monkeypatch.setenv("CI", "true")
    fixtures.require_lab()  # neither skips nor fails


@pytest.mark.parametrize("name", ["../etc", ".hidden", "a/b", ""])
def test_lab_names_cannot_escape_the_state_directory(
    capsys: pytest.CaptureFixture[str], name: str
) -> None:
    assert lab_main(["down", "--name", name]) == 2
    assert "bad lab name" in capsys.readouterr().err
