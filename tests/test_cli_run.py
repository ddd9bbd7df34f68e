"""`netprobe run` end to end against loopback servers: the file a user gets, exit codes, signals.

Every address here is 127.0.0.1 or ::1; the DNS servers answer the test names with loopback
addresses so that no probe can leave the machine.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import localservers as ls

LOOP_NAME = "loop.test."


@dataclass
class Lab:
    dns: str
    doh: str
    ca_bundle: str
    tls_port: int
    open_port: int
    control_port: int
    closed_port: int
    hang_port: int


@pytest.fixture()
def loopback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Lab]:
    # loop.test resolves to loopback so the domain's TLS probes stay on this machine.
    # (No AAAA: the TLS server listens on 127.0.0.1 only; IPv6 probes are covered in test_probe_*.)
    monkeypatch.setitem(ls.ZONE, LOOP_NAME, {"A": ["127.0.0.1"]})
    ca = ls.make_ca()
    cert = ls.issue_cert(ca, "loop.test", "localhost", "127.0.0.1", "::1")
    bundle = ls.write_ca_bundle(ca, str(tmp_path))
    with (
        ls.DnsServer() as dns_server,
        ls.doh_server(cert) as doh,
        ls.tls_server(cert) as tls,
        ls.tcp_listener() as open_port,
        ls.tcp_listener() as control_port,
        ls.StreamServer(ls.never_answer) as hang,
    ):
        yield Lab(
            dns=dns_server.address("udp"),
            doh=f"{doh}/dns-query",
            ca_bundle=bundle,
            tls_port=tls.port,
            open_port=open_port,
            control_port=control_port,
            closed_port=ls.closed_port(),
            hang_port=hang.port,
        )


def target_list(tmp_path: Path, lab: Lab, extra_endpoints: str = "") -> Path:
    path = tmp_path / "local.yaml"
    path.write_text(
        f"""\
name: local
groups:
  web:
    label: Local web names
    domains: [loop.test]
    ports: [{lab.tls_port}]
  hosts:  # not `dc`: these are no MTProto servers (tests/test_probe_mtproto.py has those)
    label: Local endpoints
    endpoints:
      - 127.0.0.1:{lab.open_port}
      - 127.0.0.1:{lab.closed_port}
      - {{address: "127.0.0.1:{lab.tls_port}", sni: loop.test}}
{extra_endpoints}
controls:
  endpoints: ["127.0.0.1:{lab.control_port}"]
  sni: localhost
