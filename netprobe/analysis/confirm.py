"""Confirmation re-probes: fold each failing step's re-probes into one outcome (pure).

Rules (the contract of issue 15, "Confirmation re-probes"):
- A record with `confirmation: k >= 1` re-probes a failing step: it is never an attempt of its own.
  It belongs to the planned record (no `confirmation`, or 0) of the same step: same type,
  target_id, attempt and control round, and for dns the hostname, query type and resolver, for
  tcp the ip and port, for tls the ip, port, server name and SNI role, for mtproto the ip, port
  and transport. If several planned records
  share that identity, a failing one is preferred (only failures are re-probed), then one of the
  same `sequence`, then the latest one made before the re-probe. A re-probe that matches no planned
  record is ignored.
- The step's outcome is the majority over [planned, re-probes]. If at least half of them worked
  (a tie included) the step counts as working: its record becomes a working re-probe's and the
  target gets a note ("2/3 attempts worked"). If most failed the planned failure stands and its
  evidence says "confirmed by k of N re-probes". So a step whose re-probes disagree is never
  blocked unless most of them failed.
- A failed re-probe made while the vantage looked offline (`health.ControlRounds.offline_at`)
  is not counted: it says nothing about the step.
- Not folded: silent lookups (any reply from an address that runs no DNS server is evidence on its
  own, so each silent record is kept as it is), and the control SNI's `after` handshake of a
  residual-aware pair (it measures one moment, right after the target SNI failed; a later re-probe
  measures another), whose re-probes are ignored.
- The folded record is a copy carrying `VOTES`; the planned records themselves are never changed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from netprobe.analysis.common import is_confirmation, is_silent
from netprobe.analysis.health import ControlRounds
from netprobe.model.records import (
    CONFIRMATION,
    CONTROL_ROUND,
    DNS,
    MTPROTO,
    SEQUENCE,
    SEQUENCE_AFTER,
    TCP,
    TLS,
)
from netprobe.model.target_ids import endpoint_label

# The key of a folded record that holds its `Votes` (never written to a file).
VOTES = "_votes"


class Votes(NamedTuple):
    """How a step's planned probe and its re-probes came out."""

    worked: int  # probes that worked, planned one included
    total: int  # probes counted, planned one included
    reprobes: int  # re-probes counted
    reprobes_failed: int  # re-probes that failed
    ignored: int  # failed re-probes made while the vantage looked offline

    @property
    def failed(self) -> int:
        return self.total - self.worked

    @property
    def working(self) -> bool:
        return 2 * self.worked >= self.total


def step_key(record: dict) -> tuple:
    """The identity of a record's step (see the module rules)."""
    kind = record.get("type")
    common = (
        kind,
        str(record.get("target_id")),
        record.get("attempt") or 0,
        record.get(CONTROL_ROUND),
    )
    if kind == DNS:
        return (
            *common,
            str(record.get("hostname")),
            str(record.get("query_type")),
            str(record.get("resolver_address")),
        )
    if kind == TCP:
        return (*common, str(record.get("ip")), record.get("port"))
    if kind == MTPROTO:
        return (*common, str(record.get("ip")), record.get("port"), str(record.get("transport")))
    return (
        *common,
        str(record.get("ip")),
        record.get("port"),
        str(record.get("server_name")),
        str(record.get("sni_role")),
    )


def fold_confirmations(
    records: list[dict], rounds: ControlRounds | None = None
) -> tuple[list[dict], list[dict]]:
    """(steps, re-probes): the planned records with each failing step folded with its re-probes
    (see the module rules), and the re-probe records themselves. Files without re-probes come
    back unchanged (the same list)."""
    if not any(is_confirmation(record) for record in records):
        return records, []
    planned: list[dict] = []
    reprobes: list[dict] = []
    for record in records:
        if is_confirmation(record) and not is_silent(record):
            reprobes.append(record)
        else:
            planned.append(record)  # silent re-probes are evidence of their own
    index: dict[tuple, list[int]] = {}
    for position, record in enumerate(planned):
        if not is_silent(record):
            index.setdefault(step_key(record), []).append(position)
    votes: dict[int, list[dict]] = {}
    for reprobe in reprobes:
        candidates = index.get(step_key(reprobe))
        if not candidates:
            continue  # re-probes no planned step of this file: not an attempt, ignored
        position = _original(planned, candidates, reprobe)
        if planned[position].get(SEQUENCE) == SEQUENCE_AFTER:
            continue
        votes.setdefault(position, []).append(reprobe)
    steps = list(planned)
    for position, confirmations in votes.items():
        steps[position] = _fold(planned[position], confirmations, rounds)
    return steps, reprobes


