"""Hand-built headers and records per docs/DESIGN.md, for tests of anything that reads results.

Rules: every helper returns a plain dict shaped exactly like a record the probes write; defaults
are documentation-range addresses (never real hosts). `write_result` writes an unsigned result file
with `netprobe.model.records.encode_line`, readable with `load_result(path, verify=False)`.
The fields of issue 15 (`confirmation`, `control_round`, `sequence`, `pause`, `flags`,
`truncated_udp`, ... see /work/wt/ISSUE15_CONTRACT.md) are written only when asked for, so every
record is old-format by default.

Example:
    recs = [*healthy_controls(), *domain_ok("telegram.org", "203.0.113.10")]
    write_result(tmp_path / "run.jsonl", header(), recs)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from netprobe.model.records import encode_line, measurement, new_record
from netprobe.model.target_ids import endpoint_id

PROBE_RESOLVER = "system"
CONTROL_RESOLVER = "https://198.51.100.53/dns-query"
CONTROL_DOMAIN = "control.example"
CONTROL_IP = "198.51.100.80"
CONTROL_ENDPOINT = ("198.51.100.81", 443)
CONTROL_IP6 = "2001:db8:ffff::80"
CONTROL_SNI = "control.example"
EXPECTED = {
    "lab": ["203.0.113.0/24", "2001:db8:100::/48"],
    "ctl": ["198.51.100.0/24", "2001:db8:ffff::/48"],
}


def header(**overrides: Any) -> dict:
    """A run header; override any field (e.g. `vantage="other"`)."""
    fields: dict[str, Any] = {
        "software_name": "netprobe",
        "software_version": "0.1.0",
        "run_id": "0" * 32,
        "started_at": "2025-05-26T01:00:00.000000Z",
        "vantage": "lab-1",
        "probe_asn": "AS0",
        "probe_cc": "ZZ",
        "resolvers": [PROBE_RESOLVER],
        "control_resolvers": [CONTROL_RESOLVER],
        "system_resolver_ip": "192.0.2.53",
        "target_files": [{"name": "lab.yaml", "sha256": "a" * 64}],
        "target_list_name": "lab",
        "options": {
            "timeout": 2.0,
            "concurrency": 8,
            "repeat": 1,
            "deadline": 60.0,
            "udp_wait": 0.5,
            "ca_bundle": None,
        },
        "signer": None,
        "expected_ranges": EXPECTED,
        "groups": {
            "web": {"label": "Web names", "kind": "domain", "expected": "lab"},
            "dc": {"label": "DC endpoints", "kind": "endpoint", "expected": None},
            "control": {"label": "Controls", "kind": "mixed", "expected": "ctl"},
        },
    }
    fields.update(overrides)
    return new_record("header", **fields)


def _timing(t0: float, seconds: float) -> dict:
    return {"t0": t0, "t": t0 + seconds}


def _new_fields(record: dict, **fields: Any) -> dict:
    """`record` with the given new-format fields appended, leaving out the ones that are None."""
    record.update({name: value for name, value in fields.items() if value is not None})
    return record


def _answers(ips: list[str] | None, ttl: int = 300) -> list[dict]:
    out = []
    for ip in ips or []:
        if ":" in ip:
            out.append({"answer_type": "AAAA", "ipv6": ip, "ttl": ttl})
        else:
            out.append({"answer_type": "A", "ipv4": ip, "ttl": ttl})
    return out


def dns(
    hostname: str,
    answers: list[str] | None = None,
    *,
    failure: str | None = None,
    resolver: str = PROBE_RESOLVER,
    resolver_role: str = "probe",
    qtype: str | None = None,
    attempt: int = 0,
    group: str = "web",
    role: str = "target",
    late_replies: list[dict] | None = None,
    t0: float = 0.1,
    seconds: float = 0.02,
    rcode: str | None = None,
    confirmation: int | None = None,
    control_round: int | None = None,
    flags: list[str] | None = None,
    edns_payload: int | None = None,
    truncated_udp: dict | None = None,
    retried_over_tcp: bool | None = None,
    mismatched_replies: int | None = None,
) -> dict:
    """A dns record; `qtype` defaults to AAAA when the first answer is IPv6, else A. `rcode`
    overrides the one derived from `failure` (e.g. a reply to a silent lookup)."""
    if qtype is None:
        qtype = "AAAA" if answers and ":" in answers[0] else "A"
    rcodes = {
        "dns_nxdomain_error": "NXDOMAIN",
        "dns_servfail_error": "SERVFAIL",
        "dns_refused_error": "REFUSED",
    }
    if failure is None and not answers:
        failure = "dns_no_answer"
    if rcode is None:
        rcode = rcodes.get(failure or "", "NOERROR" if failure in (None, "dns_no_answer") else None)
    record = measurement(
        "dns",
        target_id=f"domain:{hostname}",
        group=group,
        role=role,
        attempt=attempt,
        **_timing(t0, seconds),
        failure=failure,
        failed_operation="resolve",
        hostname=hostname,
        query_type=qtype,
        resolver_address=resolver,
        resolver_role=resolver_role,
        engine="doh" if resolver.startswith("https://") else "udp",
        resolver_ip="192.0.2.53",
        rcode=rcode,
        answers=_answers(answers),
        late_replies=late_replies or [],
    )
    return _new_fields(
        record,
        flags=flags,
        edns_payload=edns_payload,
        truncated_udp=truncated_udp,
        retried_over_tcp=retried_over_tcp,
        mismatched_replies=mismatched_replies,
        confirmation=confirmation,
        control_round=control_round,
    )


def late_reply(ips: list[str], rcode: str = "NOERROR", t: float = 0.01) -> dict:
    return {"t": t, "rcode": rcode, "answers": _answers(ips)}


def tcp(
    ip: str,
    port: int = 443,
    *,
    failure: str | None = None,
    attempt: int = 0,
    group: str = "dc",
    role: str = "target",
    target_id: str | None = None,
    t0: float = 0.2,
    seconds: float = 0.01,
    confirmation: int | None = None,
    control_round: int | None = None,
) -> dict:
    record = measurement(
        "tcp",
        target_id=target_id or endpoint_id(ip, port),
        group=group,
        role=role,
        attempt=attempt,
        **_timing(t0, seconds),
        failure=failure,
        failed_operation="connect",
        ip=ip,
        port=port,
    )
    return _new_fields(record, confirmation=confirmation, control_round=control_round)


def certificate(name: str, sha256: str = "ab" * 32, issuer: str = "CN=Lab CA") -> dict:
    return {
        "sha256": sha256,
        "subject": f"CN={name}",
        "issuer": issuer,
        "san": [f"DNS:{name}"],
        "not_before": "2025-01-01T00:00:00Z",
        "not_after": "2026-01-01T00:00:00Z",
    }


def tls(
    ip: str,
    port: int = 443,
    sni: str = "telegram.org",
    *,
    sni_role: str = "target",
    hostname: str | None = None,
    failure: str | None = None,
    failed_operation: str | None = None,
    sources: list[str] | None = None,
    certs: list[dict] | None = None,
    attempt: int = 0,
    group: str = "web",
    role: str = "target",
    target_id: str | None = None,
    t0: float = 0.3,
    seconds: float = 0.05,
    confirmation: int | None = None,
    control_round: int | None = None,
    sequence: str | None = None,
    pause: float | None = None,
) -> dict:
    """A tls record. For domain targets pass `hostname`; target_id defaults from it or ip:port."""
    if target_id is None:
        target_id = f"domain:{hostname}" if hostname else endpoint_id(ip, port)
    if failure is not None and failed_operation is None:
        failed_operation = "tls_handshake"
    if certs is None:
        certs = (
            [certificate(sni)]
            if failure is None
            or failure.startswith("ssl_invalid")
            or failure == "ssl_unknown_authority"
            else []
        )
    record = measurement(
        "tls",
        target_id=target_id,
        group=group,
        role=role,
        attempt=attempt,
        **_timing(t0, seconds),
        failure=failure,
        failed_operation=failed_operation,
        ip=ip,
        port=port,
        server_name=sni,
        sni_role=sni_role,
        hostname=hostname,
        address_sources=sources
        if sources is not None
        else (
            [f"control:{CONTROL_RESOLVER}", f"probe:{PROBE_RESOLVER}"] if hostname else ["endpoint"]
        ),
        alpn_offered=["h2", "http/1.1"],
        tls_version="TLSv1.3" if failure is None else None,
        cipher_suite="TLS_AES_128_GCM_SHA256" if failure is None else None,
        negotiated_protocol="h2" if failure is None else None,
        peer_certificates=certs,
    )
    return _new_fields(
        record,
        sequence=sequence,
        pause=pause,
        confirmation=confirmation,
        control_round=control_round,
    )


def mtproto(
    ip: str,
    port: int = 443,
    transport: str = "intermediate",
    *,
    failure: str | None = None,
    attempt: int = 0,
    group: str = "dc",
    t0: float = 0.3,
    seconds: float = 0.02,
    error: str | None = None,
) -> dict:
    """One MTProto attempt (issue 13): a resPQ, or `failure` after the connect."""
    return measurement(
        "mtproto",
        target_id=endpoint_id(ip, port),
        group=group,
        role="target",
        attempt=attempt,
        **_timing(t0, seconds),
        failure=failure,
        failed_operation="mtproto_handshake",
        ip=ip,
        port=port,
        transport=transport,
        bytes_sent={"intermediate": 48, "abridged": 42}.get(transport, 108),
        bytes_received=0 if failure else 84,
        first_byte=None if failure else seconds / 2,
        res_pq=failure is None,
        server_nonce=None if failure else "ab" * 16,
        fingerprints=[] if failure else ["d09d1d85de64fd85"],
        mtproto_error=error,
    )


def dc_endpoint(
    ip: str, port: int = 443, *, attempt: int = 0, **failures: str | None
) -> list[dict]:
    """A DC endpoint that connects, then one mtproto record per transport; `failures` maps a
    transport to its failure (missing: it got a resPQ)."""
    records = [tcp(ip, port, attempt=attempt)]
    for n, transport in enumerate(("obfuscated2", "intermediate", "abridged")):
        failure = failures.get(transport)
        seconds = 5.0 if failure == "generic_timeout_error" else 0.02
        records.append(
            mtproto(
                ip,
                port,
                transport,
                failure=failure,
                attempt=attempt,
                t0=0.3 + 6 * n,
                seconds=seconds,
            )
        )
    return records


def healthy_controls(attempts: int = 1, ipv6: bool = False) -> list[dict]:
    """A control domain resolved by both resolvers and reached over TLS, plus a control endpoint."""
    records = []
    for attempt in range(attempts):
        common: dict[str, Any] = {"group": "control", "role": "control", "attempt": attempt}
        records.append(dns(CONTROL_DOMAIN, [CONTROL_IP], **common))
        records.append(
            dns(
                CONTROL_DOMAIN,
                [CONTROL_IP],
                resolver=CONTROL_RESOLVER,
                resolver_role="control",
                **common,
            )
        )
        records.append(tls(CONTROL_IP, 443, CONTROL_SNI, hostname=CONTROL_DOMAIN, **common))
        records.append(tcp(*CONTROL_ENDPOINT, **common))
        if ipv6:
            records.append(tcp(CONTROL_IP6, 443, **common))
    return records


def control_round(
    number: int, t0: float, *, failure: str | None = None, attempts: int = 1
) -> list[dict]:
    """One round of the control jobs (`control_round: number`) starting at `t0` seconds: the
    healthy controls' records, every one failing with `failure` when given."""
    records = []
    for attempt in range(attempts):
        common: dict[str, Any] = {
            "group": "control",
            "role": "control",
            "attempt": attempt,
            "control_round": number,
        }
        answer = None if failure else [CONTROL_IP]
        records.append(dns(CONTROL_DOMAIN, answer, failure=failure, t0=t0, **common))
        records.append(
            dns(
                CONTROL_DOMAIN,
                answer,
                failure=failure,
                resolver=CONTROL_RESOLVER,
                resolver_role="control",
                t0=t0,
                **common,
            )
        )
        records.append(
            tls(
                CONTROL_IP,
                443,
                CONTROL_SNI,
                hostname=CONTROL_DOMAIN,
                failure=failure,
                t0=t0 + 0.2,
                **common,
            )
        )
        records.append(tcp(*CONTROL_ENDPOINT, failure=failure, t0=t0 + 0.1, **common))
    return records


