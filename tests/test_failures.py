"""probes.errors.classify, failures.scrub and failures.rcode_failure: table tests."""

from __future__ import annotations

import asyncio
import errno
import ssl

import dns.exception
import dns.message
import dns.resolver
import httpcore
import httpx
import pytest

from netprobe.model.failures import CERTIFICATE_FAILURES, rcode_failure, scrub
from netprobe.probes.errors import classify


def verify_error(
    code: int, message: str = "certificate verify failed"
) -> ssl.SSLCertVerificationError:
    exc = ssl.SSLCertVerificationError(1, message)
    exc.verify_code = code
    return exc


def chained(outer: BaseException, inner: BaseException) -> BaseException:
    outer.__cause__ = inner
    return outer


@pytest.mark.parametrize(
    ("exc", "failure"),
    [
        (ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), "connection_refused"),
        (ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"), "connection_reset"),
        (ConnectionResetError("no errno"), "connection_reset"),
        (BrokenPipeError(errno.EPIPE, "Broken pipe"), "connection_reset"),
        (ConnectionAbortedError(errno.ECONNABORTED, "aborted"), "connection_aborted"),
        (OSError(errno.EHOSTUNREACH, "No route to host"), "host_unreachable"),
        (OSError(errno.ENETUNREACH, "Network is unreachable"), "network_unreachable"),
        (OSError(errno.ENETDOWN, "Network is down"), "network_down"),
        (OSError(errno.EAFNOSUPPORT, "family"), "address_family_not_supported"),
        (OSError(errno.EADDRNOTAVAIL, "cannot assign"), "address_not_available"),
        (OSError(errno.EPERM, "Operation not permitted"), "permission_denied"),
        (TimeoutError(errno.ETIMEDOUT, "Connection timed out"), "timed_out"),
        (TimeoutError(), "generic_timeout_error"),
        (dns.exception.Timeout(), "generic_timeout_error"),
        (EOFError(), "eof_error"),
        (asyncio.IncompleteReadError(b"", 2), "eof_error"),
        (verify_error(62, "Hostname mismatch"), "ssl_invalid_hostname"),
        (verify_error(64, "IP address mismatch"), "ssl_invalid_hostname"),
        (verify_error(18, "self-signed certificate"), "ssl_unknown_authority"),
        (verify_error(19), "ssl_unknown_authority"),
        (verify_error(20, "unable to get local issuer certificate"), "ssl_unknown_authority"),
        (verify_error(21), "ssl_unknown_authority"),
        (verify_error(10, "certificate has expired"), "ssl_invalid_certificate"),
        (ssl.SSLEOFError(8, "EOF occurred in violation of protocol"), "eof_error"),
        (ssl.SSLError(1, "[SSL: UNEXPECTED_EOF_WHILE_READING] unexpected eof"), "eof_error"),
        (ssl.SSLError(1, "[SSL: TLSV1_ALERT_PROTOCOL_VERSION] alert"), "ssl_failed_handshake"),
        (dns.resolver.NXDOMAIN(), "dns_nxdomain_error"),
        (dns.message.ShortHeader(), "dns_server_misbehaving"),
        (dns.exception.FormError(), "dns_server_misbehaving"),
        (httpx.ConnectTimeout("timed out"), "generic_timeout_error"),
        (httpx.RemoteProtocolError("Server disconnected without sending a response."), "eof_error"),
        # wrapped: the outermost exception with a known mapping wins
        (chained(httpx.ConnectError("x"), chained(httpcore.ConnectError("y"), verify_error(62))),
         "ssl_invalid_hostname"),
        (chained(TimeoutError(), ssl.SSLWantReadError()), "generic_timeout_error"),
        (chained(RuntimeError("wrapper"), ConnectionResetError()), "connection_reset"),
    ],
)  # fmt: skip
def test_classify(exc: BaseException, failure: str) -> None:
    assert classify(exc) == failure


def test_unknown_exceptions_keep_a_scrubbed_message() -> None:
    failure = classify(RuntimeError("cannot bind 192.0.2.7 or 2001:db8::7"))
    assert failure == "unknown_failure: cannot bind [scrubbed] or [scrubbed]"


def test_unknown_exception_without_message_names_its_type() -> None:
    assert classify(KeyError()) == "unknown_failure: KeyError"


def test_certificate_failures_are_the_three_verification_outcomes() -> None:
    assert CERTIFICATE_FAILURES == {
        "ssl_invalid_hostname", "ssl_unknown_authority", "ssl_invalid_certificate",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("rcode", "failure"),
    [
        ("NOERROR", None),
        ("NXDOMAIN", "dns_nxdomain_error"),
        ("SERVFAIL", "dns_servfail_error"),
        ("REFUSED", "dns_refused_error"),
        ("FORMERR", "dns_server_misbehaving"),
        ("NOTIMP", "dns_server_misbehaving"),
    ],
)
def test_rcode_failure(rcode: str, failure: str | None) -> None:
    assert rcode_failure(rcode) == failure


@pytest.mark.parametrize(
    ("message", "scrubbed"),
    [
        ("connect to 192.0.2.1:443 failed", "connect to [scrubbed]:443 failed"),
        ("('127.0.0.1', 53)", "('[scrubbed]', 53)"),
        ("[2001:db8::1]:443 refused", "[[scrubbed]]:443 refused"),
        ("host 2001:db8::1: refused", "host [scrubbed]: refused"),
        ("via fe80::1%eth0 now", "via [scrubbed] now"),
        ("mapped ::ffff:10.0.0.1 here", "mapped [scrubbed] here"),
        ("loopback ::1.", "loopback [scrubbed]."),
        ("two 198.51.100.1 and 203.0.113.9", "two [scrubbed] and [scrubbed]"),
        # not addresses: left alone
        ("at 12:30:45 ok", "at 12:30:45 ok"),
        ("OpenSSL 3.0.2 failed", "OpenSSL 3.0.2 failed"),
        ("999.1.1.1 is not an IP", "999.1.1.1 is not an IP"),
        ("dead:beef is not an IP", "dead:beef is not an IP"),
        ("", ""),
    ],
)
def test_scrub(message: str, scrubbed: str) -> None:
    assert scrub(message) == scrubbed
