"""An HTTP/2-only DNS-over-HTTPS server (RFC 8484) for tests and lab scenarios.

Like a BIND 9.18 DoH listener it speaks nothing but HTTP/2: TLS offers ALPN "h2" only, and a
client that sends HTTP/1.1 anyway gets HTTP/2 frames back (so an HTTP/1.1-only client fails).

- Serves POST (body = DNS wire) and GET `?dns=<base64url>` at `path` (default /dns-query) with
  media type application/dns-message; other paths get 404, other methods 405.
- Replies come from a callable `answer(query) -> dns.message.Message | None`; None means
  "never answer" (the stream is left open). `zone_answer({...})` builds one from a name -> IPs map.
- Counts what a test wants to check: `connections` (TLS connections accepted), `queries` (every
  DNS query received, parsed) and `alpn_seen` (the ALPN protocol negotiated per connection).
- In-process: `with DohH2Server(answer, ssl_context=ctx) as server: ... server.url` runs the
  server on its own event loop in a daemon thread (works from sync tests and under any loop);
  `await server.open()` / `await server.close()` run it on the caller's loop instead.
- As a process: `python -m tests.doh_h2 --listen 10.0.0.1:443 --cert C --key K
  --zone example.test=192.0.2.10 [--zone name=ip,ip ...] [--silent name ...]`; it prints
  `listening <url>` on stdout once it accepts connections and runs until SIGTERM/SIGINT.
Only the `h2` package (sans-I/O), dnspython and the standard library are used.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import ipaddress
import signal
import ssl
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from urllib.parse import parse_qs, urlsplit

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import h2.config
import h2.connection
import h2.events
import h2.exceptions

MEDIA_TYPE = "application/dns-message"

Answer = Callable[[dns.message.Message], "dns.message.Message | None"]


def h2_server_context(certfile: str, keyfile: str | None = None) -> ssl.SSLContext:
    """A server SSLContext from PEM files that negotiates ALPN "h2" only."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certfile, keyfile)
    context.set_alpn_protocols(["h2"])
    return context


def zone_answer(
    zone: Mapping[str, Sequence[str]], silent: Sequence[str] = (), ttl: int = 300
) -> Answer:
    """An `answer` callable: A/AAAA from `zone` (name -> IPs), NXDOMAIN for other names,
    NOERROR without answers for the other address family; names in `silent` are never answered."""
    table = {_fqdn(name): list(ips) for name, ips in zone.items()}
    quiet = {_fqdn(name) for name in silent}

    def answer(query: dns.message.Message) -> dns.message.Message | None:
        question = query.question[0]
        name = question.name.to_text().lower()
        if name in quiet:
            return None
        reply = dns.message.make_response(query)
        if name not in table:
            reply.set_rcode(dns.rcode.NXDOMAIN)
            return reply
        rdtype = dns.rdatatype.to_text(question.rdtype)
        family = {"A": 4, "AAAA": 6}.get(rdtype)
        values = [ip for ip in table[name] if ipaddress.ip_address(ip).version == family]
        if values:
            reply.answer.append(dns.rrset.from_text(name, ttl, "IN", rdtype, *values))
        return reply

    return answer


def _fqdn(name: str) -> str:
    name = name.lower()
    return name if name.endswith(".") else name + "."


