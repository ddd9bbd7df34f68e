"""Loopback test servers for probe and CLI tests (TCP, TLS, DNS over UDP/TCP/TLS/HTTPS).

Rules:
- Every server binds 127.0.0.1 or ::1 on a kernel-chosen port and runs in daemon threads, so
  it works the same under any event loop; each is a context manager that stops it on exit.
- The DNS server's behaviour is chosen by the query name (see `ZONE` and `BEHAVIOURS`), so one
  server serves every case and other tests can reuse it:
    example.test     A 192.0.2.10 / AAAA 2001:db8::10       cname.test  CNAME -> example.test
    nodata.test      NOERROR, no answer                     nxdomain.test / servfail.test /
    refused.test     the matching rcode                     silent.test  never answered
    injected.test    UDP: a forged reply (A 198.51.100.66) at once, a wrong-id datagram, then the
                     genuine reply 50 ms later; TCP/DoT/DoH answer only genuinely.
    truncated.test   UDP: a reply with TC set and no answer; TCP: the genuine A/AAAA.
    truncsilent.test UDP: a reply with TC set and no answer; TCP: never answered.
    mismatched.test  UDP: a reply with our id for another question (A 198.51.100.77) at once,
                     then the genuine reply 50 ms later; TCP answers genuinely.
- `DnsServer.queries` keeps every query received (to check EDNS0 and the like). `udp_forger()`
  answers every UDP query with a forged A and has no TCP side (an injector seen from the client).
- DoH: `doh_server` speaks HTTP/1.1 only; `h2_doh_server` (tests/doh_h2.py) HTTP/2 only; both
  answer like `DnsServer`'s TCP side.
- TLS certificates come from trustme: `make_ca()` and `issue_cert(ca)` (valid for 127.0.0.1, ::1,
  localhost and example.test).
"""

from __future__ import annotations

import contextlib
import http.server
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterator

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import trustme

from netprobe.probes import ProbeContext
from tests.doh_h2 import DohH2Server

LOCAL_NAMES = ("127.0.0.1", "::1", "localhost", "example.test")
GENUINE_A = "192.0.2.10"
GENUINE_AAAA = "2001:db8::10"
FORGED_A = "198.51.100.66"
MISMATCHED_A = "198.51.100.77"
INJECTION_DELAY = 0.05

ZONE: dict[str, dict[str, list[str]]] = {
    "example.test.": {"A": [GENUINE_A], "AAAA": [GENUINE_AAAA]},
    "injected.test.": {"A": [GENUINE_A], "AAAA": [GENUINE_AAAA]},
    "truncated.test.": {"A": [GENUINE_A], "AAAA": [GENUINE_AAAA]},
    "mismatched.test.": {"A": [GENUINE_A], "AAAA": [GENUINE_AAAA]},
    "nodata.test.": {},
}
BEHAVIOURS = {
    "nxdomain.test.": "NXDOMAIN",
    "servfail.test.": "SERVFAIL",
    "refused.test.": "REFUSED",
    "silent.test.": "silent",
}


# ---------------------------------------------------------------- plain TCP


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


@contextlib.contextmanager
def tcp_listener(host: str = "127.0.0.1") -> Iterator[int]:
    """A listening port that never accepts: connects succeed (the kernel completes them)."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as listener:
        listener.bind((host, 0))
        listener.listen(16)
        yield listener.getsockname()[1]


def closed_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on (bound then released), so connects are refused."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


class StreamServer:
    """Accepts connections on (host, port) and runs `handler(conn, stop)` for each in a thread."""

    def __init__(
        self, handler: Callable[[socket.socket, threading.Event], None], host: str = "127.0.0.1"
    ) -> None:
        self.host = host
        self.stop = threading.Event()
        self._handler = handler
        self._listener = socket.socket(_family(host), socket.SOCK_STREAM)
        self._listener.bind((host, 0))
        self._listener.listen(16)
        self._listener.settimeout(0.05)
        self.port: int = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> StreamServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        self._thread.join(2)
        self._listener.close()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn: socket.socket) -> None:
        with conn:
            try:
                self._handler(conn, self.stop)
            except (OSError, ssl.SSLError, EOFError):
                pass  # clients in these tests abort on purpose


def reset_after_hello(conn: socket.socket, stop: threading.Event) -> None:
    """Read the ClientHello, then reset the connection (SO_LINGER 0), like an SNI filter."""
    conn.recv(65536)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def reset_at_once(conn: socket.socket, stop: threading.Event) -> None:
    """Reset as soon as the connection is accepted."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def close_after_hello(conn: socket.socket, stop: threading.Event) -> None:
    """Read the ClientHello, then close cleanly (FIN)."""
    conn.recv(65536)


