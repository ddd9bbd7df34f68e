"""TCP and TLS signs of one target: what each attempt of its connects and handshakes shows.

Rules (README.md ("How verdicts are decided") explains them to users):
- TCP (tcp records, and TLS records that failed at connect): blocked/ip = connect fails while
  control endpoints connect and the address family works at this vantage point.
- TLS (target-SNI handshake on a genuine address, paired with the control-SNI handshake on the same
  ip:port and attempt): sni = target SNI fails while the control SNI gets an answer from the server
  (a certificate error counts as an answer); tls = both fail after TCP connected; mitm = the handshake
  reaches a certificate that is not valid for the name. No control-SNI handshake -> `unknown`.
- Residual-aware pairs (tls records with `sequence`): the control SNI's `before` handshake is the
  pair's control; when the target SNI fails, the control SNI's `after` handshake (made `pause`
  seconds later) tells whether the address stayed blocked after the forbidden name. before works,
  target fails, after fails -> still `sni` (evidence "residual: the address was blocked for N s
  after the forbidden name"), never `ip`: the `after` handshake is never TCP evidence. Files
  without `sequence` treat every control-SNI handshake as `before`.
- A failure measured while the vantage looked offline (a failed control round nearby, see
  `health`) is `unknown`, never `ip` or `tls`. (An `sni` sign needs the control SNI to have
  worked on the same address at the same time, so the vantage was online.)
- A domain's address is only judged when something vouches for it (see `is_genuine_address`).
- Within one attempt: any working address makes the attempt `ok` (clients try every address).
"""

from __future__ import annotations

from collections import defaultdict

from netprobe.analysis.common import (
    AttemptSigns,
    Sign,
    attempt_of,
    connect_failed,
    duration,
    family,
    first_sign,
    majority_method,
    phrase,
)
from netprobe.analysis.confirm import confirmed_phrase
from netprobe.analysis.context import RunContext, hostname_of
from netprobe.analysis.health import ControlRound
from netprobe.model.failures import CERTIFICATE_FAILURES
from netprobe.model.records import PAUSE, SEQUENCE, SEQUENCE_AFTER
from netprobe.model.target_ids import (
    ENDPOINT_SOURCE,
    address_source_role,
    endpoint_label,
    is_domain_id,
)
from netprobe.model.vocabulary import (
    BLOCKED,
    IP_METHOD,
    MITM_METHOD,
    OK,
    ROLE_CONTROL,
    ROLE_TARGET,
    SNI_METHOD,
    TLS_METHOD,
    UNKNOWN,
)

# Address sources that vouch for a domain's address: a control resolver's answer, a listed endpoint.
_VOUCHING_SOURCES = frozenset({ROLE_CONTROL, ENDPOINT_SOURCE})


def _address_key(record: dict) -> tuple[str, int, int]:
    """(ip, port, attempt) of a tcp/tls record."""
    return str(record.get("ip")), int(record.get("port") or 0), attempt_of(record)


def is_genuine_address(record: dict, ctx: RunContext, group: str) -> bool:
    """Endpoints are what the list says; domain addresses must be vouched for (see context)."""
    if not is_domain_id(str(record.get("target_id", ""))):
        return True
    for source in record.get("address_sources") or ():
        if address_source_role(str(source)) in _VOUCHING_SOURCES:
            return True
    return ctx.genuine_reason(hostname_of(record), str(record.get("ip")), group) is not None


def tcp_signs(
    tcp_records: list[dict],
    tls_records: list[dict],
    ctx: RunContext,
    group: str,
    detail: bool = True,
) -> AttemptSigns:
    """Connect outcomes per (ip, port, attempt): tcp records, else TLS records that reached connect.

    Without `detail` the signs carry no words (`Sign.detail` empty) and no durations: the
    decisions are the same."""
    outcomes = _first_per_address(tcp_records)
    if tls_records:
        derived: dict[tuple[str, int, int], dict] = {}
        for record in tls_records:
            if record.get(SEQUENCE) == SEQUENCE_AFTER or not is_genuine_address(record, ctx, group):
                continue
            key = _address_key(record)
            if key in outcomes:
                continue
            # One TLS record that got past connect proves TCP worked for that address and attempt.
            if key not in derived or connect_failed(derived[key]):
                derived[key] = record
        outcomes.update(derived)

    signs: AttemptSigns = {}
    for key in sorted(outcomes):  # keys are unique: the records are never compared
        ip, port, attempt = key
        sign = _tcp_sign(ip, port, outcomes[key], ctx, detail)
        same = signs.get(attempt)
        if same is None:
            signs[attempt] = [sign]
        else:
            same.append(sign)
    return signs


