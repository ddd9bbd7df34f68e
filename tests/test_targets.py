"""Target-list parsing: errors with file:line:field, sampling, laziness, dedupe, the bundled list."""

from __future__ import annotations

import ipaddress
import itertools
import textwrap
from pathlib import Path

import pytest

from netprobe.targets.lists import (
    TargetError,
    bundled_targets_path,
    domain_id,
    endpoint_id,
    load_targets,
    parse_targets,
)

REPO = Path(__file__).resolve().parent.parent


def parse(yaml_text: str):
    return parse_targets(textwrap.dedent(yaml_text), "t.yaml")


def parse_error(yaml_text: str) -> str:
    with pytest.raises(TargetError) as caught:
        parse(yaml_text)
    return str(caught.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "groups:\n  web:\n    domains: [example.com]\n    ports: '443,80'\n",
            't.yaml:4: groups.web.ports: expected a list of integers 1-65535, got "443,80"',
        ),
        (
            "groups:\n  web:\n    domains: [example.com]\n    ports: [443, 70000]\n",
            "t.yaml:4: groups.web.ports: expected a list of integers 1-65535, got [443, 70000]",
        ),
        (
            "groups:\n  web:\n    domain: [example.com]\n",
            't.yaml:3: groups.web.domain: unknown key; did you mean "domains"?',
        ),
        (
            "groups:\n  web:\n    domains: [example.com]\nsetings: {}\n",
            't.yaml:4: setings: unknown key; did you mean "settings"?',
        ),
        (
            "groups:\n  web:\n    domains: [example.com]\n    colour: red\n",
            "t.yaml:4: groups.web.colour: unknown key (allowed: label, domains, ports,"
            " endpoints, ranges, expected, download)",
        ),
        (
            "groups:\n  web:\n    domains:\n      - example.com\n      - not a name\n",
            't.yaml:5: groups.web.domains: expected a domain name like "example.com",'
            ' got "not a name"',
        ),
        (
            "groups:\n  web:\n    domains: [192.0.2.1]\n",
            't.yaml:3: groups.web.domains: expected a domain name, got the address "192.0.2.1"',
        ),
        (
            "groups:\n  a:\n    domains: [example.com]\n  b:\n    domains: [Example.COM.]\n",
            't.yaml:5: groups.b.domains: duplicate domain "example.com" (first at line 3)',
        ),
        (
            "groups:\n  dc:\n    endpoints:\n      - 192.0.2.1\n",
            't.yaml:4: groups.dc.endpoints: expected "ip:port" or "[ipv6]:port", got "192.0.2.1"',
        ),
        (
            "groups:\n  dc:\n    endpoints:\n      - [2001:db8::1]:443\n",
            "t.yaml:4: invalid YAML: expected <block end>, but found '<scalar>';"
            ' quote IPv6 endpoints: "[2001:db8::1]:443"',
        ),
        (
            "groups:\n  dc:\n    endpoints:\n      - [2001:db8::1]\n",
            't.yaml:4: groups.dc.endpoints: expected "ip:port"; quote IPv6 endpoints:'
            ' "[2001:db8::1]:443"',
        ),
        (
            "groups:\n  dc:\n    endpoints: ['2001:db8::1']\n",
            't.yaml:3: groups.dc.endpoints: expected "ip:port" or "[ipv6]:port";'
            ' write IPv6 as "[2001:db8::1]:443"',
        ),
        (
            "groups:\n  dc:\n    endpoints: [192.0.2.1:0]\n",
            't.yaml:3: groups.dc.endpoints: port must be 1-65535, got "192.0.2.1:0"',
        ),
        (
            "groups:\n  dc:\n    endpoints: [host.example:443]\n",
            't.yaml:3: groups.dc.endpoints: expected "ip:port" or "[ipv6]:port" with an IP'
            ' address, got "host.example:443"',
        ),
        (
            "groups:\n  dc:\n    endpoints:\n      - {address: 192.0.2.1:443, sin: a.example}\n",
            't.yaml:4: groups.dc.endpoints.sin: unknown key; did you mean "sni"?',
        ),
        (
            "groups:\n  dc:\n    endpoints:\n      - 192.0.2.1:443\n      - 192.0.2.1:443\n",
            "t.yaml:5: groups.dc.endpoints: duplicate endpoint (first at line 4)",
        ),
        (
            "groups:\n  r:\n    ranges:\n      - {cidr: 192.0.2.1/24, sample: 2}\n",
            't.yaml:4: groups.r.ranges.cidr: "192.0.2.1/24" has host bits set;'
            ' did you mean "192.0.2.0/24"?',
        ),
        (
            "groups:\n  r:\n    ranges:\n      - {cidr: 192.0.2.0/24, sample: some}\n",
            't.yaml:4: groups.r.ranges.sample: expected a positive integer or "all", got "some"',
        ),
        (
            "groups:\n  r:\n    ranges:\n      - {cidr: 192.0.2.0/24}\n",
            't.yaml:4: groups.r.ranges.sample: missing; expected a positive integer or "all"',
        ),
        (
            "groups:\n  r:\n    ranges:\n      - {cidr: 192.0.2.0/24, sample: 0}\n",
            't.yaml:4: groups.r.ranges.sample: expected a positive integer or "all", got 0',
        ),
        (
            "groups:\n  r:\n    ranges:\n      - {cidr: 192.0.2.0/24, sample: 1}\n"
            "      - {cidr: 192.0.2.128/25, sample: 1}\n",
            "t.yaml:5: groups.r.ranges.cidr: 192.0.2.128/25 overlaps 192.0.2.0/24 (line 4)",
        ),
        (
            "expected_ranges:\n  cdn: [192.0.2.0/24]\ngroups:\n  web:\n"
            "    domains: [example.com]\n    expected: cnd\n",
            't.yaml:6: groups.web.expected: "cnd" is not in expected_ranges; did you mean "cdn"?',
        ),
        (
            "groups:\n  web:\n    label: only a label\n",
            "t.yaml:3: groups.web: expected at least one of domains, endpoints, ranges",
        ),
        (
            "groups:\n  control:\n    domains: [example.com]\n",
            't.yaml:3: groups.control: group names are letters, digits, "_", "-", "."'
            ' and not "control"',
        ),
        ("name: x\n", "t.yaml:1: groups: missing; expected a mapping of group name -> targets"),
        ("", "t.yaml: empty file; expected a mapping with groups"),
        ("- just\n- a list\n", "t.yaml:1: expected a mapping, got a list"),
        (
            "groups:\n  web:\n    domains: [example.com\n",
            "t.yaml:4: invalid YAML: expected ',' or ']', but got '<stream end>'",
        ),
        (
            "groups:\n  web:\n    domains: [example.com]\n  web:\n    domains: [example.net]\n",
            "t.yaml:4: groups.web: duplicate key (first at line 3)",
        ),
        (
            "settings:\n  timeout: soon\ngroups:\n  web:\n    domains: [example.com]\n",
            't.yaml:2: settings.timeout: expected a number of seconds from 0.05 to 600, got "soon"',
        ),
        (
            "settings:\n  repeat: 1.5\ngroups:\n  web:\n    domains: [example.com]\n",
            "t.yaml:2: settings.repeat: expected a whole number from 1 to 100, got 1.5",
        ),
        # The bounds are the flags' bounds (netprobe.options), not just "positive".
        (
            "settings:\n  concurrency: 100000000\ngroups:\n  web:\n    domains: [example.com]\n",
            "t.yaml:2: settings.concurrency: expected a whole number from 1 to 10000,"
            " got 100000000",
        ),
        (
            "settings:\n  timeout: .inf\ngroups:\n  web:\n    domains: [example.com]\n",
            "t.yaml:2: settings.timeout: expected a number of seconds from 0.05 to 600, got inf",
        ),
        (
            "settings:\n  vantage: x\ngroups:\n  web:\n    domains: [example.com]\n",
            "t.yaml:2: settings.vantage: unknown key (allowed: timeout, concurrency, repeat,"
            " deadline, udp_wait, confirm, confirm_spacing, control_interval, residual_pause,"
            " throughput_bytes, throughput_seconds,"
            " max_addresses_per_domain, ports)",
        ),
        (
            "groups:\n  web:\n    domains: [example.com]\ncontrols:\n  resolvers: [8.8.8.8]\n",
            't.yaml:5: controls.resolvers: expected "system" or a udp://, tcp://, tls:// or'
            ' https:// resolver, got "8.8.8.8"',
        ),
        (
            "groups:\n  r:\n    ranges:\n      - {cidr: 192.0.2.0/24, sample: all}\n"
            "controls:\n  endpoints: [192.0.2.7:443]\n",
            "t.yaml:6: controls.endpoints: 192.0.2.7:443 is also probed by range 192.0.2.0/24"
            " of group 'r'; a control cannot also be a target",
        ),
        (
            "groups:\n  web:\n    domains: [example.com]\ncontrols:\n  domains: [example.com]\n",
            't.yaml:5: controls.domains: duplicate domain "example.com" (first at line 3)',
        ),
        # Silent addresses: IP addresses (no port, no name), each once, at least one.
        (
            "groups:\n  web:\n    domains: [example.com]\ncontrols:\n"
            "  silent_addresses: [192.0.2.9, 192.0.2.9:53]\n",
            't.yaml:5: controls.silent_addresses: expected an IP address like "192.0.2.1" or'
            ' "2001:db8::1", got "192.0.2.9:53"',
        ),
        (
            "groups:\n  web:\n    domains: [example.com]\ncontrols:\n  silent_addresses:\n"
            "    - 192.0.2.9\n    - dns.example\n",
            't.yaml:7: controls.silent_addresses: expected an IP address like "192.0.2.1" or'
            ' "2001:db8::1", got "dns.example"',
        ),
        (
            "groups:\n  web:\n    domains: [example.com]\ncontrols:\n  silent_addresses:\n"
            "    - 2001:db8::9\n    - 2001:DB8:0::9\n",
            't.yaml:7: controls.silent_addresses: duplicate address "2001:db8::9" (first at line 6)',
        ),
        (
            "groups:\n  web:\n    domains: [example.com]\ncontrols:\n  silent_addresses: []\n",
            "t.yaml:5: controls.silent_addresses: expected a non-empty list of IP addresses",
        ),
        (
            "groups:\n  web:\n    domains: [example.com]\ncontrols:\n  silent_addresses: 192.0.2.9\n",
            't.yaml:5: controls.silent_addresses: expected a list of IP addresses, got "192.0.2.9"',
        ),
        (
            "groups:\n  web:\n    domains: [example.com]\ncontrols:\n  silent_addresses: [7]\n",
            't.yaml:5: controls.silent_addresses: expected an IP address like "192.0.2.1" or'
            ' "2001:db8::1", got 7',
        ),
    ],
)
def test_parse_errors_name_file_line_and_field(text: str, expected: str) -> None:
    assert parse_error(text) == expected


