"""One sentence per network of a timeline: which groups are blocked, by what, since when (pure).

Rules:
- `network_summary(network, wanted)` reads one built network of the timeline report (its
  `targets`, with `group`, `state`, `method` and `changes`, and its `group_labels`) and returns
  `{"line": ..., "groups": [...]}`; the report carries it as the network's `summary`, and the
  terminal, JSON and HTML views all print the same `line`.
- Groups come in label order of the header (`group_labels`), then any others by name; a target
  without a group is in group "other". A group is `blocked` when any of its targets is
  (`3 of 5 Telegram DCs blocked by ip ...` when not all are), else `ok` when any is ok, else
  `unknown` (no evidence).
- The onset of a blocked group is the earliest onset interval among its blocked targets' current
  blocks (the last change to blocked: last run seen in the old state, first in the new), shown
  `2025-05-26 03:00-04:00 UTC`; a block already there when the data starts says "since the start
  of the data (first sample ...)". The method is the one most of its blocked targets name.
- A network without samples says why (`empty_reason`): the --target it did not measure, or no run
  with a working control.
"""

from __future__ import annotations

from collections import Counter

from netprobe.model.vocabulary import BLOCKED, OK, UNKNOWN

OTHER_GROUP = "other"
NO_CONTROLS = (
    "no target has a sample: no run of this network had a working control (resolver or "
    "endpoint), so nothing here can be judged."
)


def empty_reason(network: dict, wanted: str | None) -> str | None:
    """Why a network has no target with a sample (None when it has some)."""
    if network.get("targets"):
        return None
    if network.get("healthy_runs") and wanted is not None:
        return f"no run of this network measured {wanted} (--target)."
    return NO_CONTROLS


def _minute(iso_time: str) -> str:
    return iso_time[:16].replace("T", " ")


def onset_text(last_before: str | None, first_after: str) -> str:
    """`2025-05-26 03:00-04:00 UTC`, `2025-05-25 22:00 to 2025-05-26 04:00 UTC`."""
    if last_before is None:
        return f"since the start of the data (first sample {_minute(first_after)} UTC)"
    start, end = _minute(last_before), _minute(first_after)
    if start[:10] == end[:10]:
        return f"from {start}-{end[11:]} UTC"
    return f"from {start} to {end} UTC"


def _current_block(target: dict) -> dict | None:
    return next((c for c in reversed(target.get("changes") or []) if c.get("to") == BLOCKED), None)


def _group_summary(name: str, label: str, targets: list[dict]) -> dict:
    blocked = [t for t in targets if t.get("state") == BLOCKED]
    summary: dict = {
        "group": name,
        "label": label,
        "targets": len(targets),
        "blocked": len(blocked),
        "state": BLOCKED
        if blocked
        else OK
        if any(t.get("state") == OK for t in targets)
        else UNKNOWN,
        "method": None,
        "onset": None,
    }
    if not blocked:
        summary["text"] = f"{label} {'ok' if summary['state'] == OK else 'no evidence'}"
        return summary
    methods = Counter(t.get("method") for t in blocked if t.get("method"))
    method = methods.most_common(1)[0][0] if methods else None
    onsets = [c for c in (_current_block(t) for t in blocked) if c is not None]
    onset = min(
        onsets, key=lambda c: (c.get("first_after") or "", c.get("last_before") or ""), default=None
    )
    count = label if len(blocked) == len(targets) else f"{len(blocked)} of {len(targets)} {label}"
    text = f"{count} blocked" + (f" by {method}" if method else "")
    if onset is not None and onset.get("first_after"):
        text += " " + onset_text(
            None if onset.get("initial") else onset.get("last_before"), onset["first_after"]
        )
        summary["onset"] = {
            "last_before": onset.get("last_before"),
            "first_after": onset["first_after"],
        }
    summary.update(method=method, text=text)
    return summary


def network_summary(network: dict, wanted: str | None = None) -> dict:
    """The network's sentence and its per-group parts (see the module rules)."""
    name = f"{network.get('probe_asn')} {network.get('vantage')}"
    reason = empty_reason(network, wanted)
    if reason is not None:
        return {"line": f"{name}: {reason}", "groups": []}
    labels: dict[str, str] = network.get("group_labels") or {}
    members: dict[str, list[dict]] = {}
    for target in network["targets"]:
        members.setdefault(target.get("group") or OTHER_GROUP, []).append(target)
    order = [g for g in labels if g in members] + sorted(g for g in members if g not in labels)
    groups = [_group_summary(g, labels.get(g, g), members[g]) for g in order]
    return {"line": f"{name}: " + "; ".join(g["text"] for g in groups), "groups": groups}
