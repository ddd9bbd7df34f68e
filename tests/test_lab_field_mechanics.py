"""The field scenarios' mechanics, seen from the client namespace with plain sockets, dnspython,
dig and httpx (tests/lab/check.py): does the lab do what the scenario says, whatever netprobe
concludes? (netprobe's verdicts under them: tests/test_lab_field.py.)

Rules: like tests/test_lab_smoke.py these check the lab, not netprobe. Needs root (see
tests/lab/fixtures.py). Statistical checks (loss rate, delay) use bounds several standard
deviations wide, so they do not flake.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.lab import fixtures
from tests.lab import scenarios as sc
from tests.lab import topology as topo
from tests.lab.lab import Lab

lab = fixtures.lab
clean_lab = fixtures.clean_lab
pytestmark = pytest.mark.root

CA = "{ca}"  # replaced by the lab's CA path
ISP = topo.ISP_RESOLVER_V4
TG, TG6 = topo.WEB_ADDRESSES["telegram.org"]
WEB = topo.WEB_ADDRESSES["web.telegram.org"][0]
TME6 = topo.WEB_ADDRESSES["t.me"][1]
DC = topo.DC_V4[0]
FORGED, FORGED6 = topo.FORGED_V4, topo.FORGED_V6
SILENT = topo.SILENT_V4
DOH = topo.CONTROL_RESOLVER_URL


def run_checks(lab: Lab, specs: list[list[str]]) -> list[str]:
    specs = [[str(lab.ca_path) if arg == CA else arg for arg in spec] for spec in specs]
    result = lab.exec(
        [sys.executable, "-m", "tests.lab.check", "--many"], input=json.dumps(specs), timeout=60
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def check(lab: Lab, *spec: str) -> str:
    return run_checks(lab, [list(spec)])[0]


def counters(lab: Lab, tool: str, table: str, chain: str) -> list[tuple[int, str]]:
    """(packets, rule text) per rule of one chain in the ISP namespace."""
    out = lab.exec([tool, "-t", table, "-L", chain, "-n", "-v", "-x"], role="isp").stdout
    rows = []
    for line in out.splitlines()[2:]:
        fields = line.split()
        if fields and fields[0].isdigit():
            rows.append((int(fields[0]), line))
    return rows


# --- lossy mobile link -------------------------------------------------------------------------


def test_lossy_link_loses_and_delays_both_ways(clean_lab: Lab) -> None:
    clean_lab.apply("lossy-mobile")
    # 5% each way: a query/reply exchange is lost with p = 1 - 0.95^2 = 9.75%. Over 400
    # exchanges that is 39 +- 6; the bounds are about 4 standard deviations wide.
    lost = int(check(clean_lab, "dns-loss", ISP, "telegram.org", "400"))
    assert 15 <= lost <= 65, f"{lost}/400 DNS exchanges lost on the lossy link"
    # TCP connect = one round trip: 2 x 40 ms held in the delay stage, plus the lab's own
    # fraction of a millisecond; a lost SYN would add a 1 s retransmission (the median ignores it).
    median_ms = int(check(clean_lab, "tcp-ms", DC, "443", "7"))
    assert 75 <= median_ms <= 400, f"median connect {median_ms} ms, expected ~80 ms"
    assert int(check(clean_lab, "tcp-ms", topo.DC_V6[0], "443", "5")) >= 75  # IPv6 too
    for tool in ("iptables", "ip6tables"):
        for chain in ("PREROUTING", "POSTROUTING"):  # client -> ISP, ISP -> client
            rules = {text.split()[2]: n for n, text in counters(clean_lab, tool, "mangle", chain)}
            assert set(rules) == {"DROP", "NFQUEUE"}, rules
            if tool == "iptables":  # hundreds of packets each way: some dropped, the rest queued
                assert rules["DROP"] > 0 and rules["NFQUEUE"] > 300, rules
    clean_lab.apply("none")
    assert check(clean_lab, "dns-loss", ISP, "telegram.org", "100") == "0"
    assert int(check(clean_lab, "tcp-ms", DC, "443", "3")) < 40  # the delay is gone with it
    assert not clean_lab.stages


# --- residual SNI blocking ---------------------------------------------------------------------


def test_residual_rule_drops_follow_up_connects_to_that_address_only(clean_lab: Lab) -> None:
    clean_lab.apply("sni-residual")
    # Before the forbidden name: the control SNI on the same address works.
    assert check(clean_lab, "tls", TG, topo.CONTROL_SITE, CA) == "ok"
    # The forbidden names: dropped, and their addresses marked.
    marking = [["tls", TG, "telegram.org", CA], ["tls", TME6, "t.me", CA]]
    assert run_checks(clean_lab, marking) == ["timeout", "timeout"]
    after = run_checks(
        clean_lab,
        [
            ["tls", TG, topo.CONTROL_SITE, CA],  # the same ip:port, an innocent name: dropped
            ["tcp", TG, "443"],  # even a bare connect
            ["tcp", TME6, "443"],  # over IPv6 too
            ["tcp", TG, "80"],  # another port of the same address: not marked
            ["tls", WEB, topo.CONTROL_SITE, CA],  # another address: not marked
            ["tls", TG6, topo.CONTROL_SITE, CA],  # the name's other address: not marked
        ],
    )
    assert after == ["timeout", "timeout", "timeout", "ok", "ok", "ok"]
    clean_lab.apply("sni-residual")  # re-applying starts with no marks (a fresh run)
    assert check(clean_lab, "tls", TG, topo.CONTROL_SITE, CA) == "ok"


def test_residual_block_lasts_the_configured_time() -> None:
    rules = sc.SCENARIOS["sni-residual"].rules
    checks = [args for _version, args in rules if "--rcheck" in args]
    assert checks and all(
        args[args.index("--seconds") + 1] == str(sc.RESIDUAL_SECONDS) for args in checks
    )
    assert 10 <= sc.RESIDUAL_SECONDS <= 20
    # Every censored server address (v4 and v6) has its own mark list, checked before it is set.
    marked = {args[args.index("-d") + 1] for _version, args in rules}
    assert marked == {ip for name in topo.TELEGRAM_NAMES for ip in topo.WEB_ADDRESSES[name]}


# --- on-path DNS injection ---------------------------------------------------------------------


def test_injector_forges_replies_to_any_address(clean_lab: Lab) -> None:
    clean_lab.apply("dns-injection")
    got = run_checks(
        clean_lab,
        [
            ["dns-all", ISP, "telegram.org", "A"],  # the ISP's own resolver: forged, then genuine
            ["dns-all", topo.CONTROL_RESOLVER_V4, "web.telegram.org", "A"],  # a world resolver
            ["dns-all", SILENT, "t.me", "A"],  # an address where nothing runs
            ["dns-all", SILENT, "telegram.org", "AAAA"],
            ["dns-all", "2001:db8:2::99", "t.me", "AAAA"],  # over IPv6 too
            ["dns-all", SILENT, topo.CONTROL_SITE, "A"],  # an innocent name: nothing answers
            ["dns-all", ISP, topo.CONTROL_SITE, "A"],  # ... and it is not tampered with
        ],
    )
    # Both replies arrive; which comes first is a race (the injector usually wins it).
    got[:2] = [" | ".join(sorted(replies.split(" | "))) for replies in got[:2]]
    assert got == [
        f"{FORGED} | {TG}",
        f"{FORGED} | {WEB}",
        FORGED,
        FORGED6,
        FORGED6,
        "timeout",
        topo.CONTROL_V4,
    ]
    log = clean_lab.stage_log("inject")
    assert f"forged t.me. A as {SILENT}" in log and "forged telegram.org. A as" in log
    clean_lab.apply("none")
    assert check(clean_lab, "dns-all", SILENT, "t.me", "A") == "timeout"
    assert check(clean_lab, "dns-all", ISP, "telegram.org", "A") == TG


def test_injected_reply_is_visible_with_dig(clean_lab: Lab) -> None:
    if shutil.which("dig") is None:
        pytest.skip("dig not installed (Debian: dnsutils)")
    clean_lab.apply("dns-injection")
    answer = clean_lab.exec(
        ["dig", "+short", "+tries=1", "+time=2", f"@{SILENT}", "telegram.org", "A"], timeout=10
    )
    assert answer.stdout.split() == [FORGED], answer.stdout + answer.stderr


# --- DoH over HTTP/2 only ----------------------------------------------------------------------


def test_h2_only_control_resolver_refuses_http1(clean_lab: Lab) -> None:
    pytest.importorskip("h2", reason="the h2 package (httpx[http2]) serves and speaks HTTP/2")
    clean_lab.apply("doh-h2-nxdomain")
    got = run_checks(
        clean_lab,
        [
            ["doh2", DOH, CA, "telegram.org", "A"],
            ["doh2", DOH, CA, "no-such-name.example", "A"],
            ["doh", DOH, CA, "telegram.org", "A"],  # HTTP/1.1: the server answers in HTTP/2
            ["dns", ISP, "telegram.org", "A"],  # the ISP still lies
        ],
    )
    assert got[:2] == [TG, "NXDOMAIN"]
    assert got[2].startswith("error:"), got[2]
    assert got[3] == "NXDOMAIN"
    clean_lab.apply("none")  # the classic HTTP/1.1 resolver is back
    assert check(clean_lab, "doh", DOH, CA, "telegram.org", "A") == TG


# --- DNS redirect to a public-looking blockpage ------------------------------------------------


@pytest.mark.parametrize(
    ("scenario", "v4", "v6", "tls"),
    [
        (
            "dns-redirect-public",
            topo.PUBLIC_BLOCKPAGE_V4,
            topo.PUBLIC_BLOCKPAGE_V6,
            "bad-certificate",
        ),
        ("dns-redirect-closed", topo.CLOSED_BLOCKPAGE_V4, topo.CLOSED_BLOCKPAGE_V6, "refused"),
    ],
)
def test_public_looking_redirects(
    clean_lab: Lab, scenario: str, v4: str, v6: str, tls: str
) -> None:
    clean_lab.apply(scenario)
    got = run_checks(
        clean_lab,
        [
            ["dns", ISP, "telegram.org", "A"],
            ["dns", ISP, "t.me", "AAAA"],
            ["dns", ISP, topo.CONTROL_SITE, "A"],
            ["tls", v4, "telegram.org", CA],
            ["tls", v6, "telegram.org", CA],
        ],
    )
    assert got == [v4, v6, topo.CONTROL_V4, tls, tls]


def test_public_looking_redirect_addresses_are_declared_public_by_the_field_list() -> None:
    import ipaddress

    import yaml

    data = yaml.safe_load(Path(sc.__file__).with_name("field.yaml").read_text())
    used = {group.get("expected") for group in data["groups"].values()}
    ranges = [ipaddress.ip_network(cidr) for cidr in data["expected_ranges"]["isp-public"]]
    assert "isp-public" not in used  # declared, but no group's own range
    for address in (*topo.ISP_PUBLIC_RANGES, topo.PUBLIC_BLOCKPAGE_V4, topo.CLOSED_BLOCKPAGE_V6):
        network = ipaddress.ip_network(address)
        assert any(network.subnet_of(r) for r in ranges if r.version == network.version)


# --- stages ------------------------------------------------------------------------------------


def test_stages_stop_when_the_scenario_changes(clean_lab: Lab) -> None:
    clean_lab.apply("dns-injection")
    (pid,) = (clean_lab.stages or {}).values()
    assert Path(f"/proc/{pid}").exists()
    clean_lab.apply("lossy-mobile")
    assert set(clean_lab.stages or {}) == {"delay"}
    assert not _running(pid)
    # Another process (the CLI) can stop them: the pids are in state.json.
    assert Lab.load(clean_lab.name).stages == clean_lab.stages
    subprocess.run(
        [sys.executable, "-m", "tests.lab", "scenario", "none", "--name", clean_lab.name],
        check=True,
        capture_output=True,
    )
    (delay,) = (clean_lab.stages or {}).values()
    assert not _running(delay)


def _running(pid: int) -> bool:
    try:
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