def test_error_attributes() -> None:
    with pytest.raises(TargetError) as caught:
        parse("groups:\n  web:\n    domains: [example.com]\n    ports: [0]\n")
    error = caught.value
    assert (error.filename, error.line, error.field) == ("t.yaml", 4, "groups.web.ports")
    assert isinstance(error, ValueError)


def test_full_example_parses_into_the_model() -> None:
    target_list = load_targets(REPO / "targets" / "example.yaml")
    assert target_list.name == "example"
    assert len(target_list.sha256) == 64
    web = target_list.groups["web"]
    assert [d.name for d in web.domains] == ["example.com", "www.example.net"]
    assert web.domains[0].ports == (443, 8443)
    assert web.domains[0].expected == "example-cdn"
    assert web.domains[0].target_id == "domain:example.com"
    servers = target_list.groups["servers"].endpoints
    assert [(e.ip, e.port, e.sni) for e in servers] == [
        ("198.51.100.10", 443, None),
        ("2001:db8:2::10", 443, None),
        ("198.51.100.11", 443, "www.example.org"),
    ]
    assert servers[1].target_id == "endpoint:[2001:db8:2::10]:443"
    assert target_list.settings["timeout"] == 5
    assert target_list.settings["deadline"] == 600
    controls = target_list.controls
    assert [d.group for d in controls.domains] == ["control"]
    assert {e.role for e in controls.endpoints} == {"control"}
    assert controls.sni == "example.org"
    assert controls.resolvers == ["https://192.0.2.53/dns-query", "udp://198.51.100.53:53"]
    assert target_list.group_info() == {
        "web": {"label": "Example web names", "kind": "domain", "expected": "example-cdn"},
        "servers": {"label": "Example servers", "kind": "endpoint", "expected": None},
        "netblock": {
            "label": "Example address ranges",
            "kind": "range",
            "expected": None,
            "ranges": ["203.0.113.0/24", "198.51.100.64/29", "2001:db8:3::/64"],
        },
    }
    # 4 sampled + 6 hosts of a /29 on 2 ports + 2 sampled v6
    assert target_list.counts()["range_endpoints"] == 4 + 6 * 2 + 2
    endpoints = list(target_list.iter_endpoints())
    assert len(endpoints) == 3 + 18 + 2
    assert endpoints[-1].target_id == "endpoint:[2001:db8::53]:443"


