"""The HTTP steps of a run's plan (issue 13): one `GET /` per address a name's DNS lookups found.

Rules:
- Pure, like `run.planner` (which calls it): data in, steps out.
- For every domain job (targets and controls), once its DNS stage is back: an `HttpGet` to port
  80 of each distinct address the probe and control resolvers answered (never the injection
  probe's silent replies), control answers first, at most `limit` addresses from each resolver
  role (`max_addresses_per_domain`), so a probe resolver's blockpage address is always fetched
  beside a control answer. Each step carries the resolvers that gave its address.
- HTTP failures are never re-probed (`needs_confirmation`): they are not blocking evidence
  (`analysis.http`), so a re-probe would only cost time.
- `step.call(probes, ctx, settings)` is the step's one mapping onto `Probes.http`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from netprobe.model.records import RESOLVER_SILENT, answer_addresses
from netprobe.model.target_ids import address_source
from netprobe.model.vocabulary import RESOLVER_PROBE, ROLE_CONTROL

if TYPE_CHECKING:
    from netprobe.model.records import HttpRecord
    from netprobe.probes import ProbeContext, Probes, ProbeSettings

HTTP_PORT = 80


@dataclass(frozen=True, slots=True)
class HttpGet:
    ip: str
    hostname: str
    address_sources: tuple[str, ...]
    port: int = HTTP_PORT

    def call(
        self, probes: Probes, ctx: ProbeContext, settings: ProbeSettings
    ) -> Awaitable[HttpRecord]:
        if probes.http is None:  # the planner plans none then (RunPlan.http)
            raise RuntimeError("an http step was planned for a Probes without http")
        return probes.http(
            ctx,
            self.ip,
            self.hostname,
            port=self.port,
            timeout=settings.timeout,
            body_limit=settings.http_body_limit,
            address_sources=self.address_sources,
        )

    def record_fields(self) -> tuple[tuple[str, Any], ...]:
        return ()


def http_gets(hostname: str, dns_records: Sequence[Mapping[str, Any]], limit: int) -> list[HttpGet]:
    """The GETs of one domain job from its DNS records (see the module rules)."""
    sources: dict[str, list[str]] = {}
    by_role: dict[str, list[str]] = {ROLE_CONTROL: [], RESOLVER_PROBE: []}
    for record in dns_records:
        role = str(record.get("resolver_role") or RESOLVER_PROBE)
        if role == RESOLVER_SILENT:
            continue
        tag = address_source(role, str(record.get("resolver_address")))
        for ip in answer_addresses(record):
            if ip not in sources:
                sources[ip] = []
                by_role.setdefault(role, []).append(ip)
            if tag not in sources[ip]:
                sources[ip].append(tag)
    chosen = by_role[ROLE_CONTROL][:limit] + by_role[RESOLVER_PROBE][:limit]
    return [HttpGet(ip, hostname, tuple(sources[ip])) for ip in chosen]
