"""Censorship scenarios: what the lab ISP does to traffic, and what netprobe should conclude.

Rules:
- A scenario is data: a DNS policy for the ISP resolver, iptables/ip6tables rules for the ISP's
  FORWARD chain, rules for other tables and namespaces (`table_rules`: the link's loss and delay
  in the ISP's mangle table, a DNAT in the world), on-path stages (processes, `stages`),
  whether to throttle, and `tc` commands run in the ISP (queueing disciplines of its own, issue
  13). `lab.Lab.apply()` turns it into commands; applying one first removes the
  previous one (stops its stages, flushes every chain a scenario may use), so scenarios never
  stack.
- `targets` names the target list (next to this file) the scenario's ground truth is written for:
  `lab.yaml` for the classic scenarios (tests/test_lab_e2e.py runs every one of them), a
  `field*.yaml` list for the field scenarios (tests/test_lab_field.py).
- The ground truth (expected verdict per target, expected diff against the `none` baseline)
  lives in `scenarios.yaml` next to this file; `load_ground_truth()` reads it and checks that it
  names exactly the scenarios defined here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.lab import topology as topo

GROUND_TRUTH_PATH = Path(__file__).with_name("scenarios.yaml")

Rule = tuple[int, list[str]]  # (IP version, arguments after `iptables -A FORWARD`)

# Chains a scenario may add rules to, per namespace role and table; `apply` flushes all of them.
FLUSHED_CHAINS: dict[str, dict[str, tuple[str, ...]]] = {
    "isp": {
        "filter": ("FORWARD",),
        "mangle": ("PREROUTING", "POSTROUTING"),
        "nat": ("PREROUTING",),  # issue 13: the http-inject scenario's DNAT
    },
    "world": {"nat": ("PREROUTING",)},
}


@dataclass(frozen=True)
class TableRule:
    """One rule anywhere: `ip netns exec <role> ip[6]tables -t TABLE -A CHAIN ARGS`."""

    role: str  # "isp" | "world"
    version: int  # 4 | 6
    table: str
    chain: str
    args: tuple[str, ...]


@dataclass(frozen=True)
class Stage:
    """A process run in one namespace while the scenario is applied (`python -m MODULE ARGS`).

    `{state}` in an argument becomes the lab's state directory. It must print one line on
    stdout once it is ready (tests/lab/stages.py prints `ready`, tests/doh_h2.py `listening`).
    """

    name: str
    role: str
    module: str
    args: tuple[str, ...]


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    # forward | nxdomain | bogon | redirect | redirect-public | redirect-closed
    dns_mode: str = "forward"
    rules: tuple[Rule, ...] = field(default_factory=tuple)
    throttle: bool = False
    table_rules: tuple[TableRule, ...] = field(default_factory=tuple)
    stages: tuple[Stage, ...] = field(default_factory=tuple)
    targets: str = "lab.yaml"
    tc: tuple[tuple[str, ...], ...] = field(default_factory=tuple)  # `tc -n <isp> ARGS`

    @property
    def field(self) -> bool:
        """A field scenario (tests/test_lab_field.py), not one of the classic lab.yaml ones."""
        return self.targets != "lab.yaml"


def _sni_rules(target: list[str]) -> tuple[Rule, ...]:
    # Keyword match on the ClientHello, as cheap DPI boxes do; only client->server port 443,
    # so certificates flowing back (which also name the site) are left alone.
    rules: list[Rule] = []
    for version in (4, 6):
        for keyword in ("telegram.org", "t.me"):
            match = ["-p", "tcp", "--dport", "443", "-m", "string", "--algo", "bm"]
            rules.append((version, [*match, "--string", keyword, *target]))
    return tuple(rules)


_DC_AND_RANGE_V4 = ",".join((*topo.DC_V4, topo.ANYIP_RANGE_V4))
_DC_V6 = ",".join(topo.DC_V6)
_RESET = "-j REJECT --reject-with tcp-reset".split()
_PORTS_80_443 = ["-m", "multiport", "--dports", "80,443"]
_TCP_LOSS = ["-p", "tcp", "-m", "statistic", "--mode", "random", "--probability", "0.02"]

# The lossy mobile link: each way, 5% of packets lost and every packet held 40 ms (an 80 ms RTT
# on top of the lab's). Loss applies to everything crossing the client<->ISP link, the ISP's
# own resolver included; the delay comes from the `delay` stage holding packets in NFQUEUE.
LINK_LOSS = 0.05
LINK_DELAY_MS = 40
DELAY_QUEUE = 7


def _link_rules(loss: float, delay_queue: int | None) -> tuple[TableRule, ...]:
    rules: list[TableRule] = []
    for version in (4, 6):
        for chain, direction in (("PREROUTING", "-i"), ("POSTROUTING", "-o")):
            on_link = (direction, topo.ISP_CLIENT_IF)
            random = ("-m", "statistic", "--mode", "random", "--probability", f"{loss:g}")
            rules.append(
                TableRule("isp", version, "mangle", chain, (*on_link, *random, "-j", "DROP"))
            )
            if delay_queue is not None:
                queue = ("-j", "NFQUEUE", "--queue-num", str(delay_queue), "--queue-bypass")
                rules.append(TableRule("isp", version, "mangle", chain, (*on_link, *queue)))
    return tuple(rules)


# Residual SNI blocking (as the Great Firewall does): a ClientHello naming a forbidden name marks
# (client, server address, 443) and drops it; for RESIDUAL_SECONDS afterwards every packet from
# that client to that ip:port is dropped, whatever SNI it carries. xt_recent keys one address, so
# each censored server address gets its own list (keyed by the client's address).
RESIDUAL_SECONDS = 15


def _residual_rules() -> tuple[Rule, ...]:
    rules: list[Rule] = []
    for index, name in enumerate(topo.TELEGRAM_NAMES):
        for version, ip in zip((4, 6), topo.WEB_ADDRESSES[name], strict=True):
            where = ["-p", "tcp", "-d", ip, "--dport", "443"]
            recent = ["-m", "recent", "--name", f"residual{version}_{index}", "--rsource"]
            seconds = ["--rcheck", "--seconds", str(RESIDUAL_SECONDS)]
            rules.append((version, [*where, *recent, *seconds, "-j", "DROP"]))
            for keyword in ("telegram.org", "t.me"):
                match = ["-m", "string", "--algo", "bm", "--string", keyword]
                rules.append((version, [*where, *match, *recent, "--set", "-j", "DROP"]))
    return tuple(rules)


def _injector() -> Stage:
    names = [arg for name in topo.TELEGRAM_NAMES for arg in ("--name", name)]
    return Stage(
        "inject",
        "isp",
        "tests.lab.stages",
        ("inject", "--interface", topo.ISP_CLIENT_IF, *names,
         "--forge-v4", topo.FORGED_V4, "--forge-v6", topo.FORGED_V6),
    )  # fmt: skip


# The control resolver as DoH over HTTP/2 only (tests/doh_h2.py, in the world): it listens on
# DOH_H2_PORT and a DNAT sends the control resolver's port 443 there, so its URL stays the same.
DOH_H2_PORT = 8443


def _doh_h2() -> tuple[Stage, TableRule]:
    zone = [
        arg
        for name, addresses in topo.WEB_ADDRESSES.items()
        for arg in ("--zone", f"{name}={','.join(addresses)}")
    ]
    listen = f"{topo.CONTROL_RESOLVER_V4}:{DOH_H2_PORT}"
    stage = Stage(
        "doh-h2",
        "world",
        "tests.doh_h2",
        ("--listen", listen, "--cert", "{state}/world-cert.pem", *zone),
    )
    dnat = TableRule(
        "world", 4, "nat", "PREROUTING",
        ("-p", "tcp", "-d", topo.CONTROL_RESOLVER_V4, "--dport", "443",
         "-j", "DNAT", "--to-destination", listen),
    )  # fmt: skip
    return stage, dnat


_DOH_H2_STAGE, _DOH_H2_DNAT = _doh_h2()


# Protocol DPI on MTProto (issue 13): drop every TCP segment to a DC whose payload starts with a
# plain transport's marker (intermediate 0xeeeeeeee, abridged 0xef), as a cheap DPI box can with
# the `u32` match; the connect and obfuscated2 (random-looking from its first byte) pass. u32
# reads the payload's first word: IPv4 after the IP header (its IHL) and the TCP data offset,
# IPv6 after the fixed 40-byte header (the lab's packets carry no extension headers).
_PAYLOAD_WORD = {4: "0>>22&0x3C@12>>26&0x3C@0", 6: "52>>26&0x3C@40"}
MTPROTO_MARKERS = ("=0xeeeeeeee", ">>24=0xef")  # intermediate, abridged
MTPROTO_DPI_PARTIAL_DC = topo.DC_V4[0]  # mtproto-dpi-partial blocks only this DC


def _mtproto_dpi_rules(v4: tuple[str, ...], v6: tuple[str, ...]) -> tuple[Rule, ...]:
    rules: list[Rule] = []
    for version, addresses in ((4, v4), (6, v6)):
        if not addresses:
            continue
        for marker in MTPROTO_MARKERS:
            match = ["-m", "u32", "--u32", _PAYLOAD_WORD[version] + marker]
            rules.append((version, ["-p", "tcp", "-d", ",".join(addresses), *match, "-j", "DROP"]))
    return tuple(rules)


def _http_inject_rules() -> tuple[TableRule, ...]:
    """issue 13: the ISP answers plain HTTP to the genuine web addresses itself, with its
    blockpage (a transparent proxy: DNAT of port 80 to the blockpage server); TLS is untouched."""
    rules = []
    for version, index, blockpage in ((4, 0, topo.BLOCKPAGE_V4), (6, 1, f"[{topo.BLOCKPAGE_V6}]")):
        web = ",".join(topo.WEB_ADDRESSES[name][index] for name in topo.TELEGRAM_NAMES)
        rules.append(
            TableRule(
                "isp",
                version,
                "nat",
                "PREROUTING",
                (
                    "-i",
                    topo.ISP_CLIENT_IF,
                    "-p",
                    "tcp",
                    "-d",
                    web,
                    "--dport",
                    "80",
                    "-j",
                    "DNAT",
                    "--to-destination",
                    f"{blockpage}:80",
                ),
            )  # fmt: skip
        )
    return tuple(rules)


# SNI throttling (issue 13), as Russia throttled Twitter in 2021: a flow whose ClientHello names a
# Telegram site is marked (CONNMARK, so every packet of the flow carries it) and its packets
# toward the client are shaped to SNI_THROTTLE_RATE; everything else passes at link speed. This
# kernel has htb and tbf but no sch_netem and no `fw` classifier, so the mark picks the htb
# class through CLASSIFY (skb->priority, which htb reads before any filter). The shaped class
# queues at most SNI_THROTTLE_QUEUE packets (about 1.3 s at that rate) and drops the rest, as a
# policing throttler does; a deep queue would keep delivering a finished download's backlog for
# a minute and starve the next flow.
SNI_THROTTLE_RATE = "150kbit"
SNI_THROTTLE_MARK = "0x13"
SNI_THROTTLE_CLASS = "1:13"
SNI_THROTTLE_QUEUE = 16
_FAST_CLASS = "1:20"


def _sni_throttle_rules() -> tuple[TableRule, ...]:
    rules: list[TableRule] = []
    for version in (4, 6):
        for keyword in ("telegram.org", "t.me"):
            match = ("-i", topo.ISP_CLIENT_IF, "-p", "tcp", "--dport", "443",
                     "-m", "string", "--algo", "bm", "--string", keyword)  # fmt: skip
            rules.append(
                TableRule(
                    "isp",
                    version,
                    "mangle",
                    "PREROUTING",
                    (*match, "-j", "CONNMARK", "--set-mark", SNI_THROTTLE_MARK),
                )  # fmt: skip
            )
        marked = ("-o", topo.ISP_CLIENT_IF, "-m", "connmark", "--mark", SNI_THROTTLE_MARK)
        rules.append(
            TableRule(
                "isp",
                version,
                "mangle",
                "POSTROUTING",
                (*marked, "-j", "CLASSIFY", "--set-class", SNI_THROTTLE_CLASS),
            )  # fmt: skip
        )
    return tuple(rules)


_SNI_SHAPER = (
    ("qdisc", "add", "dev", topo.ISP_CLIENT_IF, "root", "handle", "1:", "htb",
     "default", _FAST_CLASS.split(":")[1]),
    ("class", "add", "dev", topo.ISP_CLIENT_IF, "parent", "1:", "classid", SNI_THROTTLE_CLASS,
     "htb", "rate", SNI_THROTTLE_RATE, "ceil", SNI_THROTTLE_RATE),
    ("qdisc", "add", "dev", topo.ISP_CLIENT_IF, "parent", SNI_THROTTLE_CLASS, "handle", "13:",
     "pfifo", "limit", str(SNI_THROTTLE_QUEUE)),
    ("class", "add", "dev", topo.ISP_CLIENT_IF, "parent", "1:", "classid", _FAST_CLASS,
     "htb", "rate", "1gbit", "quantum", "60000"),
)  # fmt: skip


def _ip_throttle_rules() -> tuple[TableRule, ...]:
    """Everything from the Telegram web stand-ins' addresses into the shaped class (any SNI)."""
    rules: list[TableRule] = []
    for version in (4, 6):
        sources = ",".join(topo.WEB_ADDRESSES[name][version == 6] for name in topo.TELEGRAM_NAMES)
        where = ("-o", topo.ISP_CLIENT_IF, "-s", sources)
        rules.append(
            TableRule(
                "isp",
                version,
                "mangle",
                "POSTROUTING",
                (*where, "-j", "CLASSIFY", "--set-class", SNI_THROTTLE_CLASS),
            )  # fmt: skip
        )
    return tuple(rules)


