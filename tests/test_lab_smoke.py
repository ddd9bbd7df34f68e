"""Smoke tests of the censorship lab itself, with plain sockets, dig-like queries and TLS.

Rules: these check the lab, not netprobe: under each scenario, what a user would observe from
the client namespace (tests/lab/check.py). Needs root (see tests/lab/fixtures.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.lab import fixtures
from tests.lab import topology as topo
from tests.lab.lab import NETNS_ETC, Lab, LabError

# The shared lab fixtures (tests/lab/fixtures.py), bound here so pytest finds them.
lab = fixtures.lab
clean_lab = fixtures.clean_lab
pytestmark = pytest.mark.root

CA = "{ca}"  # replaced by the lab's CA path
ISP = topo.ISP_RESOLVER_V4
DC, DC6 = topo.DC_V4[0], topo.DC_V6[0]
TG, TME = topo.WEB_ADDRESSES["telegram.org"][0], topo.WEB_ADDRESSES["t.me"][0]
RANGE_ADDRESS = "203.0.113.99"  # inside the AnyIP range, not on any interface

# (scenario, check arguments, expected outcome)
CASES = [
    ("none", ["dns", ISP, "telegram.org", "A"], TG),
    ("none", ["dns", ISP, "t.me", "AAAA"], topo.WEB_ADDRESSES["t.me"][1]),
    ("none", ["dns", topo.ISP_RESOLVER_V6, "telegram.org", "A"], TG),
    ("none", ["dns", ISP, "no-such-name.example", "A"], "NXDOMAIN"),
    ("none", ["doh", topo.CONTROL_RESOLVER_URL, CA, "web.telegram.org", "A"], "203.0.113.11"),
    ("none", ["tcp", DC, "443"], "ok"),
    ("none", ["tcp", DC, "80"], "ok"),
    ("none", ["tcp", DC, "5222"], "ok"),
    ("none", ["tcp", DC6, "443"], "ok"),
    ("none", ["tcp", RANGE_ADDRESS, "443"], "ok"),
    ("none", ["tls", TG, "telegram.org", CA], "ok"),
    ("none", ["tls", topo.WEB_ADDRESSES["telegram.org"][1], "telegram.org", CA], "ok"),
    ("none", ["tls", topo.CONTROL_V4, topo.CONTROL_SITE, CA], "ok"),
    # The blockpage's certificate is from the lab CA but not valid for Telegram names.
    ("none", ["tls", topo.BLOCKPAGE_V4, "telegram.org", CA], "bad-certificate"),
    # Nothing leaves the lab: no route to addresses outside the documentation ranges.
    ("none", ["tcp", "8.8.8.8", "53"], "unreachable"),
    ("none", ["tcp", "2606:4700:4700::1111", "443"], "unreachable"),
    ("dns-redirect", ["dns", ISP, "telegram.org", "A"], topo.BLOCKPAGE_V4),
    ("dns-redirect", ["dns", ISP, "web.telegram.org", "AAAA"], topo.BLOCKPAGE_V6),
    ("dns-redirect", ["dns", ISP, topo.CONTROL_SITE, "A"], topo.CONTROL_V4),
    ("dns-nxdomain", ["dns", ISP, "t.me", "A"], "NXDOMAIN"),
    ("dns-nxdomain", ["doh", topo.CONTROL_RESOLVER_URL, CA, "t.me", "A"], TME),
    ("dns-nxdomain", ["dns", topo.CONTROL_RESOLVER_V4, "t.me", "A"], TME),
    ("dns-bogon", ["dns", ISP, "telegram.org", "A"], "127.0.0.1"),
    ("dns-bogon", ["dns", ISP, "telegram.org", "AAAA"], "::1"),
    ("ip-blackhole", ["tcp", DC, "443"], "timeout"),
    ("ip-blackhole", ["tcp", DC, "5222"], "timeout"),
    ("ip-blackhole", ["tcp", DC6, "443"], "timeout"),
    ("ip-blackhole", ["tcp", RANGE_ADDRESS, "443"], "timeout"),
    ("ip-blackhole", ["tls", TG, "telegram.org", CA], "ok"),
    ("tcp-reset", ["tcp", DC, "443"], "refused"),  # a RST answering a SYN reads as refused
    ("tcp-reset", ["tcp", DC, "80"], "refused"),
    ("tcp-reset", ["tcp", DC6, "443"], "refused"),
    ("tcp-reset", ["tcp", DC, "5222"], "ok"),
    ("tcp-reset", ["tls", TG, "telegram.org", CA], "ok"),
    ("sni-reset", ["tls", TG, "telegram.org", CA], "reset"),
    ("sni-reset", ["tls", TME, "t.me", CA], "reset"),
    # The same server answers a control SNI (its one certificate names every world site).
    ("sni-reset", ["tls", TG, topo.CONTROL_SITE, CA], "ok"),
    ("sni-reset", ["tls", topo.CONTROL_V4, topo.CONTROL_SITE, CA], "ok"),
    ("sni-reset", ["tcp", TG, "443"], "ok"),
    ("sni-reset", ["doh", topo.CONTROL_RESOLVER_URL, CA, "telegram.org", "A"], TG),
    ("sni-drop", ["tls", TG, "web.telegram.org", CA], "timeout"),
    ("sni-drop", ["tls", topo.CONTROL_V4, topo.CONTROL_SITE, CA], "ok"),
    ("sni-drop", ["tcp", DC, "443"], "ok"),
    ("throttle", ["tls", TG, "telegram.org", CA], "ok"),
    ("throttle", ["dns", ISP, "t.me", "A"], TME),
    ("throttle", ["tcp", DC, "5222"], "ok"),
    # issue 13: the world's sites answer plain HTTP for any name; the blockpage server likewise
    ("none", ["http", TG, "telegram.org"], "200 telegram.org (netprobe lab world)"),
    ("none", ["http", topo.BLOCKPAGE_V4, "t.me"], "403 Blocked by order of the lab ISP"),
    ("http-inject", ["http", TG, "telegram.org"], "403 Blocked by order of the lab ISP"),
    (
        "http-inject",
        ["http", topo.WEB_ADDRESSES["t.me"][1], "t.me"],
        "403 Blocked by order of the lab ISP",
    ),
    ("http-inject", ["tls", TG, "telegram.org", CA], "ok"),  # only port 80 is touched
    (
        "http-inject",
        ["http", topo.CONTROL_V4, topo.CONTROL_SITE],
        "200 control.example (netprobe lab world)",
    ),
]


def run_checks(lab: Lab, specs: list[list[str]]) -> list[str]:
    specs = [[str(lab.ca_path) if arg == CA else arg for arg in spec] for spec in specs]
    result = lab.exec(
        [sys.executable, "-m", "tests.lab.check", "--many"], input=json.dumps(specs), timeout=30
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("scenario", sorted({case[0] for case in CASES}))
def test_scenario_is_observable_from_the_client(clean_lab: Lab, scenario: str) -> None:
    cases = [(spec, expected) for name, spec, expected in CASES if name == scenario]
    clean_lab.apply(scenario)
    outcomes = run_checks(clean_lab, [spec for spec, _ in cases])
    mismatches = [
        f"{' '.join(spec)}: expected {expected}, got {outcome}"
        for (spec, expected), outcome in zip(cases, outcomes, strict=True)
        if outcome != expected
    ]
    assert not mismatches, f"scenario {scenario}:\n" + "\n".join(mismatches)


def test_scenario_switch_replaces_the_previous_one(clean_lab: Lab) -> None:
    clean_lab.apply("ip-blackhole")
    clean_lab.apply("sni-reset")
    assert run_checks(clean_lab, [["tcp", DC, "443"], ["tls", TG, "t.me", CA]]) == ["ok", "reset"]
    clean_lab.apply("none")
    assert run_checks(clean_lab, [["tls", TME, "t.me", CA]]) == ["ok"]


def test_client_uses_the_isp_resolver_as_its_system_resolver(lab: Lab) -> None:
    result = lab.exec(["cat", "/etc/resolv.conf"])
    assert f"nameserver {topo.ISP_RESOLVER_V4}" in result.stdout


def test_no_namespace_has_a_default_route(lab: Lab) -> None:
    for role in topo.ROLES:
        for family in ("-4", "-6"):
            routes = lab.exec(["ip", family, "route", "show", "default"], role=role).stdout
            assert routes.strip() == "", f"{role} has a default route: {routes}"


def test_unknown_scenario_is_a_clear_error(lab: Lab) -> None:
    with pytest.raises(KeyError, match="unknown scenario 'sni-magic'"):
        lab.apply("sni-magic")


def test_two_labs_coexist_and_teardown_removes_everything(lab: Lab) -> None:
    with Lab.up() as second:
        assert set(second.namespaces).isdisjoint(lab.namespaces)
        second.apply("dns-nxdomain")
        # Each lab has its own ISP: the scenario of one does not leak into the other.
        assert run_checks(second, [["dns", ISP, "t.me", "A"]]) == ["NXDOMAIN"]
        assert run_checks(lab, [["dns", ISP, "t.me", "A"]]) == [TME]
        pids = dict(second.pids or {})
        state_dir = second.state_dir
    status = lab.status()
    assert all(status["namespaces"].values()) and all(status["servers"].values())
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for namespace in second.namespaces:
        assert namespace not in namespaces
        assert not (NETNS_ETC / namespace).exists()
    for pid in pids.values():
        assert not Path(f"/proc/{pid}").exists() or not Lab._alive(pid)
    assert not state_dir.exists()


def test_teardown_runs_when_the_block_fails() -> None:
    fixtures.require_lab()
    with pytest.raises(RuntimeError, match="test failure"):
        with Lab.up() as doomed:
            namespaces = doomed.namespaces
            raise RuntimeError("test failure")
    assert doomed.name not in Lab.names()
    existing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert not any(namespace in existing for namespace in namespaces)


def test_a_second_lab_with_the_same_name_is_refused(lab: Lab) -> None:
    with pytest.raises(LabError, match="already up"):
        Lab.create(lab.name)
