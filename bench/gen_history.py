"""Write a synthetic history of hourly netprobe result files with a known blocking onset.

Rules:
- Files follow docs/DESIGN.md exactly (header, dns/tcp/tls records, summary); by default unsigned
  (read them with `netprobe timeline --no-verify`); `--signed N` signs the last N files with a
  throw-away key (written next to them as `bench-key` + `allowed_signers`).
- Deterministic: the same arguments give the same files (seeded RNG, fixed start time).
- Scenario: web names get SNI-blocked (TLS reset with the target SNI, control SNI fine) and the
  Telegram DCs IP-blocked (TCP timeouts) from `--onset-hour`; control targets always work. A short
  outage (`--outage-hour`, 2 h, controls fail too) and a gap (`--gap-hour`, 30 h without files) test
  that neither is reported as a block.

Example: python bench/gen_history.py --hours 8760 --out /tmp/history
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from netprobe.model.records import encode_line, format_utc, measurement, new_record  # noqa: E402
from netprobe.model.target_ids import domain_id, endpoint_id  # noqa: E402

START = datetime(2025, 1, 1, tzinfo=UTC)
WEB = ["telegram.org", "web.telegram.org", "t.me", "telegram.me", "core.telegram.org",
       "api.telegram.org", "desktop.telegram.org", "telegra.ph", "telesco.pe", "tdesktop.com",
       "telegram-cdn.org", "cdn-telegram.org", "graph.org", "comments.app"]  # fmt: skip
DCS = ["149.154.175.50", "149.154.167.51", "149.154.175.100", "149.154.167.91", "149.154.171.5",
       "95.161.76.100", "91.108.56.130"]  # fmt: skip
CONTROL_DOMAIN, CONTROL_ENDPOINT = "example.com", "1.1.1.1"
WEB_IP = "149.154.167.99"
CONTROL_RESOLVER = "https://1.1.1.1/dns-query"


def header(started: datetime, vantage: str, asn: str) -> dict:
    return new_record(
        "header",
        software_name="netprobe",
        software_version="0.1.0",
        run_id=uuid.UUID(int=int(started.timestamp())).hex,
        started_at=format_utc(started),
        vantage=vantage,
        probe_asn=asn,
        probe_cc="VN",
        resolvers=["system"],
        control_resolvers=[CONTROL_RESOLVER],
        system_resolver_ip="192.0.2.53",
        target_files=[{"name": "telegram.yaml", "sha256": "0" * 64}],
        target_list_name="telegram",
        options={
            "timeout": 5.0,
            "concurrency": 64,
            "repeat": 2,
            "deadline": 600.0,
            "udp_wait": 0.5,
            "ca_bundle": None,
        },  # fmt: skip
        signer=None,
        expected_ranges={"telegram": ["149.154.160.0/20", "91.108.56.0/22", "95.161.64.0/20"]},
        groups={
            "web": {"label": "Telegram web names", "kind": "domain"},
            "dc": {"label": "Telegram data centres", "kind": "endpoint"},
            "ranges": {"label": "Telegram ranges", "kind": "range"},
            "control": {"label": "Controls", "kind": "control"},
        },
    )


def run_records(rng: random.Random, *, blocked: bool, offline: bool, ranges: int) -> list[dict]:
    """One run's measurement records (2 attempts each)."""
    out: list[dict] = []
    clock = 0.0

    def rec(kind: str, failure: str | None, operation: str | None, **fields) -> None:
        nonlocal clock
        t0 = clock
        clock += 0.001 + rng.random() * 0.01
        out.append(measurement(kind, t0=t0, t=clock, failure=failure,
                               failed_operation=operation, **fields))  # fmt: skip

    def dns(name: str, target_id: str, group: str, role: str, attempt: int, resolver: str) -> None:
        failure = "generic_timeout_error" if offline else None
        ip = WEB_IP if role == "target" else "93.184.215.14"
        rec("dns", failure, "resolve", target_id=target_id, group=group, role=role,
            attempt=attempt, hostname=name, query_type="A", resolver_address=resolver,
            resolver_role="probe" if resolver == "system" else "control",
            engine="udp" if resolver == "system" else "doh", resolver_ip="192.0.2.53",
            rcode=None if failure else "NOERROR",
            answers=[] if failure else [{"answer_type": "A", "ipv4": ip, "ttl": 300}],
            late_replies=[])  # fmt: skip

    def tls(name: str, target_id: str, group: str, role: str, attempt: int, ip: str, sni: str,
            sni_role: str, fail: bool) -> None:  # fmt: skip
        failure = "generic_timeout_error" if offline else ("connection_reset" if fail else None)
        rec("tls", failure, "tls_handshake", target_id=target_id, group=group, role=role,
            attempt=attempt, ip=ip, port=443, server_name=sni, sni_role=sni_role, hostname=name,
            address_sources=[f"control:{CONTROL_RESOLVER}", "probe:system"],
            alpn_offered=["h2", "http/1.1"],
            tls_version=None if failure else "TLSv1.3",
            cipher_suite=None if failure else "TLS_AES_128_GCM_SHA256",
            negotiated_protocol=None if failure else "h2",
            peer_certificates=[] if failure else [{"sha256": "ab" * 32, "subject": f"CN={sni}",
                "issuer": "CN=Bench CA", "san": [f"DNS:{sni}"],
                "not_before": "2025-01-01T00:00:00Z", "not_after": "2027-01-01T00:00:00Z"}])  # fmt: skip

    def tcp(ip: str, group: str, role: str, attempt: int, fail: bool) -> None:
        failure = "generic_timeout_error" if (offline or fail) else None
        rec("tcp", failure, "connect", target_id=endpoint_id(ip, 443), group=group, role=role,
            attempt=attempt, ip=ip, port=443)  # fmt: skip

    for attempt in range(2):
        for name in [*WEB, CONTROL_DOMAIN]:
            role = "control" if name == CONTROL_DOMAIN else "target"
            group = "control" if role == "control" else "web"
            target_id = domain_id(name)
            dns(name, target_id, group, role, attempt, "system")
            dns(name, target_id, group, role, attempt, CONTROL_RESOLVER)
            ip = WEB_IP if role == "target" else "93.184.215.14"
            tls(
                name,
                target_id,
                group,
                role,
                attempt,
                ip,
                name,
                "target",
                blocked and role == "target",
            )
            tls(name, target_id, group, role, attempt, ip, CONTROL_DOMAIN, "control", False)
        for ip in DCS:
            tcp(ip, "dc", "target", attempt, blocked)
        for index in range(ranges):
            tcp(
                f"91.108.{56 + index // 250}.{index % 250 + 1}",
                "ranges",
                "target",
                attempt,
                blocked,
            )
        tcp(CONTROL_ENDPOINT, "control", "control", attempt, False)
    return out


