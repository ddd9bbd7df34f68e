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
STATUSES = {"ok", "blocked", "down", "inconclusive", "throttled"}
METHODS = {None, "dns", "ip", "sni", "tls", "mitm", "protocol", "http"}  # issue 13


def _in_doc_ranges(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return any(ip in network for network in DOC_RANGES if network.version == ip.version)


def _all_lab_addresses() -> list[str]:
    plain = [
        topo.CLIENT_V4, topo.CLIENT_V6, topo.ISP_CLIENT_V4, topo.ISP_CLIENT_V6,
        topo.ISP_WORLD_V4, topo.ISP_WORLD_V6, topo.WORLD_V4, topo.WORLD_V6,
        *topo.WORLD_LOOPBACK_ADDRESSES, *topo.ISP_LOOPBACK_ADDRESSES,
        topo.FORGED_V4, topo.FORGED_V6, topo.SILENT_V4,
    ]  # fmt: skip
    networks = [
        topo.ANYIP_RANGE_V4, *topo.DOC_RANGES_V4, topo.DOC_RANGE_V6, *topo.EXPECTED_RANGES,
        *topo.ISP_PUBLIC_RANGES,
    ]  # fmt: skip
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
        probed = sc.lab_target_groups(LAB_TARGETS.with_name(sc.SCENARIOS[name].targets))
        for target_id in (entry or {}).get("targets", {}):
            assert target_id in GROUPS, f"{name}: {target_id} is not probed by lab.yaml"
            assert target_id in probed, f"{name}: {target_id} is not in its list"
        for target_id, words in (entry or {}).get("evidence", {}).items():
            assert target_id in probed, f"{name}: evidence for {target_id}, not in its list"
            assert words and all(isinstance(word, str) for word in words), (name, target_id)
        for group in (entry or {}).get("groups", {}):
            assert group in set(GROUPS.values()), f"{name}: no group {group!r} in lab.yaml"


def test_ground_truth_uses_the_verdict_vocabulary() -> None:
    for name in sc.SCENARIOS:
        for target_id, group in GROUPS.items():
            verdict = sc.expected_verdict(TRUTH, name, target_id, group)
            assert verdict["status"] in STATUSES and verdict["method"] in METHODS, (name, verdict)
            has_method = verdict["status"] in ("blocked", "throttled")
            assert has_method == (verdict["method"] is not None)


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
        ("redirect-public", "A", "NOERROR", [topo.PUBLIC_BLOCKPAGE_V4]),
        ("redirect-public", "AAAA", "NOERROR", [topo.PUBLIC_BLOCKPAGE_V6]),
        ("redirect-closed", "A", "NOERROR", [topo.CLOSED_BLOCKPAGE_V4]),
        ("redirect-closed", "AAAA", "NOERROR", [topo.CLOSED_BLOCKPAGE_V6]),
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


FIELD_LISTS = sorted(
    {s.targets for s in sc.SCENARIOS.values() if s.field} | {"field-deadline.yaml"}
)


@pytest.mark.parametrize("list_name", FIELD_LISTS)
def test_field_lists_are_subsets_of_lab_yaml(list_name: str) -> None:
    # The same target ids in the same groups: scenarios.yaml's ground truth reads the same.
    probed = sc.lab_target_groups(LAB_TARGETS.with_name(list_name))
    ranges = {t for t, group in probed.items() if group == "ranges"}
    assert {t: g for t, g in probed.items() if t not in ranges}.items() <= GROUPS.items()
    for target_id in ranges:  # range samples: any address of lab.yaml's range
        address = target_id.removeprefix("endpoint:").rsplit(":", 1)[0]
        assert ipaddress.ip_address(address) in ipaddress.ip_network(topo.ANYIP_RANGE_V4)


def test_lossy_list_keeps_netprobe_defaults() -> None:
    import yaml

    data = yaml.safe_load(LAB_TARGETS.with_name("field-lossy.yaml").read_text())
    assert "settings" not in data  # the acceptance check is about default settings


def test_silent_addresses_are_not_targets() -> None:
    with_silent = sc.lab_target_groups(LAB_TARGETS.with_name("field-inject.yaml"))
    assert with_silent == sc.lab_target_groups(LAB_TARGETS.with_name("field.yaml"))
    assert not any(topo.SILENT_V4 in target_id for target_id in with_silent)


def test_classic_and_field_scenarios() -> None:
    field = {name for name, scenario in sc.SCENARIOS.items() if scenario.field}
    assert field == {
        "lossy-mobile", "sni-residual", "dns-injection", "doh-h2-nxdomain",
        "dns-redirect-public", "dns-redirect-closed",
        "mtproto-dpi", "mtproto-dpi-partial",
        "http-blockpage", "http-sinkhole", "http-inject",  # issue 13: tests/test_lab_http.py
        "sni-throttle", "ip-throttle", "slow-link",  # issue 13: tests/test_lab_throughput.py
    }  # fmt: skip
    from tests.test_lab_e2e import CENSORING

    assert not field & set(CENSORING) and "sni-reset" in CENSORING


@pytest.mark.parametrize(
    ("evidence", "problem"),
    [
        (["tls: residual: the address was blocked for 3 s after the forbidden name"], None),
        (["tls: TLS fails for every SNI"], "no evidence line mentions 'residual'"),
        ([], "no evidence line mentions 'residual'"),
    ],
)
def test_evidence_mismatches(evidence: list[str], problem: str | None) -> None:
    found = {
        target: {"status": "blocked", "method": "sni", "evidence": evidence}
        for target in ("domain:telegram.org", "domain:web.telegram.org", "domain:t.me")
    }
    problems = sc.evidence_mismatches(TRUTH, "sni-residual", found)
    if problem is None:
        assert problems == []
    else:
        assert len(problems) == 3 and all(problem in line for line in problems)


def test_link_rules_lose_and_delay_both_ways_on_the_client_link() -> None:
    rules = sc.SCENARIOS["lossy-mobile"].table_rules
    assert {(r.version, r.table, r.chain) for r in rules} == {
        (v, "mangle", chain) for v in (4, 6) for chain in ("PREROUTING", "POSTROUTING")
    }
    for rule in rules:
        assert rule.args[:2] == ("-i" if rule.chain == "PREROUTING" else "-o", topo.ISP_CLIENT_IF)
        assert (
            rule.table in sc.FLUSHED_CHAINS[rule.role]
            and rule.chain in sc.FLUSHED_CHAINS[rule.role][rule.table]
        )
    drops = [r.args for r in rules if "DROP" in r.args]
    assert len(drops) == 4 and all(a[a.index("--probability") + 1] == "0.05" for a in drops)
    queued = [r.args for r in rules if "NFQUEUE" in r.args]
    assert len(queued) == 4 and all("--queue-bypass" in a for a in queued)
    (stage,) = sc.SCENARIOS["lossy-mobile"].stages
    assert stage.args == ("delay", "--queue", str(sc.DELAY_QUEUE), "--ms", str(sc.LINK_DELAY_MS))


def test_every_table_rule_is_flushed_by_apply() -> None:
    for scenario in sc.SCENARIOS.values():
        for rule in scenario.table_rules:
            assert rule.chain in sc.FLUSHED_CHAINS[rule.role][rule.table], (scenario.name, rule)


def test_sni_rules_match_only_client_hellos_to_443() -> None:
    for name in ("sni-reset", "sni-drop", "sni-residual"):
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
