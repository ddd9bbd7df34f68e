"""Map exceptions to OONI failure strings, and scrub IP addresses out of messages.

Rules:
- This is the only module that turns an exception into a failure string (docs/DESIGN.md rule 2).
  The strings are OONI's (probe-cli netxlite, spec df-007); see /work/shared/REFERENCE.md §2.
- A wrapped exception is classified by the outermost exception that has a known mapping, then its
  causes in turn: httpx.ConnectError (unknown) -> httpcore.ConnectError (unknown) -> ssl error
  (known) gives the ssl failure, while asyncio's TimeoutError wins over whatever it interrupted.
- Anything unknown becomes `unknown_failure: <message>`, and every message is scrubbed so that no
  IP address (in particular the volunteer's own) ever reaches a result file.
- Pure: no I/O. dnspython is imported for its exception classes; httpx/httpcore are recognised by
  class name so this module does not depend on them.
"""

from __future__ import annotations

import errno
import ipaddress
import re
import ssl

import dns.exception
import dns.message
import dns.query
import dns.resolver

# Socket-level failures.
CONNECTION_REFUSED = "connection_refused"
CONNECTION_RESET = "connection_reset"
CONNECTION_ABORTED = "connection_aborted"
TIMED_OUT = "timed_out"  # the kernel's ETIMEDOUT, not our own deadline
GENERIC_TIMEOUT = "generic_timeout_error"  # our own deadline expired
HOST_UNREACHABLE = "host_unreachable"
NETWORK_UNREACHABLE = "network_unreachable"
NETWORK_DOWN = "network_down"
EOF_ERROR = "eof_error"
ADDRESS_FAMILY_NOT_SUPPORTED = "address_family_not_supported"
ADDRESS_NOT_AVAILABLE = "address_not_available"
ADDRESS_IN_USE = "address_in_use"
PERMISSION_DENIED = "permission_denied"

# DNS failures.
DNS_NXDOMAIN = "dns_nxdomain_error"
DNS_REFUSED = "dns_refused_error"
DNS_SERVFAIL = "dns_servfail_error"
DNS_SERVER_MISBEHAVING = "dns_server_misbehaving"
DNS_NO_ANSWER = "dns_no_answer"
DNS_BOGON = "dns_bogon_error"
DNS_WRONG_QUERY_ID = "dns_reply_with_wrong_query_id"

# TLS failures.
SSL_INVALID_HOSTNAME = "ssl_invalid_hostname"
SSL_UNKNOWN_AUTHORITY = "ssl_unknown_authority"
SSL_INVALID_CERTIFICATE = "ssl_invalid_certificate"
SSL_FAILED_HANDSHAKE = "ssl_failed_handshake"

UNKNOWN_FAILURE_PREFIX = "unknown_failure: "

# The three verification outcomes after which a probe still fetches the certificates.
CERTIFICATE_FAILURES = frozenset(
    {SSL_INVALID_HOSTNAME, SSL_UNKNOWN_AUTHORITY, SSL_INVALID_CERTIFICATE}
)

_ERRNO_FAILURES: dict[int, str] = {
    errno.ECONNREFUSED: CONNECTION_REFUSED,
    errno.ECONNRESET: CONNECTION_RESET,
    errno.EPIPE: CONNECTION_RESET,  # writing to a connection the peer reset
    errno.ECONNABORTED: CONNECTION_ABORTED,
    errno.ETIMEDOUT: TIMED_OUT,
    errno.EHOSTUNREACH: HOST_UNREACHABLE,
    errno.ENETUNREACH: NETWORK_UNREACHABLE,
    errno.ENETDOWN: NETWORK_DOWN,
    errno.EAFNOSUPPORT: ADDRESS_FAMILY_NOT_SUPPORTED,
    errno.EADDRNOTAVAIL: ADDRESS_NOT_AVAILABLE,
    errno.EADDRINUSE: ADDRESS_IN_USE,
    errno.EACCES: PERMISSION_DENIED,
    errno.EPERM: PERMISSION_DENIED,  # e.g. an iptables REJECT/DROP on the OUTPUT chain
}

# OpenSSL X509_V_ERR_* codes (x509_vfy.h).
_VERIFY_HOSTNAME_MISMATCH = frozenset({62, 64})  # HOSTNAME_MISMATCH, IP_ADDRESS_MISMATCH
_VERIFY_UNKNOWN_AUTHORITY = frozenset(
    {
        18,  # DEPTH_ZERO_SELF_SIGNED_CERT
        19,  # SELF_SIGNED_CERT_IN_CHAIN
        20,  # UNABLE_TO_GET_ISSUER_CERT_LOCALLY
        21,  # UNABLE_TO_VERIFY_LEAF_SIGNATURE
    }
)

_DNS_RCODE_FAILURES = {
    "NXDOMAIN": DNS_NXDOMAIN,
    "SERVFAIL": DNS_SERVFAIL,
    "REFUSED": DNS_REFUSED,
}