def _original(planned: list[dict], candidates: list[int], reprobe: dict) -> int:
    if len(candidates) == 1:
        return candidates[0]
    failing = [p for p in candidates if planned[p].get("failure") is not None] or candidates
    sequence = reprobe.get(SEQUENCE)
    same = [p for p in failing if planned[p].get(SEQUENCE) == sequence] if sequence else []
    pool = same or failing
    t0 = _time(reprobe.get("t0"))
    earlier = [p for p in pool if _time(planned[p].get("t0")) <= t0]
    return max(earlier, key=lambda p: _time(planned[p].get("t0"))) if earlier else pool[0]


def _time(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0


def _fold(original: dict, confirmations: list[dict], rounds: ControlRounds | None) -> dict:
    ordered = sorted(confirmations, key=lambda r: (_time(r.get("t0")), r.get(CONFIRMATION) or 0))
    counted = []
    ignored = 0
    for record in ordered:
        if (
            record.get("failure") is not None
            and rounds is not None
            and rounds.offline_at(record.get("t0")) is not None
        ):
            ignored += 1
        else:
            counted.append(record)
    outcomes = [original, *counted]
    working = [r for r in outcomes if r.get("failure") is None]
    failing = [r for r in outcomes if r.get("failure") is not None]
    votes = Votes(
        worked=len(working),
        total=len(outcomes),
        reprobes=len(counted),
        reprobes_failed=sum(1 for r in counted if r.get("failure") is not None),
        ignored=ignored,
    )
    base = (working or [original])[0] if votes.working else (failing or [original])[0]
    folded = dict(base)
    folded[VOTES] = votes
    return folded


def votes_of(record: dict) -> Votes | None:
    votes = record.get(VOTES)
    return votes if isinstance(votes, Votes) else None


def confirmed_phrase(record: dict, separator: str = "; ") -> str:
    """The words "; confirmed by k of N re-probes" for a failing step that was re-probed, else
    "" (`separator` stands for the "; ")."""
    votes = votes_of(record)
    if votes is None or votes.working or record.get("failure") is None:
        return ""
    if not votes.reprobes:
        return (
            f"{separator}its re-probes were all made while the vantage looked offline (not counted)"
        )
    text = f"{separator}confirmed by {votes.reprobes_failed} of {votes.reprobes} re-probes"
    if votes.ignored:
        text += f" ({votes.ignored} more made while the vantage looked offline, not counted)"
    return text


def step_label(record: dict) -> str:
    """A step in words: "system A telegram.org", "203.0.113.50:443", "... SNI telegram.org"."""
    kind = record.get("type")
    if kind == DNS:
        return (
            f"{record.get('resolver_address')} {record.get('query_type')} {record.get('hostname')}"
        )
    where = endpoint_label(str(record.get("ip")), record.get("port"))
    if kind == TLS:
        return f"{where} SNI {record.get('server_name')}"
    return where


def outvoted_notes(records: Iterable[dict]) -> list[str]:
    """A note per failing step that its re-probes out-voted (sorted, deterministic)."""
    notes = set()
    for record in records:
        votes = votes_of(record)
        if votes is None or not votes.working or not votes.failed:
            continue
        notes.add(
            f"{record.get('type')}: {step_label(record)} failed, then was re-probed: "
            f"{votes.worked}/{votes.total} attempts worked, so not a block"
        )
    return sorted(notes)