def never_answer(conn: socket.socket, stop: threading.Event) -> None:
    """Read whatever comes and never answer, until the server stops."""
    conn.settimeout(0.05)
    while not stop.is_set():
        try:
            if not conn.recv(65536):
                return
        except TimeoutError:
            continue


# ---------------------------------------------------------------- TLS


def make_ca() -> trustme.CA:
    return trustme.CA()


def issue_cert(ca: trustme.CA, *names: str) -> trustme.LeafCert:
    return ca.issue_cert(*(names or LOCAL_NAMES))


def server_context(cert: trustme.LeafCert, alpn: tuple[str, ...] = ()) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(context)
    if alpn:
        context.set_alpn_protocols(list(alpn))
    return context


def tls_server(
    cert: trustme.LeafCert, host: str = "127.0.0.1", alpn: tuple[str, ...] = ("h2", "http/1.1")
) -> StreamServer:
    """A TLS server that completes handshakes and then waits for the client to leave."""
    context = server_context(cert, alpn)

    def handle(conn: socket.socket, stop: threading.Event) -> None:
        conn.settimeout(2)
        with context.wrap_socket(conn, server_side=True) as tls:
            tls.recv(1)

    return StreamServer(handle, host)


OBJECT_SIZE = 1 << 20  # what `object_server` serves at /object
SLOW_CHUNK = 4096  # ... and at /slow (or for a slowed SNI): this many bytes ...
SLOW_PAUSE = 0.05  # ... every this many seconds (about 80 KB/s)


def _send_object(tls: ssl.SSLSocket, size: int, slow: bool, stop: threading.Event) -> None:
    tls.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n".encode())
    chunk = SLOW_CHUNK if slow else 65536
    sent = 0
    while sent < size and not stop.is_set():
        part = min(chunk, size - sent)
        tls.sendall(b"x" * part)
        sent += part
        if slow:
            time.sleep(SLOW_PAUSE)


