"""DNS signs of one target: what each attempt of its lookups shows (probe resolvers only).

Rules (README.md ("How verdicts are decided") explains them to users):
- Control resolvers are the reference, never judged themselves.
- blocked/dns = NXDOMAIN, SERVFAIL, REFUSED, timeout or no answer while the control resolver
  answers; a bogon answer; a second, different UDP reply to one query (injection); answers that
  nothing vouches for (not the control answers, outside the expected ranges, no valid TLS for the
  name) when TLS with the name on them
  - meets a certificate that is not valid for the name, unless the control answers' addresses
    were tried and did not validate either (then the TLS layer speaks: the whole path is tampered);
  - or fails otherwise (reset, EOF, handshake failure, or cannot be made at all: refused, reset,
    timeout at connect), only while a control answer's address validates for the name.
  Otherwise (nothing tried, or the control addresses did not validate) such answers are `unknown`.
  down = the control resolver finds no address either.
- A lookup retried over TCP after a truncated UDP reply is judged on its TCP reply (the record's
  main fields); what the truncated reply held is never evidence (it is only what a late UDP reply
  is compared with, for injection).
- A failure measured while the vantage looked offline (a failed control round nearby, see
  `health`) is `unknown`, never a block.
- Silent lookups (the injection probe, `silent_signs`): asked of an address that runs no DNS
  server, so the expected outcome is a timeout (neutral). Any reply is injected on the path: the
  name is blocked by dns, whatever the probe resolver said, unless the reply carries the genuine
  answer (what the control resolver says), which is a path that intercepts every DNS query (a
  transparent resolver): not a block of this name, a note. Silent lookups are never probe or
  control lookups.
- An answer address that a `dns` fingerprint names (a known sinkhole, issue 13) is blocked/dns
  at once, naming the fingerprint (`analysis.http.sinkhole_sign`).
- Within one attempt: a blocking sign wins, then a working lookup, then `down`.
"""

from __future__ import annotations

from collections import defaultdict
from urllib.parse import urlsplit

from netprobe.analysis.common import (
    AttemptSigns,
    Sign,
    answer_ips,
    attempt_of,
    duration,
    first_sign,
    ips_text,
    is_bogon,
    is_silent,
)
from netprobe.analysis.confirm import confirmed_phrase
from netprobe.analysis.context import RunContext, hostname_of
from netprobe.analysis.http import sinkhole_sign
from netprobe.model.failures import (
    CERTIFICATE_FAILURES,
    DNS_BOGON,
    DNS_INJECTION,
    DNS_NO_ADDRESS,
    DNS_NO_ANSWER,
    DNS_UNEXPECTED_ANSWER,
)
from netprobe.model.records import RESOLVER_SILENT, RETRIED_OVER_TCP, TRUNCATED_UDP
from netprobe.model.vocabulary import BLOCKED, DNS_METHOD, DOWN, NEUTRAL, OK, ROLE_CONTROL, UNKNOWN


def dns_signs(
    dns_records: list[dict], ctx: RunContext, group: str, detail: bool = True
) -> AttemptSigns:
    """Signs of the target's dns records (see `split_by_type`). Without `detail` a working
    lookup's sign has no words and no duration (the decisions are the same)."""
    signs: AttemptSigns = defaultdict(list)
    for record in dns_records:
        role = record.get("resolver_role")
        if role == ROLE_CONTROL or role == RESOLVER_SILENT:
            continue
        signs[attempt_of(record)].append(_dns_sign(record, ctx, group, detail))
    return signs


