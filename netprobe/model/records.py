"""Record schema shared by every probe, the writer and every reader.

Rules:
- Every record is a flat JSON object with `schema_version` and `type` first.
- Records are encoded once, compactly, one per line, LF only; readers never re-serialise a
  record before verifying it (signatures cover the bytes as written).
- Times inside a run are seconds since the run start (`t0`, `t`), rounded to microseconds;
  wall-clock times are UTC ISO-8601 with a `Z` suffix.
- `HeaderRecord`, `DnsRecord`, ... are the typed shapes of those records (for annotations only):
  `new_record` and `measurement` keep building plain dicts in the order fields are given.
The full schema is in docs/DESIGN.md.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal, NotRequired, TypedDict

SCHEMA_VERSION = 1

HEADER = "header"
SUMMARY = "summary"
CHECKPOINT = "checkpoint"
SIGNATURE = "signature"
DNS = "dns"
TCP = "tcp"
TLS = "tls"
MTPROTO = "mtproto"
HTTP = "http"  # issue 13: plain GET / on port 80 (netprobe.probes.http)
THROUGHPUT = "throughput"  # issue 13: an HTTP/1.1 download over TLS, its bytes and rate
MEASUREMENT_TYPES = frozenset({DNS, TCP, TLS, MTPROTO, HTTP, THROUGHPUT})

# `resolver_role` of the injection probe: a query sent to an address that runs no DNS server.
RESOLVER_SILENT = "silent"
# `sequence` of a tls record: where it stands in the handshakes with one ip:port.
SEQUENCE_BEFORE = "before"  # the control SNI, first
SEQUENCE_TARGET = "target"  # the target SNI
SEQUENCE_AFTER = "after"  # the control SNI again, `pause` seconds after the target SNI failed

# Field names added by issue 15 (absent in older files; absence means the old behaviour).
CONFIRMATION = "confirmation"  # k = 1..N on a re-probe of a failing step; missing or 0 when planned
CONTROL_ROUND = "control_round"  # 0 = start, 1, 2, ...: the round of a control job
SEQUENCE = "sequence"  # tls: SEQUENCE_BEFORE | SEQUENCE_TARGET | SEQUENCE_AFTER
PAUSE = "pause"  # tls `after` records: seconds waited after the target SNI failed
RETRIED_OVER_TCP = "retried_over_tcp"  # dns: a truncated UDP reply, asked again over TCP
TRUNCATED_UDP = "truncated_udp"  # dns: what that truncated UDP reply held (never evidence)


def new_record(record_type: str, **fields: Any) -> dict[str, Any]:
    """A record with the schema version and type first, then `fields` in the given order."""
    record: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "type": record_type}
    record.update(fields)
    return record


def measurement(
    record_type: str,
    *,
    target_id: str,
    group: str,
    role: str,
    attempt: int,
    t0: float,
    t: float,
    failure: str | None,
    failed_operation: str | None,
    **fields: Any,
) -> dict[str, Any]:
    """A measurement record with the common fields of docs/DESIGN.md, then kind-specific ones."""
    record: dict[
        str, Any
    ] = {  # `new_record`'s order, written out: a sweep makes thousands a second
        "schema_version": SCHEMA_VERSION,
        "type": record_type,
        "target_id": target_id,
        "group": group,
        "role": role,
        "attempt": attempt,
        "t0": round(t0, 6),
        "t": round(t, 6),
        "failure": failure,
        "failed_operation": failed_operation if failure else None,
    }
    record.update(fields)
    return record


# -- typed records -----------------------------------------------------------------------------
# One TypedDict per record type, fields as in docs/DESIGN.md "Result file", in file order. They
# describe the dicts that `new_record`/`measurement` build (those stay plain dicts, so the bytes
# written never depend on these annotations). `NotRequired` marks a field only some records have.


class TargetFile(TypedDict):
    name: str  # the file's base name only: a full path could name the volunteer's home
    sha256: str | None


class HeaderOptions(TypedDict):
    timeout: float
    concurrency: int
    repeat: int
    deadline: float
    udp_wait: float
    max_addresses_per_domain: int
    ca_bundle: str | None  # base name only
    http_body_limit: NotRequired[int]  # issue 13: bytes of HTTP body kept (0: --no-bodies)


class SignerInfo(TypedDict):
    public_key: str
    fingerprint: str
    namespace: str


class HeaderRecord(TypedDict):
    schema_version: int
    type: Literal["header"]
    software_name: str
    software_version: str
    run_id: str
    started_at: str
    vantage: str
    probe_asn: str
    probe_cc: str
    resolvers: list[str]
    control_resolvers: list[str]
    system_resolver_ip: str | None
    target_files: list[TargetFile]
    target_list_name: str
    control_sni: str | None
    options: HeaderOptions
    expected_ranges: dict[str, list[str]]
    groups: dict[str, dict[str, Any]]
    # issue 13: the blockpage fingerprints the run's analysis matches against (bundled + the
    # lists' own), so that the file alone decides its verdicts; absent in older files.
    fingerprints: NotRequired[list[dict[str, Any]]]
    signer: NotRequired[SignerInfo | None]  # filled in by the writer, last


class MeasurementRecord(TypedDict):
    """The fields every `dns`, `tcp` and `tls` record starts with."""

    schema_version: int
    type: str
    target_id: str
    group: str
    role: str  # "target" | "control"
    attempt: int
    t0: float
    t: float
    failure: str | None
    failed_operation: str | None  # "resolve" | "connect" | "tls_handshake" when failure is set
    # Labels of the plan, written after the kind's own fields (old files have neither):
    control_round: NotRequired[int]  # records of control targets: 0 = start, ..., last = end
    confirmation: NotRequired[int]  # a re-probe of a failed step: 1..N (same `attempt`)


class DnsAnswer(TypedDict):
    answer_type: str  # "A" | "AAAA" | "CNAME"
    ipv4: NotRequired[str]
    ipv6: NotRequired[str]
    hostname: NotRequired[str]
    ttl: int


class LateReply(TypedDict):
    t: float
    rcode: str
    answers: list[DnsAnswer]


class TruncatedReply(TypedDict):
    """What a UDP reply with TC set held (the record's main fields are the TCP retry's)."""

    rcode: str
    answers: list[DnsAnswer]
    flags: list[str]
    t: float | None  # seconds since the run start when it arrived


class DnsRecord(MeasurementRecord):
    hostname: str
    query_type: str  # "A" | "AAAA"
    resolver_address: str
    resolver_role: str  # "probe" | "control" | "silent" (the injection probe)
    engine: str  # "udp" | "tcp" | "dot" | "doh"
    resolver_ip: str | None
    rcode: str | None
    answers: list[DnsAnswer]
    late_replies: list[LateReply]
    # Added by issue 15 (absent in older files): the reply's header flags (sorted names) and
    # EDNS0 UDP payload size (None without EDNS0), on every record that got a reply.
    flags: NotRequired[list[str]]
    edns_payload: NotRequired[int | None]
    mismatched_replies: NotRequired[int]  # udp records: replies to our id with another question
    udp_sends: NotRequired[
        int
    ]  # udp records: times the query was sent (resent while no reply came)
    truncated_udp: NotRequired[TruncatedReply]  # udp records whose reply had TC set ...
    retried_over_tcp: NotRequired[bool]  # ... and were asked again over TCP
    http_status: NotRequired[int | None]  # doh records only
    http_version: NotRequired[str | None]  # doh records: "HTTP/2" | "HTTP/1.1", None: no response


class TcpRecord(MeasurementRecord):
    ip: str
    port: int


class PeerCertificate(TypedDict):
    sha256: str
    subject: str | None
    issuer: str | None
    san: list[str]
    not_before: str | None
    not_after: str | None


class TlsRecord(MeasurementRecord):
    ip: str
    port: int
    server_name: str
    sni_role: str  # "target" | "control"
    hostname: str | None
    address_sources: list[str]
    alpn_offered: list[str]
    tls_version: str | None
    cipher_suite: str | None
    negotiated_protocol: str | None
    peer_certificates: list[PeerCertificate]
    certificates_from_unverified_handshake: bool
    sequence: NotRequired[str]  # "before" | "target" | "after" (SEQUENCE_*)
    pause: NotRequired[float]  # `after` only: seconds waited after the target SNI failed


class MtprotoRecord(MeasurementRecord):
    """One req_pq_multi over one MTProto transport (issue 13; docs/DESIGN.md "mtproto")."""

    ip: str
    port: int
    transport: str  # "intermediate" | "abridged" | "obfuscated2"
    bytes_sent: int
    bytes_received: int
    first_byte: float | None  # seconds from the send to the first byte back, None if none came
    res_pq: bool  # a well-formed resPQ with our nonce came back
    server_nonce: str | None  # hex, when res_pq
    fingerprints: list[str]  # server_public_key_fingerprints as 16 hex digits, when res_pq
    mtproto_error: str | None  # what came instead of a resPQ, in words (failure mtproto_no_...)


# The http probe's one request (issue 13): `GET /` over HTTP/1.1 to the IP literal, these
# headers after `Host: hostname` (`probes.http` sends them, `export.ooni` reports them).
HTTP_METHOD = "GET"
HTTP_PATH = "/"
HTTP_REQUEST_HEADERS = (
    ("User-Agent", "Mozilla/5.0 (compatible; netprobe)"),
    ("Accept", "*/*"),
    ("Accept-Encoding", "identity"),
)


class HttpRecord(MeasurementRecord):
    """issue 13: `GET /` with `Host: hostname` to ip:port (docs/DESIGN.md "http")."""

    ip: str
    port: int
    hostname: str
    address_sources: list[str]
    status: int | None  # None: no response
    headers: dict[str, str | list[str]]  # the bounded set HTTP_HEADERS; set_cookie: names only
    title: str | None
    body_sha256: str | None  # of the bytes read (at most HTTP_READ_LIMIT)
    body_length: int | None  # bytes read
    body_truncated: bool  # the body was longer than HTTP_READ_LIMIT
    body: str | None  # the first `body_limit` bytes, decoded; None with --no-bodies


class ThroughputSample(TypedDict):
    t: float  # seconds since the request was sent
    bytes: int  # bytes received (head + body) by then


class ThroughputRecord(MeasurementRecord):
    """Issue 13: one download of `path` over TLS (docs/DESIGN.md "throughput")."""

    ip: str
    port: int
    server_name: str  # the SNI sent
    sni_role: str  # "target" | "control"
    hostname: str  # the Host header: the domain whose object is fetched
    path: str
    sequence: str  # "before" (the control SNI, first) | "target"
    max_bytes: int  # the byte cap
    max_seconds: float  # the time cap
    http_status: int | None
    bytes: int  # bytes received after the request: head + body
    body_bytes: int
    ttfb: float | None  # seconds from the request to its first response byte
    duration: float | None  # seconds from the request to the end of reading
    rate: float | None  # bytes / duration, bytes per second
    stopped: str | None  # "complete" | "byte_cap" | "time_cap" | "closed"; None on failure
    samples: list[ThroughputSample]


class SummaryRecord(TypedDict):
    schema_version: int
    type: Literal["summary"]
    finished_at: str
    duration: float
    interrupted: str | None  # None, "deadline" or a signal name such as "SIGTERM"
    measurements: int
    targets: int
    failures: dict[str, int]
    controls: dict[str, dict[str, int]]


class CheckpointRecord(TypedDict):
    schema_version: int
    type: Literal["checkpoint"]
    seq: int
    lines: int
    bytes: int
    reason: str  # "start" | "interval" | "signal" | "end"


class SignatureRecord(TypedDict):
    schema_version: int
    type: Literal["signature"]
    seq: int
    namespace: str
    hash_alg: str
    sshsig: str


Measurement = DnsRecord | TcpRecord | TlsRecord | MtprotoRecord | HttpRecord | ThroughputRecord


def answer_addresses(record: Mapping[str, Any]) -> list[str]:
    """The A/AAAA addresses in a dns record's answers, in order."""
    addresses = []
    for answer in record.get("answers") or []:
        address = answer.get("ipv4") or answer.get("ipv6")
        if address:
            addresses.append(address)
    return addresses