def tcp_only_kinds(tcp_records: list[dict], ctx: RunContext) -> list[str]:
    """For a target with tcp records only: per attempt, the kind of
    `combine_reachability(tcp_signs(...)[attempt])`, without making the signs (the lean verdict).

    The same records count (the first of each ip, port and attempt) and the same rules
    (`_connect_kind`, `reachability_kind`); the order of the kinds within an attempt does not
    matter, as they are only ever ok, blocked or unknown."""
    by_attempt: dict[int, list[str]] = {}
    for key, record in _first_per_address(tcp_records).items():
        kind = _connect_kind(key[0], record, ctx)
        same = by_attempt.get(key[2])
        if same is None:
            by_attempt[key[2]] = [kind]
        else:
            same.append(kind)
    return [
        kinds[0] if len(kinds) == 1 else reachability_kind(kinds) for kinds in by_attempt.values()
    ]


def _first_per_address(records: list[dict]) -> dict[tuple[str, int, int], dict]:
    """The first record of each (ip, port, attempt), in file order: the one that counts."""
    outcomes: dict[tuple[str, int, int], dict] = {}
    for record in records:
        key = _address_key(record)
        if key not in outcomes:
            outcomes[key] = record
    return outcomes


def _connect_kind(ip: str, record: dict, ctx: RunContext) -> str:
    """The TCP rule (module docstring) for one address and attempt: ok, blocked or unknown."""
    if not connect_failed(record):
        return OK
    if (
        ctx.control_endpoints_ok
        and family(ip) in ctx.families_ok
        and ctx.offline_at(record) is None
    ):
        return BLOCKED
    return UNKNOWN


def _tcp_sign(ip: str, port: int, record: dict, ctx: RunContext, detail: bool = True) -> Sign:
    kind = _connect_kind(ip, record, ctx)
    if kind == OK:
        if not detail:
            return Sign(OK, port=port)
        return Sign(OK, f"{endpoint_label(ip, port)} connects", seconds=duration(record), port=port)
    failure = str(record.get("failure"))
    if kind == BLOCKED:
        if not detail:
            return Sign(BLOCKED, "", IP_METHOD, failure, port)
        where = endpoint_label(ip, port)
        return Sign(
            BLOCKED,
            f"{where}: TCP connect {phrase(failure)} ({failure}) while control endpoints connect"
            f"{confirmed_phrase(record)}",
            IP_METHOD,
            failure,
            port,
        )
    where = endpoint_label(ip, port)
    fam = family(ip)
    offline = ctx.offline_at(record)
    if not ctx.control_endpoints_ok:
        why = "no control endpoint connects"
    elif fam not in ctx.families_ok:
        why = f"nothing connects over {fam} here"
    else:
        why = _offline_words(offline)
    return Sign(UNKNOWN, f"{where}: TCP connect {failure}; {why}", failure=failure, port=port)


def tls_signs(
    tls_records: list[dict], ctx: RunContext, group: str, detail: bool = True
) -> AttemptSigns:
    """Handshake outcomes per (ip, port, attempt); without `detail`, signs without words."""
    if not tls_records:
        return {}  # most targets are endpoints without TLS: skip building the tables below
    pairs: dict[tuple[str, int, int], dict[str, dict]] = defaultdict(dict)
    untrusted: dict[int, list[str]] = defaultdict(list)
    after: dict[tuple[str, int, int], dict] = {}
    for record in tls_records:
        if record.get(SEQUENCE) == SEQUENCE_AFTER:
            if record.get("sni_role") == ROLE_CONTROL:  # a failed connect counts here too
                after.setdefault(_address_key(record), record)
            continue
        if connect_failed(record):
            continue
        key = _address_key(record)
        role = ROLE_CONTROL if record.get("sni_role") == ROLE_CONTROL else ROLE_TARGET
        if role == ROLE_TARGET and not is_genuine_address(record, ctx, group):
            untrusted[key[2]].append(endpoint_label(key[0], key[1]))
            continue
        pairs[key].setdefault(role, record)

    signs: AttemptSigns = defaultdict(list)
    for (ip, port, attempt), pair in sorted(pairs.items()):
        if ROLE_TARGET in pair:
            signs[attempt].append(
                _tls_sign(
                    ip,
                    port,
                    pair[ROLE_TARGET],
                    pair.get(ROLE_CONTROL),
                    ctx,
                    after.get((ip, port, attempt)),
                    detail,
                )
            )
    for attempt, where in untrusted.items():
        if attempt not in signs:
            signs[attempt].append(
                Sign(
                    UNKNOWN,
                    f"TLS only tried on addresses nothing vouches for ({', '.join(sorted(set(where)))})",
                )
            )
    return signs


