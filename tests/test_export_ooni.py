"""`netprobe export --ooni`: the measurements load with OONI's own `oonidata` package.

`oonidata` pins older dependencies than netprobe, so it lives in a virtual environment of its own,
made once with `pip install oonidata==OONIDATA` (from PyPI) under the user's cache folder and
reused; `tests/ooni_loader.py` runs inside it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from netprobe.cli import app
from netprobe.evidence.keys import generate_key
from netprobe.evidence.writer import ResultWriter
from netprobe.model.records import measurement
from tests import recordfactory as rf

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("gen_history", ROOT / "bench" / "gen_history.py")
gen_history = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gen_history)
runner = CliRunner()
OONIDATA = "0.3.0"


@pytest.fixture(scope="session")
def ooni_python() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    venv = cache / "netprobe-tests" / f"oonidata-{OONIDATA}"
    python = venv / "bin" / "python"
    if not python.exists():
        building = venv.with_name(venv.name + f".building-{os.getpid()}")
        shutil.rmtree(building, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(building)], check=True)
        subprocess.run(
            [str(building / "bin" / "pip"), "install", "-q", f"oonidata=={OONIDATA}"],
            check=True,
            timeout=900,
        )
        shutil.rmtree(venv, ignore_errors=True)
        building.rename(venv)  # atomic: a half-built environment is never used
    return python


def load_with_oonidata(python: Path, files: list[Path]) -> list[dict]:
    done = subprocess.run(
        [str(python), str(ROOT / "tests" / "ooni_loader.py"), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def signed_result(folder: Path, head: dict, records: list[dict]) -> tuple[Path, Path]:
    signer = generate_key(folder / "key", "lab")
    (folder / "allowed_signers").write_text(signer.allowed_signers_line() + "\n")
    head = {**head, "signer": None}
    with ResultWriter(folder, "20250526T010000Z_lab-1", signer=signer) as writer:
        writer.write_header(head)
        for record in records:
            writer.write(record)
        path = writer.close(rf.summary(len(records)))
    return path, folder / "allowed_signers"


@pytest.fixture(scope="module")
def telegram_run(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("telegram")
    (path,) = gen_history.write_history(
        folder, hours=1, onset_hour=0, outage_hour=None, gap_hour=None, ranges=1, signed=1
    )
    return path, folder / "allowed_signers"


@pytest.fixture(scope="module")
def lab_run(tmp_path_factory) -> tuple[Path, Path]:
    records = [
        *rf.healthy_controls(),
        *rf.domain_ok("open.example", "203.0.113.10"),
        rf.tcp("203.0.113.20", 443, failure="generic_timeout_error", group="dc"),
    ]
    return signed_result(tmp_path_factory.mktemp("lab"), rf.header(), records)


def export(*args: str):
    return runner.invoke(app, ["export", "--ooni", *args, "--format", "json"])


def test_telegram_run_loads_as_oonis_telegram_model(telegram_run, ooni_python, tmp_path):
    path, trust = telegram_run
    result = export(str(path), "--out", str(tmp_path), "--allowed-signers", str(trust))
    assert result.exit_code == 0, result.output
    (written,) = json.loads(result.stdout)["written"]
    ours = [json.loads(line) for line in Path(written["output"]).read_text().splitlines()]
    (loaded,) = load_with_oonidata(ooni_python, [Path(written["output"])])
    assert (loaded["model"], loaded["test_keys_model"]) == ("Telegram", "TelegramTestKeys")
    data, mine = loaded["data"], ours[0]
    for key in ("measurement_start_time", "test_start_time", "probe_asn", "probe_cc",
                "report_id", "test_name", "test_version", "test_runtime", "software_name",
                "software_version", "data_format_version", "annotations"):  # fmt: skip
        assert data[key] == mine[key], key
    assert data["probe_asn"] == "AS45899" and data["test_name"] == "telegram"
    keys = data["test_keys"]
    # The blocked scenario: every DC connect times out, web names reset with their own SNI.
    assert keys["telegram_tcp_blocking"] is True
    assert keys["telegram_web_status"] == "blocked"
    assert keys["telegram_web_failure"] == "connection_reset"
    header_lines = path.read_text().splitlines()
    records = [json.loads(line) for line in header_lines]
    targets = [r for r in records if r.get("role") == "target"]
    assert len(keys["tcp_connect"]) == sum(r["type"] == "tcp" for r in targets)
    assert len(keys["queries"]) == sum(r["type"] == "dns" for r in targets)
    assert len(keys["tls_handshakes"]) == sum(r["type"] == "tls" for r in targets)
    assert {c["status"]["failure"] for c in keys["tcp_connect"]} == {"generic_timeout_error"}
    assert keys["queries"][0]["rcode"] == 0 and keys["queries"][0]["answers"][0]["ipv4"]
    annotations = data["annotations"]
    assert (
        annotations["netprobe_file_sha256"]
        == __import__("hashlib").sha256(path.read_bytes()).hexdigest()
    )
    assert annotations["netprobe_verdict"] == "blocked"
    assert annotations["netprobe_rules_version"] == "1"
    verdicts = json.loads(annotations["netprobe_verdicts"])
    assert verdicts["domain:telegram.org"] == "blocked/sni"
    assert verdicts["endpoint:149.154.175.50:443"] == "blocked/ip"


def test_other_lists_give_one_urlgetter_measurement_per_target(lab_run, ooni_python, tmp_path):
    path, trust = lab_run
    result = export(str(path), "--out", str(tmp_path), "--allowed-signers", str(trust))
    assert result.exit_code == 0, result.output
    (written,) = json.loads(result.stdout)["written"]
    loaded = load_with_oonidata(ooni_python, [Path(written["output"])])
    assert {(m["model"], m["test_keys_model"]) for m in loaded} == {
        ("UrlGetter", "UrlGetterTestKeys")
    }
    by_target = {m["data"]["annotations"]["netprobe_target_id"]: m["data"] for m in loaded}
    assert set(by_target) == {"domain:open.example", "endpoint:203.0.113.20:443"}
    dc = by_target["endpoint:203.0.113.20:443"]
    assert dc["input"] == "tcpconnect://203.0.113.20:443"
    assert dc["test_keys"]["failure"] == "generic_timeout_error"
    assert dc["test_keys"]["tcp_connect"][0]["status"] == {
        "success": False, "blocked": None, "failure": "generic_timeout_error"
    }  # fmt: skip
    web = by_target["domain:open.example"]
    assert web["input"] == "tlshandshake://open.example:443"
    assert web["annotations"]["netprobe_verdict"] == "ok"
    assert web["test_keys"]["tls_handshakes"][0]["address"] == "203.0.113.10:443"
    assert "probe_ip" not in web or web["probe_ip"] is None


def http_record(ip: str, *, failure: str | None = None, **answer) -> dict:
    """An http record of open.example as netprobe.probes.http writes it (no answer on failure)."""
    answered = failure is None
    fields = {
        "status": 200, "headers": {}, "title": None, "body_sha256": "ab" * 32,
        "body_length": 6, "body_truncated": False, "body": "<html>", **answer,
    } if answered else {
        "status": None, "headers": {}, "title": None, "body_sha256": None,
        "body_length": None, "body_truncated": False, "body": None,
    }  # fmt: skip
    return measurement(
        "http", target_id="domain:open.example", group="web", role="target", attempt=0,
        t0=0.4, t=0.45, failure=failure,
        failed_operation="http_round_trip" if failure else None,
        ip=ip, port=80, hostname="open.example", address_sources=[], **fields,
    )  # fmt: skip


def test_http_records_become_oonis_requests(ooni_python, tmp_path):
    """df-001: the probe's GET as the request, the record's view of the answer as the response."""
    records = [
        *rf.healthy_controls(),
        *rf.domain_ok("open.example", "203.0.113.10"),
        http_record(
            "203.0.113.10",
            headers={"server": "nginx", "set-cookie": ["sid", "lang"]},
            body="<html><title>Blocked</title>",
            body_length=4096,
        ),
        http_record("203.0.113.11", failure="connection_reset"),
    ]
    (tmp_path / "run").mkdir()
    path, trust = signed_result(tmp_path / "run", rf.header(), records)
    result = export(str(path), "--out", str(tmp_path / "out"), "--allowed-signers", str(trust))
    assert result.exit_code == 0, result.output
    (written,) = json.loads(result.stdout)["written"]
    loaded = load_with_oonidata(ooni_python, [Path(written["output"])])
    (web,) = [m["data"] for m in loaded if m["data"]["input"].endswith("open.example:443")]
    answered, failed = web["test_keys"]["requests"]
    assert answered["address"] == "203.0.113.10:80" and answered["failure"] is None
    request = answered["request"]
    assert (request["url"], request["method"]) == ("http://open.example/", "GET")
    assert ["Host", "open.example"] in request["headers_list"]
    assert dict(map(tuple, request["headers_list"]))["User-Agent"].startswith("Mozilla/5.0")
    response = answered["response"]
    assert response["code"] == 200
    assert response["headers_list"] == [["server", "nginx"], ["set-cookie", "sid"],
                                        ["set-cookie", "lang"]]  # fmt: skip
    assert response["body"] == "<html><title>Blocked</title>"
    assert response["body_is_truncated"] is True  # 28 characters kept of 4,096 bytes read
    assert failed["failure"] == "connection_reset" and failed["response"] is None
    assert failed["address"] == "203.0.113.11:80"


def test_a_tampered_file_is_not_exported(telegram_run, tmp_path):
    path, trust = telegram_run
    tampered = tmp_path / path.name
    tampered.write_bytes(path.read_bytes().replace(b"connection_reset", b"connection_refused", 1))
    result = export(str(tampered), "--out", str(tmp_path / "out"), "--allowed-signers", str(trust))
    assert result.exit_code == 1
    assert "INVALID" in json.loads(result.stdout)["rejected"][0]["reason"]
    assert not list((tmp_path / "out").glob("*.ooni.jsonl"))
