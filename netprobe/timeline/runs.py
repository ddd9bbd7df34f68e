"""What the timeline keeps from one run: `RunSummary`, made from a header and its analysis.

Rules:
- Pure: a header dict and an `analysis.RunAnalysis` in, a `RunSummary` out; no records survive.
- Controls are not series of their own: they only decide the run's health (`healthy`), read from
  the analysis's vantage verdict. A layer with no evidence (score None) contributes no score.
- Times are POSIX seconds; `parse_time` takes ISO-8601 (Z or offset, naive = UTC), `iso` gives
  `YYYY-MM-DDTHH:MM:SSZ` back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from netprobe.model.vocabulary import ROLE_CONTROL, ROLE_TARGET

# Stand-ins for a header without them: runs with neither still group into one network.
DEFAULT_ASN = "AS0"
DEFAULT_VANTAGE = "unknown"


@dataclass(frozen=True)
class RunSummary:
    """What the timeline keeps from one run (no records)."""

    started_at: float  # POSIX seconds
    probe_asn: str
    vantage: str
    run_id: str
    healthy: bool
    scores: dict[tuple[str, str], float]  # (target_id, layer) -> score in [0, 1]
    methods: dict[str, str] = field(default_factory=dict)  # target_id -> verdict method
    # Targets measured but without any score (all layers without evidence, e.g. an offline run):
    # the timeline still knows them when checking `--target`.
    unscored: tuple[str, ...] = ()
    # The file it was read from (set by the reader, not cached): names a second copy of a run.
    source: str = field(default="", compare=False)
    # Each target's group (target_id -> group name) and each group's label from the header's
    # target lists (group -> label): the timeline groups its targets and words its summary.
    groups: dict[str, str] = field(default_factory=dict)
    group_labels: dict[str, str] = field(default_factory=dict)

    @property
    def network(self) -> tuple[str, str]:
        return (self.probe_asn, self.vantage)


def summary_from_analysis(header: dict, analysis: object) -> RunSummary:
    """Reduce a header + `analysis.RunAnalysis` to a `RunSummary` (pure)."""
    scores: dict[tuple[str, str], float] = {}
    methods: dict[str, str] = {}
    unscored: list[str] = []
    groups: dict[str, str] = {}
    for target_id, verdict in getattr(analysis, "verdicts", {}).items():
        if getattr(verdict, "role", ROLE_TARGET) == ROLE_CONTROL:
            continue  # controls gate the run (vantage health); they are not series of their own
        group = getattr(verdict, "group", None)
        if group:
            groups[target_id] = str(group)
        scored = False
        for layer, score in (getattr(verdict, "scores", None) or {}).items():
            if score is not None:
                scores[(target_id, layer)] = float(score)
                scored = True
        if not scored:
            unscored.append(target_id)
        method = getattr(verdict, "method", None)
        if method:
            methods[target_id] = method
    vantage_info = getattr(analysis, "vantage", None) or {}
    return RunSummary(
        started_at=parse_time(header["started_at"]),
        probe_asn=str(header.get("probe_asn") or DEFAULT_ASN),
        vantage=str(header.get("vantage") or DEFAULT_VANTAGE),
        run_id=str(header.get("run_id") or ""),
        healthy=bool(vantage_info.get("healthy", False)),
        scores=scores,
        methods=methods,
        unscored=tuple(sorted(unscored)),
        groups=groups,
        group_labels=_group_labels(header),
    )


def _group_labels(header: dict) -> dict[str, str]:
    declared = header.get("groups")
    if not isinstance(declared, dict):
        return {}
    return {
        str(name): str(info["label"])
        for name, info in declared.items()
        if isinstance(info, dict) and isinstance(info.get("label"), str) and info["label"]
    }


def parse_time(text: str) -> float:
    """ISO-8601 (Z or offset; naive = UTC) -> POSIX seconds. Raises ValueError."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def iso(seconds: float | None) -> str | None:
    """POSIX seconds -> `2025-05-26T01:07:31Z`; None stays None (an open interval end)."""
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
