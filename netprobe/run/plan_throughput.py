"""Planning the throughput probe (issue 13): which downloads a domain job makes (pure).

Rules:
- Only domains whose list names a download object (`Domain.download`, `targets.downloads`) are
  fetched, and only on one address per family: the first IPv4 and the first IPv6 address the
  planner selected for TLS (`planner.select_addresses` puts a control resolver's answer first),
  on the domain's first port. So a domain costs at most 2 or 4 downloads per attempt.
- Per ip:port: with a control SNI that differs from the domain, the control SNI first
  (`sequence: before`), then the target SNI (`target`), one after the other on the same address,
  so both see the same path and a censor's residual slowing after the forbidden name cannot slow
  the control. Without a control SNI: the target SNI alone (then only the control domains'
  downloads are something to compare with).
- The downloads run after that ip:port's TLS chain (`planner.Chain.then`), and only when its
  target-SNI handshake worked: a failed handshake is the TLS layer's evidence already.
- One address's downloads at a time in the whole run: the runner holds `ProbeSettings.downloads`
  (a lock) over a chain's `then` steps, so the control SNI's and the target SNI's downloads of
  one ip:port follow each other with no other download in between or beside them. On a slow
  link concurrent downloads would share it unevenly and make equal rates look different; other
  probes still run beside them (they are small).
- Throughput records are never re-probed (`planner.needs_confirmation`): they are judged by
  their rates over the attempts, not by a failure vote.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from netprobe.model.records import SEQUENCE_BEFORE, SEQUENCE_TARGET
from netprobe.model.vocabulary import ROLE_CONTROL, ROLE_TARGET
from netprobe.targets.lists import Domain

if TYPE_CHECKING:
    from netprobe.model.records import ThroughputRecord
    from netprobe.probes import ProbeContext, Probes, ProbeSettings

_NO_FIELDS: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class ThroughputFetch:
    """One download: `path` from ip:port with SNI `server_name` and Host `hostname`."""

    ip: str
    port: int
    server_name: str
    sni_role: str  # "target" | "control"
    hostname: str
    path: str
    max_bytes: int
    max_seconds: float
    sequence: str = SEQUENCE_TARGET  # "before" (the control SNI) | "target"

    def call(
        self, probes: Probes, ctx: ProbeContext, settings: ProbeSettings
    ) -> Awaitable[ThroughputRecord]:
        return probes.throughput(
            ctx,
            self.ip,
            self.port,
            self.server_name,
            self.path,
            hostname=self.hostname,
            sni_role=self.sni_role,
            ssl_context=settings.ssl_context,
            timeout=settings.timeout,
            max_bytes=self.max_bytes,
            max_seconds=self.max_seconds,
            sequence=self.sequence,
        )

    def record_fields(self) -> tuple[tuple[str, Any], ...]:
        return _NO_FIELDS  # the probe writes `sequence` itself


def throughput_addresses(domain: Domain, selected: Sequence[str]) -> list[tuple[str, int]]:
    """The ip:port pairs a domain's object is fetched from: one address per family."""
    if not domain.download or not domain.ports:
        return []
    chosen: dict[bool, str] = {}
    for ip in selected:
        chosen.setdefault(":" in ip, ip)
    return [(ip, domain.ports[0]) for ip in chosen.values()]


def throughput_fetches(
    domain: Domain,
    selected: Sequence[str],
    control_sni: str | None,
    max_bytes: int,
    max_seconds: float,
) -> dict[tuple[str, int], tuple[ThroughputFetch, ...]]:
    """{(ip, port): the downloads run after that address's TLS chain} (see the module rules)."""
    if not domain.download:
        return {}
    plan: dict[tuple[str, int], tuple[ThroughputFetch, ...]] = {}
    for ip, port in throughput_addresses(domain, selected):
        target = ThroughputFetch(
            ip, port, domain.name, ROLE_TARGET, domain.name, domain.download, max_bytes,
            max_seconds,
        )  # fmt: skip
        if control_sni and control_sni.lower() != domain.name.lower():
            before = ThroughputFetch(
                ip, port, control_sni, ROLE_CONTROL, domain.name, domain.download, max_bytes,
                max_seconds, SEQUENCE_BEFORE,
            )  # fmt: skip
            plan[(ip, port)] = (before, target)
        else:
            plan[(ip, port)] = (target,)
    return plan
