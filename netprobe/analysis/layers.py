"""Per-layer signs of one target: what each attempt of DNS, TCP and TLS shows.

Rules (README.md ("How verdicts are decided") explains them to users):
- DNS (probe resolvers only; control resolvers are the reference):
  blocked/dns = NXDOMAIN, SERVFAIL, REFUSED, timeout or no answer while the control resolver
  answers; a bogon answer; answers that nothing vouches for and that fail TLS for the name; a
  second, different UDP reply to one query (injection). down = the control resolver finds no
  address either. A lookup whose answers nothing can check is `unknown`.
- TCP (tcp records, and TLS records that failed at connect): blocked/ip = connect fails while
  control endpoints connect and the address family works at this vantage point.
- TLS (target-SNI handshake on a genuine address, paired with the control-SNI handshake on the same
  ip:port and attempt): sni = target SNI fails while the control SNI gets an answer from the server
  (a certificate error counts as an answer); tls = both fail after TCP connected; mitm = the handshake
  reaches a certificate that is not valid for the name. No control-SNI handshake -> `unknown`.
- Within one attempt: any working address makes the attempt `ok` (clients try every address).
"""

from __future__ import annotations

from collections import defaultdict

from netprobe.analysis.common import (
    BLOCKED,
    CERTIFICATE_FAILURES,
    DOWN,
    METHOD_ORDER,
    NEUTRAL,
    OK,
    UNKNOWN,
    Sign,
    answer_ips,
    connect_failed,
    duration,
    endpoint_label,
    family,
    is_bogon,
    phrase,
    tally,
)
from netprobe.analysis.context import RunContext, hostname_of

AttemptSigns = dict[int, list[Sign]]

DNS_NO_ADDRESS = frozenset({"dns_nxdomain_error", "dns_no_answer"})


def _attempt(record: dict) -> int:
    try:
        return int(record.get("attempt") or 0)
    except (TypeError, ValueError):
        return 0


def _address_key(record: dict) -> tuple[str, int, int]:
    """(ip, port, attempt) of a tcp/tls record."""
    return str(record.get("ip")), int(record.get("port") or 0), _attempt(record)


def split_by_type(records: list[dict]) -> dict[str, list[dict]]:
    """A target's records by type (dns, tcp, tls), so each layer reads only its own."""
    split: dict[str, list[dict]] = {"dns": [], "tcp": [], "tls": []}
    for record in records:
        same_type = split.get(record.get("type"))
        if same_type is not None:
            same_type.append(record)
    return split


def _ips_text(ips) -> str:
    return ", ".join(sorted(ips)) or "nothing"


# ---------------------------------------------------------------- DNS


def dns_signs(dns_records: list[dict], ctx: RunContext, group: str) -> AttemptSigns:
    """Signs of the target's dns records (see `split_by_type`)."""
    signs: AttemptSigns = defaultdict(list)
    for record in dns_records:
        if record.get("resolver_role") == "control":
            continue
        signs[_attempt(record)].append(_dns_sign(record, ctx, group))
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
            return Sign(BLOCKED, f"{label}: {injected}", "dns", "dns_injection")
        if not ips:
            return Sign(NEUTRAL, f"{label}: answer without addresses")
        reasons = {ip: ctx.genuine_reason(host, ip, group) for ip in ips}
        genuine = sorted(ip for ip, reason in reasons.items() if reason)
        if genuine:
            why = sorted({reasons[ip] for ip in genuine})
            return Sign(OK, f"{label} -> {_ips_text(ips)} ({'; '.join(why)})", seconds=seconds)
        bogons = [ip for ip in ips if is_bogon(ip, ctx.expected_all)]
        if bogons:
            return Sign(
                BLOCKED, f"{label} -> {_ips_text(bogons)}: bogon answer", "dns", "dns_bogon_error"
            )
        failed = {
            ip: ctx.tls_target_failures[(host, ip)]
            for ip in ips
            if (host, ip) in ctx.tls_target_failures
        }
        if failed:
            control = _ips_text(ctx.control_ips(host))
            tried = "; ".join(f"{ip}: {failed[ip]}" for ip in sorted(failed))
            return Sign(
                BLOCKED,
                f"{label} -> {_ips_text(ips)}: not the control answers ({control}), outside the "
                f"expected ranges, and no valid TLS handshake for {host} ({tried})",
                "dns",
                "dns_unexpected_answer",
            )
        return Sign(
            UNKNOWN,
            f"{label} -> {_ips_text(ips)}: differs from the control answers and could not be checked",
        )

    if lookup is not None and lookup.ips:
        return Sign(
            BLOCKED,
            f"{label}: {failure} while the control resolver answers {_ips_text(lookup.ips)}",
            "dns",
            str(failure),
        )
    if lookup is None:
        return Sign(UNKNOWN, f"{label}: {failure}; no control lookup of this name", failure=failure)
    control_failures = sorted(set(lookup.failures))
    if failure == "dns_no_answer" and control_failures == ["dns_no_answer"]:
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
                f"a second, different reply ({late.get('rcode')} {_ips_text(late_ips)}) followed "
                f"the first ({record.get('rcode')} {_ips_text(first_ips)}): injected reply"
            )
    return None


