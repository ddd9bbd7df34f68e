"""netprobe.model.target_ids: make -> parse round trips, labels, odd ids, address sources."""

from __future__ import annotations

import pytest

from netprobe.model.target_ids import (
    DOMAIN,
    ENDPOINT,
    ENDPOINT_SOURCE,
    OTHER,
    TargetId,
    address_source,
    address_source_role,
    domain_id,
    endpoint_id,
    endpoint_label,
    is_domain_id,
    is_endpoint_id,
    parse_target_id,
    target_label,
)
from netprobe.targets import lists

# (name given, id made, name parsed back)
DOMAINS = [
    ("telegram.org", "domain:telegram.org", "telegram.org"),
    ("Telegram.ORG.", "domain:telegram.org", "telegram.org"),
    ("xn--80ak6aa92e.com", "domain:xn--80ak6aa92e.com", "xn--80ak6aa92e.com"),
    ("a.b.c.example", "domain:a.b.c.example", "a.b.c.example"),
]

# (ip given, port, id made, ip parsed back, label)
ENDPOINTS = [
    ("149.154.167.51", 443, "endpoint:149.154.167.51:443", "149.154.167.51", "149.154.167.51:443"),
    ("1.1.1.1", 53, "endpoint:1.1.1.1:53", "1.1.1.1", "1.1.1.1:53"),
    ("2001:db8::1", 443, "endpoint:[2001:db8::1]:443", "2001:db8::1", "[2001:db8::1]:443"),
    (
        "2001:0DB8:0000:0000:0000:0000:0000:0001",
        5222,
        "endpoint:[2001:db8::1]:5222",
        "2001:db8::1",
        "[2001:db8::1]:5222",
    ),
    ("::1", 80, "endpoint:[::1]:80", "::1", "[::1]:80"),
    ("::ffff:192.0.2.1", 443, "endpoint:[::ffff:c000:201]:443", "::ffff:c000:201", None),
]

# Ids of a shape no netprobe writes: never an error, kind OTHER, labelled as themselves.
ODD_IDS = [
    "",
    "telegram.org",
    "endpoint:",
    "endpoint:1.2.3.4",
    "endpoint:1.2.3.4:https",
    "endpoint:[2001:db8::1]",
    "url:https://telegram.org/",
    "Domain:telegram.org",
]


@pytest.mark.parametrize(("name", "made", "parsed"), DOMAINS)
def test_domain_round_trip(name: str, made: str, parsed: str) -> None:
    assert domain_id(name) == made
    assert parse_target_id(made) == TargetId(DOMAIN, parsed, None, None)
    assert target_label(made) == parsed
    assert is_domain_id(made) and not is_endpoint_id(made)
    assert domain_id(parse_target_id(made).name or "") == made


@pytest.mark.parametrize(("ip", "port", "made", "parsed_ip", "label"), ENDPOINTS)
def test_endpoint_round_trip(
    ip: str, port: int, made: str, parsed_ip: str, label: str | None
) -> None:
    assert endpoint_id(ip, port) == made
    parsed = parse_target_id(made)
    assert parsed == TargetId(ENDPOINT, None, parsed_ip, port)
    assert endpoint_id(parsed.ip or "", parsed.port or 0) == made
    assert is_endpoint_id(made) and not is_domain_id(made)
    if label is not None:
        assert target_label(made) == label == endpoint_label(parsed_ip, port)


@pytest.mark.parametrize("odd", ODD_IDS)
def test_odd_ids_are_other_and_label_as_themselves(odd: str) -> None:
    assert parse_target_id(odd) == TargetId(OTHER, None, None, None)
    assert target_label(odd) == odd


def test_endpoint_with_a_non_address_still_parses() -> None:
    # Records written by other software may name a host: it is kept, not checked.
    assert parse_target_id("endpoint:dc.example:443") == TargetId(ENDPOINT, None, "dc.example", 443)


@pytest.mark.parametrize(("port", "label"), [(443, "[2001:db8::1]:443"), (None, "2001:db8::1")])
def test_endpoint_label_brackets_ipv6(port: int | None, label: str) -> None:
    assert endpoint_label("2001:db8::1", port) == label


def test_endpoint_id_rejects_a_non_address() -> None:
    with pytest.raises(ValueError):
        endpoint_id("telegram.org", 443)


def test_target_lists_use_the_same_functions() -> None:
    assert lists.domain_id is domain_id and lists.endpoint_id is endpoint_id


@pytest.mark.parametrize(
    ("label", "role"),
    [
        (address_source("control", "https://1.1.1.1/dns-query"), "control"),
        (address_source("probe", "system"), "probe"),
        ("probe:udp://[2001:db8::53]:53", "probe"),
        (ENDPOINT_SOURCE, ENDPOINT_SOURCE),
        ("endpoint:whatever", ENDPOINT_SOURCE),
        ("control", None),
        ("", None),
    ],
)
def test_address_sources(label: str, role: str | None) -> None:
    assert address_source_role(label) == role