def test_defaults_label_name_ports_and_max_addresses() -> None:
    target_list = parse_targets("groups:\n  web:\n    domains: [example.com]\n", "dir/mine.yaml")
    assert target_list.name == "mine"
    assert target_list.groups["web"].label == "web"
    assert target_list.groups["web"].domains[0].ports == (443,)
    assert target_list.settings == {"max_addresses_per_domain": 4}
    assert target_list.controls.sni is None and target_list.controls.resolvers == []


def test_settings_udp_wait_zero_means_no_wait_and_values_stay_as_written() -> None:
    target_list = parse_targets(
        "settings: {udp_wait: 0, deadline: 120, timeout: 1.5}\n"
        "groups:\n  web:\n    domains: [example.com]\n",
        "t.yaml",
    )
    assert target_list.settings["udp_wait"] == 0
    # Whole numbers stay ints: the result header shows them as the list wrote them.
    assert type(target_list.settings["deadline"]) is int
    assert target_list.settings["timeout"] == 1.5


def test_settings_ports_are_the_default_for_groups_and_ranges() -> None:
    target_list = parse(
        """
        settings: {ports: [8443]}
        groups:
          web: {domains: [example.com]}
          r: {ranges: [{cidr: 192.0.2.0/30, sample: all}]}
        """
    )
    assert target_list.groups["web"].domains[0].ports == (8443,)
    assert [e.target_id for e in target_list.iter_endpoints()] == [
        "endpoint:192.0.2.1:8443",
        "endpoint:192.0.2.2:8443",
    ]


