"""DNS probe: one A or AAAA query to one resolver over UDP, TCP, DoT or DoH (record type `dns`).

Rules:
- One question, no retries, no search domains, RD set, EDNS0 with a UDP payload of 1232
  (`EDNS_PAYLOAD`); the answer is recorded as received. Every record that got a reply has the
  reply's header `flags` (sorted dnspython names) and `edns_payload` (null without EDNS0).
- UDP uses our own socket so that every reply is seen: after the first reply to the query we
  keep listening `udp_wait` seconds and record further replies to it in `late_replies` (a
  second, different reply is the signature of on-path injection). A reply to the query is one
  `query.is_response` accepts (id, QR, opcode and the question section): datagrams with another
  id are ignored, and those with our id whose question does not match are ignored too and
  counted in `mismatched_replies` (UDP records only). Other engines record `late_replies: []`.
- A UDP reply with TC set is re-asked over TCP to the same server inside the same call and the
  same `timeout`: the record's rcode/answers/flags/failure are the TCP reply's, `engine` stays
  "udp", `truncated_udp` keeps what the truncated reply held and `retried_over_tcp` is true.
- Resolver role "silent" (the injection probe: an address that runs no DNS server) ignores ICMP
  errors and listens until the timeout, so a forged reply is recorded even when the host's port
  unreachable came first; no reply at all is `generic_timeout_error`.
- rcode -> failure: NXDOMAIN/SERVFAIL/REFUSED -> dns_*_error, other non-NOERROR ->
  dns_server_misbehaving, NOERROR without an address of the queried type -> dns_no_answer.
  DoH answers other than HTTP 200 -> dns_server_misbehaving with `http_status` recorded.
- DoH (`netprobe.probes.doh`): HTTP/2 or HTTP/1.1 as the server chooses, `http_version` recorded,
  through the run's pooled client for that resolver when `doh_clients` is given.
- Bogon answers are NOT flagged here: judging answers is analysis's job.
- Network failures become the record's `failure` (via `netprobe.probes.errors.classify`).
- DoT runs over the TLS probe's own channel (not dnspython's): the SSLContext is shared with
  concurrent TLS probes and DoH, and only setting ALPN "dot" immediately before `wrap_bio` keeps
  it from offering another probe's ALPN; resets and EOFs are also classified as in the TLS probe.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import struct
from typing import Any, cast
from urllib.parse import urlsplit

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import httpx

from netprobe.model import records
from netprobe.model.failures import DNS_NO_ANSWER, DNS_SERVER_MISBEHAVING, rcode_failure
from netprobe.model.resolvers import ResolverSpec
from netprobe.model.vocabulary import QUERY_TYPES
from netprobe.probes import ProbeContext
from netprobe.probes.doh import DOH_MEDIA_TYPE, DohClients, ask_doh
from netprobe.probes.errors import classify
from netprobe.probes.tcp import connect_socket
from netprobe.probes.tls import TlsChannel

__all__ = [
    "DOH_MEDIA_TYPE",
    "EDNS_PAYLOAD",
    "describe_answers",
    "probe_dns",
]

# Seconds to wait for a UDP reply before sending the query again (first resend 1 s after the
# first send, the second 2 s after that), within the probe's timeout. Resends carry the same id
# and question, so a reply to any of them answers the lookup; identical duplicates that come
# later are ordinary late replies, not injection.
UDP_RESEND_AFTER = (1.0, 2.0)
DOT_ALPN = ("dot",)  # IANA ALPN id for DNS over TLS
EDNS_PAYLOAD = 1232  # the DNS flag day 2020 size: no IP fragmentation on common paths

# What a query can fail with; anything else is a bug and propagates.
_NETWORK_ERRORS = (OSError, TimeoutError, EOFError, dns.exception.DNSException, httpx.HTTPError)


def describe_answers(message: dns.message.Message) -> list[dict[str, Any]]:
    """The record form of a reply's answer section: A, AAAA and CNAME records."""
    answers: list[dict[str, Any]] = []
    for rrset in message.answer:
        for rdata in rrset:
            if rdata.rdtype == dns.rdatatype.A:
                answers.append({"answer_type": "A", "ipv4": rdata.address, "ttl": rrset.ttl})
            elif rdata.rdtype == dns.rdatatype.AAAA:
                answers.append({"answer_type": "AAAA", "ipv6": rdata.address, "ttl": rrset.ttl})
            elif rdata.rdtype == dns.rdatatype.CNAME:
                answers.append(
                    {"answer_type": "CNAME", "hostname": rdata.target.to_text(), "ttl": rrset.ttl}
                )
    return answers


def describe_flags(message: dns.message.Message) -> list[str]:
    """The reply's header flags as sorted dnspython names, e.g. ["QR", "RA", "RD"]."""
    return sorted(dns.flags.to_text(message.flags).split())


