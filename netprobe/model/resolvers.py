"""Resolver specs: the address forms a user may give for a DNS resolver.

Rules:
- Accepted forms: `system` (first `nameserver` of resolv.conf, queried over UDP port 53),
  `udp://IP[:port]`, `tcp://IP[:port]`, `tls://IP[:port]` (DNS over TLS, default port 853) and
  `https://HOST/PATH` (DNS over HTTPS). IPv6 addresses with a port go in brackets:
  `tcp://[2001:db8::53]:5353`; a bare IPv6 address without a port is accepted too.
- UDP/TCP/DoT servers must be IP literals: resolving the resolver's own name would hide which
  server answered (and could itself be tampered with).
- `ResolverSpec.address` keeps the text as the user gave it; it is what records and headers show.
- `system_nameserver` is pure; only `parse_resolver("system")` reads a file.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

SYSTEM = "system"
DEFAULT_PORTS = {"udp": 53, "tcp": 53, "dot": 853}
_SCHEME_ENGINES = {"udp": "udp", "tcp": "tcp", "tls": "dot"}
_EXPECTED = (
    "expected system, udp://IP[:port], tcp://IP[:port], tls://IP[:port] or https://HOST/PATH"
)


@dataclass(frozen=True)
class ResolverSpec:
    address: str  # as given by the user, e.g. "system", "tls://192.0.2.53:853"
    engine: str  # "udp" | "tcp" | "dot" | "doh"
    ip: str | None  # server IP (for system: the first resolv.conf nameserver); None for doh
    port: int | None  # None for doh
    url: str | None  # doh only


def system_nameserver(resolv_conf_text: str) -> str | None:
    """The first `nameserver` IP in resolv.conf text, or None if there is none."""
    for line in resolv_conf_text.splitlines():
        fields = line.split("#", 1)[0].split(";", 1)[0].split()
        if len(fields) >= 2 and fields[0] == "nameserver" and _is_ip(fields[1].split("%", 1)[0]):
            return fields[1]
    return None


def parse_resolver(address: str, *, resolv_conf: str = "/etc/resolv.conf") -> ResolverSpec:
    """Parse one resolver spec; raise ValueError naming the spec on bad input."""
    text = address.strip()
    if text == SYSTEM:
        return _system_spec(resolv_conf)
    scheme, separator, rest = text.partition("://")
    scheme = scheme.lower()
    if not separator or not rest:
        raise _bad(address)
    if scheme == "https":
        return _doh_spec(text, address)
    engine = _SCHEME_ENGINES.get(scheme)
    if engine is None:
        raise _bad(address)
    ip, port = _split_host_port(rest, DEFAULT_PORTS[engine], address)
    return ResolverSpec(address=text, engine=engine, ip=ip, port=port, url=None)


def _system_spec(resolv_conf: str) -> ResolverSpec:
    try:
        with open(resolv_conf, encoding="utf-8", errors="replace") as handle:
            content = handle.read()
    except OSError as exc:
        raise ValueError(f"resolver 'system': cannot read {resolv_conf}: {exc.strerror}") from exc
    nameserver = system_nameserver(content)
    if nameserver is None:
        raise ValueError(
            f"resolver 'system': {resolv_conf} has no nameserver line; "
            "give a resolver explicitly, e.g. udp://IP"
        )
    return ResolverSpec(address=SYSTEM, engine="udp", ip=nameserver, port=53, url=None)


def _doh_spec(text: str, address: str) -> ResolverSpec:
    try:
        parts = urlsplit(text)
        hostname = parts.hostname
        _ = parts.port  # raises ValueError on a malformed port
    except ValueError as exc:
        raise _bad(address) from exc
    if not hostname or not parts.path or parts.path == "/":
        raise _bad(address)
    return ResolverSpec(address=text, engine="doh", ip=None, port=None, url=text)


def _split_host_port(rest: str, default_port: int, address: str) -> tuple[str, int]:
    """`IP`, `IP:port`, `[IPv6]` or `[IPv6]:port` (nothing after) -> (ip, port)."""
    if rest.startswith("["):
        host, bracket, tail = rest[1:].partition("]")
        if not bracket or (tail and not tail.startswith(":")) or ":" not in host:
            raise _bad(address)
        port_text = tail[1:] if tail else None
    elif rest.count(":") > 1:
        host, port_text = rest, None  # a bare IPv6 address
    else:
        host, _, port_text = rest.partition(":")
        port_text = port_text if ":" in rest else None
    if not _is_ip(host):
        raise _bad(address)
    return host, _parse_port(port_text, default_port, address)


def _parse_port(port_text: str | None, default_port: int, address: str) -> int:
    if port_text is None:
        return default_port
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise _bad(address)
    return int(port_text)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _bad(address: str) -> ValueError:
    return ValueError(f"resolver '{address}': {_EXPECTED}")