def object_server(
    cert: trustme.LeafCert, host: str = "127.0.0.1", slow_sni: str | None = None
) -> StreamServer:
    """HTTPS (HTTP/1.1) by path, for the throughput probe: /object serves OBJECT_SIZE bytes at
    once (paced like /slow when the ClientHello named `slow_sni`: an SNI throttler), /slow paced,
    /reset a reset after 10 KiB of a 1 MiB object, /short closes after 100 of 1000 bytes,
    /garbage answers no HTTP, /silent never answers; anything else is a 404."""
    context = server_context(cert, ("http/1.1",))
    names: dict[int, str | None] = {}

    def remember(sslobj: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        names[id(sslobj)] = name

    context.sni_callback = remember

    def handle(conn: socket.socket, stop: threading.Event) -> None:
        conn.settimeout(5)
        with context.wrap_socket(conn, server_side=True) as tls:
            request = b""
            while b"\r\n\r\n" not in request:
                data = tls.recv(4096)
                if not data:
                    return
                request += data
            path = request.split(b" ", 2)[1].decode()
            throttled = slow_sni is not None and names.pop(id(tls), None) == slow_sni
            if path == "/object":
                _send_object(tls, OBJECT_SIZE, throttled, stop)
            elif path == "/slow":
                _send_object(tls, OBJECT_SIZE, True, stop)
            elif path == "/reset":
                tls.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {OBJECT_SIZE}\r\n\r\n".encode())
                tls.sendall(b"x" * 10240)
                time.sleep(0.05)
                tls.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif path == "/short":
                tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 100)
                tls.unwrap()
            elif path == "/garbage":
                tls.sendall(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
            elif path == "/silent":
                never_answer(tls, stop)  # type: ignore[arg-type]
            else:
                tls.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found")
                tls.unwrap()

    return StreamServer(handle, host)


def write_ca_bundle(ca: trustme.CA, directory: str) -> str:
    """The CA certificate as a PEM file in `directory` (for --ca-bundle / make_ssl_context)."""
    path = f"{directory}/ca.pem"
    ca.cert_pem.write_to_path(path)
    return path


# ---------------------------------------------------------------- DNS


def answer_query(query: dns.message.Message, transport: str) -> list[tuple[float, bytes]]:
    """The datagrams/messages to send for `query` as (delay seconds, wire), in order."""
    question = query.question[0]
    name = question.name.to_text().lower()
    query_type = dns.rdatatype.to_text(question.rdtype)
    behaviour = BEHAVIOURS.get(name)
    if behaviour == "silent":
        return []
    if name in ("truncated.test.", "truncsilent.test.") and transport == "udp":
        truncated = dns.message.make_response(query)
        truncated.flags |= dns.flags.TC
        return [(0.0, truncated.to_wire())]
    if name == "truncsilent.test.":
        return []
    reply = dns.message.make_response(query)
    if behaviour is not None:
        reply.set_rcode(dns.rcode.from_text(behaviour))
        return [(0.0, reply.to_wire())]
    if name == "cname.test.":
        reply.answer.append(dns.rrset.from_text(name, 300, "IN", "CNAME", "example.test."))
        name = "example.test."
    if name not in ZONE:
        reply.set_rcode(dns.rcode.NXDOMAIN)
        return [(0.0, reply.to_wire())]
    values = ZONE[name].get(query_type, [])
    if values:
        reply.answer.append(dns.rrset.from_text(name, 300, "IN", query_type, *values))
    genuine = reply.to_wire()
    if name == "injected.test." and transport == "udp" and query_type == "A":
        forged = dns.message.make_response(query)
        forged.answer.append(dns.rrset.from_text(name, 60, "IN", "A", FORGED_A))
        wrong_id = dns.message.make_response(query)
        wrong_id.id = (query.id + 1) % 65536
        return [(0.0, forged.to_wire()), (0.0, wrong_id.to_wire()), (INJECTION_DELAY, genuine)]
    if name == "mismatched.test." and transport == "udp":
        other = dns.message.make_query("other.test", query_type)
        other.id = query.id
        wrong_question = dns.message.make_response(other)
        wrong_question.answer.append(
            dns.rrset.from_text("other.test.", 60, "IN", "A", MISMATCHED_A)
        )
        return [(0.0, wrong_question.to_wire()), (INJECTION_DELAY, genuine)]
    return [(0.0, genuine)]


def doh_answer(query: dns.message.Message) -> dns.message.Message | None:
    """`answer_query` as a `tests.doh_h2` answer callable (None: never answer)."""
    replies = answer_query(query, "tcp")
    return dns.message.from_wire(replies[0][1]) if replies else None


def _serve_stream_dns(
    conn: socket.socket, stop: threading.Event, queries: list[dns.message.Message] | None = None
) -> None:
    """DNS over a stream (TCP or TLS): 2-byte length-prefixed messages until EOF."""
    conn.settimeout(2)
    while not stop.is_set():
        header = _read_exactly(conn, 2)
        if header is None:
            return
        wire = _read_exactly(conn, struct.unpack("!H", header)[0])
        if wire is None:
            return
        query = dns.message.from_wire(wire)
        if queries is not None:
            queries.append(query)
        replies = answer_query(query, "tcp")
        if not replies:
            stop.wait(5)  # "silent": hold the connection open without answering
            return
        for _, reply in replies:
            conn.sendall(struct.pack("!H", len(reply)) + reply)


def _read_exactly(conn: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


class DnsServer:
    """DNS over UDP and TCP on the same port of `host`; behaviour per name (module docstring)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.queries: list[dns.message.Message] = []  # every query received, UDP and TCP
        self._stream = StreamServer(
            lambda conn, stop: _serve_stream_dns(conn, stop, self.queries), host
        )
        self.port = self._stream.port
        self._udp = socket.socket(_family(host), socket.SOCK_DGRAM)
        self._udp.bind((host, self.port))
        self._udp.settimeout(0.05)
        self._thread = threading.Thread(target=self._serve_udp, daemon=True)

    def address(self, scheme: str = "udp") -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    def __enter__(self) -> DnsServer:
        self._stream.__enter__()
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stream.__exit__(*exc_info)
        self._thread.join(2)
        self._udp.close()

    def _serve_udp(self) -> None:
        while not self._stream.stop.is_set():
            try:
                wire, client = self._udp.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            query = dns.message.from_wire(wire)
            self.queries.append(query)
            replies = answer_query(query, "udp")
            threading.Thread(target=self._send_udp, args=(replies, client), daemon=True).start()

    def _send_udp(self, replies: list[tuple[float, bytes]], client: tuple) -> None:
        for delay, reply in replies:
            time.sleep(delay)
            with contextlib.suppress(OSError):
                self._udp.sendto(reply, client)


@contextlib.contextmanager
def udp_forger(host: str = "127.0.0.1") -> Iterator[str]:
    """Answers every UDP query at once with A `FORGED_A`; yields its `udp://HOST:PORT`."""
    with socket.socket(_family(host), socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        sock.settimeout(0.05)
        stop = threading.Event()

        def serve() -> None:
            while not stop.is_set():
                try:
                    wire, client = sock.recvfrom(65535)
                except TimeoutError:
                    continue
                except OSError:
                    return
                query = dns.message.from_wire(wire)
                forged = dns.message.make_response(query)
                name = query.question[0].name
                forged.answer.append(dns.rrset.from_text(name, 60, "IN", "A", FORGED_A))
                with contextlib.suppress(OSError):
                    sock.sendto(forged.to_wire(), client)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        netloc = f"[{host}]" if ":" in host else host
        try:
            yield f"udp://{netloc}:{sock.getsockname()[1]}"
        finally:
            stop.set()
            thread.join(2)


def dot_server(cert: trustme.LeafCert, host: str = "127.0.0.1") -> StreamServer:
    """DNS over TLS (RFC 7858) answering like `DnsServer`'s TCP side.

    The returned server's `alpn_seen` lists the ALPN protocol negotiated on each connection.
    """
    context = server_context(cert, ("dot",))
    alpn_seen: list[str | None] = []

    def handle(conn: socket.socket, stop: threading.Event) -> None:
        conn.settimeout(2)
        with context.wrap_socket(conn, server_side=True) as tls:
            alpn_seen.append(tls.selected_alpn_protocol())
            _serve_stream_dns(tls, stop)

    server = StreamServer(handle, host)
    server.alpn_seen = alpn_seen  # type: ignore[attr-defined]
    return server


class _DohHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real DoH servers

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        if self.path != "/dns-query":
            self.send_error(500 if self.path == "/broken" else 404)
            return
        replies = answer_query(dns.message.from_wire(body), "tcp")
        if not replies:
            time.sleep(5)
            return
        self.send_response(200)
        self.send_header("content-type", "application/dns-message")
        self.send_header("content-length", str(len(replies[0][1])))
        self.end_headers()
        self.wfile.write(replies[0][1])

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep test output quiet


class _DohHttpServer(http.server.ThreadingHTTPServer):
    daemon_threads = True


@contextlib.contextmanager
def doh_server(cert: trustme.LeafCert, host: str = "127.0.0.1") -> Iterator[str]:
    """HTTPS DoH server; yields its URL base `https://HOST:PORT` (paths: /dns-query, /broken)."""
    server = _DohHttpServer((host, 0), _DohHandler, bind_and_activate=False)
    if ":" in host:
        server.address_family = socket.AF_INET6
        server.socket = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    server.server_bind()
    server.server_activate()
    server.socket = server_context(cert, ("http/1.1",)).wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    netloc = f"[{host}]" if ":" in host else host
    try:
        yield f"https://{netloc}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def h2_doh_server(cert: trustme.LeafCert, host: str = "127.0.0.1") -> DohH2Server:
    """HTTP/2-only DoH answering like `DnsServer`'s TCP side (a context manager; `.url`,
    `.connections`, `.queries`, `.alpn_seen`)."""
    return DohH2Server(doh_answer, ssl_context=server_context(cert, ("h2",)), host=host)


def probe_context(target_id: str = "domain:example.test", role: str = "target") -> ProbeContext:
    """A ProbeContext whose clock starts now."""
    return ProbeContext(
        target_id=target_id, group="test", role=role, attempt=0, run_start=time.monotonic()
    )