def confirm(record: dict, k: int, *, failure: str | None = None, after: float = 1.0) -> dict:
    """The k-th re-probe of `record`'s step, `after` * k seconds later, failing with `failure`
    (None: it worked). Answers, certificates and versions follow the outcome."""
    again = dict(record)
    again["t0"] = round(float(record["t0"]) + after * k, 6)
    again["t"] = round(float(record["t"]) + after * k, 6)
    again["failure"] = failure
    if failure is None:
        again["failed_operation"] = None
        if record["type"] == "tls":
            again.update(
                tls_version="TLSv1.3",
                cipher_suite="TLS_AES_128_GCM_SHA256",
                negotiated_protocol="h2",
                peer_certificates=[certificate(str(record.get("server_name")))],
            )
    else:
        again["failed_operation"] = (
            record.get("failed_operation")
            or {
                "dns": "resolve",
                "tcp": "connect",
                "tls": "tls_handshake",
                "mtproto": "mtproto_handshake",
            }[record["type"]]
        )
        if record["type"] == "tls":
            again.update(
                tls_version=None, cipher_suite=None, negotiated_protocol=None, peer_certificates=[]
            )
    again["confirmation"] = k
    return again


def confirmations(record: dict, *failures: str | None) -> list[dict]:
    """`record` and one re-probe per entry of `failures` (None: that re-probe worked)."""
    return [record] + [confirm(record, k, failure=f) for k, f in enumerate(failures, start=1)]


