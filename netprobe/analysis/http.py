"""HTTP signs of one target, and blockpage/sinkhole fingerprints (issue 13).

Rules (README.md "How verdicts are decided" explains them to users). Conservative on purpose:
a page that merely looks odd is never a block, only a page that is known (a fingerprint) or one
that the control contradicts on a genuine address.
- The fingerprints are the header's (`model.fingerprints.from_header`): a file's verdicts come
  from the file alone. Older files have none, and no http records.
- DNS (`sinkhole_sign`, called by `analysis.dns`): a probe resolver's answer that a `dns`
  fingerprint names is blocked/dns at once ("DNS sinkhole of VNPT (fingerprint ...)"), without
  the other checks of an unexpected answer.
- HTTP, per `http` record of the target (`GET /` with `Host` = the name to an address some
  resolver gave):
  - a response that an http fingerprint matches is blocked: method `http` when the address is
    genuine for the name (`RunContext.genuine_reason`: a control answer, inside the expected
    ranges, or valid TLS for the name), so the page was put in on the path; method `dns` when it
    is not (the resolver sent the client to the blockpage). The evidence names the page.
  - a response from a genuine address that is not a control answer, whose status *and* title
    both differ from those of every response from the control resolver's addresses (which must
    agree among themselves), is blocked/http: the same site answered otherwise through the
    control's addresses. Responses from the control's own addresses are the reference, never
    judged against themselves.
  - any other response is ok; a response from an address that nothing vouches for and that
    differs from the control's is a note-worthy `unknown` (the dns layer judges that address).
  - a failed request (refused, reset, timeout) is `unknown`, never a block: port 80 is closed
    on many real servers, and a reset there is not evidence enough on its own.
- The http layer is evidence only (`EVIDENCE_ONLY_LAYERS`): it can make a target `blocked`, but
  it never makes it `down` (it gives no `down` sign) and it never decides `ok`/`inconclusive`
  in place of the tcp/tls layers. It appears in a verdict's layers only when the target has
  http records, so reports of older files are unchanged.
- Majority over attempts, as for every layer (`verdict.aggregate_layer`).
"""

from __future__ import annotations

from collections import defaultdict

from netprobe.analysis.common import AttemptSigns, Sign, attempt_of, first_sign, ips_text
from netprobe.analysis.context import RunContext, hostname_of
from netprobe.model.failures import BLOCKPAGE, DNS_SINKHOLE, HTTP_DIFFERENT_PAGE
from netprobe.model.fingerprints import match_address, match_http
from netprobe.model.target_ids import endpoint_label
from netprobe.model.vocabulary import (
    BLOCKED,
    DNS_METHOD,
    HTTP_LAYER,
    HTTP_METHOD,
    OK,
    ROLE_CONTROL,
    UNKNOWN,
)

# Layers that add blocking evidence but never decide ok/inconclusive/down (see the rules).
EVIDENCE_ONLY_LAYERS = frozenset({HTTP_LAYER})
CONTROL_SOURCE_PREFIX = ROLE_CONTROL + ":"  # address_sources tag of a control resolver


def sinkhole_sign(label: str, ips: list[str], ctx: RunContext) -> Sign | None:
    """Blocked/dns when an answer address is a known sinkhole (a `dns` fingerprint), else None."""
    for ip in ips:
        fingerprint = match_address(ctx.fingerprints, ip)
        if fingerprint is not None:
            return Sign(
                BLOCKED,
                f"{label} -> {ips_text(ips)}: {ip} is the {fingerprint.describe()}",
                DNS_METHOD,
                DNS_SINKHOLE,
            )
    return None


def _from_control(record: dict) -> bool:
    sources = record.get("address_sources") or []
    return any(str(source).startswith(CONTROL_SOURCE_PREFIX) for source in sources)


def _page(record: dict) -> str:
    title = record.get("title")
    shown = f' "{title}"' if isinstance(title, str) and title else " (no title)"
    return f"{record.get('status')}{shown}"


def _label(record: dict) -> str:
    host = hostname_of(record)
    where = endpoint_label(str(record.get("ip")), record.get("port"))
    sources = ", ".join(str(s) for s in record.get("address_sources") or []) or "no resolver"
    return f"GET http://{host}/ at {where} ({sources})"


def http_signs(http_records: list[dict], ctx: RunContext, group: str) -> AttemptSigns:
    """Signs of the target's http records (see the module rules)."""
    signs: AttemptSigns = defaultdict(list)
    reference: dict[str, list[dict]] = defaultdict(list)  # hostname -> control-address answers
    for record in http_records:
        if record.get("failure") is None and _from_control(record):
            reference[hostname_of(record)].append(record)
    for record in http_records:
        signs[attempt_of(record)].append(_http_sign(record, ctx, group, reference))
    return signs


def _http_sign(record: dict, ctx: RunContext, group: str, reference: dict[str, list[dict]]) -> Sign:
    label = _label(record)
    failure = record.get("failure")
    if failure is not None:
        return Sign(UNKNOWN, f"{label}: {failure} (not evidence on its own)", failure=failure)
    host, ip = hostname_of(record), str(record.get("ip"))
    genuine = ctx.genuine_reason(host, ip, group)
    fingerprint = match_http(ctx.fingerprints, record)
    if fingerprint is not None:
        if genuine:
            return Sign(
                BLOCKED,
                f"{label}: {_page(record)} is the {fingerprint.describe()}, on an address of "
                f"the name ({genuine}): put in on the path",
                HTTP_METHOD,
                BLOCKPAGE,
            )
        return Sign(
            BLOCKED,
            f"{label}: {_page(record)} is the {fingerprint.describe()}: the resolver sent the "
            "name to a blockpage",
            DNS_METHOD,
            BLOCKPAGE,
        )
    if _from_control(record):
        return Sign(OK, f"{label}: {_page(record)}")
    controls = reference.get(host) or []
    pages = {(r.get("status"), r.get("title")) for r in controls}
    if not controls or len(pages) != 1:
        return Sign(OK, f"{label}: {_page(record)}")
    ((status, title),) = pages
    if record.get("status") == status or record.get("title") == title:
        return Sign(OK, f"{label}: {_page(record)}")
    versus = f"the control answers' page is {_page(controls[0])}"
    if genuine:
        return Sign(
            BLOCKED,
            f"{label}: {_page(record)} on an address of the name ({genuine}), while {versus}: "
            "the page was changed on the path",
            HTTP_METHOD,
            HTTP_DIFFERENT_PAGE,
        )
    return Sign(UNKNOWN, f"{label}: {_page(record)}, while {versus}")


def combine_http(signs: list[Sign]) -> Sign:
    """One attempt: a blocking sign wins, then a working answer, then `unknown`."""
    kinds = {sign.kind for sign in signs}
    for kind in (BLOCKED, OK):
        if kind in kinds:
            return first_sign(signs, kind)
    return first_sign(signs, UNKNOWN)


def fingerprint_lines_first(evidence: list[str]) -> list[str]:
    """The evidence with the lines that name a fingerprint first (what a reader quotes)."""
    named = [line for line in evidence if "(fingerprint " in line]
    return named + [line for line in evidence if line not in named]
