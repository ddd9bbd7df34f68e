"""Target lists: YAML files naming what to probe, validated on load (format: docs/DESIGN.md).

Rules:
- `parse_targets(text, filename)` is pure: it never touches the filesystem. `load_targets(path)`
  reads the bytes, parses them and records their sha256.
- Every problem is a `TargetError` naming the file, the line and the field, and saying what was
  expected. Unknown keys are errors (with a "did you mean" when one is close).
- The same target may be listed once: duplicate domains, duplicate explicit endpoints and
  overlapping ranges are errors. Range samples that hit an explicit endpoint are dropped
  silently (the explicit entry wins), so iteration never yields one target_id twice.
- A run of more than `LARGE_RUN_PROBES` probes (`counts()["probes"]`, arithmetic) is *large*:
  `targets check` warns and `run` refuses it unless asked (`--allow-large`), so a
  `{cidr: 0.0.0.0/0, sample: all}` typo never starts four billion probes.
- Ranges are sampled deterministically (seeded by the normalised CIDR string), so two runs
  probe the same addresses; `sample: all` is iterated lazily, never built as a list.
"""

from __future__ import annotations

import hashlib
import ipaddress
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from netprobe.model.fingerprints import Fingerprint
from netprobe.model.target_ids import (
    compressed_endpoint_id,
    domain_id,
    endpoint_id,
    target_label,
)
from netprobe.model.vocabulary import QUERY_TYPES
from netprobe.options import OPTIONS
from netprobe.targets import yaml_reader as ty
from netprobe.targets.yaml_reader import TargetError

__all__ = [
    "TargetError",
    "Endpoint",
    "Domain",
    "RangeSpec",
    "Group",
    "Controls",
    "TargetList",
    "parse_targets",
    "load_targets",
    "bundled_targets_path",
    "endpoint_id",
    "domain_id",
    "DEFAULT_PORTS",
    "DEFAULT_MAX_ADDRESSES_PER_DOMAIN",
    "CONTROL_ROUNDS",
    "FALLBACK_SILENT_ADDRESSES",
    "LARGE_RUN_PROBES",
    "large_run_message",
]

DEFAULT_PORTS: tuple[int, ...] = (443,)
DEFAULT_MAX_ADDRESSES_PER_DOMAIN: int = OPTIONS["max_addresses_per_domain"].default
# A run's controls run at least twice: at its start and at its end (`netprobe.run.planner`);
# runs longer than `control_interval` add rounds in between.
CONTROL_ROUNDS = 2
# Without `controls.silent_addresses`, the injection probe asks this many of the list's own
# explicit endpoint addresses (they serve Telegram or the like, not DNS).
FALLBACK_SILENT_ADDRESSES = 2
# Above this many probes per run (endpoint probes + DNS queries per resolver + silent queries),
# a run has to be asked for: `netprobe run --allow-large`.
LARGE_RUN_PROBES = 65_536


def large_run_message(probes: int) -> str:
    """Why a run of `probes` probes is refused, and the option that allows it."""
    return (
        f"the run would send {probes:,} probes, more than {LARGE_RUN_PROBES:,} "
        "(a range with `sample: all` or a large `sample`?); check the ranges with "
        "`netprobe targets show --addresses`, or pass --allow-large to run it anyway"
    )


@dataclass(frozen=True)
class Endpoint:
    ip: str
    port: int
    sni: str | None
    target_id: str
    group: str
    role: str  # "target" | "control"


@dataclass(frozen=True)
class Domain:
    name: str
    ports: tuple[int, ...]
    target_id: str
    group: str
    role: str  # "target" | "control"
    expected: str | None
    download: str | None = None  # the URL path the throughput probe fetches (targets.downloads)


@lru_cache(maxsize=256)
def _sample_offsets(seed: str, population: int, count: int) -> tuple[int, ...]:
    # Floyd's algorithm: `count` distinct offsets in O(count) time and memory, even when the
    # population (a v6 /32 has 2**96 addresses) is far too big for random.sample(range(...)).
    rng = random.Random(seed)
    chosen: set[int] = set()
    for upper in range(population - count, population):
        pick = rng.randrange(upper + 1)
        chosen.add(upper if pick in chosen else pick)
    return tuple(sorted(chosen))