"""
    )
    return path


def env(tmp_path: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k != "NETPROBE_CONFIG"}
    return {
        **base,
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
    }


def netprobe(tmp_path: Path, *args: str, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "netprobe", *args],
        capture_output=True,
        text=True,
        env=env(tmp_path),
        timeout=60,
        **kwargs,
    )


def run_args(tmp_path: Path, lab: Lab, targets: Path, *extra: str) -> list[str]:
    return [
        "run",
        str(targets),
        "--out",
        str(tmp_path / "results"),
        "--resolver",
        lab.dns,
        "--control-resolver",
        lab.doh,
        "--ca-bundle",
        lab.ca_bundle,
        "--timeout",
        "2",
        "--udp-wait",
        "0.1",
        "--vantage",
        "loopback-test",
        *extra,
    ]


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_run_writes_a_complete_result_file(tmp_path: Path, loopback: Lab) -> None:
    targets = target_list(tmp_path, loopback)
    done = netprobe(tmp_path, *run_args(tmp_path, loopback, targets, "--no-sign", "--quiet"))
    assert done.returncode == 0, done.stderr
    path = Path(done.stdout.strip())
    assert path.parent == tmp_path / "results"
    assert path.name.endswith("_loopback-test.jsonl")
    assert not list(path.parent.glob(".*.partial")), "the running name is gone after a clean end"
    lines = read_lines(path)
    header, summary = lines[0], lines[-1]
    assert header["type"] == "header" and header["schema_version"] == 1
    assert header["resolvers"] == [loopback.dns]
    assert header["control_resolvers"] == [loopback.doh]
    assert header["target_files"][0]["name"] == "local.yaml"
    assert header["signer"] is None
    assert summary["type"] == "summary" and summary["interrupted"] is None
    records = lines[1:-1]
    assert all(r["schema_version"] == 1 for r in records)

    by_id: dict[str, list[dict]] = {}
    for record in records:
        by_id.setdefault(record["target_id"], []).append(record)
    # DNS: A and AAAA through the probe resolver and the control resolver; and the injection
    # probe: A asked of the list's first explicit endpoint address, where no DNS server runs.
    dns_records = [r for r in by_id["domain:loop.test"] if r["type"] == "dns"]
    silent = [r for r in dns_records if r["resolver_role"] == "silent"]
    assert sorted((r["resolver_role"], r["query_type"], r["failure"]) for r in dns_records) == [
        ("control", "A", None),
        ("control", "AAAA", "dns_no_answer"),
        ("probe", "A", None),
        ("probe", "AAAA", "dns_no_answer"),
        ("silent", "A", silent[0]["failure"]),  # refused, unless this machine runs a DNS server
    ]
    assert silent[0]["resolver_address"] == "udp://127.0.0.1:53"
    assert "confirmation" not in silent[0]  # the injection probe is never re-probed
    # TLS to the answered address: the control SNI first, then the target SNI; it worked, so
    # there is no `after` handshake and no confirmation.
    tls = [r for r in by_id["domain:loop.test"] if r["type"] == "tls"]
    assert [(r["ip"], r["sni_role"], r["sequence"]) for r in tls] == [
        ("127.0.0.1", "control", "before"),
        ("127.0.0.1", "target", "target"),
    ]
    target_sni = next(r for r in tls if r["sni_role"] == "target" and r["ip"] == "127.0.0.1")
    assert target_sni["failure"] is None
    assert target_sni["server_name"] == "loop.test"
    assert target_sni["tls_version"].startswith("TLSv1.")
    assert target_sni["peer_certificates"][0]["sha256"]
    assert sorted(target_sni["address_sources"]) == [
        "control:" + loopback.doh,
        "probe:" + loopback.dns,
    ]
    # TCP endpoints: the open port connects, the closed one is refused (OONI's string), and,
    # since a control worked, that failure is confirmed by two spaced re-probes.
    assert len(by_id[f"endpoint:127.0.0.1:{loopback.open_port}"]) == 1
    closed = by_id[f"endpoint:127.0.0.1:{loopback.closed_port}"]
    assert [(r["failure"], r.get("confirmation"), r["attempt"]) for r in closed] == [
        ("connection_refused", None, 0),
        ("connection_refused", 1, 0),
        ("connection_refused", 2, 0),
    ]
    assert closed[1]["t0"] - closed[0]["t"] >= 1.0 and closed[2]["t0"] - closed[1]["t"] >= 1.0
    # An endpoint with an SNI gets a TCP connect and a TLS pair.
    kinds = sorted(r["type"] for r in by_id[f"endpoint:127.0.0.1:{loopback.tls_port}"])
    assert kinds == ["tcp", "tls", "tls"]
    # The control endpoint: first of all records (round 0) and again last (the end round).
    control = by_id[f"endpoint:127.0.0.1:{loopback.control_port}"]
    assert [(r["role"], r["failure"], r["control_round"]) for r in control] == [
        ("control", None, 0),
        ("control", None, 1),
    ]
    assert records[0] == control[0] and records[-1] == control[1]
    assert summary["measurements"] == len(records)


def test_json_summary_and_repeat(tmp_path: Path, loopback: Lab) -> None:
    targets = target_list(tmp_path, loopback)
    done = netprobe(
        tmp_path,
        *run_args(tmp_path, loopback, targets, "--no-sign", "--format", "json", "--repeat", "2"),
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    rows = {row["target_id"]: row for row in report["per_target"]}
    assert (
        rows[f"endpoint:127.0.0.1:{loopback.closed_port}"]["tcp"]
        == "fail: connection_refused (confirmed 6/6)"
    )
    assert rows["domain:loop.test"]["tls"] == "ok"
    assert report["vantage_problem"] is None
    attempts = {r["attempt"] for r in read_lines(Path(report["path"]))[1:-1]}
    assert attempts == {0, 1}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("groups:\n  dc:\n    endpoints: [nonsense]\n", "local.yaml:3"),
        ("groups:\n  dc:\n    endpoints: [127.0.0.1:80]\n    colour: red\n", "colour"),
    ],
)
def test_bad_target_list_exits_2_naming_file_and_line(
    tmp_path: Path, content: str, expected: str
) -> None:
    path = tmp_path / "local.yaml"
    path.write_text(content)
    done = netprobe(tmp_path, "run", str(path), "--no-sign", "--out", str(tmp_path / "r"))
    assert done.returncode == 2
    assert expected in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--resolver", "ftp://192.0.2.1", "resolver"),
        ("--asn", "Viettel", "--asn"),
        ("--cc", "VNM", "--cc"),
        ("--timeout", "0", "--timeout: expected a number of seconds from 0.05 to 600, got 0.0"),
        ("--concurrency", "100000000", "--concurrency: expected a whole number from 1 to 10000"),
        ("--keep-days", "0", "--keep-days: expected a number of days above 0"),
        ("--ca-bundle", "/nonexistent.pem", "--ca-bundle"),
    ],
)
def test_bad_options_exit_2(
    tmp_path: Path, loopback: Lab, flag: str, value: str, message: str
) -> None:
    targets = target_list(tmp_path, loopback)
    done = netprobe(tmp_path, "run", str(targets), "--no-sign", flag, value, "--out", str(tmp_path))
    assert done.returncode == 2, done.stdout
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_config_values_are_normalised_like_flags(tmp_path: Path, loopback: Lab) -> None:
    # udp_wait 0 ("do not wait for late replies") and a bare AS number are valid in the config
    # file too, and come out the way the flags would give them.
    targets = target_list(tmp_path, loopback)
    config = tmp_path / "config.yaml"
    config.write_text("udp_wait: 0\nasn: 7552\ncc: vn\n")
    args = run_args(tmp_path, loopback, targets, "--no-sign", "--quiet", "--config", str(config))
    args.remove("--udp-wait")
    args.remove("0.1")
    done = netprobe(tmp_path, *args)
    assert done.returncode == 0, done.stderr
    header = read_lines(Path(done.stdout.strip()))[0]
    assert (header["probe_asn"], header["probe_cc"]) == ("AS7552", "VN")
    assert header["options"]["udp_wait"] == 0


@pytest.mark.parametrize(
    ("where", "text", "message"),
    [
        ("config", "vantage: v\nconcurrency: 100000000\n", "config.yaml:2: concurrency: expected"),
        ("config", "timeout: 0\n", "config.yaml:1: timeout: expected a number of seconds"),
        ("list", "timeout: .inf", "local.yaml:3: settings.timeout: expected a number of seconds"),
        ("list", "concurrency: 100000000", "local.yaml:3: settings.concurrency: expected"),
    ],
)
def test_bad_values_outside_the_flags_name_their_file_not_a_flag(
    tmp_path: Path, where: str, text: str, message: str
) -> None:
    targets = tmp_path / "local.yaml"
    settings = f"settings:\n  {text}\n" if where == "list" else ""
    targets.write_text(f"name: local\n{settings}groups:\n  g:\n    endpoints: [127.0.0.1:9]\n")
    config = tmp_path / "config.yaml"
    config.write_text(text if where == "config" else "vantage: v\n")
    done = netprobe(tmp_path, "run", str(targets), "--no-sign", "--config", str(config))
    assert done.returncode == 2, done.stdout
    assert message in done.stderr
    assert "--timeout" not in done.stderr and "--concurrency" not in done.stderr


def slow_run(tmp_path: Path, lab: Lab, *extra: str) -> subprocess.Popen[str]:
    """A run that takes ~20 s: TLS attempts to a server that never answers, one at a time."""
    hang = f'      - {{address: "127.0.0.1:{lab.hang_port}", sni: loop.test}}'
    targets = target_list(tmp_path, lab, extra_endpoints=hang)
    args = run_args(
        tmp_path, lab, targets, "--repeat", "20", "--concurrency", "1", "--timeout", "1"
    )
    args += ["--checkpoint-every", "1", *extra]
    return subprocess.Popen(
        [sys.executable, "-m", "netprobe", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(tmp_path),
    )


def wait_for_records(directory: Path, count: int, limit: float = 30) -> Path:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        for path in directory.glob(".*.partial"):
            if path.read_bytes().count(b'"type":"tcp"') >= count:
                return path
        time.sleep(0.1)
    raise AssertionError("the run wrote no records in time")


def test_sigkill_leaves_a_partial_file_whose_covered_records_verify(
    tmp_path: Path, loopback: Lab
) -> None:
    key = tmp_path / "key"
    assert netprobe(tmp_path, "keygen", "--out", str(key), "--principal", "tester").returncode == 0
    proc = slow_run(tmp_path, loopback, "--key", str(key))
    partial = wait_for_records(tmp_path / "results", 8)
    proc.kill()
    proc.wait(10)
    assert partial.exists(), "a killed run keeps its partial name"
    done = netprobe(tmp_path, "verify", str(partial), "--format", "json")
    assert done.returncode == 3, done.stdout + done.stderr  # PARTIAL
    report = json.loads(done.stdout)
    entry = report[0] if isinstance(report, list) else report["files"][0]
    assert entry["status"] == "PARTIAL"
    assert entry["records_covered"] >= 8


def test_sigterm_stops_cleanly_with_a_signed_stop_checkpoint(tmp_path: Path, loopback: Lab) -> None:
    key = tmp_path / "key"
    assert netprobe(tmp_path, "keygen", "--out", str(key), "--principal", "tester").returncode == 0
    log = tmp_path / "run.log"
    proc = slow_run(tmp_path, loopback, "--key", str(key), "--log", str(log))
    wait_for_records(tmp_path / "results", 6)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert "stopped by SIGTERM" in stderr
    final = next((tmp_path / "results").glob("*.jsonl"))
    lines = read_lines(final)
    assert lines[-3]["type"] == "summary" and lines[-3]["interrupted"] == "SIGTERM"
    assert lines[-2]["type"] == "checkpoint" and lines[-2]["reason"] == "signal"
    assert lines[-1]["type"] == "signature"
    finished = next(line for line in log.read_text().splitlines() if "run finished" in line)
    assert "stopped early: SIGTERM" in finished and "None" not in finished
    done = netprobe(tmp_path, "verify", str(final))
    assert done.returncode == 0, done.stdout + done.stderr


def test_unwritable_out_folder_is_a_clear_error(tmp_path: Path, loopback: Lab) -> None:
    targets = target_list(tmp_path, loopback)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    done = netprobe(tmp_path, "run", str(targets), "--no-sign", "--out", str(blocker / "results"))
    assert done.returncode == 1
    assert "cannot write results in" in done.stderr
    assert "Traceback" not in done.stderr


def test_bad_resolver_does_not_create_a_key_first(tmp_path: Path, loopback: Lab) -> None:
    targets = target_list(tmp_path, loopback)
    done = netprobe(tmp_path, "run", str(targets), "--resolver", "bogus", "--out", str(tmp_path))
    assert done.returncode == 2
    assert "created signing key" not in done.stderr
    assert not (tmp_path / "data" / "netprobe").exists()


# -- the end of a run: a control resolver that fails every lookup ------------------------------


def control_domain_list(tmp_path: Path, lab: Lab) -> Path:
    """A target domain and a control domain, both served by the loopback TLS server."""
    path = tmp_path / "controls.yaml"
    path.write_text(
        f"""\
