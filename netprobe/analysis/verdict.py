"""From per-attempt signs to one verdict per target.

Rules:
- Repeats: a layer is `blocked` when at least two thirds of its attempts show a blocking sign
  (so 1/1, 2/2, 2/3, 3/4...); `down` likewise; otherwise `ok` if any attempt worked (a lone timeout
  among successes becomes a note), else `inconclusive`. The layer score is the fraction of attempts
  with a blocking sign, None when no attempt could be judged.
- Target status: the first blocked layer in client order (dns, tcp -> `ip`, tls) gives
  `blocked` and its method; else any `down` layer gives `down`; else the deepest layer with data
  decides `ok` or `inconclusive`. An unhealthy vantage point makes everything `inconclusive`.
- "Slow": the deciding layer worked, but its median success took >= 1 s and >= 5x the median of
  the same kind of control measurement. Slow-but-working stays `ok`, with a note.
- Re-probes are folded into their step before any of this (`confirm`); a failure they out-voted
  leaves a note ("2/3 attempts worked"), never a blocking sign.
- HTTP (`http`, issue 13): an evidence-only layer, there only when the target has http
  records; it can make a target blocked, never down, and never decides ok/inconclusive.
  Evidence lines that name a blockpage/sinkhole fingerprint come first.
- Throttling (issue 13, `analysis.throughput`): a target whose layers all work but whose
  `throughput` layer is `throttled` is `throttled` with that layer's method (sni or ip); the
  throughput layer never makes a target blocked, down or inconclusive.
- Injection (`dns.silent_signs`): a reply injected on the path to an address that runs no DNS
  server makes the dns layer `blocked` (score 1.0) whatever the attempts of the probe resolvers
  showed: it is not a vote of one attempt but a fact about the path for this name.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field

from netprobe.analysis.common import AttemptSigns, Sign, majority_method, phrase, split_by_type
from netprobe.analysis.confirm import outvoted_notes
from netprobe.analysis.connect import combine_reachability, tcp_only_kinds, tcp_signs, tls_signs
from netprobe.analysis.context import RunContext
from netprobe.analysis.dns import combine_dns, dns_signs, silent_signs
from netprobe.analysis.health import unhealthy_reason
from netprobe.analysis.http import (
    EVIDENCE_ONLY_LAYERS,
    combine_http,
    fingerprint_lines_first,
    http_signs,
)
from netprobe.analysis.mtproto import combine_mtproto, mtproto_signs
from netprobe.analysis.throughput import judge_throughput
from netprobe.model.vocabulary import (
    BLOCKED,
    DNS_LAYER,
    DNS_METHOD,
    DOWN,
    HTTP_LAYER,
    INCONCLUSIVE,
    MTPROTO_LAYER,
    NEUTRAL,
    NOT_APPLICABLE,
    OK,
    SINGLE_METHOD_LAYER,
    TCP_LAYER,
    THROTTLED,
    THROUGHPUT_LAYER,
    TLS_LAYER,
    UNKNOWN,
)

SLOW_SECONDS = 1.0
SLOW_FACTOR = 5.0
_KIND_ORDER = {BLOCKED: 0, DOWN: 1, UNKNOWN: 2, OK: 3, NEUTRAL: 4}


@dataclass(slots=True)
class LayerResult:
    name: str
    status: str = NOT_APPLICABLE
    method: str | None = None
    score: float | None = None
    evidence: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    deciding: list[Sign] = field(default_factory=list)  # the per-attempt signs that decided


def majority(count: int, total: int) -> bool:
    return total > 0 and 3 * count >= 2 * total


def layer_outcome(kinds: list[str]) -> tuple[str, float | None]:
    """The repeats rule (module docstring): a layer's status and score from the kinds of its
    attempts' signs (at least one)."""
    total = len(kinds)
    blocked, down, ok = kinds.count(BLOCKED), kinds.count(DOWN), kinds.count(OK)
    if majority(blocked, total):
        status = BLOCKED
    elif majority(down, total):
        status = DOWN
    elif ok:
        status = OK
    else:
        status = INCONCLUSIVE
    return status, (round(blocked / total, 4) if blocked + down + ok else None)


