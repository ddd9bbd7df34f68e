"""Throttling from `throughput` records (issue 13): is a target's download cut to a fraction?

Rules:
- A target's transfer is compared with a reference measured the same way: first the control
  SNI's download of the same object on the same ip:port in the same attempt (`sequence: before`),
  then the run's control domains' downloads (`control_rate`: the median rate of every working
  control-domain transfer in the run). Only transfers that worked with an HTTP 2xx status count.
- One address in one attempt gives a sign:
  - throttled, method `sni`: the target's rate is below `THRESHOLD` (1/4) of the control SNI's
    on the same address, and the target's transfer took at least `MIN_SECONDS` (an object that
    arrives within a second is not throttled in any sense a user notices);
  - throttled, method `ip`: the target and the control SNI on that address are about as fast as
    each other but both below `THRESHOLD` of the control domains' rate (and the target took
    `MIN_SECONDS`): the address, not the name, is slowed;
  - ok: anything else with a reference, in particular slow-but-equal (a slow link slows the
    control SNI and the control domains as much as the target);
  - unknown: no usable target transfer, or no reference at all.
- An attempt is throttled when one of its addresses is; the layer is `throttled` when at least
  two thirds of its judged attempts are (as `verdict.majority`), else `ok` when any attempt was
  judged, else `inconclusive` (which never changes a target's verdict). The target's verdict is
  `throttled` only when its other layers say it works (`verdict.judge_target`).
- Layer score (the timeline's series): the median over judged attempts of each attempt's lowest
  rate ratio, mapped to [0, 1] by `ratio_score`: 0 at a ratio of 1/2 or more, 1 at 1/4 or less,
  linear in log2 between; so the timeline's CUSUM sees 0 for equal speeds and 1 for a throttle.
- Pure: stored records in, words and numbers out.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field

from netprobe.analysis.common import attempt_of
from netprobe.model.failures import SSL_INVALID_HOSTNAME
from netprobe.model.records import SEQUENCE, SEQUENCE_BEFORE, THROUGHPUT
from netprobe.model.target_ids import endpoint_label
from netprobe.model.vocabulary import (
    INCONCLUSIVE,
    IP_METHOD,
    OK,
    ROLE_CONTROL,
    ROLE_TARGET,
    SNI_METHOD,
    THROTTLED,
    UNKNOWN,
)

THRESHOLD = 0.25  # a target slower than this fraction of its reference is throttled
MIN_SECONDS = 1.0  # ... if its transfer also took at least this long
SCORE_FLOOR = 0.5  # ratios at or above this score 0 on the timeline


@dataclass(frozen=True, slots=True)
class RateSign:
    kind: str  # THROTTLED | OK | UNKNOWN
    ratio: float | None = None
    method: str | None = None
    detail: str = ""


@dataclass(slots=True)
class ThroughputLayer:
    status: str
    method: str | None = None
    score: float | None = None
    evidence: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def usable(record: dict) -> bool:
    """A transfer whose rate means something: it worked, with an HTTP 2xx answer."""
    status = record.get("http_status")
    rate = record.get("rate")
    return (
        record.get("failure") is None
        and isinstance(status, int)
        and 200 <= status < 300
        and isinstance(rate, int | float)
        and rate > 0
    )


def control_rate(records: Iterable[dict]) -> float | None:
    """The median rate of the run's working control-domain transfers (their own SNI)."""
    rates = [
        float(r["rate"])
        for r in records
        if r.get("type") == THROUGHPUT
        and r.get("role") == ROLE_CONTROL
        and r.get("sni_role") == ROLE_TARGET
        and usable(r)
    ]
    return statistics.median(rates) if rates else None


def rate_text(rate: float) -> str:
    """A rate in the words a report uses: bytes per second as kB/s or MB/s (decimal)."""
    if rate >= 1e6:
        return f"{rate / 1e6:.1f} MB/s"
    return f"{rate / 1e3:.1f} kB/s"


def ratio_score(ratio: float) -> float:
    """The timeline's score of a rate ratio (see the module rules)."""
    if ratio >= SCORE_FLOOR:
        return 0.0
    if ratio <= THRESHOLD:
        return 1.0
    return round(math.log2(SCORE_FLOOR / ratio) / math.log2(SCORE_FLOOR / THRESHOLD), 4)


