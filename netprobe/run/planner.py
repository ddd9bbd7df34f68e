"""The plan of a run: which probes, in which order, for every target and attempt (pure).

Rules:
- Pure: no asyncio, socket or ssl here (directly or through imports). Planning is data in, data
  out, so it is tested without any network; `netprobe.run.executor` decides *when* steps run.
- A run has control jobs and target jobs. `control_jobs(r)` is control round r: every list's
  control domains, then its control endpoints (records labelled `control_round: r`). Round 0
  runs before any target, the end round after every target; the executor adds rounds in between
  every `control_interval` seconds. A control job's `attempt` is its round.
- `target_jobs()` is `repeat` rounds (`attempt` 0..repeat-1); each walks the target lists in
  order, group domains first, then target endpoints (explicit, then range samples:
  `TargetList.target_endpoints`). One `Job` is one target in one round, yielded lazily so that
  `sample: all` ranges never sit in memory.
- A job has two stages. Its first tasks run together; its follow-up tasks are planned from the
  first stage's records and then run together. A task is a `Step` (one probe) or a `Chain`:
    domain   -> DNS: every probe resolver, then every control resolver, each asked A then AAAA;
                for a target domain also the injection probe: an A query to each of its list's
                silent addresses (`TargetList.silent_addresses`, `resolver_role: silent`, one
                try, at most `SILENT_TIMEOUT` s); then TLS: to each selected address
                (`select_addresses`, never from silent replies) x port, one chain per ip:port;
                with `http`, beside them an HTTP GET to port 80 of each address found
                (`run.plan_http`, issue 13).
    endpoint -> TCP connect and, when it has an SNI, its TLS chain; follow-up: for a DC
                endpoint whose connect worked, the MTProto attempts (`run/plan_mtproto.py`).
- TLS chain per ip:port (`tls_chain`): with a control SNI that differs from the target SNI, the
  control SNI first (`sequence: before`), then the target SNI (`target`), one after the other;
  when the target SNI fails and `residual_pause` > 0, the control SNI again after that pause
  (`after`, with `pause`), so a censor that blocks the whole ip:port for a while after a
  forbidden name shows as that, not as an IP block. Without a control SNI: the target SNI alone.
- A plain connect (`plain_connect`): an endpoint job whose only step is its TCP connect, with no
  TLS chain beside it and no follow-up ever (no SNI, not a DC endpoint); the executor may start
  those in bulk (`netprobe.probes.tcp_batch`).
- Confirmation (`needs_confirmation`): which failed records are worth re-probing. The executor
  re-runs their step (same `attempt`, `confirmation: k`); successes never are.
- A step is the data of one probe call; `step.call(probes, ctx, settings)` is its only mapping
  onto the `netprobe.probes.Probes` interface, so the executor never names a probe kind.
  `step.record_fields()` are the plan's labels for its record (`sequence`, `pause`).
- Throughput (issue 13, `plan_throughput`): a domain whose list names a download object gets
  downloads on one address per family, run after that ip:port's TLS chain (`Chain.then`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from netprobe.model.failures import DNS_NO_ANSWER
from netprobe.model.records import (
    CONFIRMATION,
    CONTROL_ROUND,
    HTTP,
    PAUSE,
    RESOLVER_SILENT,
    SEQUENCE,
    SEQUENCE_AFTER,
    SEQUENCE_BEFORE,
    SEQUENCE_TARGET,
    THROUGHPUT,
    TLS,
    answer_addresses,
)
from netprobe.model.resolvers import ResolverSpec, parse_resolver
from netprobe.model.target_ids import ENDPOINT_SOURCE, address_source
from netprobe.model.vocabulary import (
    QUERY_A,
    QUERY_AAAA,
    QUERY_TYPES,
    RESOLVER_PROBE,
    ROLE_CONTROL,
    ROLE_TARGET,
)
from netprobe.options import default
from netprobe.run.plan_http import HttpGet, http_gets
from netprobe.run.plan_mtproto import MtprotoAttempt, is_dc_endpoint, mtproto_attempts
from netprobe.run.plan_throughput import ThroughputFetch, throughput_fetches
from netprobe.targets.lists import CONTROL_ROUNDS, Domain, Endpoint, TargetList

if TYPE_CHECKING:
    from netprobe.model.records import DnsRecord, TcpRecord, TlsRecord
    from netprobe.probes import ProbeContext, Probes, ProbeSettings

# The injection probe waits at most this long for a reply (none is the expected case).
SILENT_TIMEOUT = 2.0
# The port a silent address is asked on.
SILENT_PORT = 53

_NO_FIELDS: tuple[tuple[str, Any], ...] = ()


# -- steps: one probe call each ----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DnsQuery:
    hostname: str
    query_type: str  # "A" | "AAAA"
    resolver: ResolverSpec
    resolver_role: str  # "probe" | "control" | "silent"
    max_timeout: float | None = None  # caps the run's timeout (the injection probe)

    def call(
        self, probes: Probes, ctx: ProbeContext, settings: ProbeSettings
    ) -> Awaitable[DnsRecord]:
        timeout = settings.timeout
        if self.max_timeout is not None and self.max_timeout < timeout:
            timeout = self.max_timeout
        return probes.dns(
            ctx,
            self.hostname,
            self.query_type,
            self.resolver,
            resolver_role=self.resolver_role,
            timeout=timeout,
            udp_wait=settings.udp_wait,
            ssl_context=settings.ssl_context,
            doh_clients=settings.doh_clients,
        )

    def record_fields(self) -> tuple[tuple[str, Any], ...]:
        return _NO_FIELDS


@dataclass(frozen=True, slots=True)
class TcpConnect:
    ip: str
    port: int

    def call(
        self, probes: Probes, ctx: ProbeContext, settings: ProbeSettings
    ) -> Awaitable[TcpRecord]:
        return probes.tcp(ctx, self.ip, self.port, timeout=settings.timeout)

    def record_fields(self) -> tuple[tuple[str, Any], ...]:
        return _NO_FIELDS


@dataclass(frozen=True, slots=True)
class TlsHandshake:
    ip: str
    port: int
    server_name: str
    sni_role: str  # "target" | "control"
    hostname: str | None  # the domain, for a domain target
    address_sources: tuple[str, ...]  # e.g. ("control:https://1.1.1.1/dns-query", "probe:system")
    sequence: str = SEQUENCE_TARGET  # "before" | "target" | "after"
    pause: float | None = None  # `after` only: the seconds waited after the target SNI failed

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

    def record_fields(self) -> tuple[tuple[str, Any], ...]:
        if self.pause is None:
            return ((SEQUENCE, self.sequence),)
        return ((SEQUENCE, self.sequence), (PAUSE, self.pause))


Step = DnsQuery | TcpConnect | TlsHandshake | MtprotoAttempt | HttpGet | ThroughputFetch


@dataclass(frozen=True, slots=True)
class Chain:
    """Steps run one after another; `if_failed` too, `pause` s later, when the last one failed;
    `then` after them, one after another, when the last one worked."""

    steps: tuple[Step, ...]
    if_failed: Step | None = None
    pause: float = 0.0
    then: tuple[Step, ...] = ()


Task = Step | Chain


@dataclass(frozen=True, slots=True)
class Job:
    """One target (a domain or an endpoint) in one attempt (0-based round)."""

    target: Domain | Endpoint
    attempt: int
    control_round: int | None = None  # control jobs only (then `attempt` == `control_round`)
    silent: tuple[ResolverSpec, ...] = ()  # the injection probe's addresses (target domains)

    @property
    def target_id(self) -> str:
        return self.target.target_id

    @property
    def group(self) -> str:
        return self.target.group

    @property
    def role(self) -> str:
        return self.target.role

    def record_fields(self) -> tuple[tuple[str, Any], ...]:
        """The job's labels for each of its records: `control_round` for a control job."""
        if self.control_round is None:
            return _NO_FIELDS
        return ((CONTROL_ROUND, self.control_round),)


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
    residual_pause: float = default("residual_pause")
    http: bool = False  # issue 13: plan the HTTP steps of run/plan_http.py
    throughput_bytes: int = default("throughput_bytes")
    throughput_seconds: float = default("throughput_seconds")

    def target_jobs(self) -> Iterator[Job]:
        """Lazily, every (target, attempt) job: per round, per list, domains then endpoints."""
        silent = [silent_resolvers(tl) for tl in self.target_lists]
        for attempt in range(self.repeat):
            for tl, addresses in zip(self.target_lists, silent, strict=True):
                for domain in tl.target_domains():
                    yield Job(domain, attempt, None, addresses)
                for endpoint in tl.target_endpoints():
                    yield Job(endpoint, attempt)

    def control_jobs(self, control_round: int) -> Iterator[Job]:
        """Control round `control_round`: per list, the control domains, then control endpoints."""
        for tl in self.target_lists:
            for domain in tl.controls.domains:
                yield Job(domain, control_round, control_round)
            for endpoint in tl.controls.endpoints:
                yield Job(endpoint, control_round, control_round)

    def count(self) -> int:
        """How many jobs the start and end control rounds and the target jobs make."""
        return count_jobs(list(self.target_lists), self.repeat)

    def probe_kinds(self) -> frozenset[str]:
        """The `Probes` fields this plan may call (confirmations re-run the same steps), and
        `ssl` when a probe may need the run's SSL context (a handshake, a download, or a DNS
        query over TLS or HTTPS): a run imports and sets up only these (start-up, issue 16)."""
        kinds: set[str] = set()
        tls_resolvers = any(
            r.engine in ("dot", "doh") for r in (*self.probe_resolvers, *self.control_resolvers)
        )
        for tl in self.target_lists:
            domains = [*tl.target_domains(), *tl.controls.domains]
            if domains:
                kinds |= {"dns", "tls", "ssl"}
                if self.http:  # every domain's follow-up, a control domain's too (plan_http)
                    kinds.add("http")
                if any(domain.download for domain in domains):
                    kinds.add("throughput")
                if tls_resolvers:
                    kinds.add("ssl")
            groups = tl.groups.values()
            explicit = [*(e for g in groups for e in g.endpoints), *tl.controls.endpoints]
            ranges = [spec for g in groups for spec in g.ranges]
            if explicit or ranges:
                kinds.add("tcp")
            if any(e.sni for e in explicit) or any(spec.sni for spec in ranges):
                kinds |= {"tls", "ssl"}
            if any(is_dc_endpoint(e) for e in explicit):
                kinds.add("mtproto")
        return frozenset(kinds)

    def first_steps(self, job: Job) -> Sequence[Task]:
        """The tasks a job starts with, all run together."""
        if isinstance(job.target, Domain):
            return self.dns_queries(job.target.name, job.silent)
        return self.endpoint_steps(job.target)

    def plain_connect(self, job: Job) -> TcpConnect | None:
        """A job's one step when it is a TCP connect with nothing ever planned beside or after
        it (an endpoint without SNI that is no DC endpoint): the connects a runner may start in
        bulk. None for every other job. Agrees with `first_steps` and `follow_up_steps`."""
        target = job.target
        if isinstance(target, Domain) or target.sni or is_dc_endpoint(target):
            return None
        return TcpConnect(target.ip, target.port)

    def follow_up_steps(self, job: Job, records: Sequence[Mapping[str, Any]]) -> Sequence[Task]:
        """The tasks planned from the records of `first_steps(job)`."""
        if isinstance(job.target, Domain):
            gets = self.max_addresses_per_domain if self.http else 0
            return [
                *self.domain_handshakes(job.target, records),
                *http_gets(job.target.name, records, gets),
            ]
        mtproto = mtproto_attempts(job.target, records)  # DC endpoints: run/plan_mtproto.py
        return (Chain(mtproto),) if mtproto else ()

    def dns_queries(self, hostname: str, silent: Sequence[ResolverSpec] = ()) -> list[DnsQuery]:
        """Probe resolvers first, then control resolvers, each asked every query type in order;
        then the injection probe: an A query to each silent address."""
        queries = [
            DnsQuery(hostname, query_type, resolver, role)
            for role, resolvers in (
                (RESOLVER_PROBE, self.probe_resolvers),
                (ROLE_CONTROL, self.control_resolvers),
            )
            for resolver in resolvers
            for query_type in QUERY_TYPES
        ]
        queries += [
            DnsQuery(hostname, QUERY_A, resolver, RESOLVER_SILENT, SILENT_TIMEOUT)
            for resolver in silent
        ]
        return queries

    def domain_handshakes(
        self, domain: Domain, dns_records: Sequence[Mapping[str, Any]]
    ) -> list[Task]:
        """A TLS chain to each selected address x the domain's ports."""
        looked_up = [r for r in dns_records if r.get("resolver_role") != RESOLVER_SILENT]
        selected = select_addresses(looked_up, self.max_addresses_per_domain)
        fetches = throughput_fetches(
            domain,
            [ip for ip, _ in selected],
            self.control_sni,
            self.throughput_bytes,
            self.throughput_seconds,
        )
        return [
            self.tls_chain(
                ip, port, domain.name, domain.name, tuple(sources), fetches.get((ip, port), ())
            )
            for ip, sources in selected
            for port in domain.ports
        ]

    def endpoint_steps(self, endpoint: Endpoint) -> list[Task]:
        """A TCP connect and, when the endpoint names an SNI, its TLS chain (run together)."""
        steps: list[Task] = [TcpConnect(endpoint.ip, endpoint.port)]
        if endpoint.sni:
            steps.append(
                self.tls_chain(endpoint.ip, endpoint.port, endpoint.sni, None, (ENDPOINT_SOURCE,))
            )
        return steps

    def tls_chain(
        self,
        ip: str,
        port: int,
        target_sni: str,
        hostname: str | None,
        sources: tuple[str, ...],
        then: tuple[Step, ...] = (),
    ) -> Task:
        """The handshakes with one ip:port: control SNI before, target SNI, control SNI after a
        target failure (see the module rules); the target SNI alone without a control SNI.
        `then`: steps run after a working target SNI (the throughput downloads)."""
        target = TlsHandshake(ip, port, target_sni, ROLE_TARGET, hostname, sources)
        pairs = sni_pairs(target_sni, self.control_sni)
        if len(pairs) == 1:
            return Chain((target,), then=then) if then else target
        control_name = pairs[1][0]
        before = TlsHandshake(
            ip, port, control_name, ROLE_CONTROL, hostname, sources, SEQUENCE_BEFORE
        )
        if self.residual_pause <= 0:
            return Chain((before, target), then=then)
        after = TlsHandshake(
            ip,
            port,
            control_name,
            ROLE_CONTROL,
            hostname,
            sources,
            SEQUENCE_AFTER,
            self.residual_pause,
        )
        return Chain((before, target), after, self.residual_pause, then)