def combine_dns(signs: list[Sign]) -> Sign:
    kinds = {sign.kind for sign in signs}
    if BLOCKED in kinds:
        return _first(signs, BLOCKED)
    if OK in kinds:
        return _first(signs, OK)
    if DOWN in kinds:
        return _first(signs, DOWN)
    if kinds == {NEUTRAL}:
        return Sign(DOWN, "no address for the name at either resolver")
    return _first(signs, UNKNOWN)


# ---------------------------------------------------------------- TCP and TLS


def is_genuine_address(record: dict, ctx: RunContext, group: str) -> bool:
    """Endpoints are what the list says; domain addresses must be vouched for (see context)."""
    if not str(record.get("target_id", "")).startswith("domain:"):
        return True
    sources = record.get("address_sources") or []
    if any(str(source).startswith(("control:", "endpoint")) for source in sources):
        return True
    return ctx.genuine_reason(hostname_of(record), str(record.get("ip")), group) is not None


def tcp_signs(
    tcp_records: list[dict], tls_records: list[dict], ctx: RunContext, group: str
) -> AttemptSigns:
    """Connect outcomes per (ip, port, attempt): tcp records, else TLS records that reached connect."""
    outcomes: dict[tuple[str, int, int], dict] = {}
    for record in tcp_records:
        outcomes.setdefault(_address_key(record), record)
    derived: dict[tuple[str, int, int], dict] = {}
    for record in tls_records:
        if not is_genuine_address(record, ctx, group):
            continue
        key = _address_key(record)
        if key in outcomes:
            continue
        # One TLS record that got past connect proves TCP worked for that address and attempt.
        if key not in derived or connect_failed(derived[key]):
            derived[key] = record
    outcomes.update(derived)

    signs: AttemptSigns = defaultdict(list)
    for (ip, port, attempt), record in sorted(outcomes.items()):
        signs[attempt].append(_tcp_sign(ip, port, record, ctx))
    return signs


def _tcp_sign(ip: str, port: int, record: dict, ctx: RunContext) -> Sign:
    where = endpoint_label(ip, port)
    if not connect_failed(record):
        return Sign(OK, f"{where} connects", seconds=duration(record), port=port)
    failure = str(record.get("failure"))
    fam = family(ip)
    if ctx.control_endpoints_ok and fam in ctx.families_ok:
        return Sign(
            BLOCKED,
            f"{where}: TCP connect {phrase(failure)} ({failure}) while control endpoints connect",
            "ip",
            failure,
            port,
        )
    why = (
        "no control endpoint connects"
        if not ctx.control_endpoints_ok
        else f"nothing connects over {fam} here"
    )
    return Sign(UNKNOWN, f"{where}: TCP connect {failure}; {why}", failure=failure, port=port)


