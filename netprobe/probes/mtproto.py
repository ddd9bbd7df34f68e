"""MTProto probe: does ip:port answer `req_pq_multi` with a `resPQ`? (record type `mtproto`)

Rules:
- One TCP connection per call (connected like the tcp probe, `connect_socket`), one transport
  (`intermediate`, `abridged` or `obfuscated2`), one unencrypted `req_pq_multi` with a fresh
  random nonce, then read until one whole packet came back, the peer closed, or the deadline.
  One `timeout` covers connect, send and the reply. The socket is always closed.
- All framing, encryption and parsing is `netprobe.probes.mtproto_wire` (pure); this module only
  moves bytes. Nothing here needs an account or a key: the first step of Telegram's key
  exchange costs nothing on either side.
- A network failure is data: a failed connect is `failed_operation: connect` with the socket
  failure; after the connect, a reset is `connection_reset`, the peer's close before a whole
  packet `eof_error`, no whole packet within the deadline `generic_timeout_error`, and a packet
  that is no resPQ with our nonce `mtproto_no_valid_reply` (`mtproto_error` says what came), all
  with `failed_operation: mtproto_handshake`.
- Bytes sent/received and the time from the send to the first byte back are recorded on every
  attempt, so a censor that swallows the request is told from one that answers with junk.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import time
from typing import cast

from netprobe.model import records
from netprobe.model.failures import (
    CONNECT_OPERATION,
    EOF_ERROR,
    MTPROTO_NO_REPLY,
    MTPROTO_OPERATION,
)
from netprobe.probes import ProbeContext
from netprobe.probes.errors import classify
from netprobe.probes.mtproto_wire import (
    TRANSPORTS,
    ClientSession,
    WireError,
    message_id,
    parse_res_pq,
    req_pq_multi,
)
from netprobe.probes.tcp import NETWORK_ERRORS, connect_socket, socket_family

READ_SIZE = 4096


class _Exchange:
    """What one connection saw, filled in as it goes (so a deadline keeps what came so far)."""

    def __init__(self) -> None:
        self.connected = False
        self.sent = 0
        self.received = 0
        self.sent_at: float | None = None
        self.first_byte: float | None = None
        self.packet: bytes | None = None


async def _exchange(
    sock: socket.socket, session: ClientSession, request: bytes, seen: _Exchange
) -> None:
    loop = asyncio.get_running_loop()
    seen.sent_at = time.monotonic()
    await loop.sock_sendall(sock, request)
    seen.sent = len(request)
    while seen.packet is None:
        data = await loop.sock_recv(sock, READ_SIZE)
        if not data:
            raise EOFError("the peer closed the connection before a whole packet")
        if seen.first_byte is None:
            seen.first_byte = time.monotonic() - seen.sent_at
        seen.received += len(data)
        seen.packet = session.feed(data)


async def probe_mtproto(
    ctx: ProbeContext, ip: str, port: int, transport: str, *, timeout: float
) -> records.MtprotoRecord:
    """Send req_pq_multi to ip:port over `transport` within `timeout` s; an `mtproto` record."""
    socket_family(ip)  # bad input raises here, before any record is made
    if transport not in TRANSPORTS:
        raise ValueError(f"unknown MTProto transport {transport!r}")
    nonce = secrets.token_bytes(16)
    session = ClientSession(transport)
    request = session.request(req_pq_multi(nonce, message_id(time.time())))
    t0 = ctx.now()
    seen = _Exchange()
    failure: str | None = None
    error: str | None = None
    res_pq = None
    try:
        async with asyncio.timeout(timeout):
            sock = await connect_socket(ip, port)
            seen.connected = True
            try:
                await _exchange(sock, session, request, seen)
            finally:
                sock.close()
    except NETWORK_ERRORS as exc:
        failure = classify(exc)
        if seen.connected and seen.received:
            ended = "the peer closed" if failure == EOF_ERROR else "the connection ended"
            error = f"{ended} after {seen.received} bytes, no whole packet"
    except WireError as exc:
        failure, error = MTPROTO_NO_REPLY, str(exc)
    if seen.packet is not None and failure is None:
        try:
            res_pq = parse_res_pq(seen.packet, nonce)
        except WireError as exc:
            failure, error = MTPROTO_NO_REPLY, str(exc)
    record = ctx.record(
        records.MTPROTO,
        t0=t0,
        failure=failure,
        failed_operation=MTPROTO_OPERATION if seen.connected else CONNECT_OPERATION,
        ip=ip,
        port=port,
        transport=transport,
        bytes_sent=seen.sent,
        bytes_received=seen.received,
        first_byte=None if seen.first_byte is None else round(seen.first_byte, 6),
        res_pq=res_pq is not None,
        server_nonce=res_pq.server_nonce.hex() if res_pq else None,
        fingerprints=[f"{fp & (2**64 - 1):016x}" for fp in res_pq.fingerprints] if res_pq else [],
        mtproto_error=error,
    )
    return cast(records.MtprotoRecord, record)