def reply_failure(rcode: str, answers: list[dict[str, Any]], query_type: str) -> str | None:
    """The failure a reply stands for (None when it holds an address of the queried type)."""
    failure = rcode_failure(rcode)
    if failure is None and not any(answer["answer_type"] == query_type for answer in answers):
        return DNS_NO_ANSWER
    return failure


async def probe_dns(
    ctx: ProbeContext,
    hostname: str,
    query_type: str,
    resolver: ResolverSpec,
    *,
    resolver_role: str,
    timeout: float,
    udp_wait: float,
    ssl_context: ssl.SSLContext,
    doh_clients: DohClients | None = None,
) -> records.DnsRecord:
    """Ask `resolver` for `hostname`'s `query_type` (A or AAAA) records; return a `dns` record."""
    if query_type not in QUERY_TYPES:
        raise ValueError(f"query type {query_type!r}: expected one of {', '.join(QUERY_TYPES)}")
    query = dns.message.make_query(hostname, query_type, use_edns=0, payload=EDNS_PAYLOAD)
    query.flags |= dns.flags.RD
    t0 = ctx.now()
    udp = _UdpReplies(query, ctx, resolver_role == records.RESOLVER_SILENT)
    exchange: dict[str, Any] = {}
    failure: str | None = None
    reply: dns.message.Message | None = None
    try:
        try:
            async with asyncio.timeout(timeout):
                reply = await _ask(
                    query, resolver, udp, exchange, timeout, ssl_context, doh_clients
                )
                if resolver.engine == "udp" and reply is not None and reply.flags & dns.flags.TC:
                    exchange["truncated_udp"] = _describe_truncated(reply, udp.first_t)
                    reply = None  # from here on the record is the TCP retry's
                    reply = await _ask_tcp(query, resolver, ctx, t0, timeout)
        except _NETWORK_ERRORS as exc:
            failure = classify(exc)
        if udp.first_t is not None and udp_wait > 0:
            # the UDP protocol records what arrives until udp_wait after the first reply
            await asyncio.sleep(max(0.0, udp.first_t + udp_wait - ctx.now()))
    finally:
        udp.close()
    rcode: str | None = None
    answers: list[dict[str, Any]] = []
    if reply is not None:
        rcode = dns.rcode.to_text(reply.rcode())
        answers = describe_answers(reply)
        failure = reply_failure(rcode, answers, query_type)
    elif failure is None:
        failure = DNS_SERVER_MISBEHAVING  # DoH answered with an HTTP error status
    fields: dict[str, Any] = {
        "hostname": hostname,
        "query_type": query_type,
        "resolver_address": resolver.address,
        "resolver_role": resolver_role,
        "engine": resolver.engine,
        "resolver_ip": resolver.ip if resolver.engine != "doh" else _url_ip(resolver.url),
        "rcode": rcode,
        "answers": answers,
        "late_replies": udp.late_replies,
    }
    if reply is not None:
        fields["flags"] = describe_flags(reply)
        fields["edns_payload"] = int(reply.payload) if reply.edns >= 0 else None
    if resolver.engine == "udp":
        fields["mismatched_replies"] = udp.mismatched
        fields["udp_sends"] = udp.sends
    if "truncated_udp" in exchange:
        fields["truncated_udp"] = exchange["truncated_udp"]
        fields["retried_over_tcp"] = True
    if resolver.engine == "doh":
        fields["http_status"] = exchange.get("http_status")
        fields["http_version"] = exchange.get("http_version")
    record = ctx.record(
        records.DNS,
        t0=t0,
        failure=failure,
        failed_operation="resolve",
        **fields,
    )
    return cast(records.DnsRecord, record)


def _describe_truncated(reply: dns.message.Message, t: float | None) -> dict[str, Any]:
    """The `truncated_udp` field: what a UDP reply with TC set held, and when it came."""
    return {
        "rcode": dns.rcode.to_text(reply.rcode()),
        "answers": describe_answers(reply),
        "flags": describe_flags(reply),
        "t": round(t, 6) if t is not None else None,
    }


async def _ask(
    query: dns.message.Message,
    resolver: ResolverSpec,
    udp: _UdpReplies,
    exchange: dict[str, Any],
    timeout: float,
    ssl_context: ssl.SSLContext,
    doh_clients: DohClients | None,
) -> dns.message.Message | None:
    """The first reply, or None when a DoH server answered with a non-200 HTTP status."""
    engine = resolver.engine
    if engine == "doh":
        if resolver.url is None:
            raise ValueError(f"resolver {resolver.address!r}: a doh resolver needs a URL")
        return await ask_doh(query, resolver.url, exchange, timeout, ssl_context, doh_clients)
    if resolver.ip is None or resolver.port is None:
        raise ValueError(f"resolver {resolver.address!r}: no server address")
    if engine == "udp":
        return await udp.ask(resolver.ip, resolver.port)
    if engine == "tcp":
        return await dns.asyncquery.tcp(query, resolver.ip, timeout=timeout, port=resolver.port)
    if engine == "dot":
        return await _ask_dot(query, resolver.ip, resolver.port, ssl_context)
    raise ValueError(f"resolver {resolver.address!r}: unknown engine {engine!r}")


