"""The run: plan the probes of a target list, run them concurrently, stream records to a writer.

Rules:
- Memory does not grow with the number of targets: jobs come from a lazy iterator and are pulled
  by a fixed pool of workers; records go to the writer as soon as each probe finishes.
- At most `concurrency` probes are in flight at once (one semaphore around every network probe).
- A probe's network failure is data in its record; the runner never turns it into an exception.
- Nothing here looks up the probe's own public address, and nothing here prints: progress is
  reported through the `on_progress` callback, so the CLI decides what the user sees.
"""

from __future__ import annotations

import asyncio
import signal
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from netprobe import SOFTWARE_NAME, __version__
from netprobe.model.records import HEADER, SUMMARY, format_utc, new_record
from netprobe.model.resolvers import ResolverSpec, parse_resolver
from netprobe.probes import ProbeContext
from netprobe.probes.dns import answer_addresses, probe_dns
from netprobe.probes.tcp import probe_tcp
from netprobe.probes.tls import make_ssl_context, probe_tls
from netprobe.run.tally import RunSummary
from netprobe.targets.lists import Domain, Endpoint, TargetList

DEFAULT_CONTROL_RESOLVERS = ("https://1.1.1.1/dns-query", "https://8.8.8.8/dns-query")
QUERY_TYPES = ("A", "AAAA")


@dataclass
class RunOptions:
    """Everything a run needs besides the target lists. Defaults are the CLI's defaults."""

    out_dir: Path = Path("results")
    resolvers: list[str] = field(default_factory=lambda: ["system"])
    control_resolvers: list[str] | None = None  # None: the target list's, else the defaults
    ca_bundle: str | None = None
    timeout: float = 5.0
    concurrency: int = 64
    repeat: int = 1
    deadline: float = 1800.0
    udp_wait: float = 0.5
    max_addresses_per_domain: int = 4
    vantage: str = "unnamed"
    asn: str | None = None
    cc: str | None = None
    checkpoint_every: int = 256
    checkpoint_seconds: float = 10.0
    resolv_conf: str = "/etc/resolv.conf"


@dataclass
class RunResult:
    path: Path
    summary: RunSummary
    interrupted: str | None  # None, "deadline", or a signal name


class RecordSink(Protocol):
    """What the runner writes to: `netprobe.evidence.writer.ResultWriter` or a test double."""

    def write_header(self, header: dict[str, Any]) -> None: ...
    def write(self, record: dict[str, Any]) -> None: ...
    def close(self, summary: dict[str, Any], *, reason: str = "end") -> Path: ...


def file_stem(started: datetime, vantage: str) -> str:
    """`20250526T010000Z_hanoi-vnpt` : UTC start time and vantage name, safe for any filesystem."""
    from netprobe.evidence.format import file_stem as stem  # the one definition of file names

    return stem(started, vantage)


def resolve_option_resolvers(
    target_lists: list[TargetList], options: RunOptions
) -> tuple[list[ResolverSpec], list[ResolverSpec]]:
    """Parse probe and control resolver addresses; raises ValueError with a clear message."""
    probe = [parse_resolver(a, resolv_conf=options.resolv_conf) for a in options.resolvers]
    control_addresses = options.control_resolvers
    if control_addresses is None:
        from_lists = [r for tl in target_lists for r in tl.controls.resolvers]
        control_addresses = from_lists or list(DEFAULT_CONTROL_RESOLVERS)
    control = [parse_resolver(a, resolv_conf=options.resolv_conf) for a in control_addresses]
    return probe, control


def control_sni(target_lists: list[TargetList]) -> str | None:
    return next((tl.controls.sni for tl in target_lists if tl.controls.sni), None)


def build_header(
    target_lists: list[TargetList],
    options: RunOptions,
    probe_resolvers: list[ResolverSpec],
    control_resolvers: list[ResolverSpec],
    started: datetime,
    run_id: str,
) -> dict[str, Any]:
    system_ip = next((r.ip for r in probe_resolvers if r.address == "system"), None)
    expected: dict[str, list[str]] = {}
    groups: dict[str, dict[str, Any]] = {}
    for tl in target_lists:
        expected.update(tl.expected_ranges)
        groups.update(tl.group_info())
    return new_record(
        HEADER,
        software_name=SOFTWARE_NAME,
        software_version=__version__,
        run_id=run_id,
        started_at=format_utc(started),
        vantage=options.vantage,
        probe_asn=options.asn or "AS0",
        probe_cc=options.cc or "ZZ",
        resolvers=[r.address for r in probe_resolvers],
        control_resolvers=[r.address for r in control_resolvers],
        system_resolver_ip=system_ip,
        # Only the file's base name: a full path could name the volunteer's home directory.
        target_files=[{"name": Path(tl.filename).name, "sha256": tl.sha256} for tl in target_lists],
        target_list_name="+".join(tl.name for tl in target_lists),
        control_sni=control_sni(target_lists),
        options={
            "timeout": options.timeout,
            "concurrency": options.concurrency,
            "repeat": options.repeat,
            "deadline": options.deadline,
            "udp_wait": options.udp_wait,
            "max_addresses_per_domain": options.max_addresses_per_domain,
            "ca_bundle": Path(options.ca_bundle).name if options.ca_bundle else None,
        },
        expected_ranges=expected,
        groups=groups,
    )


