"""One verified run -> measurements in OONI's data format (df-000-base, data_format_version 0.2.0).

Rules:
- Pure: a header, its measurement records, the run's analysis and the file's SHA-256 in, a list
  of JSON-able dicts out (one OONI measurement each). Nothing is measured or looked up again.
- A run of a Telegram list (header `target_list_name` "telegram") becomes one `telegram`
  measurement holding every target record, with the `telegram_*_blocking` flags; any other list
  gives one `urlgetter`-style measurement per target. Control records are netprobe's vantage
  health check, not measurements of a target: they are not exported (health is annotated).
- Records map onto OONI's test-key layouts: dns -> `queries` (df-002: `rcode` as the integer code),
  tcp -> `tcp_connect` (df-005), tls -> `tls_handshakes` (df-006; certificates are not exported:
  netprobe keeps their digests and names, OONI wants the DER bytes), http -> `requests` (df-001:
  the probe's one `GET /` with its headers (`model.records.HTTP_REQUEST_HEADERS`), and the
  response as far as the record keeps it: status, the kept headers, the stored body, which is
  truncated when it is shorter than what was read or `body_truncated` says there was more; no
  response when the record has no status). netprobe's http probe fetches names, never the
  Telegram DCs: `telegram_http_blocking` is null (not measured).
- Failure strings are OONI's already (`model/failures.py`) and are copied unchanged; `t0`/`t`
  stay seconds since the run start, which is every measurement's `measurement_start_time`.
- Annotations (strings only, as OONI requires) carry netprobe's verdict and method, the rule
  version and the signed file's SHA-256, so an analyst can trace a measurement to its evidence.
- The probe's own IP never appears (`probe_ip` is left out).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from netprobe.model.records import (
    DNS,
    HTTP,
    HTTP_METHOD,
    HTTP_PATH,
    HTTP_REQUEST_HEADERS,
    TCP,
    TLS,
)
from netprobe.model.target_ids import DOMAIN, ENDPOINT, parse_target_id
from netprobe.model.vocabulary import BLOCKED, OK, ROLE_CONTROL

DATA_FORMAT_VERSION = "0.2.0"
TELEGRAM, URLGETTER = "telegram", "urlgetter"
TELEGRAM_LIST = "telegram"
TELEGRAM_WEB = "web.telegram.org"
# DNS response codes by name (RFC 1035, 2136, 2845): df-002 stores the integer.
RCODES = {
    "NOERROR": 0, "FORMERR": 1, "SERVFAIL": 2, "NXDOMAIN": 3, "NOTIMP": 4, "REFUSED": 5,
    "YXDOMAIN": 6, "YXRRSET": 7, "NXRRSET": 8, "NOTAUTH": 9, "NOTZONE": 10, "BADVERS": 16,
}  # fmt: skip


def _ooni_time(text: str) -> str:
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _address(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def query(record: dict) -> dict:
    """A dns record as a df-002 query."""
    answers = []
    for answer in record.get("answers") or []:
        item = {"answer_type": answer.get("answer_type"), "ttl": answer.get("ttl")}
        for key in ("ipv4", "ipv6", "hostname"):
            if answer.get(key) is not None:
                item[key] = answer[key]
        answers.append(item)
    resolver = record.get("resolver_address")
    if resolver == "system" and record.get("resolver_ip"):
        resolver = _address(str(record["resolver_ip"]), 53)
    rcode = record.get("rcode")
    return {
        "hostname": record.get("hostname"),
        "query_type": record.get("query_type"),
        "engine": record.get("engine"),
        "resolver_address": resolver,
        "failure": record.get("failure"),
        "answers": answers,
        "rcode": RCODES.get(rcode) if isinstance(rcode, str) else None,
        "t0": record.get("t0"),
        "t": record.get("t"),
    }


def tcp_connect(record: dict) -> dict:
    """A tcp record as a df-005 entry."""
    failure = record.get("failure")
    return {
        "ip": record.get("ip"),
        "port": record.get("port"),
        "status": {"success": failure is None, "blocked": None, "failure": failure},
        "t0": record.get("t0"),
        "t": record.get("t"),
    }


def tls_handshake(record: dict) -> dict:
    """A tls record as a df-006 entry (tags keep netprobe's SNI role and sequence)."""
    tags = [f"sni_role:{record.get('sni_role')}"]
    if record.get("sequence"):
        tags.append(f"sequence:{record['sequence']}")
    return {
        "network": "tcp",
        "address": _address(str(record.get("ip")), int(record.get("port") or 0)),
        "server_name": record.get("server_name"),
        "cipher_suite": record.get("cipher_suite"),
        "tls_version": record.get("tls_version"),
        "negotiated_protocol": record.get("negotiated_protocol"),
        "no_tls_verify": False,
        "failure": record.get("failure"),
        "tags": tags,
        "t0": record.get("t0"),
        "t": record.get("t"),
    }


def http_request(record: dict) -> dict:
    """An http record as a df-001 request/response pair."""
    ip, port = str(record.get("ip")), int(record.get("port") or 0)
    hostname = str(record.get("hostname") or ip)
    host = f"[{hostname}]" if ":" in hostname else hostname
    headers = [("Host", hostname), *HTTP_REQUEST_HEADERS]
    status = record.get("status")
    response = None
    if isinstance(status, int):
        kept = [
            [name, value]
            for name, values in (record.get("headers") or {}).items()
            for value in (values if isinstance(values, list) else [values])
        ]
        body = record.get("body")
        length = record.get("body_length")
        shortened = isinstance(body, str) and isinstance(length, int) and len(body) < length
        response = {
            "code": status,
            "headers_list": kept,
            "headers": {name: value for name, value in reversed(kept)},  # the first of each
            "body": body,
            "body_is_truncated": bool(record.get("body_truncated")) or shortened,
        }
    return {
        "network": "tcp",
        "address": _address(ip, port),
        "failure": record.get("failure"),
        "request": {
            "url": f"http://{host}{'' if port == 80 else f':{port}'}{HTTP_PATH}",
            "method": HTTP_METHOD,
            "headers_list": [list(pair) for pair in headers],
            "headers": dict(headers),
            "body": "",
            "body_is_truncated": False,
            "x_transport": "tcp",
        },
        "response": response,
        "t0": record.get("t0"),
        "t": record.get("t"),
    }


def _layouts(records: list[dict]) -> dict:
    return {
        "queries": [query(r) for r in records if r.get("type") == DNS],
        "tcp_connect": [tcp_connect(r) for r in records if r.get("type") == TCP],
        "tls_handshakes": [tls_handshake(r) for r in records if r.get("type") == TLS],
        "requests": [http_request(r) for r in records if r.get("type") == HTTP],
    }


def _first_failure(records: list[dict]) -> tuple[str | None, str | None]:
    for record in records:
        if record.get("failure"):
            return record["failure"], record.get("failed_operation")
    return None, None


def _base(header: dict, test_name: str, report_id: str, test_input: str | None,
          runtime: float, annotations: dict[str, str]) -> dict:  # fmt: skip
    started = _ooni_time(str(header["started_at"]))
    return {
        "data_format_version": DATA_FORMAT_VERSION,
        "input": test_input,
        "report_id": report_id,
        "measurement_start_time": started,
        "test_start_time": started,
        "probe_asn": str(header.get("probe_asn") or "AS0"),
        "probe_cc": str(header.get("probe_cc") or "ZZ"),
        "test_name": test_name,
        "test_version": str(header.get("software_version") or "0"),
        "test_runtime": round(float(runtime), 6),
        "software_name": str(header.get("software_name") or "netprobe"),
        "software_version": str(header.get("software_version") or "0"),
        "annotations": annotations,
    }


def _report_id(header: dict, test_name: str) -> str:
    started = datetime.fromisoformat(str(header["started_at"]).replace("Z", "+00:00"))
    asn = str(header.get("probe_asn") or "AS0").removeprefix("AS")
    cc = str(header.get("probe_cc") or "ZZ")
    run = str(header.get("run_id") or "0")[:16]
    return f"{started.astimezone(UTC):%Y%m%dT%H%M%SZ}_{test_name}_{cc}_{asn}_n1_{run}"


def _input_of(target_id: str, records: list[dict]) -> str:
    parsed = parse_target_id(target_id)
    tls = next((r for r in records if r.get("type") == TLS), None)
    if parsed.kind == DOMAIN:
        if tls is not None:
            return f"tlshandshake://{parsed.name}:{tls.get('port')}"
        return f"dnslookup://{parsed.name}"
    scheme = "tlshandshake" if tls is not None else "tcpconnect"
    if parsed.kind == ENDPOINT and parsed.ip is not None:
        return f"{scheme}://{_address(parsed.ip, int(parsed.port or 0))}"
    return f"{scheme}://{target_id}"


def to_ooni(header: dict, records: list[dict], analysis: Any, file_sha256: str,
            rules_version: int) -> list[dict]:  # fmt: skip
    """The OONI measurements of one run (see the module rules)."""
    verdicts = getattr(analysis, "verdicts", {}) or {}
    healthy = bool((getattr(analysis, "vantage", None) or {}).get("healthy", False))
    common = {
        "netprobe_file_sha256": file_sha256,
        "netprobe_rules_version": str(rules_version),
        "netprobe_run_id": str(header.get("run_id") or ""),
        "netprobe_vantage": str(header.get("vantage") or ""),
        "netprobe_vantage_healthy": "true" if healthy else "false",
        "netprobe_target_list": str(header.get("target_list_name") or ""),
    }
    targets = [r for r in records if r.get("role") != ROLE_CONTROL]
    by_target: dict[str, list[dict]] = {}
    for record in targets:
        by_target.setdefault(str(record.get("target_id")), []).append(record)
    if header.get("target_list_name") == TELEGRAM_LIST:
        return [_telegram(header, targets, by_target, verdicts, common)]
    out = []
    for target_id in sorted(by_target):
        items = by_target[target_id]
        verdict = verdicts.get(target_id)
        failure, operation = _first_failure(items)
        annotations = {
            **common,
            "netprobe_target_id": target_id,
            "netprobe_verdict": str(getattr(verdict, "status", "") or ""),
            "netprobe_method": str(getattr(verdict, "method", "") or ""),
        }
        runtime = max(r.get("t") or 0.0 for r in items) - min(r.get("t0") or 0.0 for r in items)
        measurement = _base(header, URLGETTER, _report_id(header, URLGETTER),
                            _input_of(target_id, items), runtime, annotations)  # fmt: skip
        measurement["test_keys"] = {"failure": failure, "failed_operation": operation,
                                    **_layouts(items)}  # fmt: skip
        out.append(measurement)
    return out


def _telegram(header: dict, targets: list[dict], by_target: dict[str, list[dict]],
              verdicts: dict, common: dict[str, str]) -> dict:  # fmt: skip
    statuses = {tid: getattr(verdicts.get(tid), "status", None) for tid in by_target}
    overall = (
        BLOCKED if BLOCKED in statuses.values()
        else OK if statuses and all(s == OK for s in statuses.values())
        else next((s for s in statuses.values() if s), "")
    )  # fmt: skip
    summary = {
        tid: f"{statuses[tid]}/{getattr(verdicts.get(tid), 'method', None) or ''}".rstrip("/")
        for tid in sorted(by_target)
    }
    dc_connects = [
        r for r in targets
        if r.get("type") == TCP and parse_target_id(str(r.get("target_id"))).kind == ENDPOINT
    ]  # fmt: skip
    web = [r for r in targets if r.get("hostname") == TELEGRAM_WEB]
    web_failure, _operation = _first_failure(web)
    web_verdict = getattr(verdicts.get(f"domain:{TELEGRAM_WEB}"), "status", None)
    test_keys = {
        "failure": None,
        "failed_operation": None,
        **_layouts(targets),
        "network_events": [],
        "telegram_tcp_blocking": (
            all(r.get("failure") for r in dc_connects) if dc_connects else None
        ),
        "telegram_http_blocking": None,
        "telegram_web_status": (
            None if not web else ("blocked" if web_verdict == BLOCKED else "ok")
        ),
        "telegram_web_failure": web_failure if web and web_verdict == BLOCKED else None,
    }
    annotations = {
        **common,
        "netprobe_verdict": str(overall or ""),
        "netprobe_verdicts": json.dumps(summary, separators=(",", ":")),
    }
    runtime = max((r.get("t") or 0.0 for r in targets), default=0.0)
    measurement = _base(header, TELEGRAM, _report_id(header, TELEGRAM), None, runtime,
                        annotations)  # fmt: skip
    measurement["test_keys"] = test_keys
    return measurement