class DohH2Server:
    """HTTP/2-only DoH on (host, port); port 0 lets the kernel choose (see `port` after start)."""

    def __init__(
        self,
        answer: Answer,
        *,
        ssl_context: ssl.SSLContext,
        host: str = "127.0.0.1",
        port: int = 0,
        path: str = "/dns-query",
    ) -> None:
        self.answer = answer
        self.host = host
        self.port = port
        self.path = path
        self.connections = 0
        self.queries: list[dns.message.Message] = []
        self.alpn_seen: list[str | None] = []
        self._ssl_context = ssl_context
        self._server: asyncio.Server | None = None
        self._protocols: set[_H2Protocol] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}{self.path}"

    # ---- on the caller's event loop

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _H2Protocol(self), self.host, self.port, ssl=self._ssl_context
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for protocol in list(self._protocols):
            protocol.close()
        await self._server.wait_closed()
        self._server = None

    # ---- on a loop of its own, in a daemon thread

    def start(self) -> DohH2Server:
        ready = threading.Event()
        failure: list[BaseException] = []
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            try:
                self._loop.run_until_complete(self.open())
            except BaseException as exc:  # reported to the caller of start()
                failure.append(exc)
                ready.set()
                return
            ready.set()
            self._loop.run_forever()
            self._loop.run_until_complete(self.close())
            self._loop.close()

        self._thread = threading.Thread(target=run, name="doh-h2", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
        self._thread = None
        self._loop = None

    def __enter__(self) -> DohH2Server:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class _H2Protocol(asyncio.Protocol):
    """One HTTP/2 connection: requests are collected per stream and answered at END_STREAM."""

    def __init__(self, server: DohH2Server) -> None:
        self._server = server
        self._transport: asyncio.Transport | None = None
        self._conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        )
        self._streams: dict[int, tuple[dict[str, str], bytearray]] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._server.connections += 1
        self._server._protocols.add(self)
        ssl_object = transport.get_extra_info("ssl_object")
        self._server.alpn_seen.append(ssl_object.selected_alpn_protocol() if ssl_object else None)
        # Speak HTTP/2 whatever was negotiated, as an h2-only server does.
        self._conn.initiate_connection()
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self._server._protocols.discard(self)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def data_received(self, data: bytes) -> None:
        try:
            events = self._conn.receive_data(data)
        except h2.exceptions.ProtocolError:
            self._flush()  # GOAWAY
            self.close()
            return
        for event in events:
            if isinstance(event, h2.events.RequestReceived):
                headers = {str(k): str(v) for k, v in event.headers or []}
                self._streams[event.stream_id] = (headers, bytearray())
            elif isinstance(event, h2.events.DataReceived):
                if event.stream_id in self._streams:
                    self._streams[event.stream_id][1].extend(event.data or b"")
                self._conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                if event.stream_id in self._streams:
                    self._respond(event.stream_id, *self._streams.pop(event.stream_id))
            elif isinstance(event, h2.events.StreamReset):
                self._streams.pop(event.stream_id, None)
            elif isinstance(event, h2.events.ConnectionTerminated):
                self._flush()
                self.close()
                return
        self._flush()

    def _respond(self, stream_id: int, headers: dict[str, str], body: bytearray) -> None:
        method = headers.get(":method", "")
        target = urlsplit(headers.get(":path", ""))
        if target.path != self._server.path:
            self._send(stream_id, 404, b"not found\n", "text/plain")
            return
        try:
            if method == "POST":
                wire = bytes(body)
            elif method == "GET":
                encoded = parse_qs(target.query).get("dns", [""])[0]
                wire = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
            else:
                self._send(stream_id, 405, b"method not allowed\n", "text/plain")
                return
            query = dns.message.from_wire(wire)
        except Exception:  # a malformed request: bad base64 or not a DNS message
            self._send(stream_id, 400, b"bad request\n", "text/plain")
            return
        self._server.queries.append(query)
        reply = self._server.answer(query)
        if reply is None:
            return  # "silent": the stream stays open, the client times out
        self._send(stream_id, 200, reply.to_wire(), MEDIA_TYPE)

    def _send(self, stream_id: int, status: int, body: bytes, media_type: str) -> None:
        self._conn.send_headers(
            stream_id,
            [
                (":status", str(status)),
                ("content-type", media_type),
                ("content-length", str(len(body))),
                ("cache-control", "max-age=0"),
            ],
        )
        size = self._conn.max_outbound_frame_size
        chunks = [body[i : i + size] for i in range(0, len(body), size)] or [b""]
        for index, chunk in enumerate(chunks):
            self._conn.send_data(stream_id, chunk, end_stream=index == len(chunks) - 1)

    def _flush(self) -> None:
        data = self._conn.data_to_send()
        if data and self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)


# ---------------------------------------------------------------- command line


def _parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: expected ADDR:PORT ([v6]:PORT)")
    return host.strip("[]"), int(port)


def _parse_zone(items: Sequence[str]) -> dict[str, list[str]]:
    zone: dict[str, list[str]] = {}
    for item in items:
        name, sep, ips = item.partition("=")
        if not sep:
            raise SystemExit(f"--zone {item!r}: expected NAME=IP[,IP...]")
        zone.setdefault(name, []).extend(ip for ip in ips.split(",") if ip)
    return zone


async def _main(args: argparse.Namespace) -> None:
    host, port = args.listen
    server = DohH2Server(
        zone_answer(_parse_zone(args.zone), args.silent),
        ssl_context=h2_server_context(args.cert, args.key),
        host=host,
        port=port,
        path=args.path,
    )
    await server.open()
    print(f"listening {server.url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await server.close()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.doh_h2", description=__doc__)
    parser.add_argument("--listen", type=_parse_listen, required=True, help="ADDR:PORT")
    parser.add_argument("--cert", required=True, help="PEM certificate chain")
    parser.add_argument("--key", help="PEM private key (if not in --cert)")
    parser.add_argument("--zone", action="append", default=[], help="NAME=IP[,IP...]")
    parser.add_argument("--silent", action="append", default=[], help="a name never answered")
    parser.add_argument("--path", default="/dns-query")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(args))


if __name__ == "__main__":
    main(sys.argv[1:])