def aggregate_layer(
    name: str, signs: AttemptSigns, combine, ctx: RunContext, detail: bool = True
) -> LayerResult:
    """Status, method and score of one layer; with `detail`, also its evidence and notes."""
    result = LayerResult(name)
    if not signs:
        return result
    if len(signs) == 1:  # one attempt (or one control round)
        per_attempt = [combine(*signs.values())]
    else:
        per_attempt = [combine(signs[attempt]) for attempt in sorted(signs)]
    total = len(per_attempt)
    kinds = [sign.kind for sign in per_attempt]
    status, score = layer_outcome(kinds)
    result.status, result.score = status, score
    if status == INCONCLUSIVE:
        result.deciding = per_attempt
    else:  # blocked, down or ok: the attempts that showed it
        result.deciding = [s for s in per_attempt if s.kind == status]
    if status == BLOCKED:
        result.method = SINGLE_METHOD_LAYER.get(name) or majority_method(
            [s.method for s in result.deciding]
        )
    if not detail:
        return result

    ok = kinds.count(OK)
    failing = [s for s in per_attempt if s.kind in (BLOCKED, DOWN, UNKNOWN)]
    if result.status == OK and failing:
        words = Counter(phrase(s.failure) if s.failure else s.kind for s in failing)
        failed = ", ".join(f"{w}" for w in sorted(words))
        result.notes.append(
            f"{name}: {len(failing)}/{total} attempts failed ({failed}); the others worked, so not a block"
        )
    if result.status == BLOCKED and ok:
        result.notes.append(f"{name}: {ok}/{total} attempts worked")
    result.evidence = _evidence(name, signs, total)
    return result


def _evidence(name: str, signs: AttemptSigns, total: int) -> list[str]:
    seen: dict[tuple[str, str], set[int]] = {}
    for attempt, items in signs.items():
        for sign in items:
            seen.setdefault((sign.kind, sign.detail), set()).add(attempt)
    lines = []
    for kind, detail in sorted(seen, key=lambda kd: (_KIND_ORDER.get(kd[0], 9), kd[1])):
        attempts = len(seen[(kind, detail)])
        suffix = f" [{attempts}/{total} attempts]" if total > 1 else ""
        lines.append(f"{name}: {detail}{suffix}")
    return lines


def slow_note(layer: LayerResult, record_type: str, ctx: RunContext) -> str | None:
    seconds = [s.seconds for s in layer.deciding if s.kind == OK and s.seconds is not None]
    if layer.status != OK or not seconds:
        return None
    median = statistics.median(seconds)
    control = ctx.control_median.get(record_type)
    if median < SLOW_SECONDS or (control is not None and median < SLOW_FACTOR * control):
        return None
    versus = f" (controls: {control:.2f} s)" if control is not None else ""
    return f"slow: {layer.name} takes {median:.2f} s (median){versus}; working, so not a block"


def _apply_silent(layer: LayerResult, signs: list[Sign], detail: bool) -> None:
    """Injection evidence from silent lookups (see the module rules), in place."""
    if not signs:
        return
    injected = [s for s in signs if s.kind == BLOCKED]
    if injected:
        layer.status, layer.method, layer.score = BLOCKED, DNS_METHOD, 1.0
        layer.deciding = injected
    if not detail:
        return
    lines = sorted({f"{layer.name}: {s.detail}" for s in injected})
    layer.evidence = lines + [line for line in layer.evidence if line not in lines]
    layer.notes += sorted({f"{layer.name}: {s.detail}" for s in signs if s.kind != BLOCKED})


_NONE: list[dict] = []  # the records of an absent type (never changed)
_CLIENT_LAYERS = frozenset({DNS_LAYER, TCP_LAYER, TLS_LAYER})


def _other_layers(
    layers: dict[str, LayerResult],
    split: dict[str, list[dict]],
    ctx: RunContext,
    group: str,
    detail: bool,
) -> None:
    """The layers after dns, tcp and tls, in place: mtproto, http, throughput."""
    if split.get(MTPROTO_LAYER):  # issue 13 (analysis/mtproto.py): only DC endpoints with attempts
        layers[MTPROTO_LAYER] = aggregate_layer(
            MTPROTO_LAYER, mtproto_signs(split[MTPROTO_LAYER], ctx), combine_mtproto, ctx, detail
        )
    if split.get(HTTP_LAYER):  # issue 13: evidence only, present only with http records
        layers[HTTP_LAYER] = aggregate_layer(
            HTTP_LAYER, http_signs(split[HTTP_LAYER], ctx, group), combine_http, ctx, detail
        )
    rates = judge_throughput(
        split.get(THROUGHPUT_LAYER, _NONE), ctx.throughput_control_rate, detail
    )
    if rates is not None:  # only targets with downloads have the layer (old files keep theirs)
        layers[THROUGHPUT_LAYER] = LayerResult(
            THROUGHPUT_LAYER, rates.status, rates.method, rates.score, rates.evidence, rates.notes
        )


def _judge_tcp_only(tcp: list[dict], ctx: RunContext) -> TargetJudgement | None:
    """`judge_target` without detail of a target with tcp records only (most endpoints), at a
    healthy vantage: the same statuses, methods and scores, from the kinds of its signs alone
    (`connect.tcp_only_kinds`: no `Sign`s, no words; the layer keeps no deciding signs, which
    only the words read). Its only layer with data decides: blocked (and its method) or down or,
    being the deepest, ok or inconclusive. None without any attempt (the general path)."""
    kinds = tcp_only_kinds(tcp, ctx)
    if not kinds:
        return None
    status, score = layer_outcome(kinds)
    method = SINGLE_METHOD_LAYER[TCP_LAYER] if status == BLOCKED else None
    layer = LayerResult(TCP_LAYER, status, method, score)
    layers = {
        DNS_LAYER: LayerResult(DNS_LAYER),
        TCP_LAYER: layer,
        TLS_LAYER: LayerResult(TLS_LAYER),
    }
    return TargetJudgement(status, method, layers, [], [])


