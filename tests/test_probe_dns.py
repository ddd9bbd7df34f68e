"""DNS probe against a loopback server over UDP, TCP, DoT and DoH (behaviour chosen by name).

DoH runs against an HTTP/1.1-only server and an HTTP/2-only one (tests/doh_h2.py, like BIND 9.18).
"""

from __future__ import annotations

import asyncio
import ssl

import pytest

from netprobe.model.records import answer_addresses
from netprobe.model.resolvers import ResolverSpec, parse_resolver
from netprobe.probes.dns import EDNS_PAYLOAD, probe_dns
from netprobe.probes.doh import DohClients
from netprobe.probes.tls import make_ssl_context
from netprobe.run.executor import Runner, RunOptions
from netprobe.targets.lists import parse_targets
from tests.localservers import (
    FORGED_A,
    GENUINE_A,
    GENUINE_AAAA,
    DnsServer,
    closed_port,
    doh_server,
    dot_server,
    h2_doh_server,
    probe_context,
    udp_forger,
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
    resolver_role: str = "probe",
) -> dict:
    return asyncio.run(
        probe_dns(
            probe_context(f"domain:{hostname}"),
            hostname,
            query_type,
            resolver,
            resolver_role=resolver_role,
            timeout=timeout,
            udp_wait=udp_wait,
            ssl_context=context or ssl.create_default_context(),
        )
    )


def run_pooled(
    queries: list[tuple[str, ResolverSpec]],
    context: ssl.SSLContext,
    *,
    timeout: float = 2.0,
    concurrent: bool = False,
) -> tuple[list[dict], int]:
    """The records of `queries` asked through one DohClients pool, and the pool's client count."""

    async def ask(pool: DohClients, hostname: str, resolver: ResolverSpec) -> dict:
        return await probe_dns(
            probe_context(f"domain:{hostname}"), hostname, "A", resolver, resolver_role="control",
            timeout=timeout, udp_wait=0.0, ssl_context=context, doh_clients=pool,
        )  # fmt: skip

    async def main() -> tuple[list[dict], int]:
        pool = DohClients(context)
        try:
            if concurrent:
                found = await asyncio.gather(*(ask(pool, *query) for query in queries))
                return list(found), len(pool)
            return [await ask(pool, *query) for query in queries], len(pool)
        finally:
            await pool.aclose()

    return asyncio.run(main())


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
        "rcode", "answers", "late_replies", "flags", "edns_payload", "mismatched_replies",
        "udp_sends",
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
    assert record["http_version"] == "HTTP/1.1"  # the server offers only that
    assert record["engine"] == "doh"
    assert record["resolver_ip"] == "127.0.0.1"
    assert answer_addresses(record) == addresses


def test_dns_over_https_timeout(cert, client_context) -> None:
    with doh_server(cert) as base:
        record = run_dns("silent.test", parse_resolver(base + "/dns-query"), client_context,
                         timeout=0.3)  # fmt: skip
    assert record["failure"] == "generic_timeout_error"
    assert record["http_status"] is None
    assert record["http_version"] is None
    assert "flags" not in record


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


# ---------------------------------------------------------------- issue 15: DNS details


@pytest.mark.parametrize("scheme", ["udp", "tcp"])
def test_queries_carry_edns0_and_replies_record_flags(scheme) -> None:
    with DnsServer() as server:
        record = run_dns("example.test", parse_resolver(server.address(scheme)))
    (query,) = server.queries
    assert query.edns == 0 and query.payload == EDNS_PAYLOAD == 1232
    assert record["failure"] is None
    assert record["flags"] == ["QR", "RD"]  # the test server sets neither AA nor RA
    assert record["edns_payload"] == 8192  # dnspython's make_response default
    assert type(record["edns_payload"]) is int  # not dnspython's RdataClass enum
    assert ("mismatched_replies" in record) == (scheme == "udp")
    assert "truncated_udp" not in record and "retried_over_tcp" not in record


def test_no_reply_has_no_flags(dns_server) -> None:
    record = run_dns("silent.test", parse_resolver(dns_server.address()), timeout=0.3)
    assert "flags" not in record and "edns_payload" not in record
    assert record["mismatched_replies"] == 0