def silent(
    hostname: str,
    reply: list[str] | None = None,
    *,
    rcode: str | None = None,
    address: str = "198.51.100.9",
    group: str = "web",
    t0: float = 0.15,
    confirmation: int | None = None,
) -> dict:
    """A lookup of the injection probe (type A, to an address that runs no DNS server): a timeout
    unless a reply (`reply` addresses and/or `rcode`) came back."""
    if reply is None and rcode is None:
        failure: str | None = "generic_timeout_error"
    elif rcode in (None, "NOERROR"):
        failure = None if reply else "dns_no_answer"
    else:
        failure = {"NXDOMAIN": "dns_nxdomain_error", "REFUSED": "dns_refused_error"}.get(
            rcode, "dns_servfail_error"
        )
    server = f"udp://[{address}]:53" if ":" in address else f"udp://{address}:53"
    record = dns(
        hostname,
        reply,
        failure=failure,
        resolver=server,
        resolver_role="silent",
        qtype="A",
        group=group,
        t0=t0,
        rcode=rcode if rcode is not None or reply is not None else None,
        confirmation=confirmation,
    )
    if failure == "generic_timeout_error":
        record["rcode"] = None
    elif record["rcode"] is None:
        record["rcode"] = "NOERROR"
    record["resolver_ip"] = address
    return record


