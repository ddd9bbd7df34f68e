"""TCP connect probe: can this machine open a TCP connection to ip:port? (record type `tcp`)

Rules:
- One non-blocking socket per probe, of the address's family, connected with `loop.sock_connect`
  under one deadline; the socket is always closed, and nothing is ever sent on it.
- A network failure is data: the record's `failure` is an OONI string from `netprobe.model.failures`
  (refused, reset, unreachable, `generic_timeout_error` when our deadline expires).
- `connect_socket` is shared with the TLS probe so both connect exactly the same way.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import cast

from netprobe.model import records
from netprobe.probes import ProbeContext
from netprobe.probes.errors import classify

# What a connect can fail with; anything else is a bug and propagates.
NETWORK_ERRORS = (OSError, TimeoutError, EOFError)


def socket_family(ip: str) -> socket.AddressFamily:
    """AF_INET or AF_INET6 for an IP literal; ValueError if `ip` is not one."""
    return socket.AF_INET6 if ipaddress.ip_address(ip).version == 6 else socket.AF_INET


async def connect_socket(ip: str, port: int) -> socket.socket:
    """A connected non-blocking socket; the caller bounds the time (asyncio.timeout) and closes it.

    On failure or cancellation the socket is closed before the exception propagates.
    """
    sock = socket.socket(socket_family(ip), socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (ip, port))
    except BaseException:
        sock.close()
        raise
    return sock


async def probe_tcp(ctx: ProbeContext, ip: str, port: int, *, timeout: float) -> records.TcpRecord:
    """Connect to ip:port within `timeout` seconds and return a `tcp` record."""
    socket_family(ip)  # bad input raises here, before any record is made
    t0 = ctx.now()
    failure: str | None = None
    try:
        async with asyncio.timeout(timeout):
            sock = await connect_socket(ip, port)
        sock.close()
    except NETWORK_ERRORS as exc:
        failure = classify(exc)
    record = ctx.record(
        records.TCP,
        t0=t0,
        failure=failure,
        failed_operation="connect",
        ip=ip,
        port=port,
    )
    return cast(records.TcpRecord, record)
