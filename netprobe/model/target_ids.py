"""Target ids: made and taken apart here, nowhere else.

Rules:
- A domain target is `domain:<name>` (lower-case, no trailing dot).
- An endpoint target is `endpoint:<ip>:<port>`, IPv6 in brackets: `endpoint:[2001:db8::1]:443`;
  the address is in compressed form.
- `parse_target_id` never raises: an id of another shape is kind `other`, so records written by
  other or later software still analyse.
- `label()` is how a person sees a target: the name, or `ip:port` with IPv6 bracketed.
- A tls record's `address_sources` say where its address came from: `<resolver role>:<resolver>`
  (`control:1.1.1.1`, `probe:system`) for a domain's address, `endpoint` for a listed endpoint.
"""

from __future__ import annotations

import ipaddress
from typing import NamedTuple

DOMAIN = "domain"
ENDPOINT = "endpoint"
OTHER = "other"
DOMAIN_PREFIX = DOMAIN + ":"
ENDPOINT_PREFIX = ENDPOINT + ":"


class TargetId(NamedTuple):
    kind: str  # DOMAIN | ENDPOINT | OTHER
    name: str | None  # the domain, for DOMAIN
    ip: str | None  # the address, for ENDPOINT
    port: int | None  # the port, for ENDPOINT

    def label(self, raw: str) -> str:
        if self.kind == DOMAIN and self.name is not None:
            return self.name
        if self.kind == ENDPOINT and self.ip is not None:
            return endpoint_label(self.ip, self.port)
        return raw


def domain_id(name: str) -> str:
    """`domain:telegram.org` (lower-case, no trailing dot)."""
    return f"{DOMAIN_PREFIX}{name.lower().rstrip('.')}"


def endpoint_id(ip: str, port: int) -> str:
    """`endpoint:1.2.3.4:443`, `endpoint:[2001:db8::1]:443` (address in compressed form)."""
    return compressed_endpoint_id(ipaddress.ip_address(ip).compressed, port)


def compressed_endpoint_id(compressed: str, port: int) -> str:
    """`endpoint_id` of an address already in compressed form (a range sample): no parsing."""
    host = f"[{compressed}]" if ":" in compressed else compressed
    return f"{ENDPOINT_PREFIX}{host}:{port}"


def endpoint_label(ip: str, port: int | None) -> str:
    """`1.2.3.4:443`, `[2001:db8::1]:443`; the bare address when the port is unknown."""
    if port is None:
        return ip
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def is_domain_id(target_id: str) -> bool:
    """Whether `parse_target_id(target_id).kind` is DOMAIN, without building the parts (fast)."""
    return target_id.startswith(DOMAIN_PREFIX)


def is_endpoint_id(target_id: str) -> bool:
    """Whether the id names an endpoint (`endpoint:` prefix; its parts may still be malformed)."""
    return target_id.startswith(ENDPOINT_PREFIX)


def parse_target_id(target_id: str) -> TargetId:
    """Take an id apart; ids of an unknown shape come back as kind OTHER."""
    if target_id.startswith(DOMAIN_PREFIX):
        return TargetId(DOMAIN, target_id[len(DOMAIN_PREFIX) :], None, None)
    if target_id.startswith(ENDPOINT_PREFIX):
        host, sep, port_text = target_id[len(ENDPOINT_PREFIX) :].rpartition(":")
        if sep and port_text.isdigit():
            ip = host[1:-1] if host.startswith("[") and host.endswith("]") else host
            return TargetId(ENDPOINT, None, ip, int(port_text))
    return TargetId(OTHER, None, None, None)


def target_label(target_id: str) -> str:
    """How a person sees a target id: `telegram.org`, `1.2.3.4:443`, `[2001:db8::1]:443`."""
    return parse_target_id(target_id).label(target_id)


# ---------------------------------------------------------------- address sources

ENDPOINT_SOURCE = "endpoint"  # the address is a listed endpoint, not a DNS answer


def address_source(resolver_role: str, resolver_address: str) -> str:
    """`control:1.1.1.1`, `probe:system`: the resolver that returned an address."""
    return f"{resolver_role}:{resolver_address}"


def address_source_role(label: str) -> str | None:
    """`control` / `probe` (the resolver role) of `control:<spec>` / `probe:<spec>`, `endpoint`
    for a listed endpoint's address; None for a label of any other shape."""
    role, sep, _spec = label.partition(":")
    if sep:
        return role
    return ENDPOINT_SOURCE if label == ENDPOINT_SOURCE else None