def residual_pair(
    ip: str,
    hostname: str,
    *,
    target_failure: str | None = "connection_reset",
    before_failure: str | None = None,
    after_failure: str | None = None,
    after_failed_operation: str | None = None,
    pause: float = 3.0,
    attempt: int = 0,
    port: int = 443,
    group: str = "web",
) -> list[dict]:
    """A residual-aware pair: control SNI `before`, target SNI, and, when the target SNI fails,
    control SNI `after` (`pause` s later)."""
    common: dict[str, Any] = {"attempt": attempt, "group": group, "hostname": hostname}
    records = [
        tls(
            ip,
            port,
            CONTROL_SNI,
            sni_role="control",
            failure=before_failure,
            t0=0.3,
            sequence="before",
            **common,
        ),
        tls(ip, port, hostname, failure=target_failure, t0=0.4, sequence="target", **common),
    ]
    if target_failure is not None:
        records.append(
            tls(
                ip,
                port,
                CONTROL_SNI,
                sni_role="control",
                failure=after_failure,
                failed_operation=after_failed_operation,
                t0=0.5 + pause,
                sequence="after",
                pause=pause,
                **common,
            )
        )
    return records


def domain_lookups(
    hostname: str,
    probe: list[str] | None,
    control: list[str] | None,
    *,
    probe_failure: str | None = None,
    control_failure: str | None = None,
    attempt: int = 0,
    group: str = "web",
    qtype: str | None = None,
) -> list[dict]:
    """One probe and one control lookup of the same name and type."""
    return [
        dns(hostname, probe, failure=probe_failure, attempt=attempt, group=group, qtype=qtype),
        dns(
            hostname,
            control,
            failure=control_failure,
            resolver=CONTROL_RESOLVER,
            resolver_role="control",
            attempt=attempt,
            group=group,
            qtype=qtype,
        ),
    ]