@pytest.mark.parametrize(
    ("cidr", "sample", "expected_size"),
    [
        ("192.0.2.0/24", 4, 4),
        ("192.0.2.0/30", 10, 2),  # sample > hosts: every host, no network/broadcast
        ("192.0.2.0/31", 5, 2),  # /31: both addresses are hosts (RFC 3021)
        ("192.0.2.9/32", 3, 1),
        ("2001:db8::/32", 2, 2),
        ("2001:db8::1/128", 2, 1),
        ("2001:db8::/126", 9, 4),
    ],
)
def test_sampling_is_deterministic_sorted_and_inside_the_range(
    cidr: str, sample: int, expected_size: int
) -> None:
    text = f"groups:\n  r:\n    ranges:\n      - {{cidr: '{cidr}', sample: {sample}}}\n"
    first = [e.ip for e in parse_targets(text, "a.yaml").iter_endpoints()]
    second = [e.ip for e in parse_targets(text, "b.yaml").iter_endpoints()]
    assert first == second
    assert len(first) == len(set(first)) == expected_size
    network = ipaddress.ip_network(cidr)
    addresses = [ipaddress.ip_address(ip) for ip in first]
    assert addresses == sorted(addresses)
    assert all(address in network for address in addresses)
    if network.version == 4 and network.prefixlen < 31:
        assert network.network_address not in addresses
        assert network.broadcast_address not in addresses


def test_different_cidrs_get_different_samples() -> None:
    target_list = parse(
        """
        groups:
          r:
            ranges:
              - {cidr: 198.18.0.0/24, sample: 3}
              - {cidr: 198.18.1.0/24, sample: 3}
        """
    )
    a, b = (list(spec.addresses()) for spec in target_list.groups["r"].ranges)
    assert [ip.rsplit(".", 1)[1] for ip in a] != [ip.rsplit(".", 1)[1] for ip in b]


