"""Probe kinds, and the small interface through which the runner calls them (docs/DESIGN.md).

A probe kind is one module here (`dns.py`, `tcp.py`, `tls.py`, `mtproto.py`) holding one coroutine
`probe_<kind>(ctx, <what to probe>, *, <settings>) -> <Kind>Record` and producing one record
type (a TypedDict in `netprobe.model.records`). The runner never imports those modules itself:
it receives a `Probes` (one coroutine per kind, `real_probes()` by default), the way an HTTP
client receives a transport, so tests run whole runs with fake probes and no sockets.

Rules of the interface (every probe, real or fake, keeps them):
- A probe never raises for a network failure: it returns its record with `failure` set to an
  OONI failure string (see `netprobe.model.failures`). It raises only on bad input or a bug.
- It returns exactly one record per call, built by `ctx.record(...)`, so the common fields
  (`target_id`, `group`, `role`, `attempt`, `t0`, `t`) come from the `ProbeContext` it was given.
- It bounds its own time with the `timeout` it is given; the runner only bounds the whole run
  (deadline, stop request) by cancelling, and a probe must let `CancelledError` through.
- It writes nothing and keeps no state between calls: the runner streams its record to the sink.
  (The one run-wide resource is the runner's: `ProbeSettings.doh_clients`, the pooled DoH
  connections, which the runner creates for the run and closes at its end.)
- The `ssl_context` it may be given is shared by concurrent probes: set per-connection options
  (ALPN) on it only immediately before `wrap_bio`, with no await in between.
Adding a kind: one module with one coroutine and one record type, one field on `Probes` (with
its Protocol below) and in `real_probes()`, and a step in `netprobe.run.planner` that calls it.
This module stays pure (no asyncio, socket or ssl imports) so planning code may import it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from netprobe.model import records
from netprobe.options import default

if TYPE_CHECKING:
    import asyncio
    import ssl

    from netprobe.model.records import (
        DnsRecord,
        HttpRecord,
        MtprotoRecord,
        TcpRecord,
        ThroughputRecord,
        TlsRecord,
    )
    from netprobe.model.resolvers import ResolverSpec
    from netprobe.probes.doh import DohClients


@dataclass(frozen=True)
class ProbeContext:
    """What a probe needs to label its record; the runner makes one per attempt."""

    target_id: str
    group: str
    role: str  # "target" | "control"
    attempt: int
    run_start: float  # time.monotonic() at the start of the run

    def now(self) -> float:
        """Seconds since the run start (the `t0`/`t` clock)."""
        return time.monotonic() - self.run_start

    def record(
        self,
        kind: str,
        *,
        t0: float,
        failure: str | None,
        failed_operation: str | None,
        **fields: Any,
    ) -> dict[str, Any]:
        """The finished measurement record of this attempt: common fields, then `fields`."""
        return records.measurement(
            kind,
            target_id=self.target_id,
            group=self.group,
            role=self.role,
            attempt=self.attempt,
            t0=t0,
            t=self.now(),
            failure=failure,
            failed_operation=failed_operation,
            **fields,
        )


@dataclass(frozen=True)
class ProbeSettings:
    """The run-wide settings the runner hands to every probe call."""

    timeout: float  # seconds per probe
    udp_wait: float  # seconds a UDP DNS probe keeps listening after the first reply
    ssl_context: ssl.SSLContext  # verifying client context, shared by every TLS/DoT/DoH probe
    # The run's pooled DoH clients (one per resolver), made and closed by the runner; None: a
    # client per query.
    doh_clients: DohClients | None = None
    # issue 13: bytes of each HTTP body kept in the record (0: none, `--no-bodies`)
    http_body_limit: int = default("http_body_limit")
    # Held by the runner over one address's throughput downloads (issue 13, `plan_throughput`),
    # so downloads never overlap: a target's rate and its reference's are measured under the
    # same load, one right after the other. None: no lock.
    downloads: asyncio.Lock | None = None


class DnsProbe(Protocol):
    """Ask one resolver for one name's A or AAAA records (`netprobe.probes.dns.probe_dns`)."""

    async def __call__(
        self,
        ctx: ProbeContext,
        hostname: str,
        query_type: str,
        resolver: ResolverSpec,
        *,
        resolver_role: str,
        timeout: float,
        udp_wait: float,
        ssl_context: ssl.SSLContext,
        doh_clients: DohClients | None = None,
    ) -> DnsRecord: ...


class TcpProbe(Protocol):
    """Open (and close) one TCP connection to ip:port (`netprobe.probes.tcp.probe_tcp`)."""

    async def __call__(
        self, ctx: ProbeContext, ip: str, port: int, *, timeout: float
    ) -> TcpRecord: ...


