"""Table tests for the verdict rules of issue 15, "Verdicts that hold in the field" (no network).

The records follow /work/wt/ISSUE15_CONTRACT.md: confirmation re-probes, control rounds,
residual-aware TLS pairs, truncated DNS retried over TCP, silent (injection) lookups, redirects
that are no bogons. Each rule has positive and negative cases; every case is also checked in the
timeline's lean mode, which must decide exactly alike. Old-format records are test_analysis.py's.
"""

from __future__ import annotations

import pytest

from netprobe.analysis import analyse
from netprobe.run.tally import RunTally
from tests import recordfactory as rf

TG = "telegram.org"
GOOD = "203.0.113.10"
GOOD2 = "203.0.113.11"
DC = "203.0.113.50"
DC_ID = rf.endpoint_id(DC, 443)
REDIRECT = "8.8.4.4"  # a public address that is no bogon: the redirect of rule 5
CONTROL_ANSWER = "8.8.8.8"  # what the control resolver says for the name in those cases
TIMEOUT = "generic_timeout_error"
RESET = "connection_reset"
DOMAIN = f"domain:{TG}"


def judge(records, target=DOMAIN, header=None):
    analysis = analyse(header or rf.header(), records)
    return analysis.verdicts[target], analysis


def text(verdict) -> str:
    return "\n".join(verdict.evidence + verdict.notes)


# -- 1. confirmation re-probes ------------------------------------------------------------------


def tcp_confirmed(*failures):
    return rf.confirmations(rf.tcp(DC, 443, failure=TIMEOUT), *failures)


def dns_confirmed(*failures):
    probe, control = rf.domain_lookups(TG, None, [GOOD], probe_failure=TIMEOUT)
    reprobes = rf.confirmations(probe, *failures)
    for again, failure in zip(reprobes[1:], failures, strict=True):
        if failure is None:
            again["answers"] = [{"answer_type": "A", "ipv4": GOOD, "ttl": 300}]
            again["rcode"] = "NOERROR"
    return [*reprobes, control, *rf.tls_pair(GOOD, TG)]


def sni_confirmed(*failures):
    target, control = rf.tls_pair(GOOD, TG, target_failure=RESET)
    return [*rf.domain_lookups(TG, [GOOD], [GOOD]), *rf.confirmations(target, *failures), control]


CONFIRM_CASES = [
    # (id, records, target, status, method, words expected in evidence or notes)
    ("tcp out-voted", tcp_confirmed(None, None), DC_ID, "ok", None, "2/3 attempts worked"),
    ("tcp confirmed", tcp_confirmed(TIMEOUT, TIMEOUT), DC_ID, "blocked", "ip", "2 of 2 re-probes"),
    ("tcp 2 of 3 failed", tcp_confirmed(None, TIMEOUT), DC_ID, "blocked", "ip", "1 of 2 re-probes"),
    ("tcp tie is no block", tcp_confirmed(None), DC_ID, "ok", None, "1/2 attempts worked"),
    ("tcp unconfirmed (off)", tcp_confirmed(), DC_ID, "blocked", "ip", "while control endpoints"),
    ("dns out-voted", dns_confirmed(None, None), DOMAIN, "ok", None, "2/3 attempts worked"),
    ("dns confirmed", dns_confirmed(TIMEOUT, TIMEOUT), DOMAIN, "blocked", "dns", "2 of 2"),
    ("sni out-voted", sni_confirmed(None, None), DOMAIN, "ok", None, "2/3 attempts worked"),
    ("sni confirmed", sni_confirmed(RESET, TIMEOUT), DOMAIN, "blocked", "sni", "2 of 2 re-probes"),
]


@pytest.mark.parametrize(
    ("records", "target", "status", "method", "words"),
    [c[1:] for c in CONFIRM_CASES],
    ids=[c[0] for c in CONFIRM_CASES],
)
def test_confirmations_vote_on_their_step(records, target, status, method, words):
    result, _ = judge(rf.healthy_controls() + records, target)
    assert (result.status, result.method) == (status, method), text(result)
    assert words in text(result)