def rcode_failure(rcode: str) -> str | None:
    """The failure for a DNS response code: None for NOERROR, else an OONI dns_* string."""
    if rcode == "NOERROR":
        return None
    return _DNS_RCODE_FAILURES.get(rcode, DNS_SERVER_MISBEHAVING)


def classify(exc: BaseException) -> str:
    """The OONI failure string for a network exception (outermost known first, see module rules)."""
    for cause in _exception_chain(exc):
        failure = _classify_one(cause)
        if failure is not None:
            return failure
    message = str(exc) or type(exc).__name__
    return UNKNOWN_FAILURE_PREFIX + scrub(message)


def _exception_chain(exc: BaseException) -> list[BaseException]:
    """`exc` followed by its causes (explicit `from` first, else implicit context), no cycles."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _classify_one(exc: BaseException) -> str | None:
    if isinstance(exc, ssl.SSLError):
        return _classify_ssl(exc)
    if isinstance(exc, OSError) and exc.errno in _ERRNO_FAILURES:
        return _ERRNO_FAILURES[exc.errno]
    if isinstance(exc, ConnectionRefusedError):
        return CONNECTION_REFUSED
    if isinstance(exc, ConnectionResetError | BrokenPipeError):
        return CONNECTION_RESET
    if isinstance(exc, ConnectionAbortedError):
        return CONNECTION_ABORTED
    if isinstance(exc, TimeoutError | dns.exception.Timeout):
        return GENERIC_TIMEOUT
    if isinstance(exc, EOFError):  # includes asyncio.IncompleteReadError
        return EOF_ERROR
    if isinstance(exc, dns.exception.DNSException):
        return _classify_dns(exc)
    return _classify_http_client(exc)


def _classify_ssl(exc: ssl.SSLError) -> str | None:
    if isinstance(exc, ssl.SSLWantReadError | ssl.SSLWantWriteError):
        return None  # "try again later": only ever the context of the real failure
    if isinstance(exc, ssl.SSLCertVerificationError):
        code = getattr(exc, "verify_code", None)
        if code in _VERIFY_HOSTNAME_MISMATCH:
            return SSL_INVALID_HOSTNAME
        if code in _VERIFY_UNKNOWN_AUTHORITY:
            return SSL_UNKNOWN_AUTHORITY
        return SSL_INVALID_CERTIFICATE
    if isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError):
        return EOF_ERROR
    if "UNEXPECTED_EOF" in str(exc).upper():
        return EOF_ERROR
    return SSL_FAILED_HANDSHAKE


def _classify_dns(exc: dns.exception.DNSException) -> str | None:
    if isinstance(exc, dns.resolver.NXDOMAIN):
        return DNS_NXDOMAIN
    if isinstance(exc, dns.resolver.NoAnswer):
        return DNS_NO_ANSWER
    if isinstance(exc, dns.resolver.NoNameservers):
        return DNS_SERVFAIL  # every server failed; dnspython's stub reports SERVFAIL this way
    if isinstance(
        exc,
        dns.exception.FormError
        | dns.message.ShortHeader
        | dns.message.TrailingJunk
        | dns.query.BadResponse
        | dns.exception.SyntaxError,
    ):
        return DNS_SERVER_MISBEHAVING
    return None


def _classify_http_client(exc: BaseException) -> str | None:
    """httpx/httpcore errors without an OS-level cause, recognised by name (no import needed)."""
    module = type(exc).__module__.split(".")[0]
    if module not in {"httpx", "httpcore"}:
        return None
    name = type(exc).__name__
    if "Timeout" in name:
        return GENERIC_TIMEOUT
    if name == "RemoteProtocolError" and "disconnect" in str(exc).lower():
        return EOF_ERROR
    return None


# An IPv6 candidate: hex digits, colons and dots with at least two colons, optional %zone.
_IPV6_CANDIDATE = re.compile(r"[0-9A-Fa-f]*:[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*(?:%[\w.-]+)?")
_IPV4_CANDIDATE = re.compile(r"(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?![\d])")
SCRUBBED = "[scrubbed]"


def scrub(message: str) -> str:
    """`message` with every IPv4 and IPv6 address replaced by "[scrubbed]"."""

    def replace_ipv6(match: re.Match[str]) -> str:
        text = match.group(0)
        address = text.split("%", 1)[0]
        # A sentence may glue punctuation to the address ("... 2001:db8::1: refused").
        trimmed = address.rstrip(".:")
        for candidate, rest in ((address, ""), (trimmed, address[len(trimmed) :])):
            try:
                ipaddress.IPv6Address(candidate)
            except ValueError:
                continue
            return SCRUBBED + rest
        return text

    def replace_ipv4(match: re.Match[str]) -> str:
        try:
            ipaddress.IPv4Address(match.group(0))
        except ValueError:
            return match.group(0)
        return SCRUBBED

    return _IPV4_CANDIDATE.sub(replace_ipv4, _IPV6_CANDIDATE.sub(replace_ipv6, message))
