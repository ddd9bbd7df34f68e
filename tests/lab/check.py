"""Plain-socket checks run inside a lab namespace: `python -m tests.lab.check KIND ARGS...`.

Rules: prints one word (or the answer addresses) describing what happened, so smoke tests can
compare it with a table; never raises for a network failure. Kinds:
  dns SERVER NAME TYPE      -> addresses, comma-separated, or NXDOMAIN / timeout / other rcode
  dns-all SERVER NAME TYPE  -> every reply to one query within 1 s, in arrival order, joined
                               by " | " (each as for `dns`), or timeout
  dns-loss SERVER NAME N    -> how many of N queries (sent 5 ms apart) got no reply within 1 s
  doh URL CA NAME TYPE      -> same as dns, over DNS-over-HTTPS with HTTP/1.1 (error:... when
                               the server does not speak it)
  doh2 URL CA NAME TYPE     -> same, over HTTP/2 (needs the h2 package)
  tcp-ms IP PORT N          -> median milliseconds of N sequential TCP connects, each allowed
                               TCP_MS_TIMEOUT (timeout if any connect failed)
  tcp IP PORT               -> ok | timeout | refused | reset | unreachable
  tls IP SNI CA             -> ok | timeout | reset | eof | bad-certificate | refused | unreachable
  http IP HOST              -> "<status> <title>" of a plain `GET /` with `Host: HOST` to IP:80
                               (issue 13), or a word as for tcp
`--many` reads a JSON list of such argument lists on stdin and prints a JSON list of results.
"""

from __future__ import annotations

import errno
import select
import socket
import ssl
import statistics
import struct
import sys
import time

import dns.exception
import dns.message
import dns.query
import dns.rcode

TIMEOUT = 1.5
TCP_MS_TIMEOUT = 3.5  # tcp-ms: a connect whose SYN was lost once still counts


def _answers(response: dns.message.Message) -> str:
    if response.rcode() != dns.rcode.NOERROR:
        return dns.rcode.to_text(response.rcode())
    found = [item.to_text() for rrset in response.answer for item in rrset]
    return ",".join(sorted(found)) or "no-answer"


def check_dns(server: str, name: str, rdtype: str) -> str:
    try:
        return _answers(dns.query.udp(dns.message.make_query(name, rdtype), server, TIMEOUT))
    except dns.exception.Timeout:
        return "timeout"


def check_dns_all(server: str, name: str, rdtype: str) -> str:
    query = dns.message.make_query(name, rdtype)
    family = socket.AF_INET6 if ":" in server else socket.AF_INET
    replies: list[str] = []
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.connect((server, 53))
        sock.send(query.to_wire())
        deadline = time.monotonic() + 1.0
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([sock], [], [], left)
            if not ready:
                break
            try:
                reply = dns.message.from_wire(sock.recv(65535))
            except (OSError, dns.exception.DNSException):
                continue
            if reply.id == query.id:
                replies.append(_answers(reply))
    return " | ".join(replies) or "timeout"


def check_dns_loss(server: str, name: str, count: str) -> str:
    family = socket.AF_INET6 if ":" in server else socket.AF_INET
    pending: set[int] = set()
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.connect((server, 53))
        sock.setblocking(False)

        def drain(wait: float) -> None:
            deadline = time.monotonic() + wait
            while (left := deadline - time.monotonic()) > 0:
                if not select.select([sock], [], [], left)[0]:
                    return
                try:
                    pending.discard(dns.message.from_wire(sock.recv(65535)).id)
                except (OSError, dns.exception.DNSException):
                    pass

        for query_id in range(1, int(count) + 1):
            query = dns.message.make_query(name, "A", id=query_id)
            sock.send(query.to_wire())
            pending.add(query_id)
            drain(0.005)
        drain(1.0)
    return str(len(pending))


def check_tcp_ms(ip: str, port: str, count: str) -> str:
    times = []
    for _ in range(int(count)):
        start = time.monotonic()
        # Time for two SYN retransmissions (1 s and 3 s): on a lossy link a lost SYN or SYN-ACK
        # is an outlier the median ignores, not a failed measurement.
        outcome = check_tcp(ip, port, TCP_MS_TIMEOUT)
        if outcome != "ok":
            return outcome
        times.append((time.monotonic() - start) * 1000)
    return f"{statistics.median(times):.0f}"


def check_doh2(url: str, ca: str, name: str, rdtype: str) -> str:
    return check_doh(url, ca, name, rdtype, http2=True)


def check_doh(url: str, ca: str, name: str, rdtype: str, http2: bool = False) -> str:
    import httpx

    query = dns.message.make_query(name, rdtype)
    try:
        with httpx.Client(
            http1=not http2,
            http2=http2,
            verify=ssl.create_default_context(cafile=ca),
            timeout=TIMEOUT,
            trust_env=False,
        ) as client:
            reply = client.post(
                url, content=query.to_wire(), headers={"content-type": "application/dns-message"}
            )
    except httpx.TimeoutException:
        return "timeout"
    except httpx.HTTPError as exc:
        return f"error:{type(exc).__name__}"
    return _answers(dns.message.from_wire(reply.content))


def _socket_outcome(exc: OSError) -> str:
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timeout"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "bad-certificate"
    if isinstance(exc, ssl.SSLEOFError):
        return "eof"
    return {
        errno.ECONNREFUSED: "refused",
        errno.ECONNRESET: "reset",
        errno.ENETUNREACH: "unreachable",
        errno.EHOSTUNREACH: "unreachable",
    }.get(exc.errno or 0, f"error:{exc}")


def check_tcp(ip: str, port: str, timeout: float = TIMEOUT) -> str:
    try:
        with socket.create_connection((ip, int(port)), timeout=timeout):
            return "ok"
    except OSError as exc:
        return _socket_outcome(exc)


def check_tls(ip: str, sni: str, ca: str) -> str:
    context = ssl.create_default_context(cafile=ca)
    try:
        with socket.create_connection((ip, 443), timeout=TIMEOUT) as raw:
            # Close with a reset: an orphaned socket would go on retransmitting its ClientHello
            # (and, under sni-residual, keep re-marking the address) after the check is over.
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            with context.wrap_socket(raw, server_hostname=sni):
                return "ok"
    except OSError as exc:
        return _socket_outcome(exc)


def check_http(ip: str, host: str) -> str:
    import re

    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(TIMEOUT)
            sock.connect((ip, 80))
            sock.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
    except OSError as exc:
        return _socket_outcome(exc)
    status = data.split(b"\r\n", 1)[0].split(b" ")[1:2]
    title = re.search(rb"<title>(.*?)</title>", data, re.IGNORECASE | re.DOTALL)
    return " ".join(
        part.decode("utf-8", "replace") for part in (*status, title.group(1) if title else b"")
    ).strip()


CHECKS = {
    "dns": check_dns,
    "dns-all": check_dns_all,
    "dns-loss": check_dns_loss,
    "doh": check_doh,
    "doh2": check_doh2,
    "tcp": check_tcp,
    "tcp-ms": check_tcp_ms,
    "tls": check_tls,
    "http": check_http,  # issue 13
}


def run_many(specs: list[list[str]]) -> list[str]:
    """Run several checks at once (threads, so their timeouts overlap); results in order."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(1, len(specs))) as pool:
        return list(pool.map(lambda spec: CHECKS[spec[0]](*spec[1:]), specs))


if __name__ == "__main__":
    if sys.argv[1:] == ["--many"]:
        import json

        print(json.dumps(run_many(json.load(sys.stdin))))
    else:
        print(CHECKS[sys.argv[1]](*sys.argv[2:]))
