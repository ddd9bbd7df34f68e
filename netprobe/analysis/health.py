"""Vantage health: can a run support any verdict at all? One definition for `run` and `report`.

Rules:
- A control lookup is a dns record asked of a control resolver (`resolver_role: control`). A
  control connection is a tcp or tls record of a control target (`role: control`), whatever SNI
  the handshake sent.
- The vantage point is healthy when some control lookup or some control connection succeeded.
  Otherwise it looks offline or fully filtered: `netprobe report` calls every verdict
  `inconclusive` and `netprobe run` says so at the end of the run.
- Pure: fed one record at a time (a run counts while records stream past, the analysis reads a
  stored file), so both see exactly the same rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from netprobe.model.records import DNS, TCP, TLS
from netprobe.model.vocabulary import ROLE_CONTROL


@dataclass(slots=True)
class VantageHealth:
    has_controls: bool = False  # some control lookup or control connection was made
    control_resolver_ok: bool = False  # some control lookup succeeded
    control_endpoints_ok: bool = False  # some control connection succeeded

    @property
    def healthy(self) -> bool:
        return self.control_resolver_ok or self.control_endpoints_ok

    def add(self, record: Mapping[str, Any]) -> None:
        """Count one measurement record (records of other types are ignored)."""
        kind = record.get("type")
        if kind == DNS:
            if record.get("resolver_role") != ROLE_CONTROL:
                return
            self.has_controls = True
            if record.get("failure") is None:
                self.control_resolver_ok = True
        elif kind == TCP or kind == TLS:
            if record.get("role") != ROLE_CONTROL:
                return
            self.has_controls = True
            if record.get("failure") is None:
                self.control_endpoints_ok = True


def vantage_health(records: list[dict]) -> VantageHealth:
    """The health of the vantage point that measured `records`."""
    health = VantageHealth()
    for record in records:
        health.add(record)
    return health


def unhealthy_reason(health: VantageHealth) -> str:
    """Why an unhealthy vantage supports no verdict, for a verdict's note."""
    if health.has_controls:
        return "no control measurement succeeded"
    return "the run has no control measurements"


def vantage_notes(
    health: VantageHealth, families_tried: set[str], families_ok: set[str]
) -> list[str]:
    """What a report says about the vantage point: missing or failing controls, and address
    families (IPv4/IPv6) tried but never connected over, whose failures prove nothing."""
    notes = []
    if not health.has_controls:
        notes.append(
            "the run has no control measurements: failures cannot be told from an outage here"
        )
    else:
        if not health.control_resolver_ok:
            notes.append("no control-resolver lookup succeeded: DNS tampering cannot be confirmed")
        if not health.control_endpoints_ok:
            notes.append("no control endpoint answered: IP/SNI blocking cannot be confirmed")
    for fam in sorted(families_tried - families_ok):
        notes.append(f"nothing connected over {fam}: {fam} failures are inconclusive")
    return notes
