"""Compare two analysed runs: which targets changed status or method, and what else moved.

Rules:
- Pure: works on two `RunAnalysis` objects (and their records); never reads files or the network.
- Targets are matched by their stable `target_id`. Change kinds, decided from (status, method):
  `newly_blocked` (-> blocked from anything else), `unblocked` (blocked -> ok),
  `method_changed` (blocked -> blocked, other method), `became_down` (-> down),
  `recovered` (down or inconclusive -> ok), `became_inconclusive` (-> inconclusive),
  `added` / `removed` (target only in the new / old run); issue 13: `newly_throttled`
  (-> throttled from anything else), `unthrottled` (throttled -> ok); throttled -> throttled by
  another method is `method_changed`.
- `status_changed()` is true when any change other than added/removed exists: it drives exit 1.
- A run whose vantage point was unhealthy (no control measurement succeeded, `analysis.health`)
  judged nothing: every verdict is inconclusive. Such runs are listed in `unjudged` (which run,
  its vantage, why); `judged()` is false then, and the CLI exits with its own code rather than
  "no changes" (or "everything became inconclusive").
- Notable changes that are not verdicts go to `notable`: DNS answers that moved, certificate
  fingerprints that changed, resolvers added or removed, a layer that changed while the verdict held.
- Warnings (different vantage point, target list or software version) never stop the comparison.
- Output is deterministic: changes sorted by target id, notable by (kind, target, key).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from netprobe.analysis import RunAnalysis, Verdict, run_metadata
from netprobe.analysis.common import answer_ips
from netprobe.analysis.health import unhealthy_reason, vantage_health
from netprobe.model.records import DNS, TCP, TLS
from netprobe.model.target_ids import endpoint_label
from netprobe.model.vocabulary import (
    ADDED,
    BECAME_DOWN,
    BECAME_INCONCLUSIVE,
    BLOCKED,
    CHANGE_KINDS,
    DOWN,
    INCONCLUSIVE,
    METHOD_CHANGED,
    NEWLY_BLOCKED,
    NEWLY_THROTTLED,
    RECOVERED,
    REMOVED,
    ROLE_CONTROL,
    ROLE_TARGET,
    THROTTLED,
    UNBLOCKED,
    UNTHROTTLED,
)

LIST_ONLY_KINDS = frozenset({ADDED, REMOVED})


@dataclass
class Change:
    target: str
    kind: str
    before: dict | None
    after: dict | None
    evidence: dict

    def to_dict(self) -> dict:
        return {
            "target": self.target,
            "kind": self.kind,
            "before": self.before,
            "after": self.after,
            "evidence": self.evidence,
        }


@dataclass
class RunDiff:
    old: dict
    new: dict
    changes: list[Change]
    notable: list[dict]
    warnings: list[str]
    summary: dict[str, int]
    unjudged: list[dict] = field(default_factory=list)  # {"run": "old"|"new", "vantage", "reason"}

    def status_changed(self) -> bool:
        return any(change.kind not in LIST_ONLY_KINDS for change in self.changes)

    def judged(self) -> bool:
        """False when either run's vantage was unhealthy, so no verdict of it means anything."""
        return not self.unjudged

    def to_dict(self) -> dict:
        return {
            "old": self.old,
            "new": self.new,
            "status_changed": self.status_changed(),
            "summary": dict(self.summary),
            "changes": [change.to_dict() for change in self.changes],
            "notable": list(self.notable),
            "warnings": list(self.warnings),
            "judged": self.judged(),
            "unjudged": [dict(item) for item in self.unjudged],
        }


def change_kind(before: Verdict | None, after: Verdict | None) -> str | None:
    """The kind of change between two verdicts of one target, or None if nothing changed."""
    if before is None:
        return ADDED if after is not None else None
    if after is None:
        return REMOVED
    if (before.status, before.method) == (after.status, after.method):
        return None
    if after.status == BLOCKED:
        return METHOD_CHANGED if before.status == BLOCKED else NEWLY_BLOCKED
    if after.status == THROTTLED:
        return METHOD_CHANGED if before.status == THROTTLED else NEWLY_THROTTLED
    if after.status == DOWN:
        return BECAME_DOWN
    if after.status == INCONCLUSIVE:
        return BECAME_INCONCLUSIVE
    # after is ok
    if before.status == THROTTLED:
        return UNTHROTTLED
    return UNBLOCKED if before.status == BLOCKED else RECOVERED