@dataclass(frozen=True)
class RangeSpec:
    cidr: str  # normalised, e.g. "91.108.56.0/22"
    ports: tuple[int, ...]
    sample: int | None  # None means every address ("sample: all")
    group: str
    sni: str | None = None

    def _network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        return ipaddress.ip_network(self.cidr)

    def _first_host_and_population(self) -> tuple[int, int]:
        network = self._network()
        # Network and broadcast addresses of v4 prefixes shorter than /31 are not hosts.
        if network.version == 4 and network.prefixlen < 31:
            return int(network.network_address) + 1, network.num_addresses - 2
        return int(network.network_address), network.num_addresses

    def size(self) -> int:
        """How many addresses `addresses()` yields."""
        _, population = self._first_host_and_population()
        return population if self.sample is None else min(self.sample, population)

    def _offsets(self) -> Iterator[int] | tuple[int, ...]:
        _, population = self._first_host_and_population()
        if self.sample is None or self.sample >= population:
            return iter(range(population))
        return _sample_offsets(self.cidr, population, self.sample)

    def addresses(self) -> Iterator[str]:
        """The sampled addresses in ascending order (all of them, lazily, for `sample: all`)."""
        first, _ = self._first_host_and_population()
        if self._network().version == 4:  # dotted quads by arithmetic: `IPv4Address.compressed`
            for offset in self._offsets():
                n = first + offset
                yield f"{n >> 24}.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"
            return
        for offset in self._offsets():
            yield ipaddress.IPv6Address(first + offset).compressed

    def contains(self, ip: str) -> bool:
        """Whether `addresses()` yields `ip` (without iterating a whole `all` range)."""
        address = ipaddress.ip_address(ip)
        first, population = self._first_host_and_population()
        if address.version != self._network().version:
            return False
        offset = int(address) - first
        if not 0 <= offset < population:
            return False
        if self.sample is None or self.sample >= population:
            return True
        return offset in set(_sample_offsets(self.cidr, population, self.sample))


@dataclass
class Group:
    name: str
    label: str
    domains: list[Domain] = field(default_factory=list)
    endpoints: list[Endpoint] = field(default_factory=list)
    ranges: list[RangeSpec] = field(default_factory=list)
    expected: str | None = None

    @property
    def kind(self) -> str:
        kinds = [
            kind
            for kind, items in (
                ("domain", self.domains),
                ("endpoint", self.endpoints),
                ("range", self.ranges),
            )
            if items
        ]
        return kinds[0] if len(kinds) == 1 else "mixed"


@dataclass
class Controls:
    domains: list[Domain] = field(default_factory=list)
    endpoints: list[Endpoint] = field(default_factory=list)
    sni: str | None = None
    resolvers: list[str] = field(default_factory=list)
    silent_addresses: list[str] = field(default_factory=list)  # run no DNS server