def test_confirmations_are_not_attempts():
    result, _ = judge(rf.healthy_controls() + tcp_confirmed(TIMEOUT, TIMEOUT), DC_ID)
    assert result.scores["tcp"] == 1.0  # one attempt, blocked; not 3 attempts
    assert not any("attempts]" in line for line in result.evidence), result.evidence
    out_voted, _ = judge(rf.healthy_controls() + tcp_confirmed(None, None), DC_ID)
    assert out_voted.scores["tcp"] == 0.0


def test_repeats_keep_their_majority_with_confirmations():
    # --repeat 3: attempt 0 failed and was out-voted by its re-probes; attempts 1 and 2 worked.
    records = rf.healthy_controls(attempts=3)
    records += rf.confirmations(rf.tcp(DC, 443, failure=TIMEOUT, attempt=0), None, None)
    records += [rf.tcp(DC, 443, attempt=1), rf.tcp(DC, 443, attempt=2)]
    result, _ = judge(records, DC_ID)
    assert (result.status, result.scores["tcp"]) == ("ok", 0.0)
    # Two attempts failed and were confirmed, one worked: blocked by the repeat rule (2/3).
    records = rf.healthy_controls(attempts=3)
    for attempt in (0, 1):
        planned = rf.tcp(DC, 443, failure=TIMEOUT, attempt=attempt)
        records += rf.confirmations(planned, TIMEOUT, TIMEOUT)
    records.append(rf.tcp(DC, 443, attempt=2))
    result, _ = judge(records, DC_ID)
    assert (result.status, result.method) == ("blocked", "ip")
    assert result.scores["tcp"] == pytest.approx(2 / 3, abs=1e-3)


def test_a_confirmation_only_votes_on_its_own_step():
    # The re-probes of the A lookup worked; they say nothing about the AAAA lookup (another step).
    a_probe, a_control = rf.domain_lookups(TG, None, [GOOD], probe_failure=TIMEOUT)
    aaaa = rf.domain_lookups(TG, None, ["2001:db8:100::10"], probe_failure=TIMEOUT, qtype="AAAA")
    wrong = [rf.confirm(aaaa[0], k) for k in (1, 2)]
    for again in wrong:
        again["answers"] = [{"answer_type": "AAAA", "ipv6": "2001:db8:100::10", "ttl": 300}]
    result, _ = judge(rf.healthy_controls() + [a_probe, a_control, *aaaa, *wrong])
    assert (result.status, result.method) == ("blocked", "dns")
    assert "system A telegram.org: generic_timeout_error" in text(result)
    # A re-probe whose planned step is not in the file is ignored, never an attempt.
    orphan = rf.confirm(rf.tcp(DC, 443, failure=TIMEOUT, attempt=5), 1, failure=None)
    result, _ = judge(rf.healthy_controls() + [rf.tcp(DC, 443, failure=TIMEOUT), orphan], DC_ID)
    assert (result.status, result.scores["tcp"]) == ("blocked", 1.0)


# -- 2. controls first and throughout ------------------------------------------------------------


def rounds(*failures, spacing=120.0):
    records = []
    for number, failure in enumerate(failures):
        records += rf.control_round(number, number * spacing, failure=failure)
    return records