def count_jobs(target_lists: list[TargetList], repeat: int) -> int:
    """How many jobs a run has (for progress), by arithmetic: `sample: all` is never iterated."""
    total = 0
    for tl in target_lists:
        counts = tl.counts()
        total += counts["domains"] + counts["control_domains"]
        total += counts["endpoints"] + counts["range_endpoints"] + counts["control_endpoints"]
    return total * repeat


class Runner:
    """One run over one or more target lists. Create, then `await run(sink)`."""

    def __init__(
        self,
        target_lists: list[TargetList],
        options: RunOptions,
        *,
        on_progress: Callable[[int], None] | None = None,
    ) -> None:
        self.target_lists = target_lists
        self.options = options
        self.on_progress = on_progress or (lambda done: None)
        self.probe_resolvers, self.control_resolvers = resolve_option_resolvers(
            target_lists, options
        )
        self.control_sni = control_sni(target_lists)
        self.ssl_context: ssl.SSLContext = make_ssl_context(options.ca_bundle)
        self.summary = RunSummary()
        self._semaphore: asyncio.Semaphore | None = None
        self._sink: RecordSink | None = None
        self._run_start = 0.0
        self._done = 0

    # -- plan --------------------------------------------------------------------------------
    def jobs(self) -> Iterator[Callable[[], Awaitable[None]]]:
        """Lazily, every (target, attempt) job; domains first, then endpoints and range samples."""
        for attempt in range(self.options.repeat):
            for tl in self.target_lists:
                for domain in tl.domains():
                    yield lambda d=domain, a=attempt: self._domain_job(d, a)
                for endpoint in tl.iter_endpoints():
                    yield lambda e=endpoint, a=attempt: self._endpoint_job(e, a)

    # -- execution ---------------------------------------------------------------------------
    async def run(self, sink: RecordSink, header: dict[str, Any]) -> str | None:
        """Run every job, writing to `sink`. Returns None, "deadline" or the stopping signal."""
        self._sink = sink
        self._semaphore = asyncio.Semaphore(max(1, self.options.concurrency))
        self._run_start = time.monotonic()
        sink.write_header(header)
        jobs = self.jobs()

        async def worker() -> None:
            for job in jobs:  # a shared generator: each job is taken by exactly one worker
                await job()
                self._done += 1
                self.on_progress(self._done)

        loop = asyncio.get_running_loop()
        work = asyncio.ensure_future(
            asyncio.gather(*(worker() for _ in range(max(1, self.options.concurrency))))
        )
        stopped_by: list[str] = []

        def stop(signame: str) -> None:
            if not stopped_by:
                stopped_by.append(signame)
                work.cancel()

        handled = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
        for sig in handled:
            try:
                loop.add_signal_handler(sig, stop, sig.name)
            except (NotImplementedError, RuntimeError, ValueError):
                pass  # not the main thread (tests): signals stay with their default handlers
        ticker = asyncio.ensure_future(self._checkpoint_ticker(sink))
        try:
            await asyncio.wait_for(asyncio.shield(work), timeout=self.options.deadline)
        except TimeoutError:
            stopped_by.append("deadline")
            work.cancel()
        except asyncio.CancelledError:
            if not stopped_by:
                raise
        finally:
            ticker.cancel()
            for sig in handled:
                try:
                    loop.remove_signal_handler(sig)
                except (NotImplementedError, RuntimeError, ValueError):
                    pass
            if not work.done():
                work.cancel()
            try:
                await work
            except asyncio.CancelledError:
                pass
        return stopped_by[0] if stopped_by else None

    async def _checkpoint_ticker(self, sink: RecordSink) -> None:
        """Give the writer a chance to sign every second, so quiet stretches are covered too."""
        due = getattr(sink, "checkpoint_if_due", None)
        if due is None:
            return
        while True:
            await asyncio.sleep(1.0)
            due()

    async def _limited(self, probe: Awaitable[dict[str, Any]]) -> dict[str, Any]:
        assert self._semaphore is not None and self._sink is not None
        async with self._semaphore:
            record = await probe
        self._sink.write(record)
        self.summary.add(record)
        return record

    def _ctx(self, target_id: str, group: str, role: str, attempt: int) -> ProbeContext:
        return ProbeContext(target_id, group, role, attempt, self._run_start)

    async def _domain_job(self, domain: Domain, attempt: int) -> None:
        ctx = self._ctx(domain.target_id, domain.group, domain.role, attempt)
        opts = self.options
        queries = [
            (resolver, role, qtype)
            for role, resolvers in (
                ("probe", self.probe_resolvers),
                ("control", self.control_resolvers),
            )
            for resolver in resolvers
            for qtype in QUERY_TYPES
        ]
        dns_records = await asyncio.gather(
            *(
                self._limited(
                    probe_dns(
                        ctx,
                        domain.name,
                        qtype,
                        resolver,
                        resolver_role=role,
                        timeout=opts.timeout,
                        udp_wait=opts.udp_wait,
                        ssl_context=self.ssl_context,
                    )
                )
                for resolver, role, qtype in queries
            )
        )
        addresses = select_addresses(dns_records, opts.max_addresses_per_domain)
        handshakes = []
        for ip, sources in addresses:
            for port in domain.ports:
                for sni, sni_role in self._snis(domain.name):
                    handshakes.append(
                        self._limited(
                            probe_tls(
                                ctx,
                                ip,
                                port,
                                sni,
                                sni_role=sni_role,
                                hostname=domain.name,
                                address_sources=sources,
                                ssl_context=self.ssl_context,
                                timeout=opts.timeout,
                            )
                        )
                    )
        await asyncio.gather(*handshakes)

    async def _endpoint_job(self, endpoint: Endpoint, attempt: int) -> None:
        ctx = self._ctx(endpoint.target_id, endpoint.group, endpoint.role, attempt)
        probes = [
            self._limited(probe_tcp(ctx, endpoint.ip, endpoint.port, timeout=self.options.timeout))
        ]
        if endpoint.sni:
            for sni, sni_role in self._snis(endpoint.sni):
                probes.append(
                    self._limited(
                        probe_tls(
                            ctx,
                            endpoint.ip,
                            endpoint.port,
                            sni,
                            sni_role=sni_role,
                            hostname=None,
                            address_sources=["endpoint"],
                            ssl_context=self.ssl_context,
                            timeout=self.options.timeout,
                        )
                    )
                )
        await asyncio.gather(*probes)

    def _snis(self, target_sni: str) -> list[tuple[str, str]]:
        """The target SNI, plus the control SNI on the same ip:port so SNI filtering shows."""
        snis = [(target_sni, "target")]
        if self.control_sni and self.control_sni.lower() != target_sni.lower():
            snis.append((self.control_sni, "control"))
        return snis