def silent_resolvers(target_list: TargetList) -> tuple[ResolverSpec, ...]:
    """The injection probe's "resolvers": `udp://IP:53` for each of the list's silent addresses."""
    return tuple(
        parse_resolver(f"udp://[{ip}]:{SILENT_PORT}" if ":" in ip else f"udp://{ip}:{SILENT_PORT}")
        for ip in target_list.silent_addresses()
    )


def needs_confirmation(record: Mapping[str, Any]) -> bool:
    """Whether a record's step is re-probed to confirm it: a failed probe of a target.

    Not re-probed: successes; control targets (their rounds repeat them); confirmations
    themselves; a name's missing IPv6 (AAAA `dns_no_answer` is normal); the injection probe
    (a timeout is its expected outcome); control-SNI handshakes (the `before`/`after` of a TLS
    chain: re-sending the control name right after a forbidden one would measure the censor's
    residual block, not the control); throughput downloads (judged by their rates, not by votes).
    """
    failure = record.get("failure")
    if failure is None or record.get("role") != ROLE_TARGET or record.get(CONFIRMATION):
        return False
    if failure == DNS_NO_ANSWER and record.get("query_type") == QUERY_AAAA:
        return False
    if record.get("resolver_role") == RESOLVER_SILENT or record.get("type") in (HTTP, THROUGHPUT):
        return False
    return not (record.get("type") == TLS and record.get("sni_role") == ROLE_CONTROL)


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
    """How many jobs a run has (for progress), by arithmetic: `sample: all` is never iterated.

    Target jobs x `repeat`, plus the control jobs of the start and end rounds. Control rounds
    added in between (long runs) and confirmation re-probes are not counted.
    """
    targets = controls = 0
    for tl in target_lists:
        counts = tl.counts()
        targets += counts["domains"] + counts["endpoints"] + counts["range_endpoints"]
        controls += counts["control_domains"] + counts["control_endpoints"]
    return targets * repeat + controls * CONTROL_ROUNDS


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
            tag = address_source(role, record["resolver_address"])
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
