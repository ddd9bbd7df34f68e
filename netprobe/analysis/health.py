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
- Silent lookups (the injection probe, `resolver_role: silent`) are never control lookups.
- Round-local health (`ControlRounds`, files whose control records carry `control_round`): the
  run-wide rule above stays the one that makes a run healthy. On top of it, a round counts as
  *failed* when it has control measurements and none of them succeeded (the same rule, within
  the round). A failure measured while the vantage looked offline then, i.e. inside a failed round or
  with a failed round as the nearest round before or after it in time, can only be `unknown`,
  never a block (`offline_at`). This only ever turns blocks into `inconclusive`, never the
  reverse, and a file without rounds (or whose rounds all worked) is judged exactly as before.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from netprobe.model.records import CONTROL_ROUND, DNS, TCP, TLS
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


@dataclass(slots=True)
class ControlRound:
    """One round of the control jobs: when it ran and whether the vantage worked then."""

    number: int
    start: float
    end: float
    health: VantageHealth = field(default_factory=VantageHealth)

    @property
    def failed(self) -> bool:
        return self.health.has_controls and not self.health.healthy

    def describe(self) -> str:
        return f"control round {self.number} ({self.start:.1f}-{self.end:.1f} s)"


@dataclass(slots=True)
class ControlRounds:
    """The control rounds of a run, in time order (empty for files without `control_round`)."""

    rounds: list[ControlRound] = field(default_factory=list)

    @property
    def any_failed(self) -> bool:
        return any(r.failed for r in self.rounds)

    def failed_rounds(self) -> list[ControlRound]:
        return [r for r in self.rounds if r.failed]

    def offline_at(self, t: Any) -> ControlRound | None:
        """The failed round that makes time `t` look offline (see the module rules), else None."""
        if not self.rounds or not self.any_failed:
            return None  # the usual case: nothing to look up
        try:
            when = float(t)
        except (TypeError, ValueError):
            return None
        containing = [r for r in self.rounds if r.start <= when <= r.end]
        if containing:
            nearest = containing
        else:
            before = [r for r in self.rounds if r.end < when]
            after = [r for r in self.rounds if r.start > when]
            nearest = []
            if before:
                nearest.append(max(before, key=lambda r: (r.end, r.number)))
            if after:
                nearest.append(min(after, key=lambda r: (r.start, r.number)))
        return next((r for r in nearest if r.failed), None)


def control_rounds(records: Iterable[Mapping[str, Any]]) -> ControlRounds:
    """The control rounds of `records`: each round's time span and its health."""
    rounds: dict[int, ControlRound] = {}
    for record in records:
        number = record.get(CONTROL_ROUND)
        if number is None or record.get("type") not in (DNS, TCP, TLS):
            continue
        try:
            number = int(number)
            t0, t = float(record.get("t0") or 0.0), float(record.get("t") or 0.0)
        except (TypeError, ValueError):
            continue
        found = rounds.get(number)
        if found is None:
            found = rounds[number] = ControlRound(number, t0, max(t0, t))
        else:
            found.start, found.end = min(found.start, t0), max(found.end, t0, t)
        found.health.add(record)
    return ControlRounds([rounds[n] for n in sorted(rounds)])