def address_sign(target: dict | None, before: dict | None, reference: float | None) -> RateSign:
    """The sign of one ip:port in one attempt (see the module rules)."""
    if target is None:
        return RateSign(UNKNOWN)
    where = endpoint_label(str(target.get("ip")), target.get("port"))
    name = target.get("server_name")
    if not usable(target):
        failure = target.get("failure") or f"HTTP {target.get('http_status')}"
        if failure == SSL_INVALID_HOSTNAME:
            failure = "certificate for another name"
        return RateSign(UNKNOWN, detail=f"{where}: the download of {name} failed ({failure})")
    rate = float(target["rate"])
    duration = target.get("duration")
    slow = isinstance(duration, int | float) and duration >= MIN_SECONDS
    said = f"{where}: {name} {rate_text(rate)}"
    if before is not None and usable(before):
        other = float(before["rate"])
        ratio = rate / other
        versus = f"{said} vs control SNI {before.get('server_name')} {rate_text(other)}"
        if ratio < THRESHOLD and slow:
            return RateSign(
                THROTTLED, ratio, SNI_METHOD,
                f"{versus} on the same address (ratio {ratio:.2g} < {THRESHOLD:g}): "
                "throttled by SNI",
            )  # fmt: skip
        if reference is not None and ratio >= THRESHOLD and slow:
            to_controls = rate / reference
            control_sni_ratio = other / reference
            if to_controls < THRESHOLD and control_sni_ratio < THRESHOLD:
                return RateSign(
                    THROTTLED, to_controls, IP_METHOD,
                    f"{versus} on the same address, both below {THRESHOLD:g} of the control "
                    f"domains' {rate_text(reference)} (ratio {to_controls:.2g}): the address "
                    "is throttled",
                )  # fmt: skip
        return RateSign(OK, ratio, None, f"{versus} on the same address (ratio {ratio:.2f})")
    if reference is not None:
        ratio = rate / reference
        text = f"{said} vs the control domains' {rate_text(reference)} (ratio {ratio:.2f})"
        if ratio < THRESHOLD and slow:
            text += "; no control SNI on this address to tell a throttle from a slow path"
        return RateSign(OK, ratio, None, text)
    return RateSign(UNKNOWN, detail=f"{said}; nothing to compare with")


def judge_throughput(
    records: list[dict], reference: float | None, detail: bool = True
) -> ThroughputLayer | None:
    """The throughput layer of one target, from its `throughput` records; None without any."""
    if not records:
        return None
    pairs: dict[tuple[int, str, object], dict[str, dict]] = {}
    for record in records:
        key = (attempt_of(record), str(record.get("ip")), record.get("port"))
        slot = "before" if record.get(SEQUENCE) == SEQUENCE_BEFORE else "target"
        pairs.setdefault(key, {})[slot] = record
    by_attempt: dict[int, list[RateSign]] = {}
    for (attempt, _ip, _port), pair in sorted(pairs.items()):
        sign = address_sign(pair.get("target"), pair.get("before"), reference)
        by_attempt.setdefault(attempt, []).append(sign)
    judged: list[RateSign] = []  # the deciding sign of each judged attempt
    for signs in by_attempt.values():
        throttled = [s for s in signs if s.kind == THROTTLED]
        rated = [s for s in signs if s.ratio is not None]
        if throttled:
            judged.append(min(throttled, key=lambda s: s.ratio or 0.0))
        elif rated:
            judged.append(min(rated, key=lambda s: s.ratio or 0.0))
    total = len(judged)
    count = sum(1 for s in judged if s.kind == THROTTLED)
    if not total:
        layer = ThroughputLayer(INCONCLUSIVE)
    elif 3 * count >= 2 * total:
        methods = [s.method for s in judged if s.kind == THROTTLED]
        method = SNI_METHOD if methods.count(SNI_METHOD) >= methods.count(IP_METHOD) else IP_METHOD
        layer = ThroughputLayer(THROTTLED, method)
    else:
        layer = ThroughputLayer(OK)
    if total:
        ratios = [s.ratio for s in judged if s.ratio is not None]
        layer.score = ratio_score(statistics.median(ratios))
    if not detail:
        return layer
    seen: dict[str, set[int]] = {}
    for attempt, signs in by_attempt.items():
        for sign in signs:
            if sign.detail:
                seen.setdefault(sign.detail, set()).add(attempt)
    attempts = len(by_attempt)
    layer.evidence = [
        f"{THROUGHPUT}: {text}"
        + (f" [{len(seen[text])}/{attempts} attempts]" if attempts > 1 else "")
        for text in sorted(seen)
    ]
    if layer.status == OK and count:
        layer.notes.append(
            f"{THROUGHPUT}: {count}/{total} attempts were throttled; the others were not, "
            "so not a throttle"
        )
    return layer
