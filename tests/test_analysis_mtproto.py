"""MTProto verdicts per DC endpoint: ok, blocked (protocol), ip as before, and the unclear cases."""

from __future__ import annotations

import pytest

from netprobe.analysis import analyse
from tests import recordfactory as rf

DC1, DC2 = "203.0.113.50", "203.0.113.51"
T = "generic_timeout_error"
R = "connection_reset"
W = "mtproto_no_valid_reply"


def verdicts(records: list[dict]) -> dict:
    analysis = analyse(rf.header(), [*rf.healthy_controls(), *records])
    return {key: v for key, v in analysis.verdicts.items() if key.startswith("endpoint:203.")}


CASES = {
    "all transports work": (rf.dc_endpoint(DC1), "ok", None),
    "plain transports time out, obfuscated2 works": (
        rf.dc_endpoint(DC1, intermediate=T, abridged=T),
        "blocked",
        "protocol",
    ),
    "only intermediate is reset": (rf.dc_endpoint(DC1, intermediate=R), "blocked", "protocol"),
    "a wrong reply on the plain transports": (
        rf.dc_endpoint(DC1, intermediate=W, abridged=W),
        "blocked",
        "protocol",
    ),
    "TCP fails: ip as before, no MTProto sent": (
        [rf.tcp(DC1, failure=T)],
        "blocked",
        "ip",
    ),
    "everything fails after the connect, no DC answers anywhere": (
        rf.dc_endpoint(DC1, obfuscated2=T, intermediate=T, abridged=T),
        "inconclusive",
        None,
    ),
    "obfuscated2 fails, the plain ones work": (
        rf.dc_endpoint(DC1, obfuscated2=T),
        "inconclusive",
        None,
    ),
    "no mtproto records (an old file): TCP decides as before": ([rf.tcp(DC1)], "ok", None),
}


@pytest.mark.parametrize("case", CASES)
def test_one_dc_endpoint(case: str) -> None:
    records, status, method = CASES[case]
    verdict = verdicts(records)[f"endpoint:{DC1}:443"]
    assert (verdict.status, verdict.method) == (status, method)


def test_the_evidence_reads_as_a_researcher_would_quote_it() -> None:
    verdict = verdicts(rf.dc_endpoint(DC1, intermediate=T, abridged=T))[f"endpoint:{DC1}:443"]
    assert verdict.evidence[0] == (
        f"mtproto: DC {DC1}:443: TCP connects, MTProto (intermediate) gets no reply in 5 s; "
        "MTProto (abridged) gets no reply in 5 s, obfuscated2 works: the protocol is blocked"
    )
    assert verdict.layers["tcp"] == "ok" and verdict.layers["mtproto"] == "blocked"
    assert verdict.scores["mtproto"] == 1.0


def test_per_dc_never_all_or_nothing() -> None:
    """One DC blocked, the other working: each gets its own verdict (ooni/probe#2466)."""
    result = verdicts([*rf.dc_endpoint(DC1, intermediate=T, abridged=T), *rf.dc_endpoint(DC2)])
    assert (result[f"endpoint:{DC1}:443"].status, result[f"endpoint:{DC1}:443"].method) == (
        "blocked",
        "protocol",
    )
    assert result[f"endpoint:{DC2}:443"].status == "ok"


def test_everything_cut_while_another_dc_answers_plain_mtproto_is_protocol_blocking() -> None:
    result = verdicts(
        [*rf.dc_endpoint(DC1, obfuscated2=T, intermediate=T, abridged=T), *rf.dc_endpoint(DC2)]
    )
    verdict = result[f"endpoint:{DC1}:443"]
    assert (verdict.status, verdict.method) == ("blocked", "protocol")
    assert f"while DC {DC2}:443 answers plain MTProto" in verdict.evidence[0]


def test_a_failure_outvoted_by_its_confirmations_is_not_a_block() -> None:
    records = rf.dc_endpoint(DC1, intermediate=T)
    failed = next(r for r in records if r.get("transport") == "intermediate")
    records += [rf.confirm(failed, 1), rf.confirm(failed, 2)]
    verdict = verdicts(records)[f"endpoint:{DC1}:443"]
    assert verdict.status == "ok"
    assert any("2/3" in note or "worked" in note for note in verdict.notes)


def test_confirmed_failures_stay_a_block_and_say_so() -> None:
    records = rf.dc_endpoint(DC1, intermediate=T, abridged=T)
    for failed in [r for r in records if r.get("transport") in ("intermediate", "abridged")]:
        records += [rf.confirm(failed, 1, failure=T), rf.confirm(failed, 2, failure=T)]
    verdict = verdicts(records)[f"endpoint:{DC1}:443"]
    assert (verdict.status, verdict.method) == ("blocked", "protocol")
    assert "confirmed" in verdict.evidence[0]


def test_an_unhealthy_vantage_is_inconclusive() -> None:
    analysis = analyse(rf.header(), rf.dc_endpoint(DC1, intermediate=T, abridged=T))
    assert analysis.verdicts[f"endpoint:{DC1}:443"].status == "inconclusive"


@pytest.mark.parametrize(("field", "value"), [("port", "443"), ("ip", None)])
def test_a_malformed_mtproto_record_is_refused_by_the_one_door(field: str, value) -> None:
    from netprobe.analysis.load import check_records

    records = rf.dc_endpoint(DC1)
    records[-1][field] = value
    problem = check_records(records)
    assert problem is not None and f"field '{field}'" in problem and "(mtproto " in problem
