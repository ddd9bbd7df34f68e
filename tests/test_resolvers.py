"""resolvers.parse_resolver and system_nameserver: table tests."""

from __future__ import annotations

import pytest

from netprobe.model.resolvers import ResolverSpec, parse_resolver, system_nameserver

EXPECTED = "expected system, udp://IP[:port], tcp://IP[:port], tls://IP[:port] or https://HOST/PATH"


@pytest.mark.parametrize(
    ("address", "engine", "ip", "port", "url"),
    [
        ("udp://192.0.2.53", "udp", "192.0.2.53", 53, None),
        ("udp://192.0.2.53:5353", "udp", "192.0.2.53", 5353, None),
        ("tcp://[2001:db8::53]:5353", "tcp", "2001:db8::53", 5353, None),
        ("tcp://[2001:db8::53]", "tcp", "2001:db8::53", 53, None),
        ("udp://2001:db8::53", "udp", "2001:db8::53", 53, None),
        ("tls://192.0.2.53", "dot", "192.0.2.53", 853, None),
        ("tls://192.0.2.53:8853", "dot", "192.0.2.53", 8853, None),
        ("https://198.51.100.53/dns-query", "doh", None, None, "https://198.51.100.53/dns-query"),
        ("https://dns.example/dns-query", "doh", None, None, "https://dns.example/dns-query"),
        ("https://[2001:db8::53]:8443/q", "doh", None, None, "https://[2001:db8::53]:8443/q"),
        ("UDP://192.0.2.53", "udp", "192.0.2.53", 53, None),
    ],
)  # fmt: skip
def test_parse_resolver(address, engine, ip, port, url) -> None:
    assert parse_resolver(address) == ResolverSpec(address, engine, ip, port, url)


@pytest.mark.parametrize(
    "address",
    [
        "",
        "8.8.8.8",
        "dns.google",
        "udp://",
        "udp://dns.google",
        "udp://192.0.2.53:0",
        "udp://192.0.2.53:65536",
        "udp://192.0.2.53:port",
        "udp://192.0.2.53/",
        "tcp://[2001:db8::53",
        "tcp://[192.0.2.53]:53",
        "tcp://[2001:db8::53]x",
        "quic://192.0.2.53",
        "http://198.51.100.53/dns-query",
        "https://198.51.100.53",
        "https://198.51.100.53/",
        "https:///dns-query",
        "https://198.51.100.53:99999/dns-query",
    ],
)
def test_bad_resolvers_are_named_in_the_error(address: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_resolver(address)
    assert str(caught.value) == f"resolver '{address}': {EXPECTED}"


@pytest.mark.parametrize(
    ("text", "nameserver"),
    [
        ("nameserver 127.0.0.53\noptions edns0\n", "127.0.0.53"),
        ("# generated\nsearch lan\nnameserver 192.0.2.1\nnameserver 192.0.2.2\n", "192.0.2.1"),
        ("nameserver 2001:db8::1\n", "2001:db8::1"),
        ("nameserver fe80::1%eth0\n", "fe80::1%eth0"),
        ("  nameserver   192.0.2.9   # comment\n", "192.0.2.9"),
        ("# nameserver 192.0.2.1\n; nameserver 192.0.2.2\n", None),
        ("nameserver not-an-ip\nnameserver 192.0.2.3\n", "192.0.2.3"),
        ("search example\n", None),
        ("", None),
    ],
)
def test_system_nameserver(text: str, nameserver: str | None) -> None:
    assert system_nameserver(text) == nameserver


def test_system_reads_resolv_conf(tmp_path) -> None:
    resolv_conf = tmp_path / "resolv.conf"
    resolv_conf.write_text("nameserver 192.0.2.53\n")
    spec = parse_resolver("system", resolv_conf=str(resolv_conf))
    assert spec == ResolverSpec("system", "udp", "192.0.2.53", 53, None)


def test_system_without_nameserver_says_so(tmp_path) -> None:
    resolv_conf = tmp_path / "resolv.conf"
    resolv_conf.write_text("search example\n")
    with pytest.raises(ValueError, match="has no nameserver line"):
        parse_resolver("system", resolv_conf=str(resolv_conf))


def test_system_with_unreadable_resolv_conf_names_the_file(tmp_path) -> None:
    missing = tmp_path / "missing.conf"
    with pytest.raises(ValueError, match="missing.conf"):
        parse_resolver("system", resolv_conf=str(missing))