name: controls
settings:
  ports: [{lab.tls_port}]
groups:
  web:
    domains: [loop.test]
controls:
  domains: [localhost]
  endpoints: ["127.0.0.1:{lab.control_port}"]
  sni: localhost
"""
    )
    return path


def run_with_dead_control_resolver(
    tmp_path: Path, lab: Lab, monkeypatch: pytest.MonkeyPatch, *extra: str
) -> tuple[subprocess.CompletedProcess[str], str]:
    monkeypatch.setitem(ls.ZONE, "localhost.", {"A": ["127.0.0.1"]})
    dead = f"https://127.0.0.1:{lab.closed_port}/dns-query"  # nothing listens: every lookup fails
    args = run_args(tmp_path, lab, control_domain_list(tmp_path, lab), "--no-sign", *extra)
    args[args.index(lab.doh)] = dead
    return netprobe(tmp_path, *args), dead


def dead_resolver_warning(dead: str, text: str) -> str:
    """The warning for `dead` found in `text`: every one of its lookups (controls run first and
    last, so their number depends on the list) was refused and none answered."""
    pattern = (
        rf"control resolver {re.escape(dead)}: 0 of (\d+) lookups answered "
        r"\(connection_refused x(\d+)\): DNS verdicts of this run cannot use it"
    )
    found = re.search(pattern, text)
    assert found, text
    assert found.group(1) == found.group(2) and int(found.group(1)) >= 4
    return found.group(0)


def test_a_dead_control_resolver_is_a_warning_and_its_control_domain_is_not_ok(
    tmp_path: Path, loopback: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    done, dead = run_with_dead_control_resolver(tmp_path, loopback, monkeypatch)
    assert done.returncode == 0, done.stderr  # the run completed: its file is fine
    dead_resolver_warning(dead, " ".join(done.stderr.split()))
    row = next(line for line in done.stdout.splitlines() if "domain:localhost" in line)
    cells = re.split(r"\s{2,}", row.strip())  # target, dns, tcp, tls
    # the probe resolver's answers worked, the control lookups did not: a partial `ok`, never plain
    # (controls run first and last, so two rounds of one probe and two control lookups each)
    assert cells[1] == "ok 2/6", row
    assert "some controls failed" in done.stdout
    # The controls and the vantage health come before the targets, the dead resolver named there.
    text = done.stdout
    assert text.index("Controls and vantage health") < text.index("domain:localhost")
    assert text.index("domain:localhost") < text.index("domain:loop.test")
    assert f"control resolver {dead}: 0/" in " ".join(text.split())


def test_json_output_carries_the_control_warning(
    tmp_path: Path, loopback: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    done, dead = run_with_dead_control_resolver(tmp_path, loopback, monkeypatch, "--format", "json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["warnings"] == [dead_resolver_warning(dead, " ".join(document["warnings"]))]
    assert document["control_resolvers"][dead]["answered"] == 0
    rows = {row["target_id"]: row for row in document["per_target"]}
    assert rows["domain:localhost"]["dns"] == "ok 2/6"
    assert rows["domain:loop.test"]["dns"] == "ok"
    assert "control resolver" in done.stderr  # stderr too, for whoever reads only that


def test_quiet_keeps_the_control_warning_and_drops_the_table(
    tmp_path: Path, loopback: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "run.log"
    done, dead = run_with_dead_control_resolver(
        tmp_path, loopback, monkeypatch, "--quiet", "--log", str(log)
    )
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()).exists()  # the path, and nothing else
    assert len(done.stdout.splitlines()) == 1
    dead_resolver_warning(dead, " ".join(done.stderr.split()))
    dead_resolver_warning(dead, " ".join(log.read_text().split()))  # cron users with --log see it
    finished = next(line for line in log.read_text().splitlines() if "run finished" in line)
    assert finished.endswith("measurements, complete)") and "interrupted" not in finished


def huge_list(tmp_path: Path, cidr: str = "0.0.0.0/0") -> Path:
    path = tmp_path / "huge.yaml"
    path.write_text(
        f"name: huge\ngroups:\n  all:\n    ranges:\n      - {{cidr: {cidr}, sample: all}}\n"
        "controls:\n  endpoints: ['127.0.0.1:9']\n"
    )
    return path


@pytest.fixture
def no_probing(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Replace the runner: a refused run must never reach it; an allowed one records the call."""
    from netprobe.run import executor

    calls: list[int] = []

    def fake_run_targets(target_lists, options, **kwargs):
        calls.append(len(target_lists))
        raise ValueError("fake runner: nothing probed")

    monkeypatch.setattr(executor, "run_targets", fake_run_targets)
    return calls


