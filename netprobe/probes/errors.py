"""One module maps exceptions to OONI's failure strings (docs/DESIGN.md rule 2).

Rules:
- This is the only module that turns an exception into a failure string; the strings themselves
  are constants of `netprobe.model.failures`.
- A wrapped exception is classified by the outermost exception that has a known mapping, then its
  causes in turn: httpx.ConnectError (unknown) -> httpcore.ConnectError (unknown) -> ssl error
  (known) gives the ssl failure, while asyncio's TimeoutError wins over whatever it interrupted.
- Anything unknown becomes `unknown_failure: <message>`, and every message is scrubbed so that no
  IP address (in particular the volunteer's own) ever reaches a result file.
- No I/O. ssl is imported for its exception classes; dnspython's are looked up only once
  dnspython is loaded (no dnspython exception can exist before: a sweep never loads it), and
  httpx/httpcore are recognised by class name, so this module depends on neither.
"""

from __future__ import annotations

import errno
import ssl
import sys
from typing import TYPE_CHECKING

from netprobe.model.failures import (
    ADDRESS_FAMILY_NOT_SUPPORTED,
    ADDRESS_IN_USE,
    ADDRESS_NOT_AVAILABLE,
    CONNECTION_ABORTED,
    CONNECTION_REFUSED,
    CONNECTION_RESET,
    DNS_NO_ANSWER,
    DNS_NXDOMAIN,
    DNS_SERVER_MISBEHAVING,
    DNS_SERVFAIL,
    EOF_ERROR,
    GENERIC_TIMEOUT,
    HOST_UNREACHABLE,
    NETWORK_DOWN,
    NETWORK_UNREACHABLE,
    PERMISSION_DENIED,
    SSL_FAILED_HANDSHAKE,
    SSL_INVALID_CERTIFICATE,
    SSL_INVALID_HOSTNAME,
    SSL_UNKNOWN_AUTHORITY,
    TIMED_OUT,
    UNKNOWN_FAILURE_PREFIX,
    scrub,
)

if TYPE_CHECKING:
    import dns.exception

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
    if isinstance(exc, TimeoutError):
        return GENERIC_TIMEOUT
    if isinstance(exc, EOFError):  # includes asyncio.IncompleteReadError
        return EOF_ERROR
    dns_exception = sys.modules.get("dns.exception")  # see the module rules
    if dns_exception is not None and isinstance(exc, dns_exception.DNSException):
        if isinstance(exc, dns_exception.Timeout):
            return GENERIC_TIMEOUT
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


# dnspython's exception classes by failure, looked up in the modules already loaded (rules).
_DNS_FAILURES = (
    (DNS_NXDOMAIN, "dns.resolver", "NXDOMAIN"),
    (DNS_NO_ANSWER, "dns.resolver", "NoAnswer"),
    # every server failed; dnspython's stub reports SERVFAIL this way
    (DNS_SERVFAIL, "dns.resolver", "NoNameservers"),
    (DNS_SERVER_MISBEHAVING, "dns.exception", "FormError"),
    (DNS_SERVER_MISBEHAVING, "dns.message", "ShortHeader"),
    (DNS_SERVER_MISBEHAVING, "dns.message", "TrailingJunk"),
    (DNS_SERVER_MISBEHAVING, "dns.query", "BadResponse"),
    (DNS_SERVER_MISBEHAVING, "dns.exception", "SyntaxError"),
)


def _classify_dns(exc: dns.exception.DNSException) -> str | None:
    for failure, module_name, class_name in _DNS_FAILURES:
        module = sys.modules.get(module_name)
        if module is not None and isinstance(exc, getattr(module, class_name)):
            return failure
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
