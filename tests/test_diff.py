"""Table tests for netprobe.diff: change kinds, notable changes, warnings, stable json."""

from __future__ import annotations

import json

import pytest

from netprobe.analysis import analyse
from netprobe.diff import CHANGE_KINDS, diff_runs
from tests import recordfactory as rf

TG = "telegram.org"
GOOD = "203.0.113.10"
DC = "203.0.113.50"


def ok_web():
    return rf.domain_ok(TG, GOOD)


def sni_web():
    return rf.domain_lookups(TG, [GOOD], [GOOD]) + rf.tls_pair(
        GOOD, TG, target_failure="connection_reset"
    )


def dns_web():
    recs = rf.domain_lookups(TG, None, [GOOD], probe_failure="dns_nxdomain_error")
    return recs + rf.tls_pair(GOOD, TG, target_failure="connection_reset")


def down_web():
    return rf.domain_lookups(
        TG, None, None, probe_failure="dns_nxdomain_error", control_failure="dns_nxdomain_error"
    )


def unclear_web():
    return (
        rf.domain_lookups(TG, [GOOD], [GOOD])
        + rf.tls_pair(GOOD, TG, target_failure="connection_reset")[:1]
    )


def run(records, **header):
    return analyse(rf.header(**header), rf.healthy_controls() + records)


KIND_CASES = [
    (ok_web, sni_web, "newly_blocked", ("ok", None), ("blocked", "sni")),
    (sni_web, ok_web, "unblocked", ("blocked", "sni"), ("ok", None)),
    (sni_web, dns_web, "method_changed", ("blocked", "sni"), ("blocked", "dns")),
    (ok_web, down_web, "became_down", ("ok", None), ("down", None)),
    (down_web, ok_web, "recovered", ("down", None), ("ok", None)),
    (ok_web, unclear_web, "became_inconclusive", ("ok", None), ("inconclusive", None)),
    (down_web, sni_web, "newly_blocked", ("down", None), ("blocked", "sni")),
]


@pytest.mark.parametrize(
    ("old", "new", "kind", "before", "after"),
    KIND_CASES,
    ids=[c[2] + "-" + c[0].__name__ for c in KIND_CASES],
)
def test_change_kinds(old, new, kind, before, after):
    result = diff_runs(run(old()), run(new()))
    changes = [c for c in result.changes if c.target == f"domain:{TG}"]
    assert len(changes) == 1
    change = changes[0]
    assert change.kind == kind
    assert (change.before["status"], change.before["method"]) == before
    assert (change.after["status"], change.after["method"]) == after
    assert change.evidence["before"] and change.evidence["after"]
    assert result.status_changed()
    assert result.summary[kind] == 1


def test_same_run_has_no_changes():
    analysis = run(sni_web())
    result = diff_runs(analysis, analysis)
    assert result.changes == [] and result.notable == [] and result.warnings == []
    assert not result.status_changed()
    assert set(result.summary) == set(CHANGE_KINDS) and not any(result.summary.values())


def test_added_and_removed_are_not_status_changes():
    old = run(ok_web() + [rf.tcp(DC, 443)], target_files=[{"name": "a.yaml", "sha256": "1" * 64}])
    new = run(
        ok_web() + rf.domain_ok("t.me", "203.0.113.20"),
        target_files=[{"name": "b.yaml", "sha256": "2" * 64}],
    )
    result = diff_runs(old, new)
    kinds = {c.target: c.kind for c in result.changes}
    assert kinds == {"domain:t.me": "added", rf.endpoint_id(DC, 443): "removed"}
    assert not result.status_changed()
    assert any("different target lists" in w for w in result.warnings)
    added = next(c for c in result.changes if c.kind == "added")
    assert added.before is None and added.after == {"status": "ok", "method": None}


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("vantage", "elsewhere", "different vantage points"),
        ("software_version", "9.9.9", "different software versions"),
        ("target_list_name", "other", "different target lists"),
    ],
)
def test_warnings_but_still_compares(field, value, words):
    result = diff_runs(run(ok_web()), run(sni_web(), **{field: value}))
    assert any(words in w for w in result.warnings)
    assert [c.kind for c in result.changes] == ["newly_blocked"]