# A slow link (issue 13): everything toward the client shaped to SLOW_LINK_RATE, whatever the
# name: slow-but-equal, which must stay `ok`.
SLOW_LINK_RATE = "1mbit"
_SLOW_LINK = (
    ("qdisc", "add", "dev", topo.ISP_CLIENT_IF, "root", "tbf", "rate", SLOW_LINK_RATE,
     "burst", "32kb", "latency", "400ms"),
)  # fmt: skip


SCENARIOS: dict[str, Scenario] = {
    scenario.name: scenario
    for scenario in (
        Scenario("none", "No censorship: everything is reachable."),
        Scenario(
            "dns-redirect",
            "ISP resolver answers Telegram names with its blockpage server (192.0.2.200).",
            dns_mode="redirect",
        ),
        Scenario("dns-nxdomain", "ISP resolver says Telegram names do not exist.", "nxdomain"),
        Scenario(
            "dns-bogon",
            "ISP resolver answers Telegram names with loopback addresses (127.0.0.1, ::1).",
            dns_mode="bogon",
        ),
        Scenario(
            "ip-blackhole",
            "ISP silently drops packets to the DC stand-ins and the Telegram range.",
            rules=((4, ["-d", _DC_AND_RANGE_V4, "-j", "DROP"]), (6, ["-d", _DC_V6, "-j", "DROP"])),
        ),
        Scenario(
            "tcp-reset",
            "ISP resets TCP to the DCs and the range on ports 80 and 443 only (5222 works).",
            rules=(
                (4, ["-p", "tcp", "-d", _DC_AND_RANGE_V4, *_PORTS_80_443, *_RESET]),
                (6, ["-p", "tcp", "-d", _DC_V6, *_PORTS_80_443, *_RESET]),
            ),
        ),
        Scenario(
            "sni-reset",
            "ISP resets TLS connections whose ClientHello names telegram.org or t.me.",
            rules=_sni_rules(_RESET),
        ),
        Scenario(
            "sni-drop",
            "ISP drops TLS connections whose ClientHello names telegram.org or t.me.",
            rules=_sni_rules(["-j", "DROP"]),
        ),
        Scenario(
            "throttle",
            "ISP rate-limits the client link (queueing delay) and loses 2% of TCP packets.",
            rules=(
                (4, [*_TCP_LOSS, "-j", "DROP"]),
                (6, [*_TCP_LOSS, "-j", "DROP"]),
            ),
            throttle=True,
        ),
        # --- field scenarios (tests/test_lab_field.py) ---
        Scenario(
            "lossy-mobile",
            f"Lossy mobile link: {LINK_LOSS:.0%} loss each way and {LINK_DELAY_MS} ms delay each "
            "way between client and ISP; nothing is blocked.",
            table_rules=_link_rules(LINK_LOSS, DELAY_QUEUE),
            stages=(
                Stage(
                    "delay",
                    "isp",
                    "tests.lab.stages",
                    ("delay", "--queue", str(DELAY_QUEUE), "--ms", str(LINK_DELAY_MS)),
                ),
            ),  # fmt: skip
            targets="field-lossy.yaml",
        ),
        Scenario(
            "sni-residual",
            "ISP drops a ClientHello naming telegram.org or t.me, then everything from that client "
            f"to that address and port for {RESIDUAL_SECONDS} s (residual blocking).",
            rules=_residual_rules(),
            targets="field.yaml",
        ),
        Scenario(
            "dns-injection",
            "An on-path injector at the ISP forges DNS replies for Telegram names to any address "
            f"(answers {topo.FORGED_V4}, {topo.FORGED_V6}); genuine replies still arrive.",
            stages=(_injector(),),
            targets="field-inject.yaml",
        ),
        Scenario(
            "doh-h2-nxdomain",
            "The control resolver speaks DoH over HTTP/2 only; the ISP resolver says Telegram "
            "names do not exist.",
            dns_mode="nxdomain",
            table_rules=(_DOH_H2_DNAT,),
            stages=(_DOH_H2_STAGE,),
            targets="field.yaml",
        ),
        Scenario(
            "dns-redirect-public",
            "ISP resolver answers Telegram names with a blockpage at a public-looking address "
            f"({topo.PUBLIC_BLOCKPAGE_V4}; its certificate names only the blockpage).",
            dns_mode="redirect-public",
            targets="field.yaml",
        ),
        # --- MTProto scenarios (issue 13; tests/test_lab_mtproto.py) ---
        Scenario(
            "mtproto-dpi",
            "ISP drops TCP segments to every DC whose payload starts with a plain MTProto "
            "transport marker (0xeeeeeeee, 0xef); connects and obfuscated2 pass.",
            rules=_mtproto_dpi_rules(topo.DC_V4, topo.DC_V6),
            targets="field-mtproto.yaml",
        ),
        Scenario(
            "mtproto-dpi-partial",
            f"As mtproto-dpi, for one DC only ({MTPROTO_DPI_PARTIAL_DC}); the other DCs work.",
            rules=_mtproto_dpi_rules((MTPROTO_DPI_PARTIAL_DC,), ()),
            targets="field-mtproto.yaml",
        ),
        Scenario(
            "dns-redirect-closed",
            "ISP resolver answers Telegram names with a public-looking address whose port 443 is "
            f"closed ({topo.CLOSED_BLOCKPAGE_V4}: connects are refused).",
            dns_mode="redirect-closed",
            targets="field.yaml",
        ),
        # --- HTTP blockpages (issue 13; tests/test_lab_http.py, list http.yaml) ---
        Scenario(
            "http-blockpage",
            "ISP resolver answers Telegram names with its blockpage server, whose page the "
            'list\'s own fingerprint knows (title "Blocked by order of the lab ISP").',
            dns_mode="redirect",
            targets="http.yaml",
        ),
        Scenario(
            "http-sinkhole",
            "ISP resolver answers Telegram names with an address the list's own `dns` "
            f"fingerprint calls the ISP's sinkhole ({topo.PUBLIC_BLOCKPAGE_V4}).",
            dns_mode="redirect-public",
            targets="http.yaml",
        ),
        Scenario(
            "http-inject",
            "DNS and TLS are untouched; the ISP answers plain HTTP to the genuine Telegram "
            "addresses itself with its blockpage (port 80 DNAT to the blockpage server).",
            table_rules=_http_inject_rules(),
            targets="http.yaml",
        ),
        # --- throughput scenarios (issue 13; tests/test_lab_throughput.py) ---
        Scenario(
            "sni-throttle",
            "ISP shapes flows whose ClientHello names telegram.org or t.me to "
            f"{SNI_THROTTLE_RATE} toward the client; other names on the same addresses are fast.",
            table_rules=_sni_throttle_rules(),
            tc=_SNI_SHAPER,
            targets="throughput.yaml",
        ),
        Scenario(
            "ip-throttle",
            f"ISP shapes everything from the Telegram web addresses to {SNI_THROTTLE_RATE} toward "
            "the client, whatever the SNI; the control site is fast.",
            table_rules=_ip_throttle_rules(),
            tc=_SNI_SHAPER,
            targets="throughput.yaml",
        ),
        Scenario(
            "slow-link",
            f"The client link is {SLOW_LINK_RATE} toward the client for everything (a slow "
            "line, not a throttle): nothing is blocked or throttled.",
            tc=_SLOW_LINK,
            targets="throughput.yaml",
        ),
    )
}
# Token bucket on both ISP interfaces: enough for TLS handshakes, slow enough to queue.
TBF_ARGS = ["rate", "2mbit", "burst", "16kb", "latency", "300ms"]


