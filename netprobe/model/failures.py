"""OONI failure strings, the groups the analysis reasons with, and scrubbing of messages.

Rules:
- Every failure string netprobe writes or reasons about is defined here once; other modules import
  the constants (no string literals elsewhere). The strings are OONI's (probe-cli netxlite, spec
  df-007, see /work/shared/REFERENCE.md §2), except the few marked as netprobe's own.
- Pure: no I/O and no network library. Turning an exception into one of these strings is
  `netprobe.probes.errors` (docs/DESIGN.md rule 2); it builds on `scrub` and the constants here.
- Every message that reaches a record is scrubbed, so that no IP address (in particular the
  volunteer's own) ever reaches a result file.
"""

from __future__ import annotations

import ipaddress
import re

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
# issue 13 (throughput): the answer to a GET was not an HTTP/1.x status line and head.
HTTP_INVALID_RESPONSE = "http_invalid_response"

# Operations a record's `failed_operation` names (OONI's names).
RESOLVE_OPERATION = "resolve"
CONNECT_OPERATION = "connect"
TLS_HANDSHAKE_OPERATION = "tls_handshake"
MTPROTO_OPERATION = "mtproto_handshake"  # netprobe's own: req_pq_multi sent, resPQ awaited

# netprobe's own (issue 13): TCP connected, but what came back (or nothing, before our deadline,
# or the peer's close) was no resPQ with our nonce. The record's `mtproto_error` says what came.
MTPROTO_NO_REPLY = "mtproto_no_valid_reply"

HTTP_OPERATION = "http_round_trip"  # issue 13: the request/response after connect (OONI's name)
HTTP_TRANSACTION_OPERATION = "http_transaction"  # issue 13: the request and reading the answer

# netprobe's own names for what the analysis finds in DNS answers (never a record's `failure`).
DNS_INJECTION = "dns_injection"  # a second, different reply to one query
DNS_UNEXPECTED_ANSWER = "dns_unexpected_answer"  # answers nothing vouches for, failing TLS
DNS_SINKHOLE = "dns_sinkhole"  # issue 13: an answer that is a known sinkhole (a fingerprint)
BLOCKPAGE = "blockpage"  # issue 13: an HTTP answer that matches a blockpage fingerprint
HTTP_DIFFERENT_PAGE = (
    "http_different_page"  # issue 13: a genuine address's page is not the control's
)

# The three verification outcomes after which a probe still fetches the certificates.
CERTIFICATE_FAILURES = frozenset(
    {SSL_INVALID_HOSTNAME, SSL_UNKNOWN_AUTHORITY, SSL_INVALID_CERTIFICATE}
)
# Our own deadline or the kernel's.
TIMEOUTS = frozenset({GENERIC_TIMEOUT, TIMED_OUT})
# Failures that only ever happen while connecting: a tls record without `failed_operation`
# (older files) that carries one of them failed at TCP connect.
CONNECT_FAILURES_WITHOUT_OPERATION = frozenset(
    {
        CONNECTION_REFUSED,
        HOST_UNREACHABLE,
        NETWORK_UNREACHABLE,
        NETWORK_DOWN,
        ADDRESS_FAMILY_NOT_SUPPORTED,
        ADDRESS_NOT_AVAILABLE,
        PERMISSION_DENIED,
    }
)
# Lookups that say the name has no address (as opposed to a resolver that failed).
DNS_NO_ADDRESS = frozenset({DNS_NXDOMAIN, DNS_NO_ANSWER})

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


# An IPv6 candidate: hex digits, colons and dots with at least two colons, optional %zone.
_IPV6_CANDIDATE = re.compile(r"[0-9A-Fa-f]*:[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*(?:%[\w.-]+)?")
_IPV4_CANDIDATE = re.compile(r"(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?![\d])")
SCRUBBED = "[scrubbed]"


def scrub(message: str, keep: frozenset[str] = frozenset()) -> str:
    """`message` with every IPv4 and IPv6 address replaced by "[scrubbed]", except those in
    `keep` (compared in their compressed form: the address a probe itself connected to)."""

    def replace_ipv6(match: re.Match[str]) -> str:
        text = match.group(0)
        address = text.split("%", 1)[0]
        # A sentence may glue punctuation to the address ("... 2001:db8::1: refused").
        trimmed = address.rstrip(".:")
        for candidate, rest in ((address, ""), (trimmed, address[len(trimmed) :])):
            try:
                parsed = ipaddress.IPv6Address(candidate)
            except ValueError:
                continue
            if str(parsed) in keep:
                return text
            return SCRUBBED + rest
        return text

    def replace_ipv4(match: re.Match[str]) -> str:
        try:
            parsed = ipaddress.IPv4Address(match.group(0))
        except ValueError:
            return match.group(0)
        return match.group(0) if str(parsed) in keep else SCRUBBED

    return _IPV4_CANDIDATE.sub(replace_ipv4, _IPV6_CANDIDATE.sub(replace_ipv6, message))
