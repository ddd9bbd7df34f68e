"""Censorship scenarios: what the lab ISP does to traffic, and what netprobe should conclude.

Rules:
- A scenario is data: a DNS policy for the ISP resolver, iptables/ip6tables rules for the ISP's
  FORWARD chain, and whether to throttle. `lab.Lab.apply()` turns it into commands; applying one
  first removes the previous one, so scenarios never stack.
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


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    dns_mode: str = "forward"  # forward | nxdomain | bogon | redirect
    rules: tuple[Rule, ...] = field(default_factory=tuple)
    throttle: bool = False


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


def lab_target_groups(targets_path: Path) -> dict[str, str]:
    """target_id -> group for every target and control netprobe will probe from lab.yaml."""
    from netprobe.targets.lists import load_targets

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
