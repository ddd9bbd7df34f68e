"""DNS probe against a loopback server over UDP, TCP, DoT and DoH (behaviour chosen by name)."""

from __future__ import annotations

import asyncio
import ssl

import pytest

from netprobe.model.records import answer_addresses
from netprobe.model.resolvers import ResolverSpec, parse_resolver
from netprobe.probes.dns import probe_dns
from netprobe.probes.tls import make_ssl_context
from tests.localservers import (
    FORGED_A,
    GENUINE_A,
    GENUINE_AAAA,
    DnsServer,
    doh_server,
    dot_server,
    probe_context,
    write_ca_bundle,
)


@pytest.fixture(scope="module")
def dns_server():
    with DnsServer() as server:
        yield server


@pytest.fixture(scope="module")
def client_context(ca, tmp_path_factory) -> ssl.SSLContext:
    return make_ssl_context(write_ca_bundle(ca, str(tmp_path_factory.mktemp("ca"))))


def run_dns(
    hostname: str,
    resolver: ResolverSpec,
    context: ssl.SSLContext | None = None,
    *,
    query_type: str = "A",
    timeout: float = 2.0,
    udp_wait: float = 0.0,
) -> dict:
    return asyncio.run(
        probe_dns(
            probe_context(f"domain:{hostname}"),
            hostname,
            query_type,
            resolver,
            resolver_role="probe",
            timeout=timeout,
            udp_wait=udp_wait,
            ssl_context=context or ssl.create_default_context(),
        )
    )


@pytest.mark.parametrize("scheme", ["udp", "tcp"])
@pytest.mark.parametrize(
    ("hostname", "query_type", "failure", "rcode", "addresses"),
    [
        ("example.test", "A", None, "NOERROR", [GENUINE_A]),
        ("example.test", "AAAA", None, "NOERROR", [GENUINE_AAAA]),
        ("cname.test", "A", None, "NOERROR", [GENUINE_A]),
        ("nodata.test", "A", "dns_no_answer", "NOERROR", []),
        ("nxdomain.test", "A", "dns_nxdomain_error", "NXDOMAIN", []),
        ("servfail.test", "A", "dns_servfail_error", "SERVFAIL", []),
        ("refused.test", "A", "dns_refused_error", "REFUSED", []),
    ],
)
def test_replies_map_to_failures(
    dns_server, scheme, hostname, query_type, failure, rcode, addresses
) -> None:
    resolver = parse_resolver(dns_server.address(scheme))
    record = run_dns(hostname, resolver, query_type=query_type)
    assert record["failure"] == failure
    assert record["rcode"] == rcode
    assert answer_addresses(record) == addresses
    assert record["engine"] == scheme
    assert record["resolver_ip"] == "127.0.0.1"
    assert record["resolver_address"] == dns_server.address(scheme)
    if failure:
        assert record["failed_operation"] == "resolve"


def test_cname_is_recorded_before_the_address(dns_server) -> None:
    record = run_dns("cname.test", parse_resolver(dns_server.address()))
    assert record["answers"] == [
        {"answer_type": "CNAME", "hostname": "example.test.", "ttl": 300},
        {"answer_type": "A", "ipv4": GENUINE_A, "ttl": 300},
    ]


@pytest.mark.parametrize("scheme", ["udp", "tcp"])
def test_no_reply_is_generic_timeout(dns_server, scheme) -> None:
    record = run_dns("silent.test", parse_resolver(dns_server.address(scheme)), timeout=0.3)
    assert record["failure"] == "generic_timeout_error"
    assert record["rcode"] is None
    assert record["answers"] == []


def test_udp_injection_keeps_the_second_reply(dns_server) -> None:
    record = run_dns("injected.test", parse_resolver(dns_server.address()), udp_wait=0.4)
    assert answer_addresses(record) == [FORGED_A]  # the forged reply arrives first
    assert len(record["late_replies"]) == 1  # the wrong-id datagram is ignored
    late = record["late_replies"][0]
    assert late["rcode"] == "NOERROR"
    assert late["answers"] == [{"answer_type": "A", "ipv4": GENUINE_A, "ttl": 300}]
    assert record["t0"] < late["t"] <= record["t"]


def test_udp_without_wait_records_no_late_replies(dns_server) -> None:
    record = run_dns("injected.test", parse_resolver(dns_server.address()), udp_wait=0.0)
    assert record["late_replies"] == []