def _tls_sign(
    ip: str,
    port: int,
    target: dict,
    control: dict | None,
    ctx: RunContext,
    after: dict | None = None,
    detail: bool = True,
) -> Sign:
    failure = target.get("failure")
    if failure is None and not detail:
        return Sign(OK, port=port)
    where = endpoint_label(ip, port)
    sni = target.get("server_name")
    if failure is None:
        version = target.get("tls_version") or "TLS"
        return Sign(
            OK,
            f"{where} SNI {sni}: {version} handshake completes",
            seconds=duration(target),
            port=port,
        )
    if not detail and failure in CERTIFICATE_FAILURES:
        return Sign(BLOCKED, "", MITM_METHOD, failure, port)  # the words below, left out
    confirmed = confirmed_phrase(target)
    if failure in CERTIFICATE_FAILURES:
        return Sign(
            BLOCKED,
            f"{where} SNI {sni}: {failure}, {_certificate(target)}{confirmed}",
            MITM_METHOD,
            failure,
            port,
        )
    if control is None:
        return Sign(
            UNKNOWN,
            f"{where} SNI {sni}: {failure}; no control-SNI handshake on this address",
            failure=failure,
            port=port,
        )
    control_failure = control.get("failure")
    if not detail and (control_failure is None or control_failure in CERTIFICATE_FAILURES):
        return Sign(BLOCKED, "", SNI_METHOD, failure, port)  # the words below, left out
    control_sni = control.get("server_name")
    if control_failure is None or control_failure in CERTIFICATE_FAILURES:
        answered = (
            "completes" if control_failure is None else f"gets a certificate ({control_failure})"
        )
        return Sign(
            BLOCKED,
            f"{where}: SNI {sni} -> {failure} ({phrase(failure)}) while control SNI {control_sni} "
            f"{answered}{confirmed}{_residual(after)}",
            SNI_METHOD,
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
    offline = ctx.offline_at(target)
    if ctx.control_endpoints_ok and offline is None:
        return Sign(
            BLOCKED,
            f"{where}: TLS fails for every SNI ({sni}: {failure}; {control_sni}: {control_failure}) although TCP connects"
            f"{confirmed}",
            TLS_METHOD,
            failure,
            port,
        )
    if offline is not None:
        return Sign(
            UNKNOWN,
            f"{where}: TLS fails for every SNI; {_offline_words(offline)}",
            failure=failure,
            port=port,
        )
    return Sign(
        UNKNOWN,
        f"{where}: TLS fails for every SNI and no control endpoint works",
        failure=failure,
        port=port,
    )


def _residual(after: dict | None) -> str:
    """The residual clause of an SNI block: the control SNI failed again after the target SNI."""
    if after is None:
        return ""
    failure = after.get("failure")
    if failure is None or failure in CERTIFICATE_FAILURES:
        return ""  # the server answered the control SNI again: a plain SNI block
    pause = after.get(PAUSE)
    seconds = f"{pause:g}" if isinstance(pause, int | float) else "?"
    return (
        f"; residual: the address was blocked for {seconds} s after the forbidden name "
        f"(control SNI then: {failure})"
    )


def _offline_words(offline: ControlRound | None) -> str:
    if offline is None:
        return "the vantage looked offline then"
    return (
        "the vantage looked offline then "
        f"(no control measurement of {offline.describe()} succeeded)"
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
    kind = reachability_kind([sign.kind for sign in signs])
    if kind == BLOCKED:
        blocked = [sign for sign in signs if sign.kind == BLOCKED]
        method = majority_method([sign.method for sign in blocked])
        return next(sign for sign in blocked if sign.method == method)
    return first_sign(signs, kind)


def reachability_kind(kinds: list[str]) -> str:
    """The kind of one attempt from its addresses' kinds: any working address wins, then a
    block, then unknown; else the first one's."""
    if OK in kinds:
        return OK
    if BLOCKED in kinds:
        return BLOCKED
    if UNKNOWN in kinds:
        return UNKNOWN
    return kinds[0]
