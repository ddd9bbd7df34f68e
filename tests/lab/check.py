"""Plain-socket checks run inside a lab namespace: `python -m tests.lab.check KIND ARGS...`.

Rules: prints one word (or the answer addresses) describing what happened, so smoke tests can
compare it with a table; never raises for a network failure. Kinds:
  dns SERVER NAME TYPE      -> addresses, comma-separated, or NXDOMAIN / timeout / other rcode
  doh URL CA NAME TYPE      -> same, over DNS-over-HTTPS
  tcp IP PORT               -> ok | timeout | refused | reset | unreachable
  tls IP SNI CA             -> ok | timeout | reset | eof | bad-certificate | refused | unreachable
`--many` reads a JSON list of such argument lists on stdin and prints a JSON list of results.
"""

from __future__ import annotations

import errno
import socket
import ssl
import sys

import dns.exception
import dns.message
import dns.query
import dns.rcode

TIMEOUT = 1.5


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


def check_doh(url: str, ca: str, name: str, rdtype: str) -> str:
    import httpx

    query = dns.message.make_query(name, rdtype)
    try:
        reply = httpx.post(
            url,
            content=query.to_wire(),
            headers={"content-type": "application/dns-message"},
            verify=ssl.create_default_context(cafile=ca),
            timeout=TIMEOUT,
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


def check_tcp(ip: str, port: str) -> str:
    try:
        with socket.create_connection((ip, int(port)), timeout=TIMEOUT):
            return "ok"
    except OSError as exc:
        return _socket_outcome(exc)


def check_tls(ip: str, sni: str, ca: str) -> str:
    context = ssl.create_default_context(cafile=ca)
    try:
        with socket.create_connection((ip, 443), timeout=TIMEOUT) as raw:
            with context.wrap_socket(raw, server_hostname=sni):
                return "ok"
    except OSError as exc:
        return _socket_outcome(exc)


CHECKS = {"dns": check_dns, "doh": check_doh, "tcp": check_tcp, "tls": check_tls}


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