def tls_signs(tls_records: list[dict], ctx: RunContext, group: str) -> AttemptSigns:
    if not tls_records:
        return {}  # most targets are endpoints without TLS: skip building the tables below
    pairs: dict[tuple[str, int, int], dict[str, dict]] = defaultdict(dict)
    untrusted: dict[int, list[str]] = defaultdict(list)
    for record in tls_records:
        if connect_failed(record):
            continue
        key = _address_key(record)
        role = "control" if record.get("sni_role") == "control" else "target"
        if role == "target" and not is_genuine_address(record, ctx, group):
            untrusted[key[2]].append(endpoint_label(key[0], key[1]))
            continue
        pairs[key].setdefault(role, record)

    signs: AttemptSigns = defaultdict(list)
    for (ip, port, attempt), pair in sorted(pairs.items()):
        if "target" in pair:
            signs[attempt].append(_tls_sign(ip, port, pair["target"], pair.get("control"), ctx))
    for attempt, where in untrusted.items():
        if attempt not in signs:
            signs[attempt].append(
                Sign(
                    UNKNOWN,
                    f"TLS only tried on addresses nothing vouches for ({', '.join(sorted(set(where)))})",
                )
            )
    return signs


def _tls_sign(ip: str, port: int, target: dict, control: dict | None, ctx: RunContext) -> Sign:
    where = endpoint_label(ip, port)
    sni = target.get("server_name")
    failure = target.get("failure")
    if failure is None:
        version = target.get("tls_version") or "TLS"
        return Sign(
            OK,
            f"{where} SNI {sni}: {version} handshake completes",
            seconds=duration(target),
            port=port,
        )
    if failure in CERTIFICATE_FAILURES:
        return Sign(
            BLOCKED, f"{where} SNI {sni}: {failure}, {_certificate(target)}", "mitm", failure, port
        )
    if control is None:
        return Sign(
            UNKNOWN,
            f"{where} SNI {sni}: {failure}; no control-SNI handshake on this address",
            failure=failure,
            port=port,
        )
    control_sni = control.get("server_name")
    control_failure = control.get("failure")
    if control_failure is None or control_failure in CERTIFICATE_FAILURES:
        answered = (
            "completes" if control_failure is None else f"gets a certificate ({control_failure})"
        )
        return Sign(
            BLOCKED,
            f"{where}: SNI {sni} -> {failure} ({phrase(failure)}) while control SNI {control_sni} {answered}",
            "sni",
            failure,
            port,
        )
    if connect_failed(control):
        return Sign(
            UNKNOWN,
            f"{where} SNI {sni}: {failure}; the control-SNI connect failed ({control_failure})",
            failure=failure,
            port=port,
        )
    if ctx.control_endpoints_ok:
        return Sign(
            BLOCKED,
            f"{where}: TLS fails for every SNI ({sni}: {failure}; {control_sni}: {control_failure}) although TCP connects",
            "tls",
            failure,
            port,
        )
    return Sign(
        UNKNOWN,
        f"{where}: TLS fails for every SNI and no control endpoint works",
        failure=failure,
        port=port,
    )


def _certificate(record: dict) -> str:
    certificates = record.get("peer_certificates") or []
    if not certificates or not isinstance(certificates[0], dict):
        return "no certificate recorded"
    leaf = certificates[0]
    sha = str(leaf.get("sha256") or "")[:16]
    return f"certificate {leaf.get('subject')} issued by {leaf.get('issuer')} (sha256 {sha}...)"


def combine_reachability(signs: list[Sign]) -> Sign:
    """TCP/TLS within one attempt: any working address wins, then the commonest blocking method."""
    if len(signs) == 1:
        return signs[0]  # one address (the usual case): the rules below would pick it too
    if any(sign.kind == OK for sign in signs):
        return _first(signs, OK)
    blocked = [sign for sign in signs if sign.kind == BLOCKED]
    if blocked:
        method = majority_method([sign.method for sign in blocked])
        return next(sign for sign in blocked if sign.method == method)
    return (
        _first(signs, UNKNOWN)
        if any(s.kind == UNKNOWN for s in signs)
        else _first(signs, signs[0].kind)
    )


def majority_method(methods: list[str | None]) -> str | None:
    counts = tally(m for m in methods if m)
    if not counts:
        return None
    return min(
        counts, key=lambda m: (-counts[m], METHOD_ORDER.index(m) if m in METHOD_ORDER else 99, m)
    )


def _first(signs: list[Sign], kind: str) -> Sign:
    return next(sign for sign in signs if sign.kind == kind)
