"""Batched TCP connects: many plain connect probes on one epoll, with no coroutine per connect.

A sweep is thousands of connects a second with nothing after them; one coroutine, future, timer
and loop writer per connect (`netprobe.probes.tcp.probe_tcp`) cost more than the connect itself.
`TcpBatch` drives them all from one `select.epoll` instead, and makes the same `tcp` records.

Rules:
- The record of a connect is the one `probe_tcp` makes for the same ip:port and outcome: made by
  `ctx.record` with the same fields in the same order, the failure string from
  `netprobe.probes.errors.classify` of the same exception (`TimeoutError` at the deadline,
  `OSError(errno, strerror)` for a refused, reset or unreachable connect, the `OSError` of a
  socket that cannot be made), and the same clock: `t0` just before the socket is made, the
  deadline `timeout` s after the connect's own start (never a wave's), `t` once its socket is
  closed. tests/test_tcp_batch.py compares the two for each outcome.
- One non-blocking socket per connect, of the address's family, `connect_ex`, then registered
  for EPOLLOUT with the batch's epoll; the epoll's own fd is one reader of the running event
  loop (asyncio's or uvloop), which takes every ready socket at each wake-up. Nothing is ever
  sent; each socket is closed as soon as its connect is over.
- `start()` returns at once; the record goes to the connect's `done` callback, in the loop's
  thread, in the order connects finish (an immediate failure: before `start()` returns). Every
  socket ready at one wake-up is read and closed before any `done` of that wake-up runs, so a
  callback that starts a connect cannot be handed a stale event of a reused fd.
- One timeout per batch: connects reach their deadlines in the order they started, so the batch
  keeps them in a FIFO and one loop timer for the oldest (ended connects leave it lazily).
- How many connects are in flight is the caller's to bound (the runner's semaphore).
- `close()` (the run is over or stopped) closes every socket still in flight and makes no record
  for them, as a cancelled `probe_tcp` makes none; `start()` then raises RuntimeError.
- Linux only (`select.epoll`): `available()` says whether this machine has it; without it the
  runner uses `probe_tcp` for every connect.
"""

from __future__ import annotations

import _socket
import asyncio
import os
import select
import socket
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from netprobe.probes.errors import classify
from netprobe.probes.tcp import IN_PROGRESS, NETWORK_ERRORS, socket_family, tcp_record

if TYPE_CHECKING:
    from netprobe.model.records import TcpRecord
    from netprobe.probes import ProbeContext

Done = Callable[["TcpRecord"], None]

# Events taken from the epoll per call; more are taken at once while the last call was full.
_MAX_EVENTS = 1024
# A loop timer may fire up to a millisecond early (uvloop's clock has millisecond steps): the
# deadline timer is set this much late, so that it finds its connect due.
_TIMER_SLACK = 0.001
_STREAM_NONBLOCK = socket.SOCK_STREAM | getattr(socket, "SOCK_NONBLOCK", 0)
_SOL_SOCKET, _SO_ERROR = socket.SOL_SOCKET, socket.SO_ERROR


def available() -> bool:
    """Whether this platform has `select.epoll` (Linux)."""
    return hasattr(select, "epoll")


# A connect in flight: (socket, ctx, ip, port, t0, deadline, done). A tuple, not an object: a
# sweep makes thousands a second. Whether it is still in flight is whether `_by_fd` maps its
# socket's fd to this very tuple (a later connect may reuse the fd).
_Connect = tuple[_socket.socket, "ProbeContext", str, int, float, float, Done]


