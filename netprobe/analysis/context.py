"""What a whole run says about the vantage point and about every name, before judging any target.

Rules:
- Pure: built from the header and the measurement records only; never uses the network.
- Vantage health (control resolver / control endpoints working) is `health.VantageHealth`, the
  one definition `netprobe run` uses too.
- An address family (IPv4/IPv6) works at the vantage if any tcp/tls record over it succeeded,
  control or target: a failure over a family that never works anywhere proves nothing.
- A DNS answer is genuine if it equals a control answer for the name, lies inside the expected
  ranges of the target's group (all declared ranges when the group names none), or completes a TLS
  handshake valid for the name. ASNs are not compared: that needs data from outside the file.
- Built from the steps (re-probes folded in, see `confirm`); a re-probe that worked still counts
  as what it proves: a control answer, a valid handshake for the name, a working address family.
- Silent lookups (the injection probe) are never control lookups.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field

from netprobe.analysis.common import (
    answer_ips,
    connect_failed,
    duration,
    family,
    in_networks,
    parse_networks,
)
from netprobe.analysis.health import ControlRound, ControlRounds, VantageHealth
from netprobe.analysis.throughput import control_rate
from netprobe.model.failures import CERTIFICATE_FAILURES, CONNECT_OPERATION
from netprobe.model.fingerprints import Fingerprint, from_header
from netprobe.model.records import DNS, MTPROTO, RESOLVER_SILENT, TCP, TLS
from netprobe.model.target_ids import endpoint_label
from netprobe.model.vocabulary import MTPROTO_PLAIN, ROLE_CONTROL, ROLE_TARGET


@dataclass
class ControlLookup:
    """Everything the control resolvers said about one (name, query type)."""

    ips: set[str] = field(default_factory=set)
    failures: list[str] = field(default_factory=list)


@dataclass
class RunContext:
    expected_all: list
    expected_by_group: dict[str, list]
    control_lookups: dict[tuple[str, str], ControlLookup]
    tls_valid: set[tuple[str, str]]  # (hostname, ip) with a valid target-SNI handshake
    tls_target_failures: dict[tuple[str, str], str]  # (hostname, ip) -> a failure, never valid
    health: VantageHealth
    families_ok: set[str]
    control_median: dict[str, float]  # record type -> median seconds of successful controls
    # (hostname, ip) -> the record of a target-SNI handshake that failed at connect, never valid
    tls_connect_failures: dict[tuple[str, str], dict] = field(default_factory=dict)
    tls_failure_records: dict[tuple[str, str], dict] = field(default_factory=dict)
    rounds: ControlRounds = field(default_factory=ControlRounds)
    has_silent: bool = False  # some silent lookup (the injection probe) is in the run
    # issue 13: DC endpoints (ip:port labels) that answered a plain MTProto transport with resPQ
    mtproto_plain_ok: set[str] = field(default_factory=set)
    # issue 13: the header's blockpage/sinkhole fingerprints (none in older files)
    fingerprints: tuple[Fingerprint, ...] = ()
    # issue 13: the median rate of the control domains' downloads (bytes/s), None without any
    throughput_control_rate: float | None = None
    # hostname -> every control answer for it (any query type), for membership tests only:
    # `genuine_reason` asks for each address of each record (made once, from control_lookups).
    _control_answers: dict[str, frozenset[str]] = field(
        default_factory=dict, init=False, repr=False
    )

    def __post_init__(self) -> None:
        answers: dict[str, set[str]] = {}
        for (name, _qtype), lookup in self.control_lookups.items():
            answers.setdefault(name, set()).update(lookup.ips)
        self._control_answers = {name: frozenset(ips) for name, ips in answers.items()}

    @property
    def healthy(self) -> bool:
        return self.health.healthy

    @property
    def control_resolver_ok(self) -> bool:
        return self.health.control_resolver_ok

    @property
    def control_endpoints_ok(self) -> bool:
        return self.health.control_endpoints_ok

    @property
    def has_controls(self) -> bool:
        return self.health.has_controls

    def expected_for(self, group: str) -> list:
        return self.expected_by_group.get(group) or self.expected_all

    def control_ips(self, hostname: str) -> set[str]:
        ips: set[str] = set()
        for (name, _qtype), lookup in self.control_lookups.items():
            if name == hostname:
                ips |= lookup.ips
        return ips

    def valid_control_ips(self, hostname: str) -> set[str]:
        """The control answers for the name on which a target-SNI handshake validated."""
        return {ip for ip in self.control_ips(hostname) if (hostname, ip) in self.tls_valid}

    def offline_at(self, record: dict) -> ControlRound | None:
        """The failed control round that makes the record's time look offline, else None."""
        return self.rounds.offline_at(record.get("t0"))

    def genuine_reason(self, hostname: str, ip: str, group: str) -> str | None:
        """Why an address is a real answer for the name, or None if nothing vouches for it."""
        if ip in self._control_answers.get(hostname, ()):  # an answer of control_ips(hostname)
            return "same as the control resolver"
        if in_networks(ip, self.expected_for(group)):
            return "inside the expected ranges"
        if (hostname, ip) in self.tls_valid:
            return "completes a valid TLS handshake for the name"
        return None