def test_truncated_udp_reply_is_asked_again_over_tcp(dns_server) -> None:
    record = run_dns("truncated.test", parse_resolver(dns_server.address()))
    assert record["failure"] is None  # not dns_no_answer: the TCP retry's answer counts
    assert record["engine"] == "udp"
    assert record["rcode"] == "NOERROR"
    assert answer_addresses(record) == [GENUINE_A]
    assert "TC" not in record["flags"]
    assert record["retried_over_tcp"] is True
    truncated = record["truncated_udp"]
    assert truncated["rcode"] == "NOERROR" and truncated["answers"] == []
    assert "TC" in truncated["flags"]
    assert record["t0"] <= truncated["t"] <= record["t"]


def test_truncated_udp_reply_with_a_failing_tcp_retry(dns_server) -> None:
    record = run_dns("truncsilent.test", parse_resolver(dns_server.address()), timeout=0.5)
    assert record["failure"] == "generic_timeout_error"  # the TCP retry's failure
    assert record["rcode"] is None and record["answers"] == []
    assert record["retried_over_tcp"] is True
    assert "TC" in record["truncated_udp"]["flags"]
    assert record["t"] - record["t0"] < 1.0  # one timeout for the whole call


def test_reply_to_another_question_is_ignored(dns_server) -> None:
    record = run_dns("mismatched.test", parse_resolver(dns_server.address()), udp_wait=0.2)
    assert record["failure"] is None
    assert answer_addresses(record) == [GENUINE_A]  # not MISMATCHED_A, which came first
    assert record["mismatched_replies"] == 1
    assert record["late_replies"] == []


def test_silent_address_without_a_server_times_out() -> None:
    # Loopback answers with ICMP port unreachable; the silent role listens on regardless.
    address = f"udp://127.0.0.1:{closed_port()}"
    record = run_dns("example.test", parse_resolver(address), timeout=0.3,
                     resolver_role="silent")  # fmt: skip
    assert record["failure"] == "generic_timeout_error"
    assert record["rcode"] is None
    assert record["resolver_role"] == "silent"
    assert record["t"] - record["t0"] >= 0.3


def test_silent_address_with_a_forger_records_the_forged_answer() -> None:
    with udp_forger() as address:
        record = run_dns("example.test", parse_resolver(address), timeout=0.5,
                         resolver_role="silent")  # fmt: skip
    assert record["failure"] is None
    assert record["rcode"] == "NOERROR"
    assert answer_addresses(record) == [FORGED_A]
    assert record["resolver_role"] == "silent"
    assert record["flags"] == ["QR", "RD"]


@pytest.fixture
def h2_server(cert):
    with h2_doh_server(cert) as server:
        yield server


@pytest.mark.parametrize(
    ("hostname", "failure", "addresses"),
    [
        ("example.test", None, [GENUINE_A]),
        ("servfail.test", "dns_servfail_error", []),
        ("nxdomain.test", "dns_nxdomain_error", []),
    ],
)
def test_dns_over_https_to_an_http2_only_server(
    h2_server, client_context, hostname, failure, addresses
) -> None:
    record = run_dns(hostname, parse_resolver(h2_server.url), client_context)
    assert record["failure"] == failure
    assert record["http_status"] == 200
    assert record["http_version"] == "HTTP/2"
    assert answer_addresses(record) == addresses
    assert record["flags"] == ["QR", "RD"]
    assert h2_server.alpn_seen == ["h2"]
    (query,) = h2_server.queries
    assert query.edns == 0 and query.payload == EDNS_PAYLOAD


def test_dns_over_https_http2_error_status(h2_server, client_context) -> None:
    url = h2_server.url.replace("/dns-query", "/elsewhere")
    record = run_dns("example.test", parse_resolver(url), client_context)
    assert record["failure"] == "dns_server_misbehaving"
    assert record["http_status"] == 404
    assert record["http_version"] == "HTTP/2"


def test_dns_over_https_offers_h2_and_http11_on_a_shared_context(h2_server, client_context):
    client_context.set_alpn_protocols(["dot"])  # as a concurrent DoT probe would leave it
    record = run_dns("example.test", parse_resolver(h2_server.url), client_context)
    assert record["failure"] is None
    assert h2_server.alpn_seen == ["h2"]


@pytest.mark.parametrize("concurrent", [False, True])
def test_pooled_doh_queries_share_one_http2_connection(h2_server, client_context, concurrent):
    resolver = parse_resolver(h2_server.url)
    names = ["example.test", "cname.test", "nxdomain.test"] * 4
    found, clients = run_pooled([(name, resolver) for name in names], client_context,
                                concurrent=concurrent)  # fmt: skip
    assert [record["http_version"] for record in found] == ["HTTP/2"] * len(names)
    assert [record["failure"] for record in found].count(None) == 8
    assert len(h2_server.queries) == len(names)
    assert h2_server.connections == 1
    assert clients == 1