# json.dumps with these options builds a new encoder per call; one shared encoder writes the
# same text (it keeps no state between calls).
_LINE_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _c_line_encoder() -> Any:
    """The C encoder `_LINE_ENCODER.encode` makes afresh at every call (json.encoder.iterencode),
    made once: ~40 % of a small record's encoding. None where its signature differs (CPython
    before 3.11.4 passed a float formatter) or there is no C encoder: a self-check against the
    generic encoder decides, so the bytes can never differ. It keeps no circular-reference
    markers (a record is a tree; a cycle ends in RecursionError, and `encode_line`'s generic
    fallback then raises json's own error), so a failed call leaves nothing behind."""
    from json import encoder

    make = getattr(encoder, "c_make_encoder", None)  # untyped in typeshed
    if make is None:
        return None
    enc = _LINE_ENCODER
    try:
        made = make(
            None, enc.default, encoder.encode_basestring, None, enc.key_separator,
            enc.item_separator, False, False, False,
        )  # fmt: skip
        probe = {"a": 1.5, "b": [None, True, "é\n\u2028"], "c": {"d": -0.0, "e": 10**20}}
        if "".join(made(probe, 0)) != enc.encode(probe):
            return None
        made({"nan": float("nan")}, 0)
    except ValueError:
        return made  # allow_nan=False holds: NaN is refused, as the generic encoder refuses it
    except Exception:
        return None
    return None


_C_LINE_ENCODER = _c_line_encoder()


def encode_line(record: dict[str, Any]) -> bytes:
    """One record as the exact bytes written to a result file (compact JSON + LF)."""
    if _C_LINE_ENCODER is not None:
        try:
            return "".join(_C_LINE_ENCODER(record, 0)).encode("utf-8") + b"\n"
        except Exception:
            pass  # the generic encoder raises its own error (or, if it can, encodes it)
    return encode_line_generic(record)


def encode_line_generic(record: dict[str, Any]) -> bytes:
    """`encode_line` through `json.JSONEncoder.encode` (the reference the fast path must equal)."""
    return _LINE_ENCODER.encode(record).encode("utf-8") + b"\n"


def utc_now_iso() -> str:
    return format_utc(datetime.now(UTC))


def format_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_utc(text: str) -> datetime:
    """Parse a time written by `format_utc` (or any ISO-8601 string; naive means UTC)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