def invoke_run(tmp_path: Path, *args: str):
    from typer.testing import CliRunner

    from netprobe.cli import app

    out = tmp_path / "results"
    return CliRunner().invoke(
        app, ["run", *args, "--no-sign", "--out", str(out)], env=env(tmp_path)
    )


def test_huge_sweep_is_refused_before_any_probe(tmp_path: Path, no_probing: list[int]) -> None:
    started = time.monotonic()
    done = invoke_run(tmp_path, str(huge_list(tmp_path)))
    assert done.exit_code == 2, done.output
    assert "4,294,967,296 probes, more than 65,536" in done.stderr  # + 2 control rounds
    assert "--allow-large" in done.stderr
    assert no_probing == [] and not (tmp_path / "results").exists()
    assert time.monotonic() - started < 10  # counted, not iterated


def test_repeat_counts_towards_the_limit(tmp_path: Path, no_probing: list[int]) -> None:
    targets = str(huge_list(tmp_path, "10.0.0.0/17"))  # 32,766 addresses
    done = invoke_run(tmp_path, targets, "--repeat", "3")
    assert done.exit_code == 2 and "98,300 probes" in done.stderr
    assert no_probing == []


def test_allow_large_lets_a_large_run_start(tmp_path: Path, no_probing: list[int]) -> None:
    done = invoke_run(tmp_path, str(huge_list(tmp_path, "10.0.0.0/15")), "--allow-large")
    assert no_probing == [1]  # reached the runner (a fake one here: nothing is probed)
    assert done.exit_code == 2 and "fake runner" in done.stderr