def select_addresses(dns_records: list[dict[str, Any]], limit: int) -> list[tuple[str, list[str]]]:
    """Addresses to handshake with, each with the resolvers that returned it.

    Control and probe answers alternate so that a probe resolver's suspicious answer (a blockpage
    address, say) is always tested beside a control answer, within `limit` addresses.
    """
    sources: dict[str, list[str]] = {}
    by_role: dict[str, list[str]] = {"control": [], "probe": []}
    for record in dns_records:
        role = record.get("resolver_role", "probe")
        for ip in answer_addresses(record):
            tag = f"{role}:{record['resolver_address']}"
            if ip not in sources:
                sources[ip] = []
                by_role.setdefault(role, []).append(ip)
            if tag not in sources[ip]:
                sources[ip].append(tag)
    chosen: list[str] = []
    control, probe = by_role.get("control", []), by_role.get("probe", [])
    for i in range(max(len(control), len(probe))):
        for pool in (control, probe):
            if i < len(pool) and pool[i] not in chosen and len(chosen) < limit:
                chosen.append(pool[i])
    return [(ip, sources[ip]) for ip in chosen]


def run_targets(
    target_lists: list[TargetList],
    options: RunOptions,
    *,
    signer: Any | None = None,
    on_progress: Callable[[int], None] | None = None,
    sink_factory: Callable[[Path, str], RecordSink] | None = None,
) -> RunResult:
    """Run a whole measurement and write its result file; the library entry point of `run`."""
    runner = Runner(target_lists, options, on_progress=on_progress)
    started = datetime.now(UTC)
    run_id = uuid.uuid4().hex
    header = build_header(
        target_lists, options, runner.probe_resolvers, runner.control_resolvers, started, run_id
    )
    stem = file_stem(started, options.vantage)
    if sink_factory is None:
        from netprobe.evidence.writer import ResultWriter

        sink: RecordSink = ResultWriter(
            options.out_dir,
            stem,
            signer=signer,
            checkpoint_every=options.checkpoint_every,
            checkpoint_seconds=options.checkpoint_seconds,
        )
    else:
        sink = sink_factory(options.out_dir, stem)
    began = time.monotonic()
    interrupted = asyncio.run(runner.run(sink, header))
    summary_record = new_record(
        SUMMARY,
        finished_at=format_utc(datetime.now(UTC)),
        duration=round(time.monotonic() - began, 3),
        interrupted=interrupted,
        **runner.summary.to_record_fields(),
    )
    reason = "signal" if interrupted and interrupted != "deadline" else "end"
    path = sink.close(summary_record, reason=reason)
    return RunResult(path=path, summary=runner.summary, interrupted=interrupted)


__all__ = [
    "RunOptions",
    "RunResult",
    "Runner",
    "run_targets",
    "select_addresses",
    "file_stem",
    "count_jobs",
]
