"""The lab's server processes: `python -m tests.lab.servers world|isp STATE_DIR`.

Rules:
- One asyncio process per namespace serves everything that namespace offers; it writes
  `STATE_DIR/<role>.ready` once every socket is bound, so bring-up waits for readiness, not time.
- world: authoritative DNS (192.0.2.1) and the control resolver (192.0.2.53, plain DNS and DoH),
  TLS on :443 for every address (web names, control site, DoH, DC stand-ins, the AnyIP range),
  plain HTTP on :80, and a listener on :5222 that drains what arrives.
- MTProto (issue 13): on :443, :80 and :5222 the world looks at a connection's first bytes
  (`_sniff`, MSG_PEEK, nothing consumed): a TLS ClientHello goes to TLS, an HTTP method to HTTP,
  anything else to the DC stand-in (`_mtproto_session`: `netprobe.probes.mtproto_wire`'s
  `ServerSession` answers req_pq_multi with a well-formed resPQ over intermediate, abridged or
  obfuscated2); bytes that are no MTProto are drained as before.
  Every web stand-in serves a `DOWNLOAD_SIZE` object at `DOWNLOAD_PATH` for any Host and SNI
  (the throughput probe's download, issue 13).
- isp: the ISP's resolver, which forwards to the world unless `STATE_DIR/dns-policy.json` says to
  rewrite a censored name, and the blockpage server (TLS cert valid for the blockpage name only)
  on the blockpage address and on the public-looking one; the closed blockpage address has no
  listener at all, so connects to it are refused.
- A client that vanishes mid-handshake is normal here (the censor resets it): errors are logged
  in one line, never raised.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import ssl
import struct
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import dns.asyncquery
import dns.exception
import dns.message
import dns.rcode

from netprobe.probes import mtproto_wire as wire
from tests.lab import topology as topo


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- DNS over UDP and TCP -------------------------------------------------------------------


class _DnsDatagram(asyncio.DatagramProtocol):
    def __init__(self, handler) -> None:
        self.handler = handler
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        asyncio.ensure_future(self._reply(data, addr))

    async def _reply(self, data: bytes, addr) -> None:
        try:
            query = dns.message.from_wire(data)
        except dns.exception.DNSException as exc:
            log(f"dns/udp: bad query from {addr[0]}: {exc}")
            return
        response = await self.handler(query)
        if self.transport is not None:
            self.transport.sendto(response.to_wire(), addr)


async def _dns_stream(handler, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
    try:
        while True:
            (length,) = struct.unpack("!H", await reader.readexactly(2))
            query = dns.message.from_wire(await reader.readexactly(length))
            wire = (await handler(query)).to_wire()
            writer.write(struct.pack("!H", len(wire)) + wire)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, dns.exception.DNSException):
        pass
    finally:
        writer.close()


async def serve_dns(handler, address: str, port: int = 53) -> None:
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    await loop.create_datagram_endpoint(
        lambda: _DnsDatagram(handler), local_addr=(address, port), family=family
    )
    await asyncio.start_server(lambda r, w: _dns_stream(handler, r, w), address, port)


# --- HTTP/1.1 (plain or inside TLS) ---------------------------------------------------------


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            key, value = line.split(":", 1)
            headers[key.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
    return method, target, headers, body


def _response(status: str, content_type: str, body: bytes) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n"
    )
    return head.encode("latin-1") + body


async def _http_session(reader, writer, respond) -> None:
    try:
        while True:
            method, target, headers, body = await _read_request(reader)
            writer.write(await respond(method, target, headers, body))
            await writer.drain()
            if headers.get("connection", "").lower() == "close":
                break
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
        pass
    except ssl.SSLError as exc:
        log(f"http: tls error: {exc.reason}")
    finally:
        writer.close()


def page(title: str) -> bytes:
    return f"<!doctype html><title>{title}</title><h1>{title}</h1>\n".encode()


_DOWNLOAD = bytes(range(256)) * (topo.DOWNLOAD_SIZE // 256)


async def world_http(method: str, target: str, headers: dict[str, str], body: bytes) -> bytes:
    path = urlsplit(target)
    if path.path == "/dns-query":
        if method == "POST":
            wire = body
        else:
            encoded = parse_qs(path.query).get("dns", [""])[0]
            wire = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        try:
            answer = topo.answer_query(dns.message.from_wire(wire)).to_wire()
        except dns.exception.DNSException:
            return _response("400 Bad Request", "text/plain", b"bad dns message\n")
        return _response("200 OK", "application/dns-message", answer)
    if path.path == topo.DOWNLOAD_PATH:
        return _response("200 OK", "application/octet-stream", _DOWNLOAD)
    if method == "POST":
        # Telegram's DCs answer a plain HTTP POST with 501 (REFERENCE.md section 1).
        return _response("501 Not Implemented", "text/plain", b"")
    host = headers.get("host", "lab")
    return _response("200 OK", "text/html", page(f"{host} (netprobe lab world)"))


async def blockpage_http(method: str, target: str, headers: dict[str, str], body: bytes) -> bytes:
    return _response("403 Forbidden", "text/html", page("Blocked by order of the lab ISP"))


def tls_context(cert_chain_pem: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_chain_pem)
    # HTTP/1.1 only: the DoH client falls back to it, and the server stays tiny.
    context.set_alpn_protocols(["http/1.1"])
    return context


async def serve_http(respond, port: int, host=None, context: ssl.SSLContext | None = None):
    await asyncio.start_server(
        lambda r, w: _http_session(r, w, respond),
        host,
        port,
        ssl=context,
        ssl_handshake_timeout=5 if context else None,
        reuse_address=True,
    )


async def _hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    # A DC stand-in on 5222: accept, drain what arrives, close when the client does.
    try:
        while await asyncio.wait_for(reader.read(4096), timeout=10):
            pass
    except (TimeoutError, ConnectionError):
        pass
    finally:
        writer.close()


# --- MTProto DC stand-ins (issue 13) ---------------------------------------------------------

_HTTP_METHODS = (b"GET ", b"POST", b"HEAD", b"PUT ", b"OPTI", b"DELE", b"PATC", b"CONN", b"TRAC")
SNIFF_SECONDS = 10.0


def _is_client_hello(first: bytes) -> bool:
    # TLS record type 22 (handshake), version 3.x, handshake type 1 (ClientHello).
    return len(first) >= 6 and first[0] == 0x16 and first[1] == 0x03 and first[5] == 0x01


async def _peek(sock: socket.socket, want: int = 6) -> bytes:
    """Up to `want` first bytes of a connection, left in the socket; b"" if the client closed."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while True:
        readable = loop.create_future()
        loop.add_reader(sock.fileno(), lambda f=readable: f.done() or f.set_result(None))
        try:
            await asyncio.wait_for(readable, max(0.0, started + SNIFF_SECONDS - loop.time()))
        finally:
            loop.remove_reader(sock.fileno())
        data = sock.recv(want, socket.MSG_PEEK)
        # A request arrives in one segment; a few bytes short only if the client writes slowly.
        if not data or len(data) >= want or loop.time() > started + 0.5:
            return data
        await asyncio.sleep(0.01)