def _dns_sign(record: dict, ctx: RunContext, group: str, detail: bool = True) -> Sign:
    host = hostname_of(record)
    qtype = str(record.get("query_type"))
    label = f"{record.get('resolver_address')} {qtype} {host}" if detail else ""
    if detail and record.get(RETRIED_OVER_TCP):
        label += " (over TCP after a truncated UDP reply)"
    failure = record.get("failure")
    lookup = ctx.control_lookups.get((host, qtype))
    seconds = duration(record) if detail else None

    if failure is None:
        ips = answer_ips(record.get("answers"))
        injected = _injection(record, ips)
        if injected:
            return Sign(BLOCKED, f"{label}: {injected}", DNS_METHOD, DNS_INJECTION)
        if not ips:
            return Sign(NEUTRAL, f"{label}: answer without addresses")
        sinkhole = sinkhole_sign(label, ips, ctx)  # issue 13: a known sinkhole, no more checks
        if sinkhole is not None:
            return sinkhole
        if not detail:
            if any(ctx.genuine_reason(host, ip, group) for ip in ips):
                return Sign(OK)
        elif why := sorted({r for r in (ctx.genuine_reason(host, ip, group) for ip in ips) if r}):
            return Sign(OK, f"{label} -> {ips_text(ips)} ({'; '.join(why)})", seconds=seconds)
        bogons = [ip for ip in ips if is_bogon(ip, ctx.expected_all)]
        if bogons:
            return Sign(
                BLOCKED, f"{label} -> {ips_text(bogons)}: bogon answer", DNS_METHOD, DNS_BOGON
            )
        return _unvouched(record, label, host, ips, ctx)

    if lookup is not None and lookup.ips:
        offline = ctx.offline_at(record)
        if offline is not None:
            return Sign(
                UNKNOWN,
                f"{label}: {failure}, but the vantage looked offline then "
                f"(no control measurement of {offline.describe()} succeeded)",
                failure=failure,
            )
        if not detail:
            return Sign(BLOCKED, "", DNS_METHOD, str(failure))  # the words below, left out
        return Sign(
            BLOCKED,
            f"{label}: {failure} while the control resolver answers {ips_text(lookup.ips)}"
            f"{confirmed_phrase(record)}",
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


def _unvouched(record: dict, label: str, host: str, ips: list[str], ctx: RunContext) -> Sign:
    """Answers that nothing vouches for and that are no bogons: what TLS with the name says."""
    control = ips_text(ctx.control_ips(host))
    valid = ctx.valid_control_ips(host)
    # Control answers whose handshake met a certificate not valid for the name: TLS with the name
    # is intercepted everywhere, so a wrong certificate on these answers proves nothing about DNS.
    intercepted = [
        ip
        for ip in ctx.control_ips(host)
        if (ctx.tls_failure_records.get((host, ip)) or {}).get("failure") in CERTIFICATE_FAILURES
    ]
    base = f"{label} -> {ips_text(ips)}: not the control answers ({control}), outside the expected ranges"
    wrong_certificate: dict[str, dict] = {}
    failed: dict[str, dict] = {}
    for ip in ips:
        handshake = ctx.tls_failure_records.get((host, ip))
        if handshake is not None and handshake.get("failure") in CERTIFICATE_FAILURES:
            wrong_certificate[ip] = handshake
        elif handshake is not None or (host, ip) in ctx.tls_connect_failures:
            failed[ip] = handshake or ctx.tls_connect_failures[(host, ip)]
    if wrong_certificate and (valid or not intercepted):
        return Sign(
            BLOCKED,
            f"{base}, and no valid TLS handshake for {host} ({_tried({**wrong_certificate, **failed})})",
            DNS_METHOD,
            DNS_UNEXPECTED_ANSWER,
        )
    if (wrong_certificate or failed) and valid:
        return Sign(
            BLOCKED,
            f"{base}: redirected to {ips_text({**wrong_certificate, **failed})}, where TLS with "
            f"{host} fails ({_tried({**wrong_certificate, **failed})}) while the control "
            f"answers' addresses validate ({ips_text(valid)})",
            DNS_METHOD,
            DNS_UNEXPECTED_ANSWER,
        )
    if wrong_certificate or failed:
        return Sign(
            UNKNOWN,
            f"{base}; TLS with {host} fails on them ({_tried({**wrong_certificate, **failed})}), "
            "but no control answer's address validates for the name",
        )
    return Sign(
        UNKNOWN,
        f"{label} -> {ips_text(ips)}: differs from the control answers and could not be checked",
    )


def _tried(handshakes: dict[str, dict]) -> str:
    return "; ".join(
        f"{ip}: {handshakes[ip].get('failure')}{confirmed_phrase(handshakes[ip], ', ')}"
        for ip in sorted(handshakes)
    )


def _injection(record: dict, first_ips: list[str]) -> str | None:
    reference = record
    if record.get(RETRIED_OVER_TCP) and isinstance(record.get(TRUNCATED_UDP), dict):
        # Late replies are UDP replies: they are compared with the first UDP reply (the truncated
        # one), not with the TCP retry's answer.
        reference = record[TRUNCATED_UDP]
        first_ips = answer_ips(reference.get("answers"))
    for late in record.get("late_replies") or []:
        if not isinstance(late, dict):
            continue
        late_ips = answer_ips(late.get("answers"))
        if set(late_ips) != set(first_ips) or late.get("rcode") != reference.get("rcode"):
            return (
                f"a second, different reply ({late.get('rcode')} {ips_text(late_ips)}) followed "
                f"the first ({reference.get('rcode')} {ips_text(first_ips)}): injected reply"
            )
    return None


def silent_signs(dns_records: list[dict], ctx: RunContext, group: str) -> list[Sign]:
    """Signs of the target's silent lookups (see the module rules): BLOCKED for an injected
    reply, NEUTRAL for a reply that carries the genuine answer; timeouts give no sign."""
    signs = []
    for record in dns_records:
        if not is_silent(record) or record.get("rcode") is None:
            continue
        signs.append(_silent_sign(record, ctx, group))
    return signs


def silent_address(record: dict) -> str:
    """The address a silent lookup was sent to (from `udp://<ip>:53` / `udp://[v6]:53`)."""
    address = str(record.get("resolver_address") or "")
    try:
        host = urlsplit(address).hostname
    except ValueError:
        host = None
    return host or str(record.get("resolver_ip") or address)


def _silent_sign(record: dict, ctx: RunContext, group: str) -> Sign:
    host = hostname_of(record)
    qtype = str(record.get("query_type"))
    rcode = str(record.get("rcode"))
    ips = answer_ips(record.get("answers"))
    address = silent_address(record)
    answered = ips_text(ips) if ips else rcode
    lookup = ctx.control_lookups.get((host, qtype))
    genuine = bool(ips) and all(ctx.genuine_reason(host, ip, group) for ip in ips)
    if not ips and lookup is not None and not lookup.ips:
        # The control resolver finds no address either: the same "no such name" is no lie.
        genuine = record.get("failure") in lookup.failures
    if genuine:
        return Sign(
            NEUTRAL,
            f"an address that runs no DNS server ({address}) answered {qtype} {host} with "
            f"{answered}, the genuine answer: DNS is intercepted on the path (a transparent "
            "resolver), which is not a block of this name",
        )
    return Sign(
        BLOCKED,
        f"an address that runs no DNS server ({address}) answered {answered}: the reply was "
        "injected on the path",
        DNS_METHOD,
        DNS_INJECTION,
    )


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
