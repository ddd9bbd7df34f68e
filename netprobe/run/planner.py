"""The plan of a run: which probes, in which order, for every target and attempt (pure).

Rules:
- Pure: no asyncio, socket or ssl here (directly or through imports). Planning is data in, data
  out, so it is tested without any network; `netprobe.run.executor` decides *when* steps run.
- A run is `repeat` rounds; each round walks the target lists in order, domains first, then
  endpoints (explicit, range samples, controls: `TargetList.iter_endpoints`). One `Job` is one
  target in one round, yielded lazily so that `sample: all` ranges never sit in memory.
- A job has two stages. Its first steps run together; its follow-up steps are planned from the
  first stage's records and then run together:
    domain   -> DNS: every probe resolver, then every control resolver, each asked A then AAAA;
                then TLS: to each selected address (`select_addresses`) x port x SNI pair.
    endpoint -> TCP connect and, when it has an SNI, TLS for each SNI pair; no follow-up.
- SNI pairs (`sni_pairs`): the target SNI, plus the run's control SNI on the same ip:port (when it
  differs), so that SNI filtering shows as "target SNI fails where the control SNI succeeds".
- A step is the data of one probe call; `step.call(probes, ctx, settings)` is its only mapping
  onto the `netprobe.probes.Probes` interface, so the executor never names a probe kind.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from netprobe.model.records import answer_addresses
from netprobe.model.resolvers import ResolverSpec
from netprobe.model.vocabulary import (
    QUERY_TYPES,
    RESOLVER_PROBE,
    ROLE_CONTROL,
    ROLE_TARGET,
)
from netprobe.targets.lists import Domain, Endpoint, TargetList

if TYPE_CHECKING:
    from netprobe.model.records import DnsRecord, TcpRecord, TlsRecord
    from netprobe.probes import ProbeContext, Probes, ProbeSettings

# `address_sources` of a TLS step whose address came from the target list, not from DNS.
ENDPOINT_SOURCE = "endpoint"


# -- steps: one probe call each ----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DnsQuery:
    hostname: str
    query_type: str  # "A" | "AAAA"
    resolver: ResolverSpec
    resolver_role: str  # "probe" | "control"

    def call(
        self, probes: Probes, ctx: ProbeContext, settings: ProbeSettings
    ) -> Awaitable[DnsRecord]:
        return probes.dns(
            ctx,
            self.hostname,
            self.query_type,
            self.resolver,
            resolver_role=self.resolver_role,
            timeout=settings.timeout,
            udp_wait=settings.udp_wait,
            ssl_context=settings.ssl_context,
            doh_clients=settings.doh_clients,
        )


@dataclass(frozen=True, slots=True)
class TcpConnect:
    ip: str
    port: int

    def call(
        self, probes: Probes, ctx: ProbeContext, settings: ProbeSettings
    ) -> Awaitable[TcpRecord]:
        return probes.tcp(ctx, self.ip, self.port, timeout=settings.timeout)


@dataclass(frozen=True, slots=True)
class TlsHandshake:
    ip: str
    port: int
    server_name: str
    sni_role: str  # "target" | "control"
    hostname: str | None  # the domain, for a domain target
    address_sources: tuple[str, ...]  # e.g. ("control:https://1.1.1.1/dns-query", "probe:system")

    def call(
        self, probes: Probes, ctx: ProbeContext, settings: ProbeSettings
    ) -> Awaitable[TlsRecord]:
        return probes.tls(
            ctx,
            self.ip,
            self.port,
            self.server_name,
            sni_role=self.sni_role,
            hostname=self.hostname,
            address_sources=self.address_sources,
            ssl_context=settings.ssl_context,
            timeout=settings.timeout,
        )


Step = DnsQuery | TcpConnect | TlsHandshake


@dataclass(frozen=True, slots=True)
class Job:
    """One target (a domain or an endpoint) in one attempt (0-based round)."""

    target: Domain | Endpoint
    attempt: int

    @property
    def target_id(self) -> str:
        return self.target.target_id

    @property
    def group(self) -> str:
        return self.target.group

    @property
    def role(self) -> str:
        return self.target.role


# -- the plan ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RunPlan:
    """Everything that decides which probes a run makes; see the module docstring."""

    target_lists: Sequence[TargetList]
    repeat: int
    probe_resolvers: Sequence[ResolverSpec]
    control_resolvers: Sequence[ResolverSpec]
    max_addresses_per_domain: int
    control_sni: str | None

    def jobs(self) -> Iterator[Job]:
        """Lazily, every (target, attempt) job: per round, per list, domains then endpoints."""
        for attempt in range(self.repeat):
            for tl in self.target_lists:
                for domain in tl.domains():
                    yield Job(domain, attempt)
                for endpoint in tl.iter_endpoints():
                    yield Job(endpoint, attempt)

    def count(self) -> int:
        """How many jobs `jobs()` yields (by arithmetic, see `count_jobs`)."""
        return count_jobs(list(self.target_lists), self.repeat)

    def first_steps(self, job: Job) -> Sequence[Step]:
        """The steps a job starts with, all run together."""
        if isinstance(job.target, Domain):
            return self.dns_queries(job.target.name)
        return self.endpoint_steps(job.target)

    def follow_up_steps(self, job: Job, records: Sequence[Mapping[str, Any]]) -> Sequence[Step]:
        """The steps planned from the records of `first_steps(job)` (in the same order)."""
        if isinstance(job.target, Domain):
            return self.domain_handshakes(job.target, records)
        return ()  # shared, not a new list per endpoint job

    def dns_queries(self, hostname: str) -> list[DnsQuery]:
        """Probe resolvers first, then control resolvers; each asked every query type in order."""
        return [
            DnsQuery(hostname, query_type, resolver, role)
            for role, resolvers in (
                (RESOLVER_PROBE, self.probe_resolvers),
                (ROLE_CONTROL, self.control_resolvers),
            )
            for resolver in resolvers
            for query_type in QUERY_TYPES
        ]

    def domain_handshakes(
        self, domain: Domain, dns_records: Sequence[Mapping[str, Any]]
    ) -> list[TlsHandshake]:
        """TLS to each selected address x the domain's ports x the SNI pairs of its name."""
        return [
            TlsHandshake(ip, port, sni, sni_role, domain.name, tuple(sources))
            for ip, sources in select_addresses(dns_records, self.max_addresses_per_domain)
            for port in domain.ports
            for sni, sni_role in sni_pairs(domain.name, self.control_sni)
        ]

    def endpoint_steps(self, endpoint: Endpoint) -> list[TcpConnect | TlsHandshake]:
        """A TCP connect, then (when the endpoint names an SNI) a TLS handshake per SNI pair."""
        steps: list[TcpConnect | TlsHandshake] = [TcpConnect(endpoint.ip, endpoint.port)]
        if endpoint.sni:
            steps += [
                TlsHandshake(endpoint.ip, endpoint.port, sni, sni_role, None, (ENDPOINT_SOURCE,))
                for sni, sni_role in sni_pairs(endpoint.sni, self.control_sni)
            ]
        return steps