class TcpBatchEngine(Protocol):
    """Plain TCP connect probes started in bulk (`netprobe.probes.tcp_batch.TcpBatch`).

    Each connect's record is `TcpProbe`'s for the same ip:port and outcome, handed to `done`
    in the loop's thread once the connect is over; `close()` drops the connects in flight."""

    def start(
        self, ctx: ProbeContext, ip: str, port: int, done: Callable[[TcpRecord], None]
    ) -> None: ...
    def close(self) -> None: ...


class TcpBatchFactory(Protocol):
    """Makes a `TcpBatchEngine` inside the running event loop, one timeout for all its connects."""

    def __call__(self, *, timeout: float) -> TcpBatchEngine: ...


class TlsProbe(Protocol):
    """One TLS handshake with ip:port sending SNI `server_name` (`netprobe.probes.tls.probe_tls`)."""

    async def __call__(
        self,
        ctx: ProbeContext,
        ip: str,
        port: int,
        server_name: str,
        *,
        sni_role: str,
        hostname: str | None,
        address_sources: Sequence[str],
        ssl_context: ssl.SSLContext,
        timeout: float,
    ) -> TlsRecord: ...


class MtprotoProbe(Protocol):
    """req_pq_multi -> resPQ with ip:port over one transport (`netprobe.probes.mtproto`)."""

    async def __call__(
        self, ctx: ProbeContext, ip: str, port: int, transport: str, *, timeout: float
    ) -> MtprotoRecord: ...


class HttpProbe(Protocol):
    """`GET /` with `Host: hostname` to ip:port (`netprobe.probes.http.probe_http`, issue 13)."""

    async def __call__(
        self,
        ctx: ProbeContext,
        ip: str,
        hostname: str,
        *,
        port: int = 80,
        timeout: float,
        body_limit: int,
        address_sources: Sequence[str] = (),
    ) -> HttpRecord: ...


class ThroughputProbe(Protocol):
    """Download `path` from ip:port over TLS with SNI `server_name`, up to a byte and a time cap
    (`netprobe.probes.throughput.probe_throughput`; issue 13)."""

    async def __call__(
        self,
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
        samples: int = ...,
        sequence: str = ...,
    ) -> ThroughputRecord: ...


async def _not_given(*args: Any, **kwargs: Any) -> Any:
    """The default of a kind added later: a plan that uses it must be given the real probe."""
    raise NotImplementedError("this Probes lacks a probe kind its plan uses (pass it to Probes)")


@dataclass(frozen=True)
class Probes:
    """The probe kinds a run may use, one coroutine each: the runner's only way to the network.

    Kinds added later have defaults, so fakes written for the first three kinds keep working:
    `http` None plans no HTTP step (the planner is told so); `mtproto` and `throughput` raise if
    a plan uses them (lists with a `dc` group or a `download:` object need them); `tcp_batch`
    None runs every plain connect through `tcp` (with it, the runner starts the plain connects
    of endpoint jobs in bulk there: `RunPlan.plain_connect`).
    """

    dns: DnsProbe
    tcp: TcpProbe
    tls: TlsProbe
    mtproto: MtprotoProbe = _not_given
    http: HttpProbe | None = None
    throughput: ThroughputProbe = _not_given
    tcp_batch: TcpBatchFactory | None = None


# The modules of the probe kinds (`Probes` fields), imported only when a run may use them.
_KIND_MODULES = {
    "dns": ("netprobe.probes.dns", "probe_dns"),
    "tcp": ("netprobe.probes.tcp", "probe_tcp"),
    "tls": ("netprobe.probes.tls", "probe_tls"),
    "mtproto": ("netprobe.probes.mtproto", "probe_mtproto"),
    "http": ("netprobe.probes.http", "probe_http"),
    "throughput": ("netprobe.probes.throughput", "probe_throughput"),
}


def real_probes(kinds: Collection[str] | None = None) -> Probes:
    """The probes that touch the network (imported here, lazily, to keep this module pure).

    `kinds`: only these kinds are imported (a sweep needs neither dnspython nor httpx nor
    cryptography: `RunPlan.probe_kinds`); the others raise if called, `http` is None. None: all.
    """
    import importlib

    wanted = set(_KIND_MODULES) if kinds is None else set(kinds) & set(_KIND_MODULES)
    found: dict[str, Any] = {}
    for kind in wanted:
        module, name = _KIND_MODULES[kind]
        found[kind] = getattr(importlib.import_module(module), name)
    if "tcp" in wanted:
        from netprobe.probes import tcp_batch

        if tcp_batch.available():
            found["tcp_batch"] = tcp_batch.TcpBatch
    found.setdefault("http", None)
    for kind in ("dns", "tcp", "tls"):
        found.setdefault(kind, _not_given)
    return Probes(**found)