class TcpBatch:
    """Plain TCP connect probes driven by one epoll in the running event loop (module rules)."""

    def __init__(self, *, timeout: float) -> None:
        self.timeout = timeout
        self._loop = asyncio.get_running_loop()
        self._epoll = select.epoll()
        self._by_fd: dict[int, _Connect] = {}
        self._fifo: deque[_Connect] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False
        self._loop.add_reader(self._epoll.fileno(), self._ready)

    def __len__(self) -> int:
        """Connects in flight."""
        return len(self._by_fd)

    def start(self, ctx: ProbeContext, ip: str, port: int, done: Done) -> None:
        """Start connecting to ip:port; `done` gets its `tcp` record (see the module rules)."""
        if self._closed:
            raise RuntimeError("this TcpBatch is closed")
        family = socket_family(ip)  # bad input raises here, before any record is made
        started = time.monotonic()
        t0 = started - ctx.run_start  # `ctx.now()`, from the same reading
        try:
            # The C socket type, non-blocking from the start: no `socket.socket` wrapper frames
            # and no `setblocking` call per connect (only `connect_ex`, `fileno` and `close`
            # are used, which the wrapper does not change).
            sock = _socket.socket(family, _STREAM_NONBLOCK)
        except NETWORK_ERRORS as exc:
            done(tcp_record(ctx, t0, classify(exc), ip, port))
            return
        try:
            error = sock.connect_ex((ip, port))
        except NETWORK_ERRORS as exc:
            sock.close()
            done(tcp_record(ctx, t0, classify(exc), ip, port))
            return
        except BaseException:
            sock.close()
            raise
        if error in IN_PROGRESS:
            connect = (sock, ctx, ip, port, t0, started + self.timeout, done)
            fd = sock.fileno()
            self._epoll.register(fd, select.EPOLLOUT)
            self._by_fd[fd] = connect
            self._fifo.append(connect)
            if self._timer is None:
                self._arm(connect[5])
            return
        sock.close()
        done(tcp_record(ctx, t0, _failure(error), ip, port))

    def close(self) -> None:
        """Close every socket in flight, with no record for them; the batch is then done."""
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for connect in self._by_fd.values():
            connect[0].close()
        self._by_fd.clear()
        self._fifo.clear()
        self._loop.remove_reader(self._epoll.fileno())
        self._epoll.close()

    def _ready(self) -> None:
        """The epoll has ready sockets: read and close them all, then hand out their records."""
        if self._closed:
            return
        ended: list[tuple[_Connect, int]] = []
        by_fd, poll = self._by_fd, self._epoll.poll
        while True:
            events = poll(0, _MAX_EVENTS)
            for fd, _ in events:
                connect = by_fd.pop(fd, None)
                if connect is None:
                    continue
                sock = connect[0]
                ended.append((connect, sock.getsockopt(_SOL_SOCKET, _SO_ERROR)))
                sock.close()  # which also takes it out of the epoll
            if len(events) < _MAX_EVENTS:
                break
        for (_, ctx, ip, port, t0, _, done), error in ended:
            done(tcp_record(ctx, t0, _failure(error) if error else None, ip, port))

    def _arm(self, deadline: float) -> None:
        delay = max(0.0, deadline - time.monotonic()) + _TIMER_SLACK
        self._timer = self._loop.call_later(delay, self._expire)

    def _expire(self) -> None:
        """The oldest connect's deadline has come: time out every connect that is due."""
        self._timer = None
        now = time.monotonic()
        fifo = self._fifo
        due: list[_Connect] = []
        by_fd = self._by_fd
        while fifo:
            connect = fifo[0]
            fd = connect[0].fileno()  # -1 once closed: it ended before its deadline
            if fd >= 0 and by_fd.get(fd) is connect:
                if connect[5] > now:
                    break
                del by_fd[fd]
                connect[0].close()
                due.append(connect)
            fifo.popleft()
        if fifo:
            self._arm(fifo[0][5])
        if due:
            failure = classify(TimeoutError())
            for _, ctx, ip, port, t0, _, done in due:
                done(tcp_record(ctx, t0, failure, ip, port))


def _failure(error: int) -> str:
    """The failure string of a connect that ended with `error` (as `connect_socket` raises it)."""
    return classify(OSError(error, os.strerror(error)))