def test_pooled_doh_connection_survives_a_timed_out_query(h2_server, client_context) -> None:
    resolver = parse_resolver(h2_server.url)
    found, _ = run_pooled([("silent.test", resolver), ("example.test", resolver)],
                          client_context, timeout=0.3)  # fmt: skip
    assert [record["failure"] for record in found] == ["generic_timeout_error", None]
    assert h2_server.connections == 1


def test_pool_has_one_client_per_resolver(cert, client_context) -> None:
    with h2_doh_server(cert) as first, h2_doh_server(cert) as second, doh_server(cert) as base:
        resolvers = [parse_resolver(url) for url in (first.url, second.url, base + "/dns-query")]
        found, clients = run_pooled([("example.test", r) for r in resolvers * 2], client_context)
    assert [record["http_version"] for record in found] == ["HTTP/2", "HTTP/2", "HTTP/1.1"] * 2
    assert clients == 3
    assert first.connections == second.connections == 1


def test_unpooled_doh_queries_each_open_a_connection(h2_server, client_context) -> None:
    for _ in range(2):
        assert (
            run_dns("example.test", parse_resolver(h2_server.url), client_context)["failure"]
            is None
        )
    assert h2_server.connections == 2


class _ListSink:
    def __init__(self) -> None:
        self.records: list[dict] = []

    def write_header(self, header: dict) -> None:
        pass

    def write(self, record: dict) -> None:
        self.records.append(record)


def test_a_run_shares_one_doh_connection_per_resolver_and_closes_it(
    ca, cert, dns_server, tmp_path
) -> None:
    # Names without addresses, so that no TLS follow-up is planned and nothing leaves loopback.
    targets = parse_targets(
        "name: local\ngroups:\n  web:\n"
        "    domains: [nodata.test, nxdomain.test, servfail.test, refused.test]\n",
        "local.yaml",
    )
    with h2_doh_server(cert) as server:
        options = RunOptions(
            resolvers=[dns_server.address()], control_resolvers=[server.url],
            ca_bundle=write_ca_bundle(ca, str(tmp_path)), timeout=2.0, udp_wait=0.0,
            concurrency=8, repeat=2,
        )  # fmt: skip
        runner = Runner([targets], options)
        sink = _ListSink()
        assert asyncio.run(runner.run(sink, {"type": "header"})) is None  # type: ignore[arg-type]
        doh = [r for r in sink.records if r["type"] == "dns" and r["engine"] == "doh"]
        assert len(doh) == 4 * 2 * 2  # names x query types x repeats
        assert {r["http_version"] for r in doh} == {"HTTP/2"}
        assert server.connections == 1
        assert runner.settings.doh_clients is not None and len(runner.settings.doh_clients) == 0


class _DropFirstQueries:
    """A UDP DNS server on loopback that ignores the first `drop` datagrams (a lossy link), then
    answers A GENUINE_A; counts what it received."""

    def __init__(self, drop: int) -> None:
        import socket
        import threading

        self.received = 0
        self._drop = drop
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.05)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        import dns.message
        import dns.rrset

        while not self._stop.is_set():
            try:
                wire, client = self._sock.recvfrom(65535)
            except TimeoutError:
                continue
            self.received += 1
            if self.received <= self._drop:
                continue
            query = dns.message.from_wire(wire)
            reply = dns.message.make_response(query)
            reply.answer.append(
                dns.rrset.from_text(query.question[0].name, 300, "IN", "A", GENUINE_A)
            )
            self._sock.sendto(reply.to_wire(), client)

    def __enter__(self) -> _DropFirstQueries:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()


@pytest.mark.parametrize(
    ("drop", "sends", "answered"), [(0, 1, True), (1, 2, True), (2, 3, True), (3, 3, False)]
)
def test_udp_query_is_resent_while_no_reply_comes(drop: int, sends: int, answered: bool) -> None:
    # One lost datagram on a lossy link must not be a failed lookup: the probe resends the query
    # (same id and question) 1 s and 3 s after the first send, within its timeout.
    with _DropFirstQueries(drop) as server:
        record = run_dns(
            "lossy.test", parse_resolver(f"udp://127.0.0.1:{server.port}"), timeout=4.0
        )
    assert record["udp_sends"] == sends
    assert server.received == sends
    if answered:
        assert record["failure"] is None and answer_addresses(record) == [GENUINE_A]
    else:
        assert record["failure"] == "generic_timeout_error"