def get_scenario(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        known = ", ".join(SCENARIOS)
        raise KeyError(f"unknown scenario {name!r}; known: {known}") from None


def load_ground_truth(path: Path = GROUND_TRUTH_PATH) -> dict[str, Any]:
    """`scenarios.yaml` as a dict; raises ValueError if it disagrees with SCENARIOS."""
    data = yaml.safe_load(path.read_text())
    truth = data["scenarios"]
    if set(truth) != set(SCENARIOS):
        raise ValueError(
            f"{path}: scenarios {sorted(truth)} differ from tests/lab/scenarios.py "
            f"{sorted(SCENARIOS)}"
        )
    return data


def expected_verdict(truth: dict[str, Any], scenario: str, target_id: str, group: str) -> dict:
    """The expected {status, method} for one target under `scenario`.

    Explicit `targets` entries win; otherwise the scenario's `groups` entry; otherwise the
    file's `default` (ok). Range samples are matched by group, since sampling picks addresses.
    """
    entry = truth["scenarios"][scenario]
    if target_id in entry.get("targets", {}):
        return entry["targets"][target_id]
    if group in entry.get("groups", {}):
        return entry["groups"][group]
    return truth["default"]


def expected_evidence(truth: dict[str, Any], scenario: str, target_id: str) -> list[str]:
    """Words some evidence line of `target_id` must contain under `scenario` (often none)."""
    return list((truth["scenarios"][scenario] or {}).get("evidence", {}).get(target_id, []))


def evidence_mismatches(
    truth: dict[str, Any], scenario: str, verdicts: dict[str, dict]
) -> list[str]:
    """One line per expected evidence word that no evidence line of its target contains."""
    problems = []
    for target_id, words in sorted(
        ((truth["scenarios"][scenario] or {}).get("evidence") or {}).items()
    ):
        lines = (verdicts.get(target_id) or {}).get("evidence") or []
        for word in words:
            if not any(word.lower() in str(line).lower() for line in lines):
                problems.append(f"{target_id}: no evidence line mentions {word!r}; got {lines}")
    return problems


def lab_target_groups(targets_path: Path) -> dict[str, str]:
    """target_id -> group for every target and control netprobe will probe from a lab list.

    `controls.silent_addresses` are not targets (they are asked about the domains): they are
    left out before loading, so this also works with a netprobe that does not know them yet.
    """
    import tempfile

    from netprobe.targets.lists import load_targets

    data = yaml.safe_load(targets_path.read_text())
    if "silent_addresses" in (data.get("controls") or {}):
        del data["controls"]["silent_addresses"]
        with tempfile.TemporaryDirectory() as folder:
            copy = Path(folder) / targets_path.name
            copy.write_text(yaml.safe_dump(data))
            return lab_target_groups(copy)
    target_list = load_targets(targets_path)
    groups = {domain.target_id: domain.group for domain in target_list.domains()}
    groups.update({endpoint.target_id: endpoint.group for endpoint in target_list.iter_endpoints()})
    return groups


def verdict_mismatches(
    truth: dict[str, Any], scenario: str, verdicts: dict[str, dict], groups: dict[str, str]
) -> list[str]:
    """One line per target whose verdict differs from the ground truth (or is missing).

    The method is compared only when a block is expected: an `ok` carries no method.
    """
    problems = []
    for target_id, group in sorted(groups.items()):
        expected = expected_verdict(truth, scenario, target_id, group)
        got = verdicts.get(target_id)
        if got is None:
            problems.append(f"{target_id}: missing from the report")
            continue
        same = got.get("status") == expected["status"] and (
            expected["status"] != "blocked" or got.get("method") == expected["method"]
        )
        if not same:
            problems.append(
                f"{target_id}: expected {expected['status']}/{expected['method']}, "
                f"got {got.get('status')}/{got.get('method')}"
            )
    return problems


def expected_changes(
    truth: dict[str, Any], scenario: str, groups: dict[str, str]
) -> dict[str, dict[str, Any]]:
    """target_id -> expected verdict, for the targets `scenario` changes from the default."""
    changed = {}
    for target_id, group in groups.items():
        expected = expected_verdict(truth, scenario, target_id, group)
        if expected != truth["default"]:
            changed[target_id] = expected
    return changed


def diff_mismatches(
    changes: list[dict[str, Any]], expected: dict[str, dict[str, Any]], kind: str
) -> list[str]:
    """One line per difference between `netprobe diff` changes and the expected ones."""
    problems = []
    seen = {change["target"]: change for change in changes}
    for target_id, verdict in sorted(expected.items()):
        change = seen.get(target_id)
        if change is None:
            problems.append(f"{target_id}: expected a {kind} change, diff reports none")
            continue
        after = change.get("after") or {}
        wanted_method = verdict["method"] if verdict["status"] == "blocked" else None
        if (change.get("kind"), after.get("status")) != (kind, verdict["status"]) or (
            wanted_method and after.get("method") != wanted_method
        ):
            problems.append(
                f"{target_id}: expected {kind} -> {verdict['status']}/{verdict['method']}, "
                f"got {change.get('kind')} -> {after.get('status')}/{after.get('method')}"
            )
    for target_id in sorted(set(seen) - set(expected)):
        change = seen[target_id]
        problems.append(
            f"{target_id}: unexpected {change.get('kind')} change "
            f"({(change.get('before') or {}).get('status')} -> "
            f"{(change.get('after') or {}).get('status')})"
        )
    return problems
