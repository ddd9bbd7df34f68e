"""The MTProto step of a run's plan (issue 13): which DC endpoints get req_pq_multi, and how (pure).

Rules:
- Pure, like `netprobe.run.planner` (which calls this module): data in, data out.
- A DC endpoint is a target endpoint of a group named `dc` (`MTPROTO_GROUPS`; the bundled
  Telegram list's DC group, on ports 443, 80 and 5222, IPv4 and IPv6). Range samples, web names
  and control endpoints are never sent MTProto.
- The MTProto attempts are the endpoint job's follow-up, planned only when its TCP connect
  worked (a failed connect is the `ip` evidence of today; nothing is learnt by sending MTProto
  into it). They run one after another on fresh connections: obfuscated2 first (the control: it
  looks random to DPI), then the plain transports, intermediate and abridged. A censor that keeps
  blocking an address for a while after a plain marker cannot then spoil the control.
- Failed attempts are re-probed like every other target step (`planner.needs_confirmation`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from netprobe.model.records import TCP
from netprobe.model.vocabulary import (
    MTPROTO_ABRIDGED,
    MTPROTO_INTERMEDIATE,
    MTPROTO_OBFUSCATED2,
    ROLE_TARGET,
)
from netprobe.targets.lists import Endpoint

if TYPE_CHECKING:
    from netprobe.model.records import MtprotoRecord
    from netprobe.probes import ProbeContext, Probes, ProbeSettings

# Names of the groups whose endpoints are Telegram data centres.
MTPROTO_GROUPS = frozenset({"dc"})
# The order a DC endpoint is tried in (see the module rules).
TRANSPORT_ORDER = (MTPROTO_OBFUSCATED2, MTPROTO_INTERMEDIATE, MTPROTO_ABRIDGED)

_NO_FIELDS: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class MtprotoAttempt:
    """One req_pq_multi to ip:port over one transport."""

    ip: str
    port: int
    transport: str

    def call(
        self, probes: Probes, ctx: ProbeContext, settings: ProbeSettings
    ) -> Awaitable[MtprotoRecord]:
        return probes.mtproto(ctx, self.ip, self.port, self.transport, timeout=settings.timeout)

    def record_fields(self) -> tuple[tuple[str, Any], ...]:
        return _NO_FIELDS


def is_dc_endpoint(endpoint: Endpoint) -> bool:
    return endpoint.role == ROLE_TARGET and endpoint.group in MTPROTO_GROUPS


def mtproto_attempts(
    endpoint: Endpoint, records: Sequence[Mapping[str, Any]]
) -> tuple[MtprotoAttempt, ...]:
    """The MTProto attempts after an endpoint's first stage: none unless it is a DC endpoint
    whose TCP connect worked."""
    if not is_dc_endpoint(endpoint):
        return ()
    if not any(r.get("type") == TCP and r.get("failure") is None for r in records):
        return ()
    return tuple(MtprotoAttempt(endpoint.ip, endpoint.port, t) for t in TRANSPORT_ORDER)
