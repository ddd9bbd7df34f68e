"""Blockpage and sinkhole fingerprints: the matcher (tables), the YAML readers (bundled file and
a target list's `fingerprints:` key, with their errors) and the copy in a run's header."""

from __future__ import annotations

import pytest

from netprobe.model.fingerprints import (
    Fingerprint,
    from_header,
    match_address,
    match_http,
    merged,
)
from netprobe.run.header import build_header
from netprobe.targets.fingerprints import (
    FingerprintError,
    bundled_fingerprints,
    parse_fingerprint_file,
    run_fingerprints,
)
from netprobe.targets.lists import parse_targets
from netprobe.targets.yaml_reader import TargetError


def fp(location: str, pattern: str, pattern_type: str = "full", ident: str = "x") -> Fingerprint:
    return Fingerprint(ident, "blockpage of X", location, pattern_type, pattern)


def answer(**fields) -> dict:
    record = {
        "type": "http",
        "status": 200,
        "headers": {},
        "title": None,
        "body": None,
        "body_sha256": None,
    }
    record.update(fields)
    return record


# (fingerprint, record, matches?)
HTTP_CASES = [
    (fp("title", "access denied"), answer(title="Access  Denied"), True),  # case, spaces
    (fp("title", "access denied"), answer(title="Access Denied!"), False),  # full, not prefix
    (fp("title", "access", "prefix"), answer(title="Access Denied!"), True),
    (fp("title", "denied", "contains"), answer(title="Access Denied!"), True),
    (fp("title", "denied", "contains"), answer(title=None), False),
    (fp("body", "bị chặn", "contains"), answer(body="<p>Trang web bị chặn</p>"), True),
    (fp("body", "BỊ CHẶN", "contains"), answer(body="<p>Trang web bị chặn</p>"), False),  # exact
    (fp("body", "chặn", "contains"), answer(body=None), False),  # --no-bodies: nothing to see
    (
        fp("header.location", "http://warning.", "prefix"),
        answer(status=302, headers={"location": "http://warning.example/"}),
        True,
    ),
    (fp("header.Server", "lab-isp", "prefix"), answer(headers={"server": "Lab-ISP/1.0"}), True),
    (fp("header.set-cookie", "blockid"), answer(headers={"set-cookie": ["a", "BlockID"]}), True),
    (fp("body_sha256", "ab" * 32), answer(body_sha256="AB" * 32), True),
    (fp("body_sha256", "ab" * 32), answer(body_sha256="cd" * 32), False),
    (fp("title", "blocked"), answer(status=None, title="blocked"), False),  # no response
    (fp("dns", "192.0.2.1"), answer(title="192.0.2.1"), False),  # a dns fingerprint
]


@pytest.mark.parametrize(("fingerprint", "record", "matches"), HTTP_CASES)
def test_http_matcher(fingerprint: Fingerprint, record: dict, matches: bool) -> None:
    from netprobe.model.fingerprints import normalise_pattern

    normalised = Fingerprint(
        fingerprint.id,
        fingerprint.label,
        fingerprint.location,
        fingerprint.pattern_type,
        normalise_pattern(fingerprint.location, fingerprint.pattern_type, fingerprint.pattern),
    )
    assert (match_http([normalised], record) is normalised) is matches


def test_address_matcher_compares_normalised_addresses() -> None:
    sinkhole = fp("dns", "2001:db8::1")
    assert match_address([sinkhole], "2001:DB8:0:0::1") is sinkhole
    assert match_address([sinkhole], "2001:db8::2") is None
    assert match_address([sinkhole], "not an address") is None
    assert match_address([fp("title", "2001:db8::1")], "2001:db8::1") is None


def test_the_bundled_file_has_the_vietnamese_sinkholes_with_their_source() -> None:
    bundled = {f.pattern: f for f in bundled_fingerprints()}
    for address in ("125.212.224.108", "103.192.236.94"):
        assert bundled[address].location == "dns"
        assert bundled[address].country == "VN"
        assert "OONI" in bundled[address].source
    assert "VNPT" in bundled["125.212.224.108"].label


LIST = """\
groups:
  web: {domains: [telegram.org]}
fingerprints:
{entries}
"""