def _state(verdict: Verdict | None) -> dict | None:
    return None if verdict is None else {"status": verdict.status, "method": verdict.method}


def diff_reads(record: dict) -> bool:
    """Whether `diff_runs` reads this measurement record of a run, once the run is analysed:
    DNS answers and TLS certificates (what moved), and the control records (`vantage_health`
    of an unjudged run). A reader that holds two big runs keeps only these."""
    kind = record.get("type")
    return kind == DNS or kind == TLS or (kind == TCP and record.get("role") == ROLE_CONTROL)


def diff_runs(
    old: RunAnalysis,
    new: RunAnalysis,
    old_records: Iterable[dict] | None = None,
    new_records: Iterable[dict] | None = None,
) -> RunDiff:
    """Compare two runs. Records default to the ones kept in each `RunAnalysis`. Pure."""
    old_records = list(old.records if old_records is None else old_records)
    new_records = list(new.records if new_records is None else new_records)
    changes: list[Change] = []
    notable: list[dict] = []
    for target in sorted(set(old.verdicts) | set(new.verdicts)):
        before, after = old.verdicts.get(target), new.verdicts.get(target)
        kind = change_kind(before, after)
        if kind is not None:
            changes.append(
                Change(
                    target=target,
                    kind=kind,
                    before=_state(before),
                    after=_state(after),
                    evidence={
                        "before": list(before.evidence) if before else [],
                        "after": list(after.evidence) if after else [],
                    },
                )
            )
        elif before is not None and after is not None and before.layers != after.layers:
            notable.append(
                {
                    "kind": "layers_changed",
                    "target": target,
                    "before": before.layers,
                    "after": after.layers,
                }
            )
    notable += _dns_moves(old_records, new_records)
    notable += _certificate_changes(old_records, new_records)
    notable += _resolver_changes(old.header, new.header)
    notable.sort(key=lambda n: (n["kind"], n.get("target", ""), str(n.get("key", ""))))

    counts = Counter(change.kind for change in changes)
    return RunDiff(
        old=run_metadata(old.header),
        new=run_metadata(new.header),
        changes=changes,
        notable=notable,
        warnings=run_warnings(old.header, new.header),
        summary={kind: counts.get(kind, 0) for kind in CHANGE_KINDS},
        unjudged=[
            item for item in (_unjudged("old", old), _unjudged("new", new)) if item is not None
        ],
    )


def _unjudged(which: str, run: RunAnalysis) -> dict | None:
    """Why `run` judged nothing (its vantage was unhealthy), or None when it could judge."""
    if run.vantage.get("healthy"):
        return None
    health = vantage_health(run.records)
    why = unhealthy_reason(health)
    if health.has_controls:
        why += " (the vantage point looked offline or fully filtered)"
    return {
        "run": which,
        "vantage": run.header.get("vantage"),
        "started_at": run.header.get("started_at"),
        "reason": f"{why}, so every verdict of this run is inconclusive",
    }


def unjudged_message(unjudged: list[dict]) -> str:
    """One sentence for people: which run(s) could not judge anything, and why."""
    which = " and ".join(f"the {item['run']} run" for item in unjudged)
    parts = "; ".join(
        f"{item['run']} ({item.get('vantage')}, started {item.get('started_at')}): {item['reason']}"
        for item in unjudged
    )
    return f"nothing could be judged in {which}, so this diff says nothing about blocking: {parts}"