def test_notable_dns_certificate_and_resolver_changes():
    old = run(ok_web())
    moved = rf.domain_lookups(TG, ["203.0.113.11"], ["203.0.113.11"]) + rf.tls_pair(
        "203.0.113.11", TG
    )
    moved[2]["peer_certificates"] = [rf.certificate(TG, sha256="cd" * 32)]
    new_records = rf.healthy_controls() + moved + rf.tls_pair(GOOD, TG)
    new_records[-2]["peer_certificates"] = [rf.certificate(TG, sha256="ef" * 32)]
    new = analyse(rf.header(resolvers=["system", "udp://192.0.2.1:53"]), new_records)
    result = diff_runs(old, new)
    assert result.changes == []
    kinds = {n["kind"] for n in result.notable}
    assert {"dns_answers_changed", "certificate_changed", "resolver_added"} <= kinds
    moved_dns = next(n for n in result.notable if n["kind"] == "dns_answers_changed")
    assert moved_dns["before"] == [GOOD] and moved_dns["after"] == ["203.0.113.11"]


def test_layer_change_without_verdict_change_is_notable():
    # Still blocked by dns, but now the control addresses are SNI-blocked too.
    old_records = rf.domain_lookups(
        TG, None, [GOOD], probe_failure="dns_nxdomain_error"
    ) + rf.tls_pair(GOOD, TG)
    result = diff_runs(run(old_records), run(dns_web()))
    assert result.changes == []
    assert [n["kind"] for n in result.notable] == ["layers_changed"]


def test_json_is_stable_and_jq_friendly():
    result = diff_runs(run(ok_web()), run(sni_web()))
    data = json.loads(json.dumps(result.to_dict()))
    assert list(data) == [
        "old",
        "new",
        "status_changed",
        "summary",
        "changes",
        "notable",
        "warnings",
        "judged",
        "unjudged",
    ]
    assert data["changes"][0] == {
        "target": f"domain:{TG}",
        "kind": "newly_blocked",
        "before": {"status": "ok", "method": None},
        "after": {"status": "blocked", "method": "sni"},
        "evidence": data["changes"][0]["evidence"],
    }
    assert data["old"]["vantage"] == "lab-1" and data["summary"]["newly_blocked"] == 1


@pytest.mark.parametrize(
    ("ip", "where"),
    [
        ("203.0.113.60", "203.0.113.60:443 SNI telegram.org"),
        ("2001:db8::60", "[2001:db8::60]:443 SNI telegram.org"),
    ],
)
def test_certificate_change_names_the_address_like_everywhere_else(ip, where):
    # An IPv6 address is bracketed before its port: `2001:db8::60:443` would read as one address.
    def endpoint_run(sha256):
        return run([rf.tls(ip, 443, TG, group="dc", certs=[rf.certificate(TG, sha256=sha256)])])

    result = diff_runs(endpoint_run("cd" * 32), endpoint_run("ef" * 32))
    changed = [n for n in result.notable if n["kind"] == "certificate_changed"]
    assert changed == [
        {
            "kind": "certificate_changed",
            "target": rf.endpoint_id(ip, 443),
            "key": where,
            "before": ["cd" * 32],
            "after": ["ef" * 32],
        }
    ]


def failed_controls() -> list[dict]:
    """The healthy controls' records, every one failing: the vantage point was offline."""
    return [{**r, "failure": "generic_timeout_error"} for r in rf.healthy_controls()]


def dead_web():
    """What an offline vantage measures of the web target: every lookup times out."""
    timeout = "generic_timeout_error"
    return rf.domain_lookups(TG, None, None, probe_failure=timeout, control_failure=timeout)


def offline(**header):
    return analyse(rf.header(**header), failed_controls() + dead_web())


@pytest.mark.parametrize(
    ("old_offline", "new_offline", "runs"),
    [(True, True, ["old", "new"]), (False, True, ["new"]), (True, False, ["old"])],
)
def test_a_run_with_failed_controls_judged_nothing(old_offline, new_offline, runs):
    old = offline() if old_offline else run(ok_web())
    new = offline() if new_offline else run(ok_web())
    result = diff_runs(old, new)
    assert not result.judged()
    assert [u["run"] for u in result.unjudged] == runs
    assert all("no control measurement succeeded" in u["reason"] for u in result.unjudged)
    data = result.to_dict()
    assert data["judged"] is False and [u["run"] for u in data["unjudged"]] == runs


def test_healthy_runs_are_judged():
    result = diff_runs(run(ok_web()), run(sni_web()))
    assert result.judged() and result.unjudged == []
    assert result.to_dict()["judged"] is True


def test_a_run_without_controls_says_so():
    new = analyse(rf.header(), rf.tls_pair(GOOD, TG))
    result = diff_runs(run(ok_web()), new)
    assert [u["reason"].split(",")[0] for u in result.unjudged] == [
        "the run has no control measurements"
    ]
