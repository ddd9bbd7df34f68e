"""MTProto signs of a DC endpoint: what each attempt's req_pq_multi over the three transports shows.

Rules (README.md ("MTProto probe") explains them to users):
- Judged per DC endpoint (ip:port) and attempt, never for all DCs at once: one blocked DC is
  reported as blocked even when the others work (ooni/probe#2466).
- The transports of one attempt, after confirmations are folded in (`confirm`):
  - every transport got a resPQ with our nonce -> `ok`;
  - a plain transport (intermediate, abridged) fails while obfuscated2, on the same address in
    the same attempt, gets a resPQ -> `blocked`, method `protocol`: TCP connects, the server
    speaks MTProto, and only the recognisable framing is cut;
  - every transport fails after TCP connected, while some other DC endpoint of the run got a
    resPQ over a plain transport (the run's MTProto control) -> `blocked`, method `protocol`
    (MTProto to this address is cut after the connect);
  - every transport fails and no DC endpoint answers MTProto anywhere in the run -> `unknown`
    (not a DC, or everything cut: nothing to compare with);
  - a failure measured while the vantage looked offline (`health`) -> `unknown`.
- A failed TCP connect leaves no mtproto records (the planner sends none): the tcp layer's `ip`
  verdict stands as before. Old files have no mtproto records: the layer is `n/a`.
- The words are what a researcher can quote: "DC 149.154.167.51:443: TCP connects, MTProto
  (intermediate) gets no reply in 5 s, obfuscated2 works: the protocol is blocked".
"""

from __future__ import annotations

from collections import defaultdict

from netprobe.analysis.common import AttemptSigns, Sign, attempt_of, duration, phrase
from netprobe.analysis.confirm import confirmed_phrase
from netprobe.analysis.context import RunContext
from netprobe.model.failures import MTPROTO_NO_REPLY, TIMEOUTS
from netprobe.model.target_ids import endpoint_label
from netprobe.model.vocabulary import (
    BLOCKED,
    MTPROTO_OBFUSCATED2,
    MTPROTO_PLAIN,
    MTPROTO_TRANSPORTS,
    OK,
    PROTOCOL_METHOD,
    UNKNOWN,
)

OBFUSCATED2 = MTPROTO_OBFUSCATED2
PLAIN = MTPROTO_PLAIN
ORDER = MTPROTO_TRANSPORTS


def mtproto_signs(records: list[dict], ctx: RunContext) -> AttemptSigns:
    """One sign per (ip, port, attempt) that has mtproto records."""
    if not records:
        return {}
    by_key: dict[tuple[str, int, int], dict[str, dict]] = defaultdict(dict)
    for record in records:
        key = (str(record.get("ip")), int(record.get("port") or 0), attempt_of(record))
        by_key[key].setdefault(str(record.get("transport")), record)
    signs: AttemptSigns = defaultdict(list)
    for (ip, port, attempt), transports in sorted(by_key.items()):
        signs[attempt].append(_sign(ip, port, transports, ctx))
    return signs


def failure_words(record: dict) -> str:
    """What one failed attempt got: "gets no reply in 5 s", "is reset", ..."""
    failure = record.get("failure")
    if failure in TIMEOUTS:
        return f"gets no reply in {round(duration(record), 1):g} s"
    if failure == MTPROTO_NO_REPLY:
        return f"gets no valid reply ({record.get('mtproto_error') or 'not a resPQ'})"
    return f"is {phrase(str(failure))} ({failure})"


def _sign(ip: str, port: int, transports: dict[str, dict], ctx: RunContext) -> Sign:
    where = f"DC {endpoint_label(ip, port)}"
    names = [t for t in ORDER if t in transports]
    failed = [t for t in names if transports[t].get("failure") is not None]
    if not failed:
        seconds = min(duration(transports[t]) for t in names)
        return Sign(
            OK, f"{where}: MTProto resPQ over {', '.join(names)}", seconds=seconds, port=port
        )
    failing = "; ".join(
        f"MTProto ({t}) {failure_words(transports[t])}{confirmed_phrase(transports[t], ', ')}"
        for t in failed
    )
    first = transports[failed[0]]
    failure = str(first.get("failure"))
    offline = next(
        (ctx.offline_at(transports[t]) for t in failed if ctx.offline_at(transports[t])), None
    )
    if offline is not None:
        return Sign(
            UNKNOWN,
            f"{where}: TCP connects, {failing}; the vantage looked offline then "
            f"(no control measurement of {offline.describe()} succeeded)",
            failure=failure,
            port=port,
        )
    obfuscated = transports.get(OBFUSCATED2)
    plain_failed = [t for t in failed if t in PLAIN]
    if obfuscated is not None and obfuscated.get("failure") is None and plain_failed:
        working = [t for t in names if t not in failed]
        return Sign(
            BLOCKED,
            f"{where}: TCP connects, {failing}, {' and '.join(working)} "
            f"{'works' if len(working) == 1 else 'work'}: the protocol is blocked",
            PROTOCOL_METHOD,
            failure,
            port,
        )
    others = sorted(ctx.mtproto_plain_ok - {endpoint_label(ip, port)})
    if len(failed) == len(names) and others:
        return Sign(
            BLOCKED,
            f"{where}: TCP connects, {failing}, while DC {others[0]} answers plain MTProto: "
            "the protocol is blocked to this address",
            PROTOCOL_METHOD,
            failure,
            port,
        )
    if len(failed) == len(names):
        why = "no DC endpoint answers MTProto in this run, so nothing to compare with"
    else:
        why = "obfuscated2 fails while a plain transport works: not the pattern of protocol DPI"
    return Sign(UNKNOWN, f"{where}: TCP connects, {failing}; {why}", failure=failure, port=port)


def combine_mtproto(signs: list[Sign]) -> Sign:
    """A DC endpoint target has one ip:port, so one sign per attempt; keep the worst if more."""
    for kind in (BLOCKED, UNKNOWN):
        for sign in signs:
            if sign.kind == kind:
                return sign
    return signs[0]
