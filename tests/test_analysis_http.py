"""Verdicts from http records and fingerprints (netprobe/analysis/http.py), as tables of runs:
what `netprobe report` says about a name for each combination of DNS answers, HTTP answers and
fingerprints. Records are hand-built (tests/recordfactory.py and `http` below)."""

from __future__ import annotations

import pytest

from netprobe.analysis import analyse
from netprobe.model.fingerprints import Fingerprint
from netprobe.model.records import measurement
from tests import recordfactory as rf

NAME = "telegram.org"
GENUINE = "203.0.113.10"  # the control resolver's answer (inside the expected ranges too)
GENUINE_OTHER = "203.0.113.20"  # inside the expected ranges, not a control answer
REDIRECT = "198.18.77.10"  # nothing vouches for it
SINKHOLE = "125.212.224.108"  # bundled: DNS sinkhole of VNPT
PROBE = f"probe:{rf.PROBE_RESOLVER}"
CONTROL = f"control:{rf.CONTROL_RESOLVER}"

LAB_PAGE = Fingerprint(
    "lab.blockpage", "blockpage of the lab ISP", "title", "full", "blocked by order of the lab isp"
)
VNPT = Fingerprint(
    "vn.vnpt_dns_sinkhole", "DNS sinkhole of VNPT (AS45899)", "dns", "full", SINKHOLE
)


def http(
    ip: str,
    sources: list[str],
    *,
    status: int | None = 200,
    title: str | None = "Telegram",
    failure: str | None = None,
    attempt: int = 0,
    hostname: str = NAME,
    role: str = "target",
    group: str = "web",
) -> dict:
    """An http record shaped as netprobe.probes.http writes it."""
    answered = failure is None
    return measurement(
        "http",
        target_id=f"domain:{hostname}",
        group=group,
        role=role,
        attempt=attempt,
        t0=0.4,
        t=0.45,
        failure=failure,
        failed_operation="http_round_trip" if failure else None,
        ip=ip,
        port=80,
        hostname=hostname,
        address_sources=sources,
        status=status if answered else None,
        headers={"server": "nginx"} if answered else {},
        title=title if answered else None,
        body_sha256=("ab" * 32) if answered else None,
        body_length=10 if answered else None,
        body_truncated=False,
        body="<html>" if answered else None,
    )


def header(*fingerprints: Fingerprint) -> dict:
    return rf.header(fingerprints=[f.to_dict() for f in fingerprints])


def controls(attempts: int = 1) -> list[dict]:
    records = rf.healthy_controls(attempts)
    for attempt in range(attempts):
        records.append(
            http(
                rf.CONTROL_IP,
                [CONTROL, PROBE],
                hostname=rf.CONTROL_DOMAIN,
                attempt=attempt,
                role="control",
                group="control",
                title="Control",
            )
        )
    return records


def verdict(head: dict, records: list[dict]) -> dict:
    return analyse(head, [*controls(), *records]).verdicts[f"domain:{NAME}"].to_dict()


def genuine_tls(ip: str = GENUINE, attempt: int = 0) -> list[dict]:
    return rf.tls_pair(ip, NAME, attempt=attempt)


# -- DNS sinkholes ---------------------------------------------------------------------------


def test_a_known_sinkhole_answer_is_blocked_dns_naming_the_fingerprint() -> None:
    records = [*rf.domain_lookups(NAME, [SINKHOLE], [GENUINE]), *genuine_tls()]
    found = verdict(header(VNPT), records)
    assert (found["status"], found["method"]) == ("blocked", "dns")
    assert (
        "DNS sinkhole of VNPT (AS45899) (fingerprint vn.vnpt_dns_sinkhole)" in found["evidence"][0]
    )
    assert SINKHOLE in found["evidence"][0]


def test_without_fingerprints_in_the_header_the_same_answer_is_not_called_a_sinkhole() -> None:
    records = [*rf.domain_lookups(NAME, [SINKHOLE], [GENUINE]), *genuine_tls()]
    found = verdict(rf.header(), records)  # an older file: no `fingerprints`
    assert not any("fingerprint" in line for line in found["evidence"])
    assert found["status"] != "blocked"  # nothing vouched either way: the old, cautious rule


# -- blockpages --------------------------------------------------------------------------------


def test_a_redirect_to_a_fingerprinted_blockpage_is_blocked_dns_and_says_which_page() -> None:
    records = [
        *rf.domain_lookups(NAME, [REDIRECT], [GENUINE]),
        *genuine_tls(),
        http(GENUINE, [CONTROL]),
        http(REDIRECT, [PROBE], status=403, title="Blocked by order of the lab ISP"),
    ]
    found = verdict(header(LAB_PAGE), records)
    assert (found["status"], found["method"]) == ("blocked", "dns")
    assert found["layers"]["http"] == "blocked"
    first = found["evidence"][0]
    assert "GET http://telegram.org/ at 198.18.77.10:80" in first
    assert '403 "Blocked by order of the lab ISP"' in first
    assert "blockpage of the lab ISP (fingerprint lab.blockpage)" in first


