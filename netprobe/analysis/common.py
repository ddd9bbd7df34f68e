"""Shared vocabulary of the analysis: signs, failure words, bogons and address helpers.

Rules:
- Pure: no I/O, no network. Everything here works on values already stored in records.
- A `Sign` is what one attempt of one layer shows: `ok`, `blocked` (with a method), `down`,
  `unknown` (a failure the controls cannot explain) or `neutral` (nothing to learn, e.g. a name
  without AAAA records at either resolver).
- Bogon ranges are REFERENCE.md §2; an address inside a range the header declares as expected is
  never a bogon (the test lab uses documentation ranges on purpose).
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable
from typing import Any, NamedTuple

OK = "ok"
BLOCKED = "blocked"
DOWN = "down"
INCONCLUSIVE = "inconclusive"
NOT_APPLICABLE = "n/a"
UNKNOWN = "unknown"  # a sign, never a verdict: turns into `inconclusive`
NEUTRAL = "neutral"

# Methods, in the order a client meets them: the first blocked layer names the verdict's method.
METHOD_ORDER = ("dns", "ip", "sni", "tls", "mitm")

TIMEOUTS = frozenset({"generic_timeout_error", "timed_out"})
CERTIFICATE_FAILURES = frozenset(
    {"ssl_invalid_hostname", "ssl_unknown_authority", "ssl_invalid_certificate"}
)
CONNECT_FAILURES_WITHOUT_OPERATION = frozenset(
    {
        "connection_refused",
        "host_unreachable",
        "network_unreachable",
        "network_down",
        "address_family_not_supported",
        "address_not_available",
        "permission_denied",
    }
)

_PHRASES = {
    "generic_timeout_error": "time out",
    "timed_out": "time out",
    "connection_reset": "reset",
    "connection_refused": "refused",
    "eof_error": "closed by the peer",
    "host_unreachable": "host unreachable",
    "network_unreachable": "network unreachable",
    "dns_nxdomain_error": "NXDOMAIN",
    "dns_servfail_error": "SERVFAIL",
    "dns_refused_error": "REFUSED",
    "dns_no_answer": "no answer",
    "dns_server_misbehaving": "bad reply",
    "ssl_invalid_hostname": "certificate for another name",
    "ssl_unknown_authority": "untrusted certificate",
    "ssl_invalid_certificate": "invalid certificate",
    "ssl_failed_handshake": "handshake failure",
}

_BOGONS = [
    ipaddress.ip_network(text)
    for text in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "255.255.255.255/32",
        "::/128",
        "::1/128",
        "fc00::/7",
        "fe80::/10",
        "ff00::/8",
        "2001:db8::/32",
    )
]


class Sign(NamedTuple):
    """What one attempt of one layer shows, with the words a person can check.

    A named tuple: a year-long timeline builds millions of them, three times faster than a
    frozen dataclass.
    """

    kind: str  # OK | BLOCKED | DOWN | UNKNOWN | NEUTRAL
    detail: str = ""
    method: str | None = None
    failure: str | None = None  # the failure string behind it, for summaries
    port: int | None = None
    seconds: float | None = None  # duration of a success, for the "slow" note


def phrase(failure: str | None) -> str:
    """A short human word for an OONI failure string ("time out", "reset", ...)."""
    if failure is None:
        return "success"
    return _PHRASES.get(failure, failure)


def parse_ip(text: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    return _parse_ip(str(text))


@functools.lru_cache(maxsize=1 << 16)
def _parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    # Cached: a timeline re-analyses the same few hundred addresses in thousands of runs.
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


@functools.lru_cache(maxsize=1 << 16)
def family(ip: str) -> str:
    # Cached: called for every tcp/tls record of every run, over the same few hundred addresses.
    address = parse_ip(ip)
    return "IPv6" if address is not None and address.version == 6 else "IPv4"


def parse_networks(cidrs: Any) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [net for net in (_parse_network(str(cidr)) for cidr in cidrs or []) if net is not None]


@functools.lru_cache(maxsize=4096)
def _parse_network(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    # Cached: every run of a target list declares the same ranges.
    try:
        return ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return None  # a malformed range in the header simply does not vouch for anything


def in_networks(ip: str, networks: list) -> bool:
    address = parse_ip(ip)
    if address is None:
        return False
    return any(address.version == net.version and address in net for net in networks)


def is_bogon(ip: str, expected: list) -> bool:
    """A reserved/private address that no public name should resolve to, unless declared expected."""
    if in_networks(ip, expected):
        return False
    return in_networks(ip, _BOGONS)


def endpoint_label(ip: str, port: int | None) -> str:
    if port is None:
        return ip
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def duration(record: dict) -> float:
    try:
        return max(0.0, float(record.get("t", 0.0)) - float(record.get("t0", 0.0)))
    except (TypeError, ValueError):
        return 0.0


def answer_ips(answers: Any) -> list[str]:
    """The A/AAAA addresses of a dns `answers` list, in order, without CNAMEs."""
    ips = []
    for answer in answers or []:
        if not isinstance(answer, dict):
            continue
        ip = answer.get("ipv4") or answer.get("ipv6")
        if ip:
            ips.append(str(ip))
    return ips


def connect_failed(record: dict) -> bool:
    """True if a tls/tcp record failed before the TLS handshake started (TCP connect)."""
    failure = record.get("failure")
    if failure is None:
        return False
    if record.get("type") == "tcp":
        return True
    operation = record.get("failed_operation")
    if operation:
        return operation == "connect"
    return failure in CONNECT_FAILURES_WITHOUT_OPERATION


def tally(items: Iterable[str]) -> dict[str, int]:
    """How often each item occurs, in first-seen order: a plain dict, as `Counter` is slow to
    build and the analysis builds one for every layer of every target."""
    counts: dict[str, int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return counts


def count_phrase(counts: dict[str, int]) -> str:
    """`{"reset": 2, "time out": 1}` -> "reset 2x, time out 1x" (sorted, deterministic)."""
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{key} {value}x" if value > 1 else key for key, value in items)