async def _mtproto_session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A DC stand-in: resPQ to every req_pq_multi; other bytes are drained until the client goes."""
    session = wire.ServerSession(os.urandom(16))
    try:
        while data := await asyncio.wait_for(reader.read(4096), timeout=10):
            try:
                reply = session.feed(data)
            except wire.WireError:
                await _hold(reader, writer)
                return
            writer.write(reply)
            await writer.drain()
    except (TimeoutError, ConnectionError):
        pass
    finally:
        writer.close()


async def _sniff(sock: socket.socket, context: ssl.SSLContext | None, respond) -> None:
    loop = asyncio.get_running_loop()
    try:
        first = await _peek(sock)
    except (TimeoutError, OSError):
        sock.close()
        return
    if not first:
        sock.close()
        return
    if context is not None and _is_client_hello(first):
        session, tls = lambda r, w: _http_session(r, w, respond), context
    elif respond is not None and first[:4] in _HTTP_METHODS:
        session, tls = lambda r, w: _http_session(r, w, respond), None
    else:
        session, tls = _mtproto_session, None
    reader = asyncio.StreamReader(limit=2**16)
    protocol = asyncio.StreamReaderProtocol(reader, session)
    try:
        await loop.connect_accepted_socket(
            lambda: protocol, sock, ssl=tls, ssl_handshake_timeout=5 if tls else None
        )
    except (OSError, ssl.SSLError) as exc:
        log(f"sniff: {exc!r}")
        sock.close()


async def serve_sniffing(port: int, context: ssl.SSLContext | None = None, respond=None) -> None:
    """Every address of the namespace on `port` (v4 and v6): TLS/HTTP as `serve_http` would
    serve them, MTProto (or a drain) for anything else (see the module rules)."""
    loop = asyncio.get_running_loop()
    for family, host in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        listener.bind((host, port))
        listener.listen(128)
        listener.setblocking(False)
        asyncio.ensure_future(_accept_forever(loop, listener, context, respond))


async def _accept_forever(loop, listener: socket.socket, context, respond) -> None:
    while True:
        conn, _ = await loop.sock_accept(listener)
        conn.setblocking(False)
        asyncio.ensure_future(_sniff(conn, context, respond))


# --- the two roles --------------------------------------------------------------------------


async def honest_dns(query: dns.message.Message) -> dns.message.Message:
    return topo.answer_query(query)


async def run_world(state_dir: Path) -> None:
    context = tls_context(state_dir / "world-cert.pem")
    for address in (topo.AUTHORITATIVE_V4, topo.CONTROL_RESOLVER_V4):
        await serve_dns(honest_dns, address)
    # TLS and HTTP as before, and MTProto for the DC stand-ins (issue 13), on every address.
    await serve_sniffing(443, context, world_http)
    await serve_sniffing(80, None, world_http)
    await serve_sniffing(5222)


class IspResolver:
    """Forwards to the world's authoritative server; rewrites censored names per the policy."""

    def __init__(self, policy_path: Path) -> None:
        self.policy_path = policy_path
        self._cache: tuple[float, dict] = (-1.0, {"mode": "forward", "names": []})

    def policy(self) -> dict:
        try:
            mtime = self.policy_path.stat().st_mtime
        except FileNotFoundError:
            return {"mode": "forward", "names": []}
        if mtime != self._cache[0]:
            self._cache = (mtime, json.loads(self.policy_path.read_text()))
        return self._cache[1]

    async def __call__(self, query: dns.message.Message) -> dns.message.Message:
        policy = self.policy()
        name = query.question[0].name.to_text() if query.question else ""
        if policy["mode"] != "forward" and topo.name_is_censored(name, policy["names"]):
            return topo.rewritten_answer(query, policy["mode"])
        try:
            return await dns.asyncquery.udp(query, topo.AUTHORITATIVE_V4, timeout=2.0)
        except (dns.exception.DNSException, OSError) as exc:
            log(f"isp resolver: forwarding {name} failed: {exc!r}")
            response = dns.message.make_response(query)
            response.set_rcode(dns.rcode.SERVFAIL)
            return response


async def run_isp(state_dir: Path) -> None:
    resolver = IspResolver(state_dir / "dns-policy.json")
    for address in (topo.ISP_RESOLVER_V4, topo.ISP_RESOLVER_V6):
        await serve_dns(resolver, address)
    context = tls_context(state_dir / "blockpage-cert.pem")
    for address in (
        topo.BLOCKPAGE_V4,
        topo.BLOCKPAGE_V6,
        topo.PUBLIC_BLOCKPAGE_V4,
        topo.PUBLIC_BLOCKPAGE_V6,
    ):
        await serve_http(blockpage_http, 443, host=address, context=context)
        await serve_http(blockpage_http, 80, host=address)


def _quiet_exceptions(loop: asyncio.AbstractEventLoop, context: dict) -> None:
    # Resets and aborted handshakes are the censor at work, not server bugs.
    log(f"{context.get('message')}: {context.get('exception')!r}")


async def main(role: str, state_dir: Path) -> None:
    asyncio.get_running_loop().set_exception_handler(_quiet_exceptions)
    await {"world": run_world, "isp": run_isp}[role](state_dir)
    (state_dir / f"{role}.ready").write_text("ready\n")
    log(f"{role}: serving")
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], Path(sys.argv[2])))
