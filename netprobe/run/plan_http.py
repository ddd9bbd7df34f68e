"""The HTTP steps of a run's plan (issue 13): one `GET /` per address a name's DNS lookups found.

Rules:
- Pure, like `run.planner` (which calls it): data in, steps out.
- For every domain job (targets and controls), once its DNS stage is back: an `HttpGet` to port
  80 of each distinct address the probe and control resolvers answered (never the injection
  probe's silent replies): first the control answers (an address any control resolver gave),
  at most `limit` of them, then at most `limit` others (`max_addresses_per_domain`), so a probe
  resolver's blockpage address is always fetched beside a control answer.
  Each step carries the resolvers that gave its address.
- Never fetched: loopback, unspecified, link-local and multicast answers (`127.0.0.1`, `::`,
  ...). A resolver that answers those is blocking by DNS already (a bogon, `analysis.dns`), and a
  GET there would reach the volunteer's own machine or network and store its pages.
- HTTP failures are never re-probed (`needs_confirmation`): they are not blocking evidence
  (`analysis.http`), so a re-probe would only cost time.
- `step.call(probes, ctx, settings)` is the step's one mapping onto `Probes.http`.
"""

from __future__ import annotations

import ipaddress
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


def fetchable(ip: str) -> bool:
    """Whether an answer address may be fetched from (see the module rules)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return not (
        address.is_loopback
        or address.is_unspecified
        or address.is_link_local
        or address.is_multicast
    )


def http_gets(hostname: str, dns_records: Sequence[Mapping[str, Any]], limit: int) -> list[HttpGet]:
    """The GETs of one domain job from its DNS records (see the module rules)."""
    sources: dict[str, list[str]] = {}  # address -> resolver tags, in order of appearance
    from_control: set[str] = set()
    for record in dns_records:
        role = str(record.get("resolver_role") or RESOLVER_PROBE)
        if role == RESOLVER_SILENT:
            continue
        tag = address_source(role, str(record.get("resolver_address")))
        for ip in answer_addresses(record):
            if not fetchable(ip):
                continue
            tags = sources.setdefault(ip, [])
            if tag not in tags:
                tags.append(tag)
            if role == ROLE_CONTROL:
                from_control.add(ip)
    control = [ip for ip in sources if ip in from_control][:limit]
    probe = [ip for ip in sources if ip not in from_control][:limit]
    return [HttpGet(ip, hostname, tuple(sources[ip])) for ip in control + probe]
