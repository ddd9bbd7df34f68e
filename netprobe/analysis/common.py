"""Shared helpers of the analysis: signs, failure words, bogons and address helpers.

Rules:
- Pure: no I/O, no network. Everything here works on values already stored in records.
- The words (statuses, methods, layers) are `netprobe.model.vocabulary`'s, the failure strings
  `netprobe.model.failures`'s; this module defines neither.
- A `Sign` is what one attempt of one layer shows: `ok`, `blocked` (with a method), `down`,
  `unknown` (a failure the controls cannot explain) or `neutral` (nothing to learn, e.g. a name
  without AAAA records at either resolver).
- Bogon ranges are REFERENCE.md §2; an address inside a range the header declares as expected is
  never a bogon (the test lab uses documentation ranges on purpose).
- Attempts: a record's attempt is its `attempt`, and for the records of a control round
  (`control_round`) the round too: every round of the controls counts as an attempt of its own.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable
from typing import Any, NamedTuple

from netprobe.model import failures as f
from netprobe.model.failures import CONNECT_FAILURES_WITHOUT_OPERATION, CONNECT_OPERATION
from netprobe.model.records import (
    CONFIRMATION,
    CONTROL_ROUND,
    RESOLVER_SILENT,
    TCP,
)
from netprobe.model.vocabulary import LAYERS, METHOD_ORDER

_PHRASES = {
    f.GENERIC_TIMEOUT: "time out",
    f.TIMED_OUT: "time out",
    f.CONNECTION_RESET: "reset",
    f.CONNECTION_REFUSED: "refused",
    f.EOF_ERROR: "closed by the peer",
    f.HOST_UNREACHABLE: "host unreachable",
    f.NETWORK_UNREACHABLE: "network unreachable",
    f.DNS_NXDOMAIN: "NXDOMAIN",
    f.DNS_SERVFAIL: "SERVFAIL",
    f.DNS_REFUSED: "REFUSED",
    f.DNS_NO_ANSWER: "no answer",
    f.DNS_SERVER_MISBEHAVING: "bad reply",
    f.SSL_INVALID_HOSTNAME: "certificate for another name",
    f.SSL_UNKNOWN_AUTHORITY: "untrusted certificate",
    f.SSL_INVALID_CERTIFICATE: "invalid certificate",
    f.SSL_FAILED_HANDSHAKE: "handshake failure",
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


# A layer's signs, by attempt number.
AttemptSigns = dict[int, list[Sign]]

# Record fields added by issue 15 (the contract's names; a missing field means the old behaviour).
# They are the records' field names, not words of a verdict, so they live here, next to the readers.
# Round r's attempts are numbered (r + 1) * ROUND_STRIDE + attempt: after every planned attempt,
# in round order, and never equal to a planned attempt (`repeat` is at most 100).
ROUND_STRIDE = 1 << 16


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
    if record.get("type") == TCP:
        return True
    operation = record.get("failed_operation")
    if operation:
        return operation == CONNECT_OPERATION
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


def attempt_of(record: dict) -> int:
    """The record's attempt number (0 when missing or malformed); a control round's records get
    an attempt number of their own per round (see ROUND_STRIDE)."""
    attempt = record.get("attempt") or 0
    if attempt.__class__ is not int:  # fast path: called for every record of every run
        attempt = _as_int(attempt)
    control_round = record.get(CONTROL_ROUND)
    if control_round is None:
        return attempt
    return (_as_int(control_round) + 1) * ROUND_STRIDE + attempt


def _as_int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def is_confirmation(record: dict) -> bool:
    """A re-probe of a failing step (not an attempt of its own)."""
    return bool(record.get(CONFIRMATION))


def is_silent(record: dict) -> bool:
    """A dns record of the injection probe (asked of an address that runs no DNS server)."""
    return record.get("resolver_role") == RESOLVER_SILENT


def split_by_type(records: list[dict]) -> dict[str, list[dict]]:
    """A target's records by type, so each layer reads only its own: one list per layer of
    LAYERS that has records (a layer without records has no key), in file order."""
    split: dict[Any, list[dict]] = {}
    for record in records:
        kind = record.get("type")
        same_type = split.get(kind)
        if same_type is not None:
            same_type.append(record)
        elif kind in _LAYER_NAMES:
            split[kind] = [record]
    return split


_LAYER_NAMES = frozenset(LAYERS)


def ips_text(ips: Iterable[str]) -> str:
    return ", ".join(sorted(ips)) or "nothing"


def first_sign(signs: list[Sign], kind: str) -> Sign:
    return next(sign for sign in signs if sign.kind == kind)


def majority_method(methods: list[str | None]) -> str | None:
    """The commonest method; ties go to the one a client meets first (METHOD_ORDER)."""
    counts = tally(m for m in methods if m)
    if not counts:
        return None
    return min(
        counts, key=lambda m: (-counts[m], METHOD_ORDER.index(m) if m in METHOD_ORDER else 99, m)
    )