def _hostname(record: dict) -> str:
    return str(record.get("hostname") or record.get("server_name") or "").rstrip(".").lower()


def build_context(
    header: dict,
    records: list[dict],
    reprobes: list[dict] | None = None,
    rounds: ControlRounds | None = None,
) -> RunContext:
    """The context of a run: `records` are its steps (re-probes folded in), `reprobes` the
    re-probe records (only what they proved by working counts), `rounds` its control rounds."""
    expected_ranges = header.get("expected_ranges") or {}
    expected_all: list = []
    for cidrs in expected_ranges.values() if isinstance(expected_ranges, dict) else []:
        expected_all.extend(parse_networks(cidrs))
    expected_by_group: dict[str, list] = {}
    for name, info in (header.get("groups") or {}).items():
        key = info.get("expected") if isinstance(info, dict) else None
        if key and isinstance(expected_ranges, dict) and key in expected_ranges:
            expected_by_group[name] = parse_networks(expected_ranges[key])

    lookups: dict[tuple[str, str], ControlLookup] = defaultdict(ControlLookup)
    tls_valid: set[tuple[str, str]] = set()
    tls_failures: dict[tuple[str, str], str] = {}
    health = VantageHealth()
    families_ok: set[str] = set()
    control_seconds: dict[str, list[float]] = defaultdict(list)

    tls_connect: dict[tuple[str, str], dict] = {}
    tls_failure_records: dict[tuple[str, str], dict] = {}
    has_silent = False
    mtproto_plain_ok: set[str] = set()
    working_ips: set[str] = set()  # addresses whose family is already in families_ok
    for record in records:
        health.add(record)
        kind = record.get("type")
        failure = record.get("failure")
        if kind == MTPROTO and failure is None and record.get("transport") in MTPROTO_PLAIN:
            mtproto_plain_ok.add(endpoint_label(str(record.get("ip")), record.get("port")))
        resolver_role = record.get("resolver_role") if kind == DNS else None
        if resolver_role == RESOLVER_SILENT:
            has_silent = True
        elif resolver_role == ROLE_CONTROL:
            lookup = lookups[(_hostname(record), str(record.get("query_type")))]
            if failure is None:
                lookup.ips.update(answer_ips(record.get("answers")))
                control_seconds[DNS].append(duration(record))
            else:
                lookup.failures.append(str(failure))
        if (kind == TCP or kind == TLS) and failure is None:
            ip = record.get("ip")
            if ip and (ip := str(ip)) not in working_ips:  # a run reuses a few addresses
                working_ips.add(ip)
                families_ok.add(family(ip))
            if record.get("role") == ROLE_CONTROL:
                control_seconds[str(kind)].append(duration(record))
        if kind == TLS and record.get("sni_role") == ROLE_TARGET and record.get("ip"):
            key = (_hostname(record), str(record["ip"]))
            if failure is None:
                tls_valid.add(key)
            elif (
                failure in CERTIFICATE_FAILURES
                or record.get("failed_operation") != CONNECT_OPERATION
            ):
                tls_failures.setdefault(key, str(failure))
                tls_failure_records.setdefault(key, record)
            elif connect_failed(record):
                tls_connect.setdefault(key, record)
    for record in reprobes or []:
        # What a working re-probe proves holds, whatever the majority of its step said.
        if record.get("failure") is not None:
            continue
        kind = record.get("type")
        if kind == DNS and record.get("resolver_role") == ROLE_CONTROL:
            lookup = lookups[(_hostname(record), str(record.get("query_type")))]
            lookup.ips.update(answer_ips(record.get("answers")))
        elif kind == TCP or kind == TLS:
            if record.get("ip"):
                families_ok.add(family(str(record["ip"])))
            if kind == TLS and record.get("sni_role") == ROLE_TARGET and record.get("ip"):
                tls_valid.add((_hostname(record), str(record["ip"])))
    for key in tls_valid:
        tls_failures.pop(key, None)
        tls_failure_records.pop(key, None)
        tls_connect.pop(key, None)
    for key in tls_failures:
        tls_connect.pop(key, None)  # a handshake that got past connect says more

    return RunContext(
        expected_all=expected_all,
        expected_by_group=expected_by_group,
        control_lookups=dict(lookups),
        tls_valid=tls_valid,
        tls_target_failures=tls_failures,
        health=health,
        families_ok=families_ok,
        control_median={k: statistics.median(v) for k, v in control_seconds.items() if v},
        tls_connect_failures=tls_connect,
        tls_failure_records=tls_failure_records,
        rounds=rounds if rounds is not None else ControlRounds(),
        throughput_control_rate=control_rate(records),
        has_silent=has_silent,
        mtproto_plain_ok=mtproto_plain_ok,
        fingerprints=from_header(header),
    )


def hostname_of(record: dict) -> str:
    return _hostname(record)