def summary(records: list[dict], started: datetime) -> dict:
    failures: dict[str, int] = {}
    for record in records:
        if record["failure"]:
            failures[record["failure"]] = failures.get(record["failure"], 0) + 1
    finished = started + timedelta(seconds=records[-1]["t"])
    return new_record("summary", finished_at=format_utc(finished), measurements=len(records),
                      failures=failures, interrupted=None, duration=records[-1]["t"])  # fmt: skip


def write_history(
    out_dir: Path, *, hours: int, onset_hour: int, outage_hour: int | None, gap_hour: int | None,
    vantage: str = "bench-vnpt", asn: str = "AS45899", ranges: int = 50, signed: int = 0,
    seed: int = 1,
) -> list[Path]:  # fmt: skip
    """Write `hours` hourly files (minus the gap) into out_dir; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    signer = None
    if signed:
        from netprobe.evidence.keys import generate_key, load_signer

        key_path = out_dir / "bench-key"
        signer = load_signer(key_path) if key_path.exists() else generate_key(key_path, "bench")
        (out_dir / "allowed_signers").write_text(signer.allowed_signers_line() + "\n")
    paths = []
    for hour in range(hours):
        if gap_hour is not None and gap_hour <= hour < gap_hour + 30:
            continue
        started = START + timedelta(hours=hour, minutes=7, seconds=rng.randrange(60))
        offline = outage_hour is not None and outage_hour <= hour < outage_hour + 2
        records = run_records(rng, blocked=hour >= onset_hour, offline=offline, ranges=ranges)
        stem = f"{started.strftime('%Y%m%dT%H%M%SZ')}_{vantage}"
        head = header(started, vantage, asn)
        if signer is not None and hour >= hours - signed:
            from netprobe.evidence.writer import ResultWriter

            with ResultWriter(out_dir, stem, signer=signer, checkpoint_every=10**6,
                              checkpoint_seconds=10**6) as writer:  # fmt: skip
                writer.write_header(head)
                for record in records:
                    writer.write(record)
                paths.append(writer.close(summary(records, started)))
            continue
        path = out_dir / f"{stem}.jsonl"
        lines = [head, *records, summary(records, started)]
        path.write_bytes(b"".join(encode_line(r) for r in lines))
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=int, default=8760, help="hourly runs to write")
    parser.add_argument("--out", type=Path, required=True, help="folder for the files")
    parser.add_argument("--onset-hour", type=int, default=None, help="hour the block starts")
    parser.add_argument("--outage-hour", type=int, default=None, help="2 h outage (not a block)")
    parser.add_argument("--gap-hour", type=int, default=None, help="30 h without files")
    parser.add_argument("--ranges", type=int, default=50, help="range endpoints per run")
    parser.add_argument("--signed", type=int, default=0, help="sign the last N files")
    args = parser.parse_args()
    onset = args.onset_hour if args.onset_hour is not None else int(args.hours * 0.6)
    outage = args.outage_hour if args.outage_hour is not None else int(args.hours * 0.3)
    gap = args.gap_hour if args.gap_hour is not None else int(args.hours * 0.45)
    paths = write_history(args.out, hours=args.hours, onset_hour=onset, outage_hour=outage,
                          gap_hour=gap, ranges=args.ranges, signed=args.signed)  # fmt: skip
    onset_time = START + timedelta(hours=onset)
    print(json.dumps({"files": len(paths), "onset_hour": onset, "onset_after": format_utc(onset_time),
                      "outage_hour": outage, "gap_hour": gap}))  # fmt: skip


if __name__ == "__main__":
    main()