async def _ask_tcp(
    query: dns.message.Message, resolver: ResolverSpec, ctx: ProbeContext, t0: float, timeout: float
) -> dns.message.Message:
    """The TC retry: the same question over TCP to the same server, in what is left of `timeout`."""
    assert resolver.ip is not None and resolver.port is not None
    left = max(0.001, t0 + timeout - ctx.now())
    return await dns.asyncquery.tcp(query, resolver.ip, timeout=left, port=resolver.port)


def _parse(wire: bytes) -> dns.message.Message:
    """A received message; for a truncated (TC) one, as much of it as could be read."""
    try:
        return dns.message.from_wire(wire, raise_on_truncation=True)
    except dns.message.Truncated as truncated:
        return cast(dns.message.Message, truncated.message())


class _UdpReplies(asyncio.DatagramProtocol):
    """One UDP exchange: the first reply to `query` completes `first`, later ones are kept.

    A datagram that is not a reply to our id (or no DNS message) is ignored; one with our id but
    another question is ignored and counted in `mismatched`. With `ignore_errors` (the silent
    role) ICMP errors do not end the wait.
    """

    def __init__(self, query: dns.message.Message, ctx: ProbeContext, ignore_errors: bool) -> None:
        self.first: asyncio.Future[dns.message.Message] | None = None
        self.first_t: float | None = None  # seconds since run start when the first reply came
        self.late_replies: list[dict[str, Any]] = []
        self.mismatched = 0
        self.sends = 0  # how many times the query was sent (first send + resends)
        self._query = query
        self._ctx = ctx
        self._ignore_errors = ignore_errors
        self._transport: asyncio.DatagramTransport | None = None

    async def ask(self, ip: str, port: int) -> dns.message.Message:
        loop = asyncio.get_running_loop()
        self.first = loop.create_future()
        self._transport, _ = await loop.create_datagram_endpoint(
            lambda: self,
            remote_addr=(ip, port),  # a connected socket drops other sources
        )
        wire = self._query.to_wire()
        self._transport.sendto(wire)
        self.sends = 1
        # Like a stub resolver, send the same query again while no reply has come, so that one
        # lost datagram on a lossy link is not a failed lookup. The caller's timeout ends it.
        for wait in UDP_RESEND_AFTER:
            done, _ = await asyncio.wait({self.first}, timeout=wait)
            if done:
                break
            self._transport.sendto(wire)
            self.sends += 1
        return await self.first

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        try:
            message = _parse(data)
        except dns.exception.DNSException:
            return  # not a DNS message: noise, not a reply
        if message.id != self._query.id or not message.flags & dns.flags.QR:
            return
        if not self._query.is_response(message):
            self.mismatched += 1
            return
        if self.first is not None and not self.first.done():
            self.first_t = self._ctx.now()
            self.first.set_result(message)
            return
        self.late_replies.append(
            {
                "t": round(self._ctx.now(), 6),
                "rcode": dns.rcode.to_text(message.rcode()),
                "answers": describe_answers(message),
            }
        )

    def error_received(self, exc: Exception) -> None:
        # e.g. ICMP port unreachable -> ConnectionRefusedError on a connected UDP socket
        if self._ignore_errors:
            return
        if self.first is not None and not self.first.done():
            self.first.set_exception(exc)


async def _ask_dot(
    query: dns.message.Message, ip: str, port: int, ssl_context: ssl.SSLContext
) -> dns.message.Message:
    """DNS over TLS through the TLS probe's channel (ALPN "dot" is set race-free there)."""
    sock = await connect_socket(ip, port)
    try:
        # The server is given by address, so its certificate must name that IP.
        channel = TlsChannel(sock, ssl_context, ip, DOT_ALPN)
        await channel.handshake()
        wire = query.to_wire()
        await channel.send(struct.pack("!H", len(wire)) + wire)
        (size,) = struct.unpack("!H", await channel.receive_exactly(2))
        reply = dns.message.from_wire(await channel.receive_exactly(size))
    finally:
        sock.close()
    if not query.is_response(reply):
        raise dns.query.BadResponse
    return reply


def _url_ip(url: str | None) -> str | None:
    """The host of a DoH URL if it is an IP literal, else None."""
    host = urlsplit(url).hostname if url else None
    try:
        return str(ipaddress.ip_address(host)) if host else None
    except ValueError:
        return None