def control_sni(target_lists: Sequence[TargetList]) -> str | None:
    """The run's control SNI: the first target list's `controls.sni` that is set, else None."""
    return next((tl.controls.sni for tl in target_lists if tl.controls.sni), None)


def sni_pairs(target_sni: str, control: str | None) -> list[tuple[str, str]]:
    """(SNI, sni_role) pairs for one ip:port: the target SNI, then the control SNI if it differs."""
    pairs = [(target_sni, ROLE_TARGET)]
    if control and control.lower() != target_sni.lower():
        pairs.append((control, ROLE_CONTROL))
    return pairs


def count_jobs(target_lists: list[TargetList], repeat: int) -> int:
    """How many jobs a run has (for progress), by arithmetic: `sample: all` is never iterated."""
    total = 0
    for tl in target_lists:
        counts = tl.counts()
        total += counts["domains"] + counts["control_domains"]
        total += counts["endpoints"] + counts["range_endpoints"] + counts["control_endpoints"]
    return total * repeat


def select_addresses(
    dns_records: Sequence[Mapping[str, Any]], limit: int
) -> list[tuple[str, list[str]]]:
    """Addresses to handshake with, each with the resolvers that returned it.

    Control and probe answers alternate so that a probe resolver's suspicious answer (a blockpage
    address, say) is always tested beside a control answer, within `limit` addresses.
    """
    sources: dict[str, list[str]] = {}
    by_role: dict[str, list[str]] = {ROLE_CONTROL: [], RESOLVER_PROBE: []}
    for record in dns_records:
        role = record.get("resolver_role", RESOLVER_PROBE)
        for ip in answer_addresses(record):
            tag = f"{role}:{record['resolver_address']}"
            if ip not in sources:
                sources[ip] = []
                by_role.setdefault(role, []).append(ip)
            if tag not in sources[ip]:
                sources[ip].append(tag)
    chosen: list[str] = []
    control, probe = by_role.get(ROLE_CONTROL, []), by_role.get(RESOLVER_PROBE, [])
    for i in range(max(len(control), len(probe))):
        for pool in (control, probe):
            if i < len(pool) and pool[i] not in chosen and len(chosen) < limit:
                chosen.append(pool[i])
    return [(ip, sources[ip]) for ip in chosen]