def test_a_target_list_names_its_own_fingerprints() -> None:
    entries = """\
  - {id: lab.blockpage, label: blockpage of the lab ISP, location: title,
     pattern: Blocked by order of the lab ISP, source: tests/lab/servers.py}
  - {id: lab.sinkhole, label: sinkhole of the lab ISP, location: dns, pattern: 192.0.2.66}
"""
    target_list = parse_targets(LIST.replace("{entries}", entries), "l.yaml")
    assert [f.id for f in target_list.fingerprints] == ["lab.blockpage", "lab.sinkhole"]
    assert target_list.fingerprints[0].pattern == "blocked by order of the lab isp"
    assert target_list.fingerprints[0].pattern_type == "full"


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (
            "  - {id: a, label: b, location: tittle, pattern: c}",
            "l.yaml:4: fingerprints[0].location: expected one of dns, title",
        ),
        (
            "  - {id: a, label: b, location: dns, pattern: not-an-ip}",
            "l.yaml:4: fingerprints[0].pattern: expected an IP address",
        ),
        (
            "  - {id: a, label: b, location: dns, pattern: 192.0.2.1, pattern_type: contains}",
            "l.yaml:4: fingerprints[0].pattern: a dns fingerprint matches in full only",
        ),
        (
            "  - {id: a, label: b, location: title, pattern: c, pattern_type: regex}",
            "l.yaml:4: fingerprints[0].pattern_type: expected one of full, contains, prefix",
        ),
        ("  - {id: a, label: b, location: title}", "l.yaml:4: fingerprints[0].pattern: missing"),
        (
            "  - {id: a, label: b, location: title, pattern: c, colour: red}",
            "l.yaml:4: fingerprints[0].colour: unknown key",
        ),
        (
            "  - {id: a, label: b, location: title, pattern: c}\n"
            "  - {id: a, label: d, location: title, pattern: e}",
            "l.yaml:5: fingerprints[1].id: duplicate id 'a' (first at line 4)",
        ),
        (
            "  - {id: a, label: b, location: body_sha256, pattern: abc}",
            "l.yaml:4: fingerprints[0].pattern: expected a SHA-256 in hex",
        ),
    ],
)
def test_bad_fingerprints_are_errors_naming_file_line_and_field(entries: str, message: str) -> None:
    with pytest.raises(TargetError) as caught:
        parse_targets(LIST.replace("{entries}", entries), "l.yaml")
    assert str(caught.value).startswith(message)


def test_a_bad_fingerprint_file_is_an_error_naming_its_line() -> None:
    with pytest.raises(FingerprintError) as caught:
        parse_fingerprint_file("fingerprints:\n  - {id: a, label: b}\n", "f.yaml")
    assert str(caught.value) == "f.yaml:2: fingerprints[0].location: missing"


def test_a_lists_fingerprint_replaces_the_bundled_one_with_its_id() -> None:
    ident = bundled_fingerprints()[0].id
    own = Fingerprint(ident, "my label", "dns", "full", "198.51.100.9")
    combined = run_fingerprints([[own]])
    assert [f for f in combined if f.id == ident] == [own]
    assert len(combined) == len(bundled_fingerprints())
    assert merged([fp("title", "a", ident="1")], [fp("title", "b", ident="2")])[1].pattern == "b"


def test_the_header_carries_the_runs_fingerprints_and_the_analysis_reads_them_back() -> None:
    from datetime import UTC, datetime

    from netprobe.model.resolvers import parse_resolver
    from netprobe.options import RunOptions

    entries = (
        "  - {id: lab.blockpage, label: blockpage of the lab ISP, location: title, pattern: X}"
    )
    target_list = parse_targets(LIST.replace("{entries}", entries), "l.yaml")
    header = build_header(
        [target_list],
        RunOptions(),
        [parse_resolver("udp://192.0.2.53")],
        [parse_resolver("https://192.0.2.54/dns-query")],
        datetime(2025, 5, 26, tzinfo=UTC),
        "0" * 32,
    )
    read_back = from_header(header)
    assert [f.id for f in read_back] == [*(f.id for f in bundled_fingerprints()), "lab.blockpage"]
    assert read_back[-1] == target_list.fingerprints[0]
    # A damaged entry is left out, never an exception: the file's other evidence still counts.
    damaged = dict(header, fingerprints=[{"id": "x"}, "text", *header["fingerprints"]])
    assert from_header(damaged) == read_back
    assert from_header({}) == ()