@dataclass
class TargetList:
    name: str
    description: str
    filename: str
    sha256: str | None
    groups: dict[str, Group]
    expected_ranges: dict[str, list[str]]
    controls: Controls
    settings: dict[str, Any]
    fingerprints: list[Fingerprint] = field(default_factory=list)  # issue 13: the list's own

    def domains(self) -> list[Domain]:
        """All group domains in file order, then the control domains."""
        return self.target_domains() + list(self.controls.domains)

    def target_domains(self) -> list[Domain]:
        """The group domains in file order (no controls)."""
        return [domain for group in self.groups.values() for domain in group.domains]

    def silent_addresses(self) -> list[str]:
        """Where the injection probe sends its DNS queries: addresses that run no DNS server.

        `controls.silent_addresses` when set, else the first distinct addresses of the groups'
        explicit endpoints (at most `FALLBACK_SILENT_ADDRESSES`); none for a list without either.
        """
        if self.controls.silent_addresses:
            return list(self.controls.silent_addresses)
        found: list[str] = []
        for endpoint in self._explicit_endpoints():
            if len(found) == FALLBACK_SILENT_ADDRESSES:
                break
            if endpoint.ip not in found:
                found.append(endpoint.ip)
        return found

    def _explicit_endpoints(self) -> list[Endpoint]:
        return [endpoint for group in self.groups.values() for endpoint in group.endpoints]

    def _ranges(self) -> list[RangeSpec]:
        return [spec for group in self.groups.values() for spec in group.ranges]

    def iter_endpoints(self) -> Iterator[Endpoint]:
        """Explicit endpoints, then range samples x ports (lazily), then control endpoints.

        Each target_id appears once: a range sample equal to an explicit endpoint is skipped.
        (Duplicate explicit endpoints, overlapping ranges and controls inside target ranges are
        rejected by the parser, so the explicit ids are the only ones worth remembering.)
        """
        yield from self.target_endpoints()
        yield from self.controls.endpoints

    def target_endpoints(self) -> Iterator[Endpoint]:
        """`iter_endpoints` without the control endpoints: explicit, then range samples x ports."""
        explicit = self._explicit_endpoints()
        seen = {endpoint.target_id for endpoint in explicit}
        yield from explicit
        for spec in self._ranges():
            for ip in spec.addresses():  # compressed already
                for port in spec.ports:
                    target_id = compressed_endpoint_id(ip, port)
                    if target_id not in seen:
                        yield Endpoint(ip, port, spec.sni, target_id, spec.group, "target")

    def _range_endpoint_count(self, spec: RangeSpec) -> int:
        # Arithmetic, not iteration: `sample: all` on a /8 must stay cheap to count.
        return spec.size() * len(spec.ports) - len(self.range_skips(spec))

    def group_counts(self) -> dict[str, dict[str, int]]:
        """Per group: how many domains, explicit endpoints, ranges and range endpoints."""
        return {
            name: {
                "domains": len(group.domains),
                "endpoints": len(group.endpoints),
                "ranges": len(group.ranges),
                "range_endpoints": sum(self._range_endpoint_count(s) for s in group.ranges),
            }
            for name, group in self.groups.items()
        }

    def range_skips(self, spec: RangeSpec) -> list[Endpoint]:
        """The explicit endpoints that a sample of `spec` coincides with (the sample is skipped)."""
        return [
            endpoint
            for endpoint in self._explicit_endpoints()
            if endpoint.port in spec.ports and spec.contains(endpoint.ip)
        ]

    def counts(self, repeat: int | None = None) -> dict[str, int]:
        """What one run probes, computed without iterating `sample: all` ranges.

        `targets` = domains + endpoints + range_endpoints (controls not included).
        `dns_queries_per_resolver` = (target domains x repeat + control domains x 2 rounds)
        x A and AAAA: targets are probed `repeat` times, controls at the start and the end of
        the run (runs longer than `control_interval` add control rounds).
        `endpoint_probes` = TCP connects: (endpoints + range samples) x repeat + control
        endpoints x 2 rounds; TLS handshakes come on top for endpoints with an SNI and for the
        resolved addresses of domains (at most `max_addresses_per_domain` per name).
        `silent_queries` = the injection probe's queries: target domains x `silent_addresses()`
        x repeat. Confirmation re-probes of failed probes are not counted (a clean run has none).
        `probes` = endpoint_probes + dns_queries_per_resolver + silent_queries, what
        `LARGE_RUN_PROBES` limits. `repeat` defaults to the list's `settings.repeat`.
        """
        if repeat is None:
            repeat = int(self.settings.get("repeat", 1))
        per_group = self.group_counts().values()
        domains = sum(c["domains"] for c in per_group)
        endpoints = sum(c["endpoints"] for c in per_group)
        range_endpoints = sum(c["range_endpoints"] for c in per_group)
        control_domains = len(self.controls.domains)
        control_endpoints = len(self.controls.endpoints)
        domain_queries = domains * repeat + control_domains * CONTROL_ROUNDS
        endpoint_probes = (
            endpoints + range_endpoints
        ) * repeat + control_endpoints * CONTROL_ROUNDS
        silent_queries = domains * len(self.silent_addresses()) * repeat
        return {
            "groups": len(self.groups),
            "domains": domains,
            "endpoints": endpoints,
            "ranges": sum(c["ranges"] for c in per_group),
            "range_endpoints": range_endpoints,
            "control_domains": control_domains,
            "control_endpoints": control_endpoints,
            "targets": domains + endpoints + range_endpoints,
            "dns_queries_per_resolver": domain_queries * len(QUERY_TYPES),
            "endpoint_probes": endpoint_probes,
            "silent_queries": silent_queries,
            "probes": endpoint_probes + domain_queries * len(QUERY_TYPES) + silent_queries,
        }

    def group_info(self) -> dict[str, dict[str, Any]]:
        """Per-group label, kind and expected-range key, for the result header."""
        info: dict[str, dict[str, Any]] = {}
        for name, group in self.groups.items():
            info[name] = {"label": group.label, "kind": group.kind, "expected": group.expected}
            if group.ranges:
                # Lets the analysis tell an unused sampled address from a blocked range.
                info[name]["ranges"] = [r.cidr for r in group.ranges]
        return info