def test_each_control_round_counts_as_an_attempt_of_the_control_targets():
    # Same attempt number (0) in every round: the rounds must not overwrite each other.
    records = rounds(None, None, None)
    endpoint_id = rf.endpoint_id(*rf.CONTROL_ENDPOINT)
    middle = next(r for r in records if r["target_id"] == endpoint_id and r["control_round"] == 1)
    middle["failure"] = TIMEOUT
    analysis = analyse(rf.header(), records)
    endpoint = analysis.verdicts[endpoint_id]
    assert endpoint.status == "ok"
    assert endpoint.scores["tcp"] == pytest.approx(1 / 3, abs=1e-3)  # three rounds, one failed
    assert any("1/3 attempts failed" in note for note in endpoint.notes), endpoint.notes
    # A round that failed entirely (the vantage offline then) is a failure nothing can explain.
    analysis = analyse(rf.header(), rounds(None, TIMEOUT, None))
    domain = analysis.verdicts[f"domain:{rf.CONTROL_DOMAIN}"]
    assert domain.status == "ok" and "[2/3 attempts]" in " ".join(domain.evidence)
    endpoint = analysis.verdicts[endpoint_id]
    assert (endpoint.status, endpoint.scores["tcp"]) == ("ok", 0.0)
    assert analysis.vantage["healthy"] is True  # some control worked: the run-wide rule


def test_round_health_keeps_failures_of_an_offline_stretch_from_being_blocks():
    # Round 1 (t = 120 s) failed entirely: the vantage was offline then.
    controls = rounds(None, TIMEOUT, None)
    near_failed_round = rf.tcp(DC, 443, failure=TIMEOUT, t0=125.0)
    result, analysis = judge(controls + [near_failed_round], DC_ID)
    assert result.status == "inconclusive", text(result)
    assert "looked offline" in text(result)
    assert any("control round 1" in note for note in analysis.vantage["notes"])
    # Between two rounds that worked (0 and 1 of 0, 1, 2 with round 2 failed) it is a block.
    controls = rounds(None, None, TIMEOUT)
    between_good_rounds = rf.tcp(DC, 443, failure=TIMEOUT, t0=60.0)
    result, _ = judge(controls + [between_good_rounds], DC_ID)
    assert (result.status, result.method) == ("blocked", "ip")
    # A DNS failure while offline is no block either.
    lookups = rf.domain_lookups(TG, None, [GOOD], probe_failure=TIMEOUT)
    lookups[0]["t0"], lookups[0]["t"] = 130.0, 132.0
    result, _ = judge(rounds(None, TIMEOUT, None) + lookups)
    assert result.status == "inconclusive", text(result)


def test_failed_reprobes_while_offline_do_not_confirm():
    # The planned probe failed while online; its re-probes ran at the end, when the vantage was
    # gone (the end round failed): they are not counted, so nothing confirms the failure.
    planned = rf.tcp(DC, 443, failure=TIMEOUT, t0=10.0)
    reprobes = [rf.confirm(planned, k, failure=TIMEOUT, after=115.0) for k in (1, 2)]
    records = rounds(None, TIMEOUT) + [planned, *reprobes]
    result, _ = judge(records, DC_ID)
    assert "looked offline" in text(result)
    # While the vantage was online, the same re-probes confirm.
    records = rounds(None, None) + [planned, *reprobes]
    result, _ = judge(records, DC_ID)
    assert (result.status, result.method) == ("blocked", "ip")
    assert "confirmed by 2 of 2 re-probes" in text(result)


# -- 3. residual SNI -----------------------------------------------------------------------------

RESIDUAL_CASES = [
    # (id, pair kwargs, status, method, residual named)
    ("after fails at connect", {"after_failure": TIMEOUT, "after_failed_operation": "connect"},
     "blocked", "sni", True),
    ("after is reset", {"after_failure": RESET}, "blocked", "sni", True),
    ("after works", {}, "blocked", "sni", False),
    ("after gets a certificate", {"after_failure": "ssl_invalid_hostname"}, "blocked", "sni", False),
    ("before fails too", {"before_failure": RESET, "after_failure": RESET}, "blocked", "tls", False),
    ("target works", {"target_failure": None}, "ok", None, False),
]  # fmt: skip


