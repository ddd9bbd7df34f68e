"""Sampled range addresses: one that does not answer may simply be unused (pure).

Rules:
- A range sample is an endpoint whose address lies in one of its group's declared `ranges`
  (the header's `groups[g].ranges`, written by `netprobe run`).
- If another sample of the same range connects in this run, the range is routed and not blocked
  as a whole: a failing sample is `inconclusive` (most likely an unused address), never `blocked`.
  Its scores become None, so a timeline sees no sample rather than a block.
- If no sample of a range connects while control endpoints do, the samples keep their `blocked`
  (ip) verdict, with a note that an unused range would look the same from one vantage point:
  compare with runs where it answered (`netprobe diff`, `netprobe timeline`).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from netprobe.analysis.common import parse_ip, parse_networks
from netprobe.analysis.verdict import TargetJudgement
from netprobe.model.target_ids import is_endpoint_id
from netprobe.model.vocabulary import BLOCKED, INCONCLUSIVE, IP_METHOD, OK, TCP_LAYER


def apply_range_rule(
    header: dict,
    judged: dict[str, TargetJudgement],
    by_target: dict[str, list[dict]],
) -> None:
    """Adjust the judgements of range samples in place (see the module rules)."""
    groups = header.get("groups") or {}
    members: dict[tuple[str, Any], list[str]] = {}
    for target_id in judged:
        if not is_endpoint_id(target_id):
            continue
        records = by_target[target_id]
        group = str(records[0].get("group") or "")
        info = groups.get(group)
        cidrs = info.get("ranges") if isinstance(info, dict) else None
        if not cidrs:
            continue  # not a range sample (most endpoints): no address to parse
        address = parse_ip(records[0].get("ip"))
        if address is None:
            continue
        network = _containing(address, parse_networks(cidrs))
        if network is not None:
            members.setdefault((group, network), []).append(target_id)

    for (_group, network), target_ids in members.items():
        connected = [t for t in target_ids if judged[t].layers[TCP_LAYER].status == OK]
        for target_id in target_ids:
            judgement = judged[target_id]
            if judgement.status != BLOCKED or judgement.method != IP_METHOD:
                continue
            if connected:
                judgement.status, judgement.method = INCONCLUSIVE, None
                for layer in judgement.layers.values():
                    if layer.status == BLOCKED:
                        layer.status, layer.score = INCONCLUSIVE, None
                judgement.notes.append(
                    f"sampled address in {network}: {len(connected)} other sample(s) of the range "
                    "connect, so the range is not blocked as a whole; this address is probably unused"
                )
            else:
                judgement.notes.append(
                    f"no sampled address in {network} connects ({len(target_ids)} tried) while "
                    "control endpoints do: the range looks blocked as a whole, though an unused "
                    "range would look the same; compare with runs where it answered"
                )


def _containing(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, networks: list
) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    for network in networks:
        if address.version == network.version and address in network:
            return network
    return None