def parse_targets(text: str, filename: str) -> TargetList:
    """Parse and validate a target list from YAML text; `filename` is only used in messages."""
    parsed = ty.parse_document(text, filename)
    settings = dict(parsed.settings)
    settings.setdefault("max_addresses_per_domain", DEFAULT_MAX_ADDRESSES_PER_DOMAIN)
    groups: dict[str, Group] = {}
    for raw in parsed.groups:
        group = Group(name=raw.name, label=raw.label, expected=raw.expected)
        group.domains = [
            Domain(
                name,
                raw.ports,
                domain_id(name),
                raw.name,
                "target",
                raw.expected,
                raw.downloads.get(name),
            )  # fmt: skip
            for name in raw.domains
        ]
        group.endpoints = [
            Endpoint(ip, port, sni, endpoint_id(ip, port), raw.name, "target")
            for ip, port, sni in raw.endpoints
        ]
        group.ranges = [
            RangeSpec(cidr, ports, sample, raw.name, sni) for cidr, ports, sample, sni in raw.ranges
        ]
        groups[raw.name] = group
    controls = Controls(
        domains=[
            Domain(
                name,
                parsed.default_ports,
                domain_id(name),
                "control",
                "control",
                None,
                parsed.control_downloads.get(name),
            )  # fmt: skip
            for name in parsed.control_domains
        ],
        endpoints=[
            Endpoint(ip, port, sni, endpoint_id(ip, port), "control", "control")
            for ip, port, sni in parsed.control_endpoints
        ],
        sni=parsed.control_sni,
        resolvers=list(parsed.control_resolvers),
        silent_addresses=list(parsed.silent_addresses),
    )
    target_list = TargetList(
        name=parsed.name or Path(filename).stem,
        description=parsed.description,
        filename=filename,
        sha256=None,
        groups=groups,
        expected_ranges={key: list(cidrs) for key, cidrs in parsed.expected_ranges.items()},
        controls=controls,
        settings=settings,
        fingerprints=list(parsed.fingerprints),
    )
    _check_controls_outside_ranges(target_list, parsed)
    return target_list


def _check_controls_outside_ranges(target_list: TargetList, parsed: ty.ParsedDocument) -> None:
    # A control is evidence the vantage works; if it were also a target, one record would have
    # to carry two roles.
    for endpoint, line in zip(
        target_list.controls.endpoints, parsed.control_endpoint_lines, strict=True
    ):
        for spec in target_list._ranges():
            if endpoint.port in spec.ports and spec.contains(endpoint.ip):
                raise TargetError(
                    target_list.filename,
                    line,
                    "controls.endpoints",
                    f"{target_label(endpoint.target_id)} is also probed by range "
                    f"{spec.cidr} of group {spec.group!r}; a control cannot also be a target",
                )


def load_targets(path: str | Path) -> TargetList:
    """Read, parse and validate a target list file; unreadable files raise TargetError too."""
    filename = str(path)
    from netprobe.regularfile import NotRegularFile, read_regular

    try:
        data = read_regular(path)  # a FIFO or a device is refused, never waited on
    except FileNotFoundError:
        raise TargetError(filename, None, None, "no such file") from None
    except IsADirectoryError:
        raise TargetError(filename, None, None, "is a directory, expected a YAML file") from None
    except NotRegularFile as exc:
        if exc.kind == "a directory":
            raise TargetError(
                filename, None, None, "is a directory, expected a YAML file"
            ) from None
        raise TargetError(filename, None, None, f"{exc}, expected a YAML file") from None
    except OSError as exc:
        raise TargetError(filename, None, None, f"cannot read: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise TargetError(filename, line, None, "not valid UTF-8 text") from None
    target_list = parse_targets(text, filename)
    target_list.sha256 = hashlib.sha256(data).hexdigest()
    return target_list


def bundled_targets_path() -> Path:
    """Path of the bundled Telegram list (package data `netprobe/data/telegram.yaml`)."""
    from importlib.resources import as_file, files

    resource = files("netprobe").joinpath("data", "telegram.yaml")
    # Installed packages are plain directories, so as_file() returns the real path and the
    # context exit deletes nothing; a zipped install would need the caller to keep the copy.
    with as_file(resource) as path:
        return Path(path)