@dataclass(slots=True)
class TargetJudgement:
    status: str
    method: str | None
    layers: dict[str, LayerResult]
    evidence: list[str]
    notes: list[str]


def judge_target(
    records: list[dict], ctx: RunContext, group: str, detail: bool = True
) -> TargetJudgement:
    """One target's verdict. Without `detail` no evidence is written (the verdict is the same)."""
    split = split_by_type(records)  # a layer is named after its record type; absent: no key
    if not detail and len(split) == 1 and TCP_LAYER in split and ctx.healthy:
        lean = _judge_tcp_only(split[TCP_LAYER], ctx)
        if lean is not None:
            return lean
    get = split.get
    dns, tcp, tls = get(DNS_LAYER, _NONE), get(TCP_LAYER, _NONE), get(TLS_LAYER, _NONE)
    # A layer without records is not applicable: the sign functions are not even called (most
    # targets of a run are endpoints with tcp records only).
    layers = {
        DNS_LAYER: aggregate_layer(
            DNS_LAYER, dns_signs(dns, ctx, group, detail), combine_dns, ctx, detail
        )
        if dns
        else LayerResult(DNS_LAYER),
        TCP_LAYER: aggregate_layer(
            TCP_LAYER, tcp_signs(tcp, tls, ctx, group, detail), combine_reachability, ctx, detail
        )
        if tcp or tls
        else LayerResult(TCP_LAYER),
        TLS_LAYER: aggregate_layer(
            TLS_LAYER, tls_signs(tls, ctx, group, detail), combine_reachability, ctx, detail
        )
        if tls
        else LayerResult(TLS_LAYER),
    }
    if ctx.has_silent and dns:
        _apply_silent(layers[DNS_LAYER], silent_signs(dns, ctx, group), detail)
    if not split.keys() <= _CLIENT_LAYERS:
        _other_layers(layers, split, ctx, group, detail)
    if detail:
        evidence = [line for layer in layers.values() for line in layer.evidence]
        notes = [note for layer in layers.values() for note in layer.notes]
        notes += outvoted_notes(records)
    else:  # no layer wrote any (see aggregate_layer): the lists of this judgement alone
        evidence, notes = [], []

    if not ctx.healthy:
        for layer in layers.values():
            if layer.status != NOT_APPLICABLE:
                layer.status, layer.method, layer.score = INCONCLUSIVE, None, None
        why = unhealthy_reason(ctx.health)
        return TargetJudgement(
            INCONCLUSIVE, None, layers, evidence, [f"vantage unhealthy: {why}", *notes]
        )

    statuses = [layer.status for layer in layers.values()]
    blocked = (
        [layer for layer in layers.values() if layer.status == BLOCKED]
        if BLOCKED in statuses
        else []
    )
    if blocked:
        first = blocked[0]
        for other in blocked[1:]:
            notes.append(f"also blocked at the {other.name} layer ({other.method})")
        if first.name == DNS_LAYER and layers[TLS_LAYER].status == OK:
            notes.append("reachable through the control resolver's addresses: a DNS-only block")
        # The deciding layer's evidence first: it is what a reader (and a table) shows first.
        evidence = first.evidence + [line for line in evidence if line not in first.evidence]
        evidence = fingerprint_lines_first(evidence)
        return TargetJudgement(BLOCKED, first.method, layers, evidence, notes)
    if DOWN in statuses:
        return TargetJudgement(DOWN, None, layers, evidence, notes)
    # `layers` is in LAYERS order (the client's): the deepest layer with data decides.
    deepest = next(
        (
            layer
            for layer in reversed(layers.values())
            if layer.status != NOT_APPLICABLE
            and layer.name not in EVIDENCE_ONLY_LAYERS
            and layer.name != THROUGHPUT_LAYER
        ),
        None,
    )
    if deepest is None:
        return TargetJudgement(
            INCONCLUSIVE, None, layers, evidence, ["no measurements for this target", *notes]
        )
    if deepest.status == OK:
        rated = layers.get(THROUGHPUT_LAYER)
        if rated is not None and rated.status == THROTTLED:
            evidence = rated.evidence + [line for line in evidence if line not in rated.evidence]
            return TargetJudgement(THROTTLED, rated.method, layers, evidence, notes)
        note = slow_note(deepest, deepest.name, ctx) if detail else None
        if note:
            notes.append(note)
        return TargetJudgement(OK, None, layers, evidence, notes)
    return TargetJudgement(INCONCLUSIVE, None, layers, evidence, notes)