def test_udp_to_closed_port_is_refused() -> None:
    with DnsServer() as server:
        address = server.address()
    record = run_dns("example.test", parse_resolver(address))
    assert record["failure"] == "connection_refused"


def test_record_fields_match_design(dns_server) -> None:
    record = run_dns("example.test", parse_resolver(dns_server.address()))
    assert list(record)[10:] == [
        "hostname", "query_type", "resolver_address", "resolver_role", "engine", "resolver_ip",
        "rcode", "answers", "late_replies",
    ]  # fmt: skip


def test_ipv6_resolver() -> None:
    with DnsServer("::1") as server:
        record = run_dns("example.test", parse_resolver(server.address("tcp")))
    assert record["failure"] is None
    assert record["resolver_ip"] == "::1"


@pytest.mark.parametrize(
    ("hostname", "failure", "addresses"),
    [
        ("example.test", None, [GENUINE_A]),
        ("injected.test", None, [GENUINE_A]),
        ("nxdomain.test", "dns_nxdomain_error", []),
    ],
)
def test_dns_over_tls(cert, client_context, hostname, failure, addresses) -> None:
    with dot_server(cert) as server:
        record = run_dns(hostname, parse_resolver(f"tls://127.0.0.1:{server.port}"), client_context)
    assert record["failure"] == failure
    assert record["engine"] == "dot"
    assert answer_addresses(record) == addresses
    assert record["late_replies"] == []


def test_dns_over_tls_offers_dot_alpn_on_a_shared_context(cert, client_context) -> None:
    client_context.set_alpn_protocols(["h2"])  # as a concurrent TLS probe would leave it
    with dot_server(cert) as server:
        record = run_dns(
            "example.test", parse_resolver(f"tls://127.0.0.1:{server.port}"), client_context
        )
    assert record["failure"] is None
    assert server.alpn_seen == ["dot"]


def test_dns_over_tls_unknown_authority(cert) -> None:
    with dot_server(cert) as server:
        record = run_dns("example.test", parse_resolver(f"tls://127.0.0.1:{server.port}"))
    assert record["failure"] == "ssl_unknown_authority"


@pytest.mark.parametrize(
    ("hostname", "path", "failure", "status", "addresses"),
    [
        ("example.test", "/dns-query", None, 200, [GENUINE_A]),
        ("servfail.test", "/dns-query", "dns_servfail_error", 200, []),
        ("example.test", "/broken", "dns_server_misbehaving", 500, []),
    ],
)
def test_dns_over_https(cert, client_context, hostname, path, failure, status, addresses) -> None:
    with doh_server(cert) as base:
        record = run_dns(hostname, parse_resolver(base + path), client_context)
    assert record["failure"] == failure
    assert record["http_status"] == status
    assert record["engine"] == "doh"
    assert record["resolver_ip"] == "127.0.0.1"
    assert answer_addresses(record) == addresses


def test_dns_over_https_timeout(cert, client_context) -> None:
    with doh_server(cert) as base:
        record = run_dns("silent.test", parse_resolver(base + "/dns-query"), client_context,
                         timeout=0.3)  # fmt: skip
    assert record["failure"] == "generic_timeout_error"
    assert record["http_status"] is None


def test_dns_over_https_by_name_has_no_resolver_ip(cert, client_context) -> None:
    with doh_server(cert) as base:
        url = base.replace("127.0.0.1", "localhost") + "/dns-query"
        record = run_dns("example.test", parse_resolver(url), client_context)
    assert record["failure"] is None
    assert record["resolver_ip"] is None


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        ([], []),
        ([{"answer_type": "CNAME", "hostname": "x.", "ttl": 1}], []),
        (
            [{"answer_type": "A", "ipv4": "192.0.2.1", "ttl": 1},
             {"answer_type": "AAAA", "ipv6": "2001:db8::1", "ttl": 1}],
            ["192.0.2.1", "2001:db8::1"],
        ),
    ],
)  # fmt: skip
def test_answer_addresses(answers, expected) -> None:
    assert answer_addresses({"answers": answers}) == expected


def test_other_query_types_are_rejected(dns_server) -> None:
    with pytest.raises(ValueError, match="MX"):
        run_dns("example.test", parse_resolver(dns_server.address()), query_type="MX")
