"""TCP connect probe: can this machine open a TCP connection to ip:port? (record type `tcp`)

Rules:
- One non-blocking socket per probe, of the address's family, connected (`connect_ex`, then the
  loop's writer callback: `loop.sock_connect` without its resolver step) under one deadline; the
  socket is always closed, and nothing is ever sent on it.
- A network failure is data: the record's `failure` is an OONI string from `netprobe.model.failures`
  (refused, reset, unreachable, `generic_timeout_error` when our deadline expires).
- `connect_socket` is shared with the TLS probe so both connect exactly the same way.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import os
import socket
from typing import cast

from netprobe.model import records
from netprobe.probes import ProbeContext
from netprobe.probes.errors import classify

# What a connect can fail with; anything else is a bug and propagates.
NETWORK_ERRORS = (OSError, TimeoutError, EOFError)
# What a non-blocking connect_ex returns while the connect is under way.
IN_PROGRESS = (errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY)


def socket_family(ip: str) -> socket.AddressFamily:
    """AF_INET or AF_INET6 for an IP literal; ValueError if `ip` is not one."""
    try:  # the C parser first: a sweep calls this for every probe
        socket.inet_pton(socket.AF_INET, ip)
        return socket.AF_INET
    except OSError:
        pass
    return socket.AF_INET6 if ipaddress.ip_address(ip).version == 6 else socket.AF_INET


async def connect_socket(ip: str, port: int) -> socket.socket:
    """A connected non-blocking socket; the caller bounds the time (asyncio.timeout) and closes it.

    On failure or cancellation the socket is closed before the exception propagates.
    """
    sock = socket.socket(socket_family(ip), socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        error = sock.connect_ex((ip, port))
        if error in IN_PROGRESS:
            await _writable(sock.fileno())
            error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if error:
            raise OSError(error, os.strerror(error))  # the errno's subclass, as sock_connect's
    except BaseException:
        sock.close()
        raise
    return sock


async def _writable(fd: int) -> None:
    """Wait until `fd` is writable (a non-blocking connect has finished, well or not).

    What `loop.sock_connect` does for a literal address, without its name-resolution step and
    its extra future and callbacks: a sweep makes thousands of these a second.
    """
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    loop.add_writer(fd, _set_done, done)
    try:
        await done
    finally:
        loop.remove_writer(fd)


def _set_done(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


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
    return tcp_record(ctx, t0, failure, ip, port)


def tcp_record(
    ctx: ProbeContext, t0: float, failure: str | None, ip: str, port: int
) -> records.TcpRecord:
    """The `tcp` record of one connect (this probe's and the batched engine's, probes/tcp_batch)."""
    record = ctx.record(
        records.TCP,
        t0=t0,
        failure=failure,
        failed_operation="connect",
        ip=ip,
        port=port,
    )
    return cast(records.TcpRecord, record)
