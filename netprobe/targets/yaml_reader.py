"""Validation of target-list YAML into plain, checked values (helper of `netprobe.targets.lists`).

Rules:
- Works on the `yaml.compose` node tree so every error can name its line (1-based); the generic
  walking (mappings, unknown and duplicate keys, syntax errors) is `netprobe.yamlfile`, shared
  with the config file.
- `settings:` values are checked by the run-option table (`netprobe.options`), so a list accepts
  exactly what the flags and the config file accept.
- Pure: text in, `ParsedDocument` out, `TargetError` on the first problem.
- Scalars are typed by PyYAML's safe constructor (so `443` is an int and `"443"` a string);
  every check says what it expected and shows what it got.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from netprobe.model.fingerprints import Fingerprint
from netprobe.options import LIST, LIST_ONLY_SETTINGS, OptionError, Origin, check, names
from netprobe.targets.downloads import parse_download
from netprobe.targets.fingerprints import parse_fingerprint_list
from netprobe.yamlfile import NodeReader, YamlFileError, shown
from netprobe.yamlfile import line_of as _line


class TargetError(YamlFileError):
    """A bad target list: `str(e)` is `file:line: field: message`."""


TOP_KEYS: tuple[str, ...] = ("name", "description", "settings", "expected_ranges", "groups")
TOP_KEYS += ("controls", "fingerprints")  # fingerprints: issue 13, targets/fingerprints.py
GROUP_KEYS = ("label", "domains", "ports", "endpoints", "ranges", "expected", "download")
RANGE_KEYS = ("cidr", "ports", "sample", "sni")
ENDPOINT_KEYS = ("address", "sni")
CONTROL_KEYS = ("domains", "endpoints", "sni", "resolvers", "silent_addresses", "download")
# Run options a list may set (rules from `netprobe.options`), plus the list's default ports.
SETTING_KEYS = names(LIST) + LIST_ONLY_SETTINGS
RESOLVER_SCHEMES = ("udp://", "tcp://", "tls://", "https://")
GROUP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
UNQUOTED_V6_ENDPOINT = re.compile(r"(?<![\"'])\[[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*\]:\d")
PORTS_EXPECTED = "expected a list of integers 1-65535"


@dataclass
class RawGroup:
    name: str
    label: str
    expected: str | None
    ports: tuple[int, ...]
    domains: list[str] = field(default_factory=list)
    endpoints: list[tuple[str, int, str | None]] = field(default_factory=list)
    ranges: list[tuple[str, tuple[int, ...], int | None, str | None]] = field(default_factory=list)
    downloads: dict[str, str] = field(default_factory=dict)  # domain -> path (targets.downloads)


@dataclass
class ParsedDocument:
    name: str | None = None
    description: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    default_ports: tuple[int, ...] = (443,)
    expected_ranges: dict[str, list[str]] = field(default_factory=dict)
    groups: list[RawGroup] = field(default_factory=list)
    control_domains: list[str] = field(default_factory=list)
    control_endpoints: list[tuple[str, int, str | None]] = field(default_factory=list)
    control_endpoint_lines: list[int] = field(default_factory=list)
    control_sni: str | None = None
    control_resolvers: list[str] = field(default_factory=list)
    silent_addresses: list[str] = field(default_factory=list)
    fingerprints: list[Fingerprint] = field(default_factory=list)
    control_downloads: dict[str, str] = field(default_factory=dict)  # domain -> path


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class _Reader(NodeReader):
    """The shared node walker plus target-list values: ports, names, endpoints, networks."""

    error_class = TargetError

    def __init__(self, text: str, filename: str):
        super().__init__(text, filename)
        self.seen_domains: dict[str, int] = {}
        self.seen_endpoints: dict[tuple[str, int], int] = {}
        self.seen_ranges: list[tuple[ipaddress._BaseNetwork, int]] = []

    def syntax_hint(self, source_line: str) -> str:
        if UNQUOTED_V6_ENDPOINT.search(source_line):
            return '; quote IPv6 endpoints: "[2001:db8::1]:443"'
        return ""

    def ports(self, node: Node, path: str) -> tuple[int, ...]:
        if isinstance(node, SequenceNode):
            ports = [self.value(item) for item in node.value]
            if ports and all(_is_int(p) and 1 <= p <= 65535 for p in ports):
                if len(set(ports)) != len(ports):
                    raise self.error(node, path, f"{PORTS_EXPECTED} without repeats, got {ports}")
                return tuple(ports)
            raise self.error(node, path, f"{PORTS_EXPECTED}, got {shown(ports)}")
        raise self.error(node, path, f"{PORTS_EXPECTED}, got {self.describe(node)}")

    def hostname(self, node: Node, path: str) -> str:
        raw = self.text(node, path, "a domain name")
        name = raw.lower().rstrip(".")
        try:
            ipaddress.ip_address(name.strip("[]"))
        except ValueError:
            pass
        else:
            raise self.error(node, path, f'expected a domain name, got the address "{raw}"')
        try:
            ascii_name = name.encode("idna").decode("ascii")
        except UnicodeError:
            ascii_name = ""
        labels = ascii_name.split(".")
        if not ascii_name or len(ascii_name) > 253 or not all(LABEL.match(x) for x in labels):
            raise self.error(node, path, f'expected a domain name like "example.com", got "{raw}"')
        return ascii_name

    def domain(self, node: Node, path: str) -> str:
        name = self.hostname(node, path)
        if name in self.seen_domains:
            first = self.seen_domains[name]
            raise self.error(node, path, f'duplicate domain "{name}" (first at line {first})')
        self.seen_domains[name] = _line(node)
        return name

    def endpoint(self, node: Node, path: str) -> tuple[str, int, str | None]:
        sni = None
        address_node = node
        if isinstance(node, MappingNode):
            fields = self.mapping(node, path, ENDPOINT_KEYS)
            if "address" not in fields:
                raise self.error(node, f"{path}.address", 'missing; expected "ip:port"')
            address_node = fields["address"]
            path = f"{path}.address"
            if "sni" in fields:
                sni = self.hostname(fields["sni"], path.removesuffix(".address") + ".sni")
        elif isinstance(node, SequenceNode):
            raise self.error(
                node, path, 'expected "ip:port"; quote IPv6 endpoints: "[2001:db8::1]:443"'
            )
        ip, port = self._address(address_node, path)
        key = (ip, port)
        if key in self.seen_endpoints:
            first = self.seen_endpoints[key]
            raise self.error(node, path, f"duplicate endpoint (first at line {first})")
        self.seen_endpoints[key] = _line(node)
        return ip, port, sni

    def _address(self, node: Node, path: str) -> tuple[str, int]:
        expected = 'expected "ip:port" or "[ipv6]:port"'
        raw = self.value(node) if isinstance(node, ScalarNode) else None
        if not isinstance(raw, str):
            raise self.error(node, path, f"{expected}, got {self.describe(node)}")
        match = re.fullmatch(r"\[([^\]]+)\]:(\d+)|([^:\[\]]+):(\d+)", raw.strip())
        if not match:
            try:
                bare_v6 = ipaddress.ip_address(raw.strip()).version == 6
            except ValueError:
                bare_v6 = False
            if bare_v6:
                raise self.error(node, path, f'{expected}; write IPv6 as "[{raw}]:443"')
            raise self.error(node, path, f'{expected}, got "{raw}"')
        host = match.group(1) or match.group(3)
        port = int(match.group(2) or match.group(4))
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            raise self.error(node, path, f'{expected} with an IP address, got "{raw}"') from None
        if match.group(1) and ip.version != 6:
            raise self.error(node, path, f'brackets are for IPv6 only, got "{raw}"')
        if not 1 <= port <= 65535:
            raise self.error(node, path, f'port must be 1-65535, got "{raw}"')
        return ip.compressed, port

    def ip(self, node: Node, path: str) -> str:
        """A bare IP address (v4 or v6, no port), normalised: `2001:DB8::0:1` -> `2001:db8::1`."""
        expected = 'expected an IP address like "192.0.2.1" or "2001:db8::1"'
        raw = self.value(node) if isinstance(node, ScalarNode) else None
        if not isinstance(raw, str):
            raise self.error(node, path, f"{expected}, got {self.describe(node)}")
        try:
            return ipaddress.ip_address(raw.strip()).compressed
        except ValueError:
            raise self.error(node, path, f'{expected}, got "{raw}"') from None

    def network(self, node: Node, path: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        raw = self.text(node, path, 'a CIDR like "192.0.2.0/24"')
        try:
            return ipaddress.ip_network(raw, strict=True)
        except ValueError as exc:
            try:
                fixed = ipaddress.ip_network(raw, strict=False)
            except ValueError:
                raise self.error(
                    node, path, f'expected a CIDR like "192.0.2.0/24", got "{raw}"'
                ) from exc
            raise self.error(
                node, path, f'"{raw}" has host bits set; did you mean "{fixed}"?'
            ) from None


def parse_document(text: str, filename: str) -> ParsedDocument:
    """Check the whole document; see docs/DESIGN.md for the format."""
    reader = _Reader(text, filename)
    root = reader.root()
    if root is None:
        raise TargetError(filename, None, None, "empty file; expected a mapping with groups")
    top = reader.mapping(root, "", TOP_KEYS)
    doc = ParsedDocument()
    if "name" in top:
        doc.name = reader.text(top["name"], "name")
    if "description" in top:
        doc.description = reader.text(top["description"], "description")
    if "settings" in top:
        _settings(reader, top["settings"], doc)
    if "expected_ranges" in top:
        _expected_ranges(reader, top["expected_ranges"], doc)
    if "groups" not in top:
        raise reader.error(root, "groups", "missing; expected a mapping of group name -> targets")
    _groups(reader, top["groups"], doc)
    if "controls" in top:
        _controls(reader, top["controls"], doc)
    if "fingerprints" in top:
        doc.fingerprints = parse_fingerprint_list(reader, top["fingerprints"])
    return doc


def _settings(reader: _Reader, node: Node, doc: ParsedDocument) -> None:
    for key, value_node in reader.mapping(node, "settings", SETTING_KEYS).items():
        if key == "ports":
            doc.default_ports = reader.ports(value_node, "settings.ports")
            doc.settings["ports"] = list(doc.default_ports)
            continue
        origin = Origin.target_list(reader.filename, _line(value_node), key)
        try:
            doc.settings[key] = check(key, reader.value(value_node), origin)
        except OptionError as exc:
            raise TargetError(reader.filename, origin.line, exc.field, exc.message) from None


def _expected_ranges(reader: _Reader, node: Node, doc: ParsedDocument) -> None:
    for key, value_node in reader.mapping(node, "expected_ranges", ()).items():
        path = f"expected_ranges.{key}"
        items = reader.sequence(value_node, path, "a list of CIDRs")
        if not items:
            raise reader.error(value_node, path, "expected a non-empty list of CIDRs")
        doc.expected_ranges[key] = [str(reader.network(item, path)) for item in items]


def _groups(reader: _Reader, node: Node, doc: ParsedDocument) -> None:
    groups = reader.mapping(node, "groups", ())
    if not groups:
        raise reader.error(node, "groups", "expected at least one group")
    for name, group_node in groups.items():
        path = f"groups.{name}"
        if not GROUP_NAME.match(name) or name == "control":
            raise reader.error(
                group_node, path, 'group names are letters, digits, "_", "-", "." and not "control"'
            )
        fields = reader.mapping(group_node, path, GROUP_KEYS)
        if not fields.keys() & {"domains", "endpoints", "ranges"}:
            raise reader.error(
                group_node, path, "expected at least one of domains, endpoints, ranges"
            )
        expected = None
        if "expected" in fields:
            expected = reader.text(
                fields["expected"], f"{path}.expected", "a key of expected_ranges"
            )
            if expected not in doc.expected_ranges:
                keys = list(doc.expected_ranges)
                close = difflib.get_close_matches(expected, keys, n=1, cutoff=0.6)
                hint = (
                    f'; did you mean "{close[0]}"?'
                    if close
                    else f" (defined: {', '.join(keys) or 'none'})"
                )
                raise reader.error(
                    fields["expected"],
                    f"{path}.expected",
                    f'"{expected}" is not in expected_ranges{hint}',
                )
        ports = (
            reader.ports(fields["ports"], f"{path}.ports")
            if "ports" in fields
            else doc.default_ports
        )
        label = reader.text(fields["label"], f"{path}.label") if "label" in fields else name
        group = RawGroup(name=name, label=label, expected=expected, ports=ports)
        if "domains" in fields:
            for item in reader.sequence(
                fields["domains"], f"{path}.domains", "a list of domain names"
            ):
                group.domains.append(reader.domain(item, f"{path}.domains"))
        if "endpoints" in fields:
            items = reader.sequence(fields["endpoints"], f"{path}.endpoints", 'a list of "ip:port"')
            for item in items:
                group.endpoints.append(reader.endpoint(item, f"{path}.endpoints"))
        if "ranges" in fields:
            items = reader.sequence(
                fields["ranges"], f"{path}.ranges", "a list of {cidr, ports, sample}"
            )
            for item in items:
                group.ranges.append(_range(reader, item, f"{path}.ranges", ports))
        if "download" in fields:
            group.downloads = parse_download(
                reader, fields["download"], f"{path}.download", group.domains
            )
        doc.groups.append(group)


def _range(
    reader: _Reader, node: Node, path: str, default_ports: tuple[int, ...]
) -> tuple[str, tuple[int, ...], int | None, str | None]:
    fields = reader.mapping(node, path, RANGE_KEYS)
    for required in ("cidr", "sample"):
        if required not in fields:
            raise reader.error(
                node,
                f"{path}.{required}",
                "missing"
                + (
                    '; expected a CIDR like "192.0.2.0/24"'
                    if required == "cidr"
                    else '; expected a positive integer or "all"'
                ),
            )
    network = reader.network(fields["cidr"], f"{path}.cidr")
    for other, line in reader.seen_ranges:
        if network.version == other.version and network.overlaps(other):
            raise reader.error(
                fields["cidr"], f"{path}.cidr", f"{network} overlaps {other} (line {line})"
            )
    reader.seen_ranges.append((network, _line(fields["cidr"])))
    sample_value = reader.value(fields["sample"])
    if sample_value == "all":
        sample = None
    elif _is_int(sample_value) and sample_value >= 1:
        sample = sample_value
    else:
        raise reader.error(
            fields["sample"],
            f"{path}.sample",
            f'expected a positive integer or "all", got {reader.describe(fields["sample"])}',
        )
    ports = reader.ports(fields["ports"], f"{path}.ports") if "ports" in fields else default_ports
    sni = reader.hostname(fields["sni"], f"{path}.sni") if "sni" in fields else None
    return str(network), ports, sample, sni


def _controls(reader: _Reader, node: Node, doc: ParsedDocument) -> None:
    fields = reader.mapping(node, "controls", CONTROL_KEYS)
    if "domains" in fields:
        for item in reader.sequence(
            fields["domains"], "controls.domains", "a list of domain names"
        ):
            doc.control_domains.append(reader.domain(item, "controls.domains"))
    if "endpoints" in fields:
        for item in reader.sequence(
            fields["endpoints"], "controls.endpoints", 'a list of "ip:port"'
        ):
            doc.control_endpoints.append(reader.endpoint(item, "controls.endpoints"))
            doc.control_endpoint_lines.append(_line(item))
    if "sni" in fields:
        doc.control_sni = reader.hostname(fields["sni"], "controls.sni")
    if "resolvers" in fields:
        items = reader.sequence(
            fields["resolvers"], "controls.resolvers", "a list of resolver specs"
        )
        for item in items:
            spec = reader.text(item, "controls.resolvers", "a resolver spec")
            if spec != "system" and not spec.startswith(RESOLVER_SCHEMES):
                raise reader.error(
                    item,
                    "controls.resolvers",
                    'expected "system" or a udp://, tcp://, tls:// or https:// resolver, '
                    f'got "{spec}"',
                )
            doc.control_resolvers.append(spec)
    if "silent_addresses" in fields:
        _silent_addresses(reader, fields["silent_addresses"], doc)
    if "download" in fields:
        doc.control_downloads = parse_download(
            reader, fields["download"], "controls.download", doc.control_domains
        )


def _silent_addresses(reader: _Reader, node: Node, doc: ParsedDocument) -> None:
    # Addresses that run no DNS server: any reply to a query sent there was injected on the path.
    path = "controls.silent_addresses"
    items = reader.sequence(node, path, "a list of IP addresses")
    if not items:
        raise reader.error(node, path, "expected a non-empty list of IP addresses")
    first_lines: dict[str, int] = {}
    for item in items:
        ip = reader.ip(item, path)
        if ip in first_lines:
            raise reader.error(
                item, path, f'duplicate address "{ip}" (first at line {first_lines[ip]})'
            )
        first_lines[ip] = _line(item)
        doc.silent_addresses.append(ip)
