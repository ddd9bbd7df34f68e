"""One human sentence per target group, e.g.
"DC endpoints: blocked by ip (6/6 time out on 80 and 443, 5222 open)".

Rules: a group is `blocked` if any of its targets is (the counts say how many), with the commonest
method; else `throttled` (issue 13) likewise; else `ok` if any target works; else `down` if any is down; else `inconclusive`.
Endpoint groups are described port by port, name groups name by name. Deterministic wording.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

from netprobe.analysis.common import majority_method
from netprobe.model.vocabulary import BLOCKED, DOWN, INCONCLUSIVE, OK, THROTTLED

MAX_NAMES = 3


@dataclass(slots=True)
class GroupItem:
    target_id: str
    name: str  # hostname or ip:port, for sentences
    port: int | None  # endpoints only
    status: str
    method: str | None
    failure_phrase: str | None  # commonest failure behind a blocked/down verdict


def group_status(items: list[GroupItem]) -> tuple[str, str | None]:
    statuses = Counter(item.status for item in items)
    if statuses[BLOCKED]:
        return BLOCKED, majority_method([i.method for i in items if i.status == BLOCKED])
    if statuses[THROTTLED]:
        return THROTTLED, majority_method([i.method for i in items if i.status == THROTTLED])
    if statuses[OK]:
        return OK, None
    if statuses[DOWN]:
        return DOWN, None
    return INCONCLUSIVE, None


def group_line(label: str, items: list[GroupItem]) -> str:
    status, method = group_status(items)
    head = f"{label}: {status}" + (f" by {method}" if method else "")
    if not items:
        return f"{label}: no targets measured"
    if all(item.port is not None for item in items) and status == BLOCKED:
        return f"{head} ({_by_port(items)})"
    return f"{head} ({_by_name(items)})"


def _by_port(items: list[GroupItem]) -> str:
    per_port: dict[int, list[GroupItem]] = defaultdict(list)
    for item in items:
        per_port[int(item.port or 0)].append(item)
    full: dict[tuple[int, str], list[int]] = defaultdict(list)
    parts_tail: list[str] = []
    open_ports: list[int] = []
    for port in sorted(per_port):
        port_items = per_port[port]
        total = len(port_items)
        blocked = [i for i in port_items if i.status == BLOCKED]
        if blocked:
            words = _commonest([i.failure_phrase or BLOCKED for i in blocked])
            if len(blocked) == total:
                full[(total, words)].append(port)
            else:
                parts_tail.append(f"{len(blocked)}/{total} {words} on {port}")
        elif all(i.status == OK for i in port_items):
            open_ports.append(port)
        else:
            states = Counter(i.status for i in port_items)
            parts_tail.append(f"{port} " + ", ".join(f"{n} {s}" for s, n in sorted(states.items())))
    parts = [f"{total}/{total} {words} on {_and(ports)}" for (total, words), ports in full.items()]
    parts += parts_tail
    if open_ports:
        parts.append(f"{_and(open_ports)} open")
    return ", ".join(parts)


def _by_name(items: list[GroupItem]) -> str:
    total = len(items)
    statuses = Counter(item.status for item in items)
    parts = []
    blocked = [i for i in items if i.status == BLOCKED]
    if blocked:
        methods = Counter(i.method for i in blocked)
        how = ", ".join(
            f"{n} by {m} ({_commonest([i.failure_phrase or str(m) for i in blocked if i.method == m])})"
            for m, n in sorted(methods.items(), key=lambda mn: (-mn[1], str(mn[0])))
        )
        parts.append(f"{len(blocked)}/{total} blocked: {how}")
    for status in (THROTTLED, OK, DOWN, INCONCLUSIVE):  # a status is its own word
        names = sorted(i.name for i in items if i.status == status)
        if not names:
            continue
        if not blocked and status == OK:
            parts.append(f"{len(names)}/{total} reachable")
        elif len(names) == total:
            parts.append(f"{total}/{total} {status}")
        else:
            shown = ", ".join(names[:MAX_NAMES]) + (
                f" +{len(names) - MAX_NAMES} more" if len(names) > MAX_NAMES else ""
            )
            parts.append(f"{status}: {shown}")
    del statuses
    return "; ".join(parts)


def _commonest(words: list[str]) -> str:
    counts = Counter(words)
    return min(counts, key=lambda w: (-counts[w], w))


def _and(ports: list[int]) -> str:
    texts = [str(p) for p in ports]
    return texts[0] if len(texts) == 1 else ", ".join(texts[:-1]) + " and " + texts[-1]