def test_a_fingerprinted_blockpage_on_a_genuine_address_is_blocked_http() -> None:
    records = [
        *rf.domain_lookups(NAME, [GENUINE], [GENUINE]),
        *genuine_tls(),
        http(GENUINE, [CONTROL, PROBE], status=403, title="Blocked by order of the lab ISP"),
    ]
    found = verdict(header(LAB_PAGE), records)
    assert (found["status"], found["method"]) == ("blocked", "http")
    assert "put in on the path" in found["evidence"][0]


def test_the_same_blockpage_without_a_fingerprint_is_not_a_block() -> None:
    records = [
        *rf.domain_lookups(NAME, [GENUINE], [GENUINE]),
        *genuine_tls(),
        http(GENUINE, [CONTROL, PROBE], status=403, title="Blocked by order of the lab ISP"),
    ]
    found = verdict(header(), records)
    assert (found["status"], found["method"]) == ("ok", None)
    assert found["layers"]["http"] == "ok"


# -- a genuine address's page that the control contradicts -----------------------------------

DIFFERENCE_CASES = [
    # (probe address's status, title, control page's status, title, expected http layer)
    (403, "Forbidden", 301, "301 Moved Permanently", "blocked"),
    (403, None, 301, "301 Moved Permanently", "blocked"),
    (301, "Other", 301, "301 Moved Permanently", "ok"),  # same status: not different enough
    (403, "301 Moved Permanently", 301, "301 Moved Permanently", "ok"),  # same title
]


@pytest.mark.parametrize(("status", "title", "c_status", "c_title", "layer"), DIFFERENCE_CASES)
def test_a_genuine_address_differing_in_status_and_title_from_the_control_is_http(
    status: int, title: str | None, c_status: int, c_title: str, layer: str
) -> None:
    records = [
        *rf.domain_lookups(NAME, [GENUINE_OTHER], [GENUINE]),
        *genuine_tls(),
        http(GENUINE, [CONTROL], status=c_status, title=c_title),
        http(GENUINE_OTHER, [PROBE], status=status, title=title),
    ]
    found = verdict(header(), records)
    assert found["layers"]["http"] == layer
    if layer == "blocked":
        assert (found["status"], found["method"]) == ("blocked", "http")
        assert "the control answers' page is 301" in found["evidence"][0]
    else:
        assert found["status"] == "ok"


def test_no_verdict_when_the_control_addresses_disagree_among_themselves() -> None:
    records = [
        *rf.domain_lookups(NAME, [GENUINE_OTHER], [GENUINE, "203.0.113.11"]),
        *genuine_tls(),
        http(GENUINE, [CONTROL], status=301, title="Moved"),
        http("203.0.113.11", [CONTROL], status=200, title="Telegram"),
        http(GENUINE_OTHER, [PROBE], status=403, title="Forbidden"),
    ]
    assert verdict(header(), records)["layers"]["http"] == "ok"


def test_a_differing_page_on_an_unvouched_address_is_left_to_the_dns_layer() -> None:
    records = [
        *rf.domain_lookups(NAME, [REDIRECT], [GENUINE]),
        *genuine_tls(),
        http(GENUINE, [CONTROL], status=301, title="Moved"),
        http(REDIRECT, [PROBE], status=403, title="Forbidden"),
    ]
    found = verdict(header(), records)
    assert found["layers"]["http"] == "ok"  # the control address answered: not an http block
    assert any("403" in line and "control answers' page" in line for line in found["evidence"])


# -- what the http layer never does ----------------------------------------------------------


def test_failed_requests_never_block_and_never_make_a_working_name_inconclusive() -> None:
    records = [
        *rf.domain_lookups(NAME, [GENUINE], [GENUINE]),
        *genuine_tls(),
        http(GENUINE, [CONTROL, PROBE], failure="connection_reset"),
    ]
    found = verdict(header(LAB_PAGE), records)
    assert (found["status"], found["method"]) == ("ok", None)
    assert found["layers"]["http"] == "inconclusive"
    assert any("connection_reset (not evidence on its own)" in line for line in found["evidence"])


def test_a_blockpage_in_one_attempt_of_three_is_not_a_block() -> None:
    records = []
    for attempt in range(3):
        records += rf.domain_lookups(NAME, [GENUINE], [GENUINE], attempt=attempt)
        records += genuine_tls(attempt=attempt)
        title = "Blocked by order of the lab ISP" if attempt == 0 else "Telegram"
        records.append(http(GENUINE, [CONTROL, PROBE], title=title, attempt=attempt))
    target = analyse(header(LAB_PAGE), [*controls(3), *records]).verdicts[f"domain:{NAME}"]
    assert (target.status, target.layers["http"]) == ("ok", "ok")
    assert target.scores["http"] == pytest.approx(1 / 3, abs=1e-3)


def test_a_run_without_http_records_has_no_http_layer() -> None:
    records = [*rf.domain_lookups(NAME, [GENUINE], [GENUINE]), *genuine_tls()]
    found = analyse(header(LAB_PAGE), [*rf.healthy_controls(), *records]).verdicts
    assert "http" not in found[f"domain:{NAME}"].layers
    assert set(found[f"domain:{NAME}"].layers) == {"dns", "tcp", "tls"}