@pytest.mark.parametrize(
    ("pair", "status", "method", "residual"),
    [c[1:] for c in RESIDUAL_CASES],
    ids=[c[0] for c in RESIDUAL_CASES],
)
def test_residual_sni(pair, status, method, residual):
    records = rf.healthy_controls() + rf.domain_lookups(TG, [GOOD], [GOOD])
    records += rf.residual_pair(GOOD, TG, **pair)
    result, _ = judge(records)
    assert (result.status, result.method) == (status, method), text(result)
    assert result.layers["tcp"] == "ok"  # the after-probe is never TCP evidence
    found = "residual: the address was blocked for 3 s after the forbidden name" in text(result)
    assert found is residual, text(result)


def test_reprobes_of_the_after_handshake_do_not_vote():
    # The after-probe measures the moment right after the forbidden name; its later re-probes
    # (the residual block has expired by then) measure another moment and are ignored.
    records = rf.healthy_controls() + rf.domain_lookups(TG, [GOOD], [GOOD])
    before, target, after = rf.residual_pair(GOOD, TG, after_failure=RESET)
    records += [before, target, *rf.confirmations(after, None, None)]
    result, _ = judge(records)
    assert (result.status, result.method) == ("blocked", "sni")
    assert "residual: the address was blocked for 3 s" in text(result)


def test_a_failed_before_handshake_out_voted_by_its_reprobes_still_pairs():
    records = rf.healthy_controls() + rf.domain_lookups(TG, [GOOD], [GOOD])
    before, target, after = rf.residual_pair(GOOD, TG, before_failure=RESET, after_failure=RESET)
    records += [*rf.confirmations(before, None, None), target, after]
    result, _ = judge(records)
    assert (result.status, result.method) == ("blocked", "sni"), text(result)


def test_residual_pause_is_the_after_records():
    records = rf.healthy_controls() + rf.domain_lookups(TG, [GOOD], [GOOD])
    records += rf.residual_pair(GOOD, TG, after_failure=RESET, pause=7.5)
    result, _ = judge(records)
    assert "blocked for 7.5 s after the forbidden name" in text(result)


# -- 4. DNS: truncated replies, silent lookups ----------------------------------------------------


def truncated_then_tcp(tcp_answer=(GOOD,), tcp_failure=None, late=None):
    truncated = {"rcode": "NOERROR", "answers": [], "flags": ["QR", "RA", "RD", "TC"], "t": 0.11}
    probe = rf.dns(
        TG,
        list(tcp_answer) if tcp_answer else None,
        failure=tcp_failure,
        flags=["QR", "RA", "RD"],
        edns_payload=1232,
        truncated_udp=truncated,
        retried_over_tcp=True,
        mismatched_replies=0,
        late_replies=late,
    )
    control = rf.domain_lookups(TG, [GOOD], [GOOD])[1]
    return [probe, control, *rf.tls_pair(GOOD, TG)]


def test_truncated_then_tcp_answered_is_ok():
    result, _ = judge(rf.healthy_controls() + truncated_then_tcp())
    assert (result.status, result.layers["dns"]) == ("ok", "ok"), text(result)
    assert "over TCP after a truncated UDP reply" in text(result)
    # A copy of the truncated reply arriving late is the same reply, not an injection.
    copy = {"t": 0.12, "rcode": "NOERROR", "answers": []}
    result, _ = judge(rf.healthy_controls() + truncated_then_tcp(late=[copy]))
    assert result.status == "ok", text(result)
    # A different late UDP reply still is one.
    forged = rf.late_reply(["198.18.0.1"])
    result, _ = judge(rf.healthy_controls() + truncated_then_tcp(late=[forged]))
    assert (result.status, result.method) == ("blocked", "dns")


def test_truncated_then_tcp_failed_is_judged_on_the_tcp_failure():
    records = truncated_then_tcp(tcp_answer=(), tcp_failure=TIMEOUT)
    result, _ = judge(rf.healthy_controls() + records)
    assert (result.status, result.method) == ("blocked", "dns"), text(result)
    assert "generic_timeout_error while the control resolver answers" in text(result)


