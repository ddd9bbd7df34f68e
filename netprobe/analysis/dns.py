"""DNS signs of one target: what each attempt of its lookups shows (probe resolvers only).

Rules (README.md ("How verdicts are decided") explains them to users):
- Control resolvers are the reference, never judged themselves.
- blocked/dns = NXDOMAIN, SERVFAIL, REFUSED, timeout or no answer while the control resolver
  answers; a bogon answer; answers that nothing vouches for and that fail TLS for the name; a
  second, different UDP reply to one query (injection). down = the control resolver finds no
  address either. A lookup whose answers nothing can check is `unknown`.
- Within one attempt: a blocking sign wins, then a working lookup, then `down`.
"""

from __future__ import annotations

from collections import defaultdict

from netprobe.analysis.common import (
    AttemptSigns,
    Sign,
    answer_ips,
    attempt_of,
    duration,
    first_sign,
    ips_text,
    is_bogon,
)
from netprobe.analysis.context import RunContext, hostname_of
from netprobe.model.failures import (
    DNS_BOGON,
    DNS_INJECTION,
    DNS_NO_ADDRESS,
    DNS_NO_ANSWER,
    DNS_UNEXPECTED_ANSWER,
)
from netprobe.model.vocabulary import BLOCKED, DNS_METHOD, DOWN, NEUTRAL, OK, ROLE_CONTROL, UNKNOWN


def dns_signs(dns_records: list[dict], ctx: RunContext, group: str) -> AttemptSigns:
    """Signs of the target's dns records (see `split_by_type`)."""
    signs: AttemptSigns = defaultdict(list)
    for record in dns_records:
        if record.get("resolver_role") == ROLE_CONTROL:
            continue
        signs[attempt_of(record)].append(_dns_sign(record, ctx, group))
    return signs


def _dns_sign(record: dict, ctx: RunContext, group: str) -> Sign:
    host = hostname_of(record)
    qtype = str(record.get("query_type"))
    label = f"{record.get('resolver_address')} {qtype} {host}"
    failure = record.get("failure")
    lookup = ctx.control_lookups.get((host, qtype))
    seconds = duration(record)

    if failure is None:
        ips = answer_ips(record.get("answers"))
        injected = _injection(record, ips)
        if injected:
            return Sign(BLOCKED, f"{label}: {injected}", DNS_METHOD, DNS_INJECTION)
        if not ips:
            return Sign(NEUTRAL, f"{label}: answer without addresses")
        reasons = {ip: ctx.genuine_reason(host, ip, group) for ip in ips}
        why = sorted({reason for reason in reasons.values() if reason})
        if why:
            return Sign(OK, f"{label} -> {ips_text(ips)} ({'; '.join(why)})", seconds=seconds)
        bogons = [ip for ip in ips if is_bogon(ip, ctx.expected_all)]
        if bogons:
            return Sign(
                BLOCKED, f"{label} -> {ips_text(bogons)}: bogon answer", DNS_METHOD, DNS_BOGON
            )
        failed = {
            ip: ctx.tls_target_failures[(host, ip)]
            for ip in ips
            if (host, ip) in ctx.tls_target_failures
        }
        if failed:
            control = ips_text(ctx.control_ips(host))
            tried = "; ".join(f"{ip}: {failed[ip]}" for ip in sorted(failed))
            return Sign(
                BLOCKED,
                f"{label} -> {ips_text(ips)}: not the control answers ({control}), outside the "
                f"expected ranges, and no valid TLS handshake for {host} ({tried})",
                DNS_METHOD,
                DNS_UNEXPECTED_ANSWER,
            )
        return Sign(
            UNKNOWN,
            f"{label} -> {ips_text(ips)}: differs from the control answers and could not be checked",
        )

    if lookup is not None and lookup.ips:
        return Sign(
            BLOCKED,
            f"{label}: {failure} while the control resolver answers {ips_text(lookup.ips)}",
            DNS_METHOD,
            str(failure),
        )
    if lookup is None:
        return Sign(UNKNOWN, f"{label}: {failure}; no control lookup of this name", failure=failure)
    control_failures = sorted(set(lookup.failures))
    if failure == DNS_NO_ANSWER and control_failures == [DNS_NO_ANSWER]:
        return Sign(NEUTRAL, f"{label}: no {qtype} records at either resolver")
    if DNS_NO_ADDRESS & set(control_failures):
        return Sign(
            DOWN,
            f"{label}: {failure}; the control resolver finds no address either ({', '.join(control_failures)})",
            failure=failure,
        )
    return Sign(
        UNKNOWN,
        f"{label}: {failure}; the control resolver failed too ({', '.join(control_failures)})",
        failure=failure,
    )


def _injection(record: dict, first_ips: list[str]) -> str | None:
    for late in record.get("late_replies") or []:
        if not isinstance(late, dict):
            continue
        late_ips = answer_ips(late.get("answers"))
        if set(late_ips) != set(first_ips) or late.get("rcode") != record.get("rcode"):
            return (
                f"a second, different reply ({late.get('rcode')} {ips_text(late_ips)}) followed "
                f"the first ({record.get('rcode')} {ips_text(first_ips)}): injected reply"
            )
    return None


def combine_dns(signs: list[Sign]) -> Sign:
    kinds = {sign.kind for sign in signs}
    if BLOCKED in kinds:
        return first_sign(signs, BLOCKED)
    if OK in kinds:
        return first_sign(signs, OK)
    if DOWN in kinds:
        return first_sign(signs, DOWN)
    if kinds == {NEUTRAL}:
        return Sign(DOWN, "no address for the name at either resolver")
    return first_sign(signs, UNKNOWN)
