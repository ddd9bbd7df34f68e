"""Verdicts for one run: is each target ok, blocked (and how), down, or inconclusive?

Rules:
- Pure: `analyse(header, records)` reads only the stored records; re-analysing an old file gives the
  same answer. It never touches the network (no ASN lookups, no re-probing).
- Output is deterministic: verdicts sorted by target id, groups in header order, evidence sorted.
- The decision rules live in `health` (can the vantage point support a verdict), `dns` and
  `connect` (signs per attempt: DNS, and TCP/TLS), `verdict` (repeats, layer order), `ranges`
  (sampled addresses) and `summary` (one sentence per group); README.md ("How verdicts are
  decided") explains them to users. The words are `netprobe.model.vocabulary`'s.
- Readers pass a file's records through `load.load_run` first (schema checks, the same for all).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from netprobe.analysis.common import Sign, family, phrase, tally
from netprobe.analysis.confirm import fold_confirmations
from netprobe.analysis.context import RunContext, build_context, hostname_of
from netprobe.analysis.health import control_rounds, vantage_notes
from netprobe.analysis.load import check_records  # its home; importable from here too
from netprobe.analysis.ranges import apply_range_rule
from netprobe.analysis.summary import GroupItem, group_line, group_status
from netprobe.analysis.verdict import LayerResult, TargetJudgement, judge_target
from netprobe.model.records import CONFIRMATION, CONTROL_ROUND, MEASUREMENT_TYPES, TCP, TLS
from netprobe.model.target_ids import OTHER, parse_target_id
from netprobe.model.vocabulary import (
    CONTROL_GROUP,
    METHOD_ORDER,
    NOT_APPLICABLE,
    ROLE_TARGET,
    VERDICT_STATUSES,
)

STATUSES = VERDICT_STATUSES
METHODS = METHOD_ORDER
RUN_FIELDS = (
    "run_id",
    "vantage",
    "started_at",
    "software_name",
    "software_version",
    "probe_asn",
    "probe_cc",
    "target_list_name",
    "target_files",
    "resolvers",
    "control_resolvers",
    "system_resolver_ip",
)


@dataclass(slots=True)
class Verdict:
    target_id: str
    group: str
    role: str
    status: str
    method: str | None
    evidence: list[str]
    notes: list[str]
    layers: dict[str, str]
    scores: dict[str, float | None]

    def to_dict(self) -> dict:
        return {
            "target_id": self.target_id,
            "group": self.group,
            "role": self.role,
            "status": self.status,
            "method": self.method,
            "layers": dict(self.layers),
            "scores": dict(self.scores),
            "evidence": list(self.evidence),
            "notes": list(self.notes),
        }


@dataclass
class GroupSummary:
    group: str
    label: str
    status: str
    method: str | None
    line: str

    def to_dict(self) -> dict:
        return {
            "group": self.group,
            "label": self.label,
            "status": self.status,
            "method": self.method,
            "line": self.line,
        }


@dataclass
class RunAnalysis:
    header: dict
    verdicts: dict[str, Verdict]
    groups: list[GroupSummary]
    vantage: dict
    records: list[dict] = field(default_factory=list, repr=False, compare=False)

    def to_dict(self) -> dict:
        counts = Counter(v.status for v in self.verdicts.values())
        return {
            "run": run_metadata(self.header),
            "vantage": dict(self.vantage),
            "counts": {status: counts.get(status, 0) for status in STATUSES},
            "groups": [g.to_dict() for g in self.groups],
            "verdicts": [self.verdicts[key].to_dict() for key in sorted(self.verdicts)],
        }


def run_metadata(header: dict) -> dict[str, Any]:
    """The header fields a reader needs to know which run this is (stable key order)."""
    meta: dict[str, Any] = {key: header.get(key) for key in RUN_FIELDS}
    options = header.get("options") or {}
    meta["repeat"] = options.get("repeat") if isinstance(options, dict) else None
    signer = header.get("signer")
    meta["signer_fingerprint"] = signer.get("fingerprint") if isinstance(signer, dict) else None
    return meta


def analyse(
    header: dict,
    records: Iterable[dict],
    *,
    detail: bool = True,
    keep: Callable[[dict], bool] | None = None,
) -> RunAnalysis:
    """Verdicts, group sentences and vantage health for one run. Pure.

    `detail=False` is for readers of many runs (the timeline): statuses, methods, layers, scores
    and vantage health are the same as with detail, but evidence, notes and group sentences stay
    empty, which makes it about a third faster.

    `keep` is for a reader that holds no other reference to the records (`reports.load_analysed`):
    a `records` list is emptied, each target's records are freed once it is judged (a big run's
    peak memory), and the result's `records` are only those `keep` accepts. Verdicts are the same.
    """
    measurements = [
        r for r in records if isinstance(r, dict) and r.get("type") in MEASUREMENT_TYPES
    ]
    kept = measurements if keep is None else [r for r in measurements if keep(r)]
    tried = _tried_families(measurements) if detail else set()
    # One cheap pass finds the records of issue 15's fields: old files skip everything below.
    newer = [r for r in measurements if CONTROL_ROUND in r or CONFIRMATION in r]
    rounds = control_rounds(newer)
    steps, reprobes = fold_confirmations(measurements, rounds) if newer else (measurements, [])
    ctx = build_context(header, steps, reprobes, rounds)
    by_target: dict[str, list[dict]] = defaultdict(list)
    for record in steps:
        by_target[str(record.get("target_id"))].append(record)
    if keep is not None:  # from here on each target's own list is the only reference
        if isinstance(records, list):
            records.clear()
        del measurements, steps, reprobes, newer

    judgements = {}
    slim = _Slimmer() if keep is not None else None
    for target_id, target_records in by_target.items():
        judged = judge_target(
            target_records, ctx, str(target_records[0].get("group") or ""), detail
        )
        if slim is not None:  # what the range rule and the verdicts read of its first record
            by_target[target_id] = [_first_fields(target_records[0])]
            slim(judged)
        judgements[target_id] = judged
    apply_range_rule(header, judgements, by_target)

    verdicts: dict[str, Verdict] = {}
    items: dict[str, list[GroupItem]] = defaultdict(list)
    for target_id in sorted(by_target):
        target_records = by_target[target_id]
        group = str(target_records[0].get("group") or "")
        role = str(target_records[0].get("role") or ROLE_TARGET)
        judged = judgements.pop(target_id)  # freed as its verdict is made: a big run's peak
        layers: dict[str, str] = {}
        scores: dict[str, float | None] = {}
        for name, layer in judged.layers.items():  # one loop for both: a run has many targets
            layers[name] = layer.status
            scores[name] = layer.score
        verdict = verdicts[target_id] = Verdict(
            target_id,
            group,
            role,
            judged.status,
            judged.method,
            judged.evidence,
            judged.notes if detail else [],
            layers,
            scores,
        )
        if slim is not None:
            slim.verdict(verdict)
        if not detail:
            continue
        deciding = [
            s
            for layer in judged.layers.values()
            if layer.status == judged.status
            for s in layer.deciding
        ]
        failures = tally(phrase(s.failure) for s in deciding if s.failure)
        parsed = parse_target_id(target_id)
        items[group].append(
            GroupItem(
                target_id=target_id,
                name=(
                    parsed.label(target_id)
                    if parsed.kind != OTHER
                    else hostname_of(target_records[0]) or target_id
                ),
                port=parsed.port,
                status=judged.status,
                method=judged.method,
                failure_phrase=min(failures, key=lambda w: (-failures[w], w)) if failures else None,
            )
        )

    return RunAnalysis(
        header=header,
        verdicts=verdicts,
        groups=_group_summaries(header, items) if detail else [],
        vantage=_vantage(ctx, tried, detail),
        records=kept,
    )


# What is read of a target's first record once it is judged: `apply_range_rule` (group, ip),
# the verdict (group, role) and its group item's name (`hostname_of`). Five keys at most: a small
# dict (a big run keeps one per target until its verdict is made).
_FIRST_FIELDS = ("group", "role", "ip", "hostname", "server_name")


def _first_fields(record: dict) -> dict:
    return {key: record[key] for key in _FIRST_FIELDS if key in record}


class _Slimmer:
    """Makes a judgement hold only what the range rule and its verdict read (`keep` runs).

    Until the range rule every judgement of a run is alive. Of a layer's deciding signs only the
    kind and failure are read afterwards, so equal ones become one shared `Sign`; a layer with
    nothing to show (not applicable, no evidence) becomes one shared instance per name: the range
    rule changes only blocked layers, and the verdict reads a layer's status and score.
    """

    __slots__ = ("_signs", "_empty", "_dicts", "_notes")

    def __init__(self) -> None:
        self._signs: dict[tuple[str, str | None], Sign] = {}
        self._empty: dict[str, LayerResult] = {}
        self._dicts: dict[tuple, dict] = {}
        self._notes: dict[str, str] = {}

    def verdict(self, verdict: Verdict) -> None:
        """Equal `layers` and `scores` mappings become one object (nothing changes them once
        made: `to_dict` copies them), and equal notes one string (the range rule's sentences)."""
        dicts = self._dicts
        layers, scores = verdict.layers, verdict.scores
        key: tuple = ("layers", *layers.items())
        verdict.layers = dicts.setdefault(key, layers)
        key = ("scores", *((name, repr(score)) for name, score in scores.items()))
        verdict.scores = dicts.setdefault(key, scores)
        if verdict.notes:
            notes = self._notes
            verdict.notes = [notes.setdefault(note, note) for note in verdict.notes]

    def __call__(self, judged: TargetJudgement) -> None:
        signs = self._signs
        for name, layer in judged.layers.items():
            if (
                layer.status == NOT_APPLICABLE
                and layer.method is None
                and layer.score is None
                and not (layer.evidence or layer.notes or layer.deciding)
            ):
                judged.layers[name] = self._empty.setdefault(name, layer)
            elif layer.deciding:
                layer.deciding = [
                    signs.get((s.kind, s.failure))
                    or signs.setdefault((s.kind, s.failure), Sign(s.kind, failure=s.failure))
                    for s in layer.deciding
                ]


def _tried_families(records: list[dict]) -> set[str]:
    """The address families (IPv4/IPv6) of the addresses TCP and TLS records tried."""
    ips = {str(r["ip"]) for r in records if r.get("type") in (TCP, TLS) and r.get("ip")}
    return {family(ip) for ip in ips}


def _group_summaries(header: dict, items: dict[str, list[GroupItem]]) -> list[GroupSummary]:
    declared = header.get("groups") or {}
    order = [name for name in declared if name in items]
    order += sorted(name for name in items if name not in declared)
    summaries = []
    for name in order:
        info = declared.get(name)
        if not isinstance(info, dict):
            info = {}
        label = str(info.get("label") or ("Controls" if name == CONTROL_GROUP else name))
        status, method = group_status(items[name])
        summaries.append(GroupSummary(name, label, status, method, group_line(label, items[name])))
    return summaries


def _vantage(ctx: RunContext, tried: set[str], detail: bool = True) -> dict:
    if not detail:
        notes: list[str] = []
    else:
        notes = vantage_notes(ctx.health, tried, ctx.families_ok)
        for failed in ctx.rounds.failed_rounds():
            notes.append(
                f"no control measurement of {failed.describe()} succeeded: the vantage looked "
                "offline then, so failures measured around then are inconclusive"
            )
    return {
        "healthy": ctx.healthy,
        "control_resolver_ok": ctx.control_resolver_ok,
        "control_endpoints_ok": ctx.control_endpoints_ok,
        "notes": notes,
    }


__all__ = [
    "GroupSummary",
    "RunAnalysis",
    "Verdict",
    "analyse",
    "check_records",
    "run_metadata",
    "STATUSES",
    "METHODS",
]