SILENT_CASES = [
    # (id, silent record, status, method, words)
    ("timeout is neutral", rf.silent(TG), "ok", None, None),
    ("forged answer", rf.silent(TG, ["10.10.34.34"]), "blocked", "dns",
     "an address that runs no DNS server (198.51.100.9) answered 10.10.34.34: the reply was "
     "injected on the path"),
    ("forged NXDOMAIN", rf.silent(TG, rcode="NXDOMAIN"), "blocked", "dns", "answered NXDOMAIN"),
    ("genuine answer: an intercepting path", rf.silent(TG, [GOOD]), "ok", None,
     "DNS is intercepted on the path"),
    ("IPv6 silent address", rf.silent(TG, ["10.10.34.34"], address="2001:db8:ffff::9"),
     "blocked", "dns", "(2001:db8:ffff::9)"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("record", "status", "method", "words"),
    [c[1:] for c in SILENT_CASES],
    ids=[c[0] for c in SILENT_CASES],
)
def test_silent_lookups(record, status, method, words):
    # The probe resolver's own lookups look fine: the injection is all the silent record shows.
    records = rf.healthy_controls() + rf.domain_ok(TG, GOOD) + [record]
    result, _ = judge(records)
    assert (result.status, result.method) == (status, method), text(result)
    if words:
        assert words in text(result)
    if status == "blocked":
        assert result.layers["dns"] == "blocked" and result.scores["dns"] == 1.0


def test_every_silent_reply_counts_even_in_a_reprobe():
    # Silent lookups are not folded: a reply in any of them is injection evidence.
    planned = rf.silent(TG)
    records = rf.healthy_controls() + rf.domain_ok(TG, GOOD)
    records += [
        planned,
        rf.silent(TG, ["10.10.34.34"], confirmation=1),
        rf.silent(TG, confirmation=2),
    ]
    result, _ = judge(records)
    assert (result.status, result.method) == ("blocked", "dns"), text(result)


def test_silent_lookups_are_never_resolver_lookups():
    # Controls all failed; a silent reply is no control lookup that worked.
    dead = [
        rf.dns(
            rf.CONTROL_DOMAIN,
            None,
            failure=TIMEOUT,
            resolver=rf.CONTROL_RESOLVER,
            resolver_role="control",
            group="control",
            role="control",
        ),
        rf.tcp(*rf.CONTROL_ENDPOINT, failure=TIMEOUT, group="control", role="control"),
    ]
    result, analysis = judge(dead + [rf.silent(TG, [GOOD])])
    assert analysis.vantage["healthy"] is False and result.status == "inconclusive"
    # A silent timeout is not a failed probe-resolver lookup: no dns layer at all.
    result, _ = judge(rf.healthy_controls() + [rf.silent(TG)] + rf.tls_pair(GOOD, TG))
    assert result.layers["dns"] == "n/a", text(result)


def test_run_table_does_not_count_silent_lookups_as_failures():
    tally = RunTally()
    for record in rf.healthy_controls() + rf.domain_ok(TG, GOOD) + [rf.silent(TG), rf.silent(TG)]:
        tally.add(record)
    assert tally.targets[DOMAIN].layers["dns"].state() == "ok"
    assert "generic_timeout_error" not in tally.failures
    assert tally.to_dict()["controls"]["resolver"]["attempts"] == 2  # the healthy controls' only


# -- 5. redirects without the bogon shortcut -------------------------------------------------------


def redirect(
    redirect_failure: str | None = "connection_refused",
    operation: str | None = "connect",
    control_failure: str | None = None,
    redirect_reprobes: tuple = (),
):
    records = rf.domain_lookups(TG, [REDIRECT], [CONTROL_ANSWER])
    handshake = rf.tls(
        REDIRECT,
        443,
        TG,
        hostname=TG,
        failure=redirect_failure,
        failed_operation=operation,
        sources=["probe:system"],
    )
    records += rf.confirmations(handshake, *redirect_reprobes)
    if control_failure != "untried":
        records += rf.tls_pair(
            CONTROL_ANSWER,
            TG,
            target_failure=control_failure,
            sources=[f"control:{rf.CONTROL_RESOLVER}"],
        )
    return records


REDIRECT_CASES = [
    # (id, redirect kwargs, status, method, dns layer, words)
    ("refused, control validates", {}, "blocked", "dns", "blocked",
     f"redirected to {REDIRECT}, where TLS with {TG} fails"),
    ("timeout at connect, confirmed", {"redirect_failure": TIMEOUT,
     "redirect_reprobes": (TIMEOUT, TIMEOUT)}, "blocked", "dns", "blocked", "2 of 2 re-probes"),
    ("reset at connect", {"redirect_failure": RESET}, "blocked", "dns", "blocked", REDIRECT),
    ("failure out-voted: the address validates", {"redirect_failure": TIMEOUT,
     "redirect_reprobes": (None, None)}, "ok", None, "ok", "2/3 attempts worked"),
    ("control does not validate either", {"control_failure": RESET}, "blocked", "sni",
     "inconclusive", "no control answer's address validates"),
    ("control untried", {"control_failure": "untried"}, "inconclusive", None, "inconclusive",
     "no control answer's address validates"),
    ("handshake reset, control validates", {"redirect_failure": RESET,
     "operation": "tls_handshake"}, "blocked", "dns", "blocked", REDIRECT),
    ("handshake reset, control untried", {"redirect_failure": RESET, "operation": "tls_handshake",
     "control_failure": "untried"}, "inconclusive", None, "inconclusive", "validates"),
    ("wrong certificate, control untried", {"redirect_failure": "ssl_invalid_hostname",
     "operation": "tls_handshake", "control_failure": "untried"}, "blocked", "dns", "blocked",
     "no valid TLS handshake"),
    ("wrong certificate everywhere: mitm", {"redirect_failure": "ssl_unknown_authority",
     "operation": "tls_handshake", "control_failure": "ssl_unknown_authority"}, "blocked", "mitm",
     "inconclusive", "no control answer's address validates"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "status", "method", "dns_layer", "words"),
    [c[1:] for c in REDIRECT_CASES],
    ids=[c[0] for c in REDIRECT_CASES],
)
def test_redirects_without_the_bogon_shortcut(kwargs, status, method, dns_layer, words):
    result, _ = judge(rf.healthy_controls() + redirect(**kwargs))
    assert (result.status, result.method) == (status, method), text(result)
    assert result.layers["dns"] == dns_layer, text(result)
    assert words in text(result)


def test_nothing_tried_on_the_redirect_stays_inconclusive():
    records = rf.domain_lookups(TG, [REDIRECT], [CONTROL_ANSWER])
    records += rf.tls_pair(CONTROL_ANSWER, TG, sources=[f"control:{rf.CONTROL_RESOLVER}"])
    result, _ = judge(rf.healthy_controls() + records)
    assert result.layers["dns"] == "inconclusive"
    assert "could not be checked" in text(result)


# -- 6. lossy links -------------------------------------------------------------------------------


def test_a_slow_handshake_timing_out_on_one_address_is_no_block():
    records = rf.domain_lookups(TG, [GOOD, GOOD2], [GOOD, GOOD2])
    records += rf.tls_pair(GOOD, TG, target_failure=TIMEOUT)
    records += rf.tls_pair(GOOD2, TG, seconds=1.4)
    result, _ = judge(rf.healthy_controls() + records)
    assert result.status == "ok", text(result)
    # The same at connect (the SYN and its retry lost), on the only IPv4 address, with IPv6 working.
    records = rf.domain_lookups(TG, [GOOD], [GOOD]) + rf.domain_lookups(
        TG, ["2001:db8:100::10"], ["2001:db8:100::10"], qtype="AAAA"
    )
    records += rf.tls_pair(
        GOOD,
        TG,
        target_failure=TIMEOUT,
        target_failed_operation="connect",
        control_failure=TIMEOUT,
        control_failed_operation="connect",
    )
    records += rf.tls_pair("2001:db8:100::10", TG)
    result, _ = judge(rf.healthy_controls(ipv6=True) + records)
    assert result.status == "ok", text(result)


def test_a_lost_reply_of_a_cdn_name_is_no_dns_block():
    # The probe resolver returns another (geo) address of a CDN; its one handshake was lost, the
    # re-probes validate it: genuine, and the name works.
    result, _ = judge(
        rf.healthy_controls()
        + redirect(
            redirect_failure=TIMEOUT, operation="tls_handshake", redirect_reprobes=(None, None)
        )
    )
    assert (result.status, result.layers["dns"]) == ("ok", "ok"), text(result)


def test_a_failed_control_lookup_makes_an_unvouched_answer_no_block():
    # The control resolver timed out (a lost DoH reply): nothing validates anywhere, so a reset on
    # the probe resolver's answer cannot be called a DNS block.
    records = rf.domain_lookups(TG, [REDIRECT], None, control_failure=TIMEOUT)
    records += rf.tls_pair(
        REDIRECT, TG, target_failure=RESET, target_failed_operation="tls_handshake",
        sources=["probe:system"],
    )  # fmt: skip
    result, _ = judge(rf.healthy_controls() + records)
    assert result.status == "inconclusive", text(result)


# -- the timeline's lean mode decides alike ------------------------------------------------------


def _all_cases() -> list[list[dict]]:
    cases = [rf.healthy_controls() + c[1] for c in CONFIRM_CASES]
    cases += [rounds(None, TIMEOUT, None) + [rf.tcp(DC, 443, failure=TIMEOUT, t0=125.0)]]
    for _, pair, *_ in RESIDUAL_CASES:
        cases.append(
            rf.healthy_controls()
            + rf.domain_lookups(TG, [GOOD], [GOOD])
            + rf.residual_pair(GOOD, TG, **pair)
        )
    cases += [rf.healthy_controls() + truncated_then_tcp()]
    cases += [rf.healthy_controls() + rf.domain_ok(TG, GOOD) + [c[1]] for c in SILENT_CASES]
    cases += [rf.healthy_controls() + redirect(**c[1]) for c in REDIRECT_CASES]
    return cases


@pytest.mark.parametrize("records", _all_cases())
def test_lean_mode_decides_like_the_full_analysis(records):
    full = analyse(rf.header(), records)
    lean = analyse(rf.header(), records, detail=False)
    decisions = {
        k: (v.status, v.method, v.layers, v.scores, v.role) for k, v in full.verdicts.items()
    }
    assert decisions == {
        k: (v.status, v.method, v.layers, v.scores, v.role) for k, v in lean.verdicts.items()
    }
    assert lean.vantage["healthy"] == full.vantage["healthy"]
    assert all(not v.evidence and not v.notes for v in lean.verdicts.values())


@pytest.mark.parametrize(
    ("field", "value"),
    [("confirmation", "1"), ("control_round", 1.5), ("confirmation", True), ("pause", "3")],
)
def test_check_records_names_a_malformed_new_field(field, value):
    from netprobe.analysis import check_records

    record = rf.tcp(DC, 443)
    assert check_records([record]) is None
    record[field] = value
    problem = check_records([record])
    assert problem is not None and repr(field) in problem


def test_reprobes_leave_the_records_as_written():
    records = rf.healthy_controls() + tcp_confirmed(None, None)
    before = [dict(r) for r in records]
    analysis = analyse(rf.header(), records)
    assert records == before
    assert len(analysis.records) == len(records)  # diff still sees every record