def test_allow_large_in_the_config_file(tmp_path: Path, no_probing: list[int]) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("allow_large: true\n")
    done = invoke_run(tmp_path, str(huge_list(tmp_path, "10.0.0.0/15")), "--config", str(config))
    assert no_probing == [1] and "fake runner" in done.stderr


def test_closing_table_at_80_columns_cuts_no_failure_mid_word(
    tmp_path: Path, loopback: Lab
) -> None:
    # The refused and the hanging endpoint fail; COLUMNS=80 is a standard terminal.
    hang = f"      - 127.0.0.1:{loopback.hang_port}\n"
    args = run_args(tmp_path, loopback, target_list(tmp_path, loopback, hang), "--no-sign")
    done = subprocess.run(
        [sys.executable, "-m", "netprobe", *args],
        capture_output=True,
        text=True,
        env={**env(tmp_path), "COLUMNS": "80"},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if not line.startswith("results: ")]
    assert max(len(line.rstrip()) for line in lines) <= 80, done.stdout  # the path stays whole
    words = set(done.stdout.split())
    assert {"fail:", "connection_refused"} <= words, done.stdout
    assert "…" not in done.stdout
    text = done.stdout
    assert text.index("Controls and vantage health") < text.index("domain:loop.test")
    assert text.index(f"endpoint:127.0.0.1:{loopback.control_port}") < text.index("hosts")