def run_warnings(old: dict, new: dict) -> list[str]:
    warnings = []
    if old.get("vantage") != new.get("vantage"):
        warnings.append(
            f"different vantage points: {old.get('vantage')!r} vs {new.get('vantage')!r}"
        )
    if (old.get("probe_asn"), old.get("probe_cc")) != (new.get("probe_asn"), new.get("probe_cc")):
        warnings.append(
            f"different networks: {old.get('probe_asn')}/{old.get('probe_cc')} vs "
            f"{new.get('probe_asn')}/{new.get('probe_cc')}"
        )
    old_lists = _target_files(old)
    new_lists = _target_files(new)
    if old.get("target_list_name") != new.get("target_list_name") or old_lists != new_lists:
        warnings.append(
            "different target lists: "
            f"{old.get('target_list_name')} {sorted(old_lists)} vs {new.get('target_list_name')} {sorted(new_lists)}"
            "; targets only in one run are listed as added/removed"
        )
    if old.get("software_version") != new.get("software_version"):
        warnings.append(
            f"different software versions: {old.get('software_version')} vs {new.get('software_version')}"
        )
    return warnings


def _target_files(header: dict) -> set[str]:
    files = header.get("target_files") or []
    return {f"{f.get('name')}@{str(f.get('sha256'))[:12]}" for f in files if isinstance(f, dict)}


def _answer_sets(records: list[dict]) -> dict[tuple[str, str, str, str], set[str]]:
    sets: dict[tuple[str, str, str, str], set[str]] = defaultdict(set)
    for record in records:
        if record.get("type") != DNS or record.get("failure") is not None:
            continue
        key = (
            str(record.get("target_id")),
            str(record.get("resolver_address")),
            str(record.get("query_type")),
            str(record.get("hostname")),
        )
        sets[key].update(answer_ips(record.get("answers")))
    return sets


def _dns_moves(old_records: list[dict], new_records: list[dict]) -> list[dict]:
    old_sets, new_sets = _answer_sets(old_records), _answer_sets(new_records)
    moves = []
    for key in sorted(set(old_sets) & set(new_sets)):
        if old_sets[key] != new_sets[key]:
            target, resolver, qtype, _host = key
            moves.append(
                {
                    "kind": "dns_answers_changed",
                    "target": target,
                    "key": f"{resolver} {qtype}",
                    "before": sorted(old_sets[key]),
                    "after": sorted(new_sets[key]),
                }
            )
    return moves


def _fingerprints(records: list[dict]) -> dict[tuple[str, str], set[str]]:
    prints: dict[tuple[str, str], set[str]] = defaultdict(set)
    for record in records:
        if record.get("type") != TLS or record.get("sni_role") != ROLE_TARGET:
            continue
        certificates = record.get("peer_certificates") or []
        if certificates and isinstance(certificates[0], dict) and certificates[0].get("sha256"):
            address = endpoint_label(str(record.get("ip")), record.get("port"))
            where = f"{address} SNI {record.get('server_name')}"
            prints[(str(record.get("target_id")), where)].add(str(certificates[0]["sha256"]))
    return prints


def _certificate_changes(old_records: list[dict], new_records: list[dict]) -> list[dict]:
    old_prints, new_prints = _fingerprints(old_records), _fingerprints(new_records)
    found = []
    for key in sorted(set(old_prints) & set(new_prints)):
        if old_prints[key] != new_prints[key]:
            found.append(
                {
                    "kind": "certificate_changed",
                    "target": key[0],
                    "key": key[1],
                    "before": sorted(old_prints[key]),
                    "after": sorted(new_prints[key]),
                }
            )
    return found


def _resolver_changes(old: dict, new: dict) -> list[dict]:
    found: list[dict] = []
    for name in ("resolvers", "control_resolvers"):
        before, after = (
            set(old.get(name) or []),
            set(new.get(name) or []),
        )
        for resolver in sorted(after - before):
            found.append({"kind": "resolver_added", "key": f"{name}: {resolver}"})
        for resolver in sorted(before - after):
            found.append({"kind": "resolver_removed", "key": f"{name}: {resolver}"})
    if old.get("system_resolver_ip") != new.get("system_resolver_ip"):
        found.append(
            {
                "kind": "system_resolver_changed",
                "key": "system_resolver_ip",
                "before": old.get("system_resolver_ip"),
                "after": new.get("system_resolver_ip"),
            }
        )
    return found
