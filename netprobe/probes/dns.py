"""DNS probe: one A or AAAA query to one resolver over UDP, TCP, DoT or DoH (record type `dns`).

Rules:
- One query, no retries, no search domains, RD set; the answer is recorded as received.
- UDP uses our own socket so that every reply is seen: after the first reply with the query's id
  we keep listening `udp_wait` seconds and record further replies with the same id in
  `late_replies` (a second, different reply is the signature of on-path injection). Replies with
  another id are ignored. Other engines always record `late_replies: []`.
- rcode -> failure: NXDOMAIN/SERVFAIL/REFUSED -> dns_*_error, other non-NOERROR ->
  dns_server_misbehaving, NOERROR without an address of the queried type -> dns_no_answer.
  DoH answers other than HTTP 200 -> dns_server_misbehaving with `http_status` recorded.
- Bogon answers are NOT flagged here: judging answers is analysis's job.
- Network failures become the record's `failure` (via `netprobe.model.failures.classify`).
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
from netprobe.probes.errors import classify
from netprobe.probes.tcp import connect_socket
from netprobe.probes.tls import TlsChannel

DOH_MEDIA_TYPE = "application/dns-message"
DOT_ALPN = ("dot",)  # IANA ALPN id for DNS over TLS

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
) -> records.DnsRecord:
    """Ask `resolver` for `hostname`'s `query_type` (A or AAAA) records; return a `dns` record."""
    if query_type not in QUERY_TYPES:
        raise ValueError(f"query type {query_type!r}: expected one of {', '.join(QUERY_TYPES)}")
    query = dns.message.make_query(hostname, query_type)
    query.flags |= dns.flags.RD
    t0 = ctx.now()
    exchange: dict[str, Any] = {"late_replies": []}
    failure: str | None = None
    reply: dns.message.Message | None = None
    try:
        async with asyncio.timeout(timeout):
            reply = await _ask(query, resolver, exchange, ctx, timeout, ssl_context)
        if resolver.engine == "udp" and udp_wait > 0:
            await asyncio.sleep(udp_wait)  # the UDP protocol records what arrives meanwhile
    except _NETWORK_ERRORS as exc:
        failure = classify(exc)
    finally:
        if "transport" in exchange:
            exchange["transport"].close()
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
        "late_replies": exchange["late_replies"],
    }
    if resolver.engine == "doh":
        fields["http_status"] = exchange.get("http_status")
    record = ctx.record(
        records.DNS,
        t0=t0,
        failure=failure,
        failed_operation="resolve",
        **fields,
    )
    return cast(records.DnsRecord, record)


async def _ask(
    query: dns.message.Message,
    resolver: ResolverSpec,
    exchange: dict[str, Any],
    ctx: ProbeContext,
    timeout: float,
    ssl_context: ssl.SSLContext,
) -> dns.message.Message | None:
    """The first reply, or None when a DoH server answered with a non-200 HTTP status."""
    engine = resolver.engine
    if engine == "doh":
        if resolver.url is None:
            raise ValueError(f"resolver {resolver.address!r}: a doh resolver needs a URL")
        return await _ask_doh(query, resolver.url, exchange, timeout, ssl_context)
    if resolver.ip is None or resolver.port is None:
        raise ValueError(f"resolver {resolver.address!r}: no server address")
    if engine == "udp":
        return await _ask_udp(query, resolver.ip, resolver.port, exchange, ctx)
    if engine == "tcp":
        return await dns.asyncquery.tcp(query, resolver.ip, timeout=timeout, port=resolver.port)
    if engine == "dot":
        return await _ask_dot(query, resolver.ip, resolver.port, ssl_context)
    raise ValueError(f"resolver {resolver.address!r}: unknown engine {engine!r}")


class _UdpReplies(asyncio.DatagramProtocol):
    """Collects replies to one query id: the first completes `first`, later ones are kept."""

    def __init__(self, query_id: int, ctx: ProbeContext, late_replies: list[dict]) -> None:
        self.first: asyncio.Future[dns.message.Message] = asyncio.get_running_loop().create_future()
        self._query_id = query_id
        self._ctx = ctx
        self._late_replies = late_replies

    def datagram_received(self, data: bytes, addr: Any) -> None:
        try:
            message = dns.message.from_wire(data)
        except dns.exception.DNSException:
            return  # not a DNS message: noise, not a reply
        if message.id != self._query_id or not message.flags & dns.flags.QR:
            return
        if not self.first.done():
            self.first.set_result(message)
            return
        self._late_replies.append(
            {
                "t": round(self._ctx.now(), 6),
                "rcode": dns.rcode.to_text(message.rcode()),
                "answers": describe_answers(message),
            }
        )

    def error_received(self, exc: Exception) -> None:
        # e.g. ICMP port unreachable -> ConnectionRefusedError on a connected UDP socket
        if not self.first.done():
            self.first.set_exception(exc)


async def _ask_udp(
    query: dns.message.Message, ip: str, port: int, exchange: dict[str, Any], ctx: ProbeContext
) -> dns.message.Message:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: _UdpReplies(query.id, ctx, exchange["late_replies"]),
        remote_addr=(ip, port),  # a connected socket drops other sources
    )
    exchange["transport"] = transport
    transport.sendto(query.to_wire())
    return await protocol.first


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


async def _ask_doh(
    query: dns.message.Message,
    url: str,
    exchange: dict[str, Any],
    timeout: float,
    ssl_context: ssl.SSLContext,
) -> dns.message.Message | None:
    headers = {"content-type": DOH_MEDIA_TYPE, "accept": DOH_MEDIA_TYPE}
    # trust_env=False: a proxy from the environment would measure the proxy's network, not ours.
    async with httpx.AsyncClient(
        verify=ssl_context, http2=False, timeout=timeout, trust_env=False
    ) as client:
        response = await client.post(url, content=query.to_wire(), headers=headers)
    exchange["http_status"] = response.status_code
    if response.status_code != 200:
        return None
    reply = dns.message.from_wire(response.content)
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
