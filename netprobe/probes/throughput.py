"""Throughput probe: how fast does ip:port deliver an object over TLS for a given SNI? (`throughput`)

Rules:
- One connection: TCP connect and TLS handshake (ALPN `http/1.1` only) under `timeout`, then one
  HTTP/1.1 `GET path` with `Host: hostname` (the domain whose object it is, whatever SNI is sent),
  `Accept-Encoding: identity` and `Connection: close`, read until the object is complete, the
  peer closes, `max_bytes` have arrived, or `max_seconds` have passed since the request was sent,
  whichever comes first (`stopped`: complete | closed | byte_cap | time_cap). Reaching a cap is
  not a failure: it is the measurement.
- The target SNI's transfer verifies the certificate against the SNI with the run's context. The
  control SNI's transfer (`sni_role: control`) cannot: the server's certificate names the target,
  not the control name, so it is made without verification and measured for its rate only (the
  TLS probe already judged the certificates of this ip:port).
- Recorded: `bytes` (everything received after the request: head and body), `body_bytes`,
  `ttfb` (request -> first response byte), `duration` (request -> end of reading), `rate` (bytes /
  duration, bytes per second) and `samples`: the bytes received by each 1/`samples` of the
  duration, so a transfer that starts fast and is then cut down shows it.
- A failure is an OONI string with `failed_operation` connect, tls_handshake or
  http_transaction; bytes read before a reset or a premature close are kept. No response byte
  within `max_seconds` is `generic_timeout_error`; an answer that is not HTTP/1.x is
  `http_invalid_response`.
- Never raises for a network failure; lets CancelledError through; keeps no state.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from typing import cast

from netprobe import __version__
from netprobe.model import records
from netprobe.model.failures import (
    CONNECT_OPERATION,
    EOF_ERROR,
    GENERIC_TIMEOUT,
    HTTP_INVALID_RESPONSE,
    HTTP_TRANSACTION_OPERATION,
    TLS_HANDSHAKE_OPERATION,
)
from netprobe.model.records import SEQUENCE_TARGET
from netprobe.model.vocabulary import ROLE_CONTROL
from netprobe.probes import ProbeContext
from netprobe.probes.errors import classify
from netprobe.probes.tcp import NETWORK_ERRORS, connect_socket, socket_family
from netprobe.probes.tls import TlsChannel, _unverified_context

ALPN = ("http/1.1",)
DEFAULT_SAMPLES = 8
MAX_HEAD = 64 * 1024  # a response head longer than this is not HTTP as servers speak it
_READ_SIZE = 65536
_STATUS_LINE = re.compile(rb"^HTTP/1\.[01] (\d{3})(?: [^\r\n]*)?$")

# The stop reasons (`stopped`).
COMPLETE, CLOSED, BYTE_CAP, TIME_CAP = "complete", "closed", "byte_cap", "time_cap"


class _InvalidResponse(Exception):
    """The answer is not an HTTP/1.x head."""


def request_bytes(hostname: str, path: str) -> bytes:
    """The GET request sent (one object, no compression, the connection closed after it)."""
    return (
        f"GET {path} HTTP/1.1\r\nHost: {hostname}\r\nUser-Agent: netprobe/{__version__}\r\n"
        "Accept: */*\r\nAccept-Encoding: identity\r\nConnection: close\r\n\r\n"
    ).encode("ascii")


def parse_head(head: bytes) -> tuple[int, int | None]:
    """(status, Content-Length or None) of a response head (without the blank line)."""
    lines = head.split(b"\r\n")
    match = _STATUS_LINE.match(lines[0])
    if not match:
        raise _InvalidResponse(lines[0][:80])
    length = None
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            try:
                length = int(value.strip())
            except ValueError:
                raise _InvalidResponse(line[:80]) from None
    return int(match.group(1)), length


def progress_samples(
    events: list[tuple[float, int]], duration: float, count: int
) -> list[records.ThroughputSample]:
    """Bytes received by each 1/count of `duration` (events: (seconds, total bytes), in order)."""
    samples: list[records.ThroughputSample] = []
    index, total = 0, 0
    for k in range(1, count + 1):
        moment = duration * k / count
        while index < len(events) and events[index][0] <= moment + 1e-9:
            total = events[index][1]
            index += 1
        samples.append({"t": round(moment, 6), "bytes": total})
    return samples


class _Transfer:
    """What one transfer found so far (filled as it goes, so a failure keeps the bytes read)."""

    def __init__(self) -> None:
        self.phase = CONNECT_OPERATION
        self.status: int | None = None
        self.received = 0
        self.body = 0
        self.sent_at: float | None = None
        self.first_at: float | None = None
        self.ended_at: float | None = None
        self.stopped: str | None = None
        self.events: list[tuple[float, int]] = []


async def _read_response(
    channel: TlsChannel, transfer: _Transfer, max_bytes: int, sent_at: float
) -> None:
    head = b""
    length: int | None = None
    in_body = False
    while True:
        chunk = await channel.receive_some(_READ_SIZE)
        now = time.monotonic()
        if not chunk:
            if not in_body:
                raise EOFError("the server closed before the response head ended")
            if length is not None and transfer.body < length:
                raise EOFError("the server closed before the object ended")
            transfer.stopped = COMPLETE if length is not None else CLOSED
            return
        if transfer.first_at is None:
            transfer.first_at = now
        transfer.received += len(chunk)
        transfer.events.append((now - sent_at, transfer.received))
        if not in_body:
            head += chunk
            end = head.find(b"\r\n\r\n")
            if end < 0:
                if len(head) > MAX_HEAD:
                    raise _InvalidResponse(head[:80])
                continue
            transfer.status, length = parse_head(head[:end])
            in_body = True
            transfer.body = len(head) - end - 4
        else:
            transfer.body += len(chunk)
        if length is not None and transfer.body >= length:
            transfer.stopped = COMPLETE
            return
        if transfer.received >= max_bytes:
            transfer.stopped = BYTE_CAP
            return


async def _transfer(
    ip: str,
    port: int,
    server_name: str,
    hostname: str,
    path: str,
    context: ssl.SSLContext,
    timeout: float,
    max_bytes: int,
    max_seconds: float,
    transfer: _Transfer,
) -> None:
    """Connect, handshake, request and read (see the module rules); exceptions propagate."""
    sock = None
    try:
        async with asyncio.timeout(timeout):  # one deadline for connect + handshake
            sock = await connect_socket(ip, port)
            transfer.phase = TLS_HANDSHAKE_OPERATION
            channel = TlsChannel(sock, context, server_name, ALPN)
            await channel.handshake()
        transfer.phase = HTTP_TRANSACTION_OPERATION
        transfer.sent_at = time.monotonic()
        try:
            async with asyncio.timeout(max_seconds):
                await channel.send(request_bytes(hostname, path))
                await _read_response(channel, transfer, max_bytes, transfer.sent_at)
        except TimeoutError:
            if transfer.first_at is None:
                raise
            transfer.stopped = TIME_CAP
        transfer.ended_at = time.monotonic()
    finally:
        if sock is not None:
            sock.close()


async def probe_throughput(
    ctx: ProbeContext,
    ip: str,
    port: int,
    server_name: str,
    path: str,
    *,
    hostname: str,
    sni_role: str,
    ssl_context: ssl.SSLContext,
    timeout: float,
    max_bytes: int,
    max_seconds: float,
    samples: int = DEFAULT_SAMPLES,
    sequence: str = SEQUENCE_TARGET,
) -> records.ThroughputRecord:
    """Download `path` from ip:port with SNI `server_name`; return a `throughput` record."""
    socket_family(ip)  # bad input raises here, before any record is made
    if not path.startswith("/") or max_bytes < 1 or max_seconds <= 0 or samples < 1:
        raise ValueError(f"bad throughput request: path={path!r} max_bytes={max_bytes}")
    t0 = ctx.now()
    transfer = _Transfer()
    context = _unverified_context() if sni_role == ROLE_CONTROL else ssl_context
    failure: str | None = None
    try:
        await _transfer(
            ip, port, server_name, hostname, path, context, timeout, max_bytes, max_seconds,
            transfer,
        )  # fmt: skip
    except _InvalidResponse:
        failure = HTTP_INVALID_RESPONSE
    except NETWORK_ERRORS as exc:
        failure = classify(exc)
        if isinstance(exc, TimeoutError) and transfer.phase == HTTP_TRANSACTION_OPERATION:
            failure = GENERIC_TIMEOUT  # no response byte before the time cap
        elif isinstance(exc, EOFError):
            failure = EOF_ERROR
    end = transfer.ended_at or time.monotonic()
    duration = end - transfer.sent_at if transfer.sent_at is not None else None
    ttfb = (
        transfer.first_at - transfer.sent_at
        if transfer.first_at is not None and transfer.sent_at is not None
        else None
    )
    rate = transfer.received / duration if duration and transfer.received else None
    record = ctx.record(
        records.THROUGHPUT,
        t0=t0,
        failure=failure,
        failed_operation=transfer.phase,
        ip=ip,
        port=port,
        server_name=server_name,
        sni_role=sni_role,
        hostname=hostname,
        path=path,
        sequence=sequence,
        max_bytes=max_bytes,
        max_seconds=max_seconds,
        http_status=transfer.status,
        bytes=transfer.received,
        body_bytes=transfer.body,
        ttfb=round(ttfb, 6) if ttfb is not None else None,
        duration=round(duration, 6) if duration is not None else None,
        rate=round(rate, 1) if rate is not None else None,
        stopped=transfer.stopped if failure is None else None,
        samples=progress_samples(transfer.events, duration, samples) if duration else [],
    )
    return cast(records.ThroughputRecord, record)