def test_sample_all_on_a_slash_8_is_lazy() -> None:
    target_list = parse("groups:\n  r:\n    ranges: [{cidr: 10.0.0.0/8, sample: all}]\n")
    first = list(itertools.islice(target_list.iter_endpoints(), 3))
    assert [e.ip for e in first] == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    counts = target_list.counts()
    assert counts["range_endpoints"] == 2**24 - 2  # counted, not iterated
    spec = target_list.groups["r"].ranges[0]
    assert spec.contains("10.255.255.254") and not spec.contains("10.255.255.255")


def test_range_samples_equal_to_explicit_endpoints_are_deduplicated() -> None:
    target_list = parse(
        """
        groups:
          dc:
            endpoints: [192.0.2.1:443, "192.0.2.2:80"]
          r:
            ranges: [{cidr: 192.0.2.0/29, sample: all, ports: [443, 80]}]
        controls:
          endpoints: ["[2001:db8::53]:443"]
        """
    )
    endpoints = list(target_list.iter_endpoints())
    ids = [e.target_id for e in endpoints]
    assert len(ids) == len(set(ids))
    assert ids[:2] == ["endpoint:192.0.2.1:443", "endpoint:192.0.2.2:80"]
    assert endpoints[0].group == "dc"  # the explicit entry wins over the range sample
    assert "endpoint:192.0.2.1:80" in ids and "endpoint:192.0.2.2:443" in ids
    assert len(ids) == 2 + (6 * 2 - 2) + 1
    assert target_list.counts()["range_endpoints"] == 6 * 2 - 2
    assert endpoints[-1].role == "control" and endpoints[-1].group == "control"


def test_ipv6_endpoints_are_normalised() -> None:
    target_list = parse(
        """
        groups:
          dc:
            endpoints:
              - "[2001:DB8:0:0::1]:443"
              - {address: "[2001:db8::2]:8443", sni: Www.Example.COM}
        """
    )
    first, second = target_list.groups["dc"].endpoints
    assert (first.ip, first.target_id) == ("2001:db8::1", "endpoint:[2001:db8::1]:443")
    assert (second.port, second.sni) == (8443, "www.example.com")


@pytest.mark.parametrize(
    ("ip", "port", "expected"),
    [
        ("192.0.2.1", 443, "endpoint:192.0.2.1:443"),
        ("2001:0db8::0001", 80, "endpoint:[2001:db8::1]:80"),
    ],
)
def test_endpoint_id(ip: str, port: int, expected: str) -> None:
    assert endpoint_id(ip, port) == expected


def test_domain_id_is_lower_case_without_trailing_dot() -> None:
    assert domain_id("Telegram.ORG.") == "domain:telegram.org"


def test_domains_lists_targets_then_controls() -> None:
    target_list = parse(
        """
        groups:
          a: {domains: [example.com]}
          b: {domains: [example.net], ports: [8443]}
        controls: {domains: [example.org]}
        """
    )
    assert [(d.name, d.group, d.role) for d in target_list.domains()] == [
        ("example.com", "a", "target"),
        ("example.net", "b", "target"),
        ("example.org", "control", "control"),
    ]
    # Targets once (repeat 1), controls at the start and at the end of the run; A and AAAA.
    assert target_list.counts()["dns_queries_per_resolver"] == (2 + 1 * 2) * 2


def test_counts_follow_the_plan_repeat_control_rounds_and_silent_queries() -> None:
    target_list = parse(
        """
        settings: {repeat: 3}
        groups:
          web: {domains: [a.example, b.example]}
          dc: {endpoints: [192.0.2.1:443, "192.0.2.1:80", 192.0.2.2:443, 192.0.2.3:443]}
        controls:
          domains: [c.example]
          endpoints: [198.51.100.1:443]
        """
    )
    counts = target_list.counts()
    assert counts["dns_queries_per_resolver"] == (2 * 3 + 1 * 2) * 2
    assert counts["endpoint_probes"] == 4 * 3 + 1 * 2
    # No silent_addresses: the first two distinct explicit endpoint addresses stand in.
    assert target_list.silent_addresses() == ["192.0.2.1", "192.0.2.2"]
    assert counts["silent_queries"] == 2 * 2 * 3