def tls_pair(
    ip: str,
    hostname: str,
    *,
    target_failure: str | None = None,
    control_failure: str | None = None,
    attempt: int = 0,
    port: int = 443,
    group: str = "web",
    sources: list[str] | None = None,
    seconds: float = 0.05,
    target_failed_operation: str | None = None,
    control_failed_operation: str | None = None,
) -> list[dict]:
    """The target-SNI handshake and the control-SNI handshake on the same ip:port."""
    return [
        tls(
            ip,
            port,
            hostname,
            hostname=hostname,
            failure=target_failure,
            failed_operation=target_failed_operation,
            attempt=attempt,
            group=group,
            sources=sources,
            seconds=seconds,
        ),
        tls(
            ip,
            port,
            CONTROL_SNI,
            sni_role="control",
            hostname=hostname,
            failure=control_failure,
            failed_operation=control_failed_operation,
            attempt=attempt,
            group=group,
            sources=sources,
        ),
    ]


def domain_ok(hostname: str, ip: str, attempts: int = 1, group: str = "web") -> list[dict]:
    records = []
    for attempt in range(attempts):
        records += domain_lookups(hostname, [ip], [ip], attempt=attempt, group=group)
        records += tls_pair(ip, hostname, attempt=attempt, group=group)
    return records


def throughput(
    ip: str,
    hostname: str = "telegram.org",
    *,
    rate: float | None = 5e6,
    seconds: float = 0.2,
    sni: str | None = None,
    sni_role: str = "target",
    sequence: str | None = None,
    failure: str | None = None,
    http_status: int | None = 200,
    attempt: int = 0,
    group: str = "web",
    role: str = "target",
    port: int = 443,
    path: str = "/object",
    control_round: int | None = None,
    t0: float = 0.5,
) -> dict:
    """A throughput record (issue 13): `rate` bytes/s over `seconds` (the download's duration)."""
    received = int((rate or 0) * seconds)
    record = measurement(
        "throughput",
        target_id=f"domain:{hostname}",
        group=group,
        role=role,
        attempt=attempt,
        failure=failure,
        failed_operation="http_transaction" if failure else None,
        **_timing(t0, seconds + 0.05),
        ip=ip,
        port=port,
        server_name=sni or (hostname if sni_role == "target" else CONTROL_SNI),
        sni_role=sni_role,
        hostname=hostname,
        path=path,
        sequence=sequence or ("before" if sni_role == "control" else "target"),
        max_bytes=1 << 20,
        max_seconds=8.0,
        http_status=http_status,
        bytes=received,
        body_bytes=max(0, received - 200),
        ttfb=0.01,
        duration=seconds,
        rate=rate,
        stopped=None if failure else "time_cap",
        samples=[{"t": seconds * k / 8, "bytes": received * k // 8} for k in range(1, 9)],
    )
    return _new_fields(record, control_round=control_round)


def summary(measurements: int = 0) -> dict:
    return new_record(
        "summary",
        finished_at="2025-05-26T01:00:10.000000Z",
        measurements=measurements,
        failures={},
        interrupted=None,
        duration=10.0,
    )


def write_result(path: Path, head: dict, records: list[dict]) -> Path:
    """An unsigned result file: header, records, summary (read it with verify=False)."""
    with open(path, "wb") as handle:
        handle.write(encode_line(head))
        for record in records:
            handle.write(encode_line(record))
        handle.write(encode_line(summary(len(records))))
    return path