def test_silent_addresses_are_read_normalised_and_win_over_the_endpoints() -> None:
    target_list = parse(
        """
        groups:
          web: {domains: [a.example]}
          dc: {endpoints: [192.0.2.1:443]}
        controls:
          silent_addresses: [198.51.100.7, "2001:DB8:0::7"]
        """
    )
    assert target_list.controls.silent_addresses == ["198.51.100.7", "2001:db8::7"]
    assert target_list.silent_addresses() == ["198.51.100.7", "2001:db8::7"]
    bare = parse("groups:\n  web: {domains: [a.example]}\n")
    assert bare.silent_addresses() == [] and bare.counts()["silent_queries"] == 0


def test_mixed_group_kind() -> None:
    target_list = parse("groups:\n  m: {domains: [example.com], endpoints: [192.0.2.1:443]}\n")
    assert target_list.group_info()["m"]["kind"] == "mixed"


@pytest.mark.parametrize(
    ("make_path", "message"),
    [
        (lambda tmp: tmp / "missing.yaml", "missing.yaml: no such file"),
        (lambda tmp: tmp, "is a directory, expected a YAML file"),
    ],
)
def test_unreadable_files_are_target_errors(tmp_path: Path, make_path, message: str) -> None:
    with pytest.raises(TargetError, match=message):
        load_targets(make_path(tmp_path))


def test_non_utf8_file_is_a_target_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"groups:\n  web:\n    label: \xff\n")
    with pytest.raises(TargetError, match=r"bad.yaml:3: not valid UTF-8"):
        load_targets(path)


def test_bundled_list_has_the_groups_and_counts_the_issue_asks_for() -> None:
    path = bundled_targets_path()
    assert path.name == "telegram.yaml" and path.is_file()
    target_list = load_targets(path)
    assert path.read_bytes() == (REPO / "targets" / "telegram.yaml").read_bytes()
    assert target_list.name == "telegram"
    assert list(target_list.groups) == ["web", "dc", "ranges"]
    counts = target_list.counts()
    assert counts["domains"] == 14
    # 7 IPv4 DC addresses x ports 443, 80, 5222, and 5 IPv6 DC addresses (issue 13) on 443
    assert counts["endpoints"] == 7 * 3 + 5  # IPv6 DCs: port 443, as the clients list them
    assert counts["ranges"] == 14  # 9 v4 + 5 v6 published ranges
    assert counts["control_domains"] >= 3 and counts["control_endpoints"] >= 3
    # A default run stays small: ranges are sampled, not swept.
    assert counts["range_endpoints"] <= 40 and counts["endpoint_probes"] < 150
    dc = target_list.groups["dc"].endpoints
    assert all(e.sni is None for e in dc)  # MTProto on 443 is not TLS
    assert {e.port for e in dc} == {443, 80, 5222}
    assert {e.ip for e in dc if ":" in e.ip} == {
        "2001:b28:f23d:f001::a",
        "2001:67c:4e8:f002::a",
        "2001:b28:f23d:f003::a",
        "2001:67c:4e8:f004::a",
        "2001:b28:f23f:f005::a",
    }
    nets = [ipaddress.ip_network(c) for c in target_list.expected_ranges["telegram"]]
    assert all(any(ipaddress.ip_address(e.ip) in n for n in nets) for e in dc)  # all published
    assert target_list.groups["web"].expected == "telegram"
    expected = target_list.expected_ranges["telegram"]
    assert "95.161.64.0/20" in expected and "2a0a:f280::/32" in expected
    assert len(expected) == 15
    v4 = [ipaddress.ip_network(c) for c in expected if ":" not in c and c != "95.161.64.0/20"]
    assert sum(n.num_addresses for n in v4) == 11008
    assert target_list.controls.resolvers == [
        "https://1.1.1.1/dns-query",
        "https://8.8.8.8/dns-query",
    ]
    assert target_list.controls.sni
    assert any(":" in e.ip for e in target_list.controls.endpoints)


def test_readme_example_parses() -> None:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Target lists", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    target_list = parse_targets(example, "readme.yaml")
    assert set(target_list.groups) == {"web", "servers", "netblock"}
