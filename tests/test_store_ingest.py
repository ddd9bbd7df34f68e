"""`netprobe ingest` into a real ClickHouse server (loopback, temp folder): verification, once only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from netprobe.cli import app
from tests.clickhouse_server import (
    HISTORY_HOURS,
    count,
    fresh_url,
    history_fixture,
    load_gen_history,
    server_fixture,
)

gen_history = load_gen_history()
runner = CliRunner()
HOURS = HISTORY_HOURS


@pytest.fixture(scope="module")
def clickhouse(tmp_path_factory):
    yield from server_fixture(tmp_path_factory)


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> tuple[Path, list[Path]]:
    return history_fixture(tmp_path_factory)


def ingest(*args: str):
    return runner.invoke(app, ["ingest", *args])


def records_in(paths: list[Path]) -> int:
    return sum(
        1
        for path in paths
        for line in path.read_text().splitlines()
        if json.loads(line)["type"] in ("dns", "tcp", "tls")
    )


def test_ingest_stores_every_run_record_and_verdict_once(clickhouse, history):
    folder, paths = history
    url = fresh_url(clickhouse)
    trust = str(folder / "allowed_signers")
    result = ingest(str(folder), "--clickhouse", url, "--allowed-signers", trust, "-f", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert len(report["ingested"]) == HOURS and report["rejected"] == []
    assert report["records"] == records_in(paths)
    assert count(clickhouse, url, "runs") == HOURS
    assert count(clickhouse, url, "measurements") == records_in(paths)
    # One verdict per target a run measured: 14 web names + 7 DCs + 2 ranges + 2 controls.
    assert count(clickhouse, url, "verdicts") == HOURS * 25
    database = url.rsplit("/", 1)[1]
    rows = clickhouse.query(
        f"SELECT status, method, rules_version FROM {database}.verdicts "
        "WHERE target_id = 'domain:telegram.org' ORDER BY start_time FORMAT JSONEachRow"
    )
    statuses = [json.loads(line) for line in rows.splitlines()]
    assert [s["status"] for s in statuses] == ["ok"] * 3 + ["blocked"] * 3
    assert statuses[-1]["method"] == "sni" and statuses[-1]["rules_version"] == 1
    signer = clickhouse.query(f"SELECT DISTINCT signer_fingerprint FROM {database}.runs").strip()
    assert signer.startswith("SHA256:")
    # The record column holds each record's line exactly as it was signed.
    first = next(line for line in paths[0].read_text().splitlines() if '"type":"dns"' in line[:40])
    stored = clickhouse.query(
        f"SELECT record FROM {database}.measurements WHERE line = 1 AND started_us = "
        f"(SELECT min(started_us) FROM {database}.runs) FORMAT TSVRaw"
    )
    assert stored.rstrip("\n") == first

    again = ingest(str(folder), "--clickhouse", url, "--allowed-signers", trust, "-f", "json")
    assert again.exit_code == 0, again.output
    second = json.loads(again.stdout)
    assert second["ingested"] == [] and len(second["duplicates"]) == HOURS
    for table, expected in (("runs", HOURS), ("measurements", records_in(paths))):
        assert count(clickhouse, url, table) == expected
        assert count(clickhouse, url, table, final=True) == expected


def test_tampered_and_untrusted_files_are_refused(clickhouse, history, tmp_path):
    folder, paths = history
    url = fresh_url(clickhouse)
    tampered = tmp_path / paths[0].name
    tampered.write_bytes(
        paths[0].read_bytes().replace(b'"rcode":"NOERROR"', b'"rcode":"REFUSED"', 1)
    )
    other = gen_history.write_history(
        tmp_path / "other", hours=1, onset_hour=0, outage_hour=None, gap_hour=None, ranges=1,
        signed=1, vantage="stranger",
    )  # fmt: skip
    trust = str(folder / "allowed_signers")
    result = ingest(
        str(tampered), str(other[0]), str(paths[1]), "--clickhouse", url,
        "--allowed-signers", trust, "-f", "json",
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert [item["path"] for item in report["ingested"]] == [str(paths[1])]
    reasons = {Path(item["path"]).name: item["reason"] for item in report["rejected"]}
    assert "INVALID" in reasons[tampered.name]
    assert "INVALID" in reasons[other[0].name] and "allowed" in reasons[other[0].name]
    assert count(clickhouse, url, "runs") == 1


def test_credentials_on_the_command_line_are_refused(history):
    folder, _paths = history
    result = ingest(
        str(folder), "--clickhouse", "http://admin:secret@127.0.0.1:1/netprobe",
        "--allowed-signers", str(folder / "allowed_signers"),
    )  # fmt: skip
    assert result.exit_code == 2
    assert "must not carry credentials" in result.output


def test_no_trust_store_means_nothing_is_stored(history, tmp_path, monkeypatch):
    folder, _paths = history
    monkeypatch.setenv("NETPROBE_ALLOWED_SIGNERS", str(tmp_path / "missing"))
    result = ingest(str(folder), "--clickhouse", "http://127.0.0.1:1/netprobe")
    assert result.exit_code == 2
    assert "no trust store" in result.output


def test_a_batch_cut_short_is_done_again_and_counts_once(clickhouse, history):
    """A crash after a batch's measurements and verdicts went in, before its runs rows: the
    retry stores everything, and nothing of the first attempt shows in counts or timelines."""
    from netprobe.store.client import ClickHouse, insert_body
    from netprobe.store.ingest import ensure_schema, prepare_file
    from netprobe.store.schema import INSERT_FORMATS

    folder, paths = history
    url = fresh_url(clickhouse)
    trust = folder / "allowed_signers"
    with ClickHouse(url) as client:
        ensure_schema(client)
        for path in paths[:2]:
            item = prepare_file(path, trust)
            for table in ("measurements", "verdicts"):
                insert_body(client, table, item.bodies[table], *INSERT_FORMATS[table])
    assert count(clickhouse, url, "runs") == 0
    result = ingest(str(folder), "--clickhouse", url, "--allowed-signers", str(trust))
    assert result.exit_code == 0, result.output
    assert count(clickhouse, url, "runs") == HOURS
    assert count(clickhouse, url, "measurements", final=True) == records_in(paths)
    assert count(clickhouse, url, "verdicts", final=True) == HOURS * 25
    database = url.rsplit("/", 1)[1]
    visible = clickhouse.query(
        f"SELECT count() FROM {database}.verdicts WHERE (file_sha256, ingest_id) IN "
        f"(SELECT file_sha256, ingest_id FROM {database}.runs FINAL)"
    )
    assert int(visible) == HOURS * 25  # what netprobe's timeline reads: the first try is not
    store = runner.invoke(app, ["timeline", "--clickhouse", url, "--format", "json"])
    files = runner.invoke(
        app, ["timeline", str(folder), "--allowed-signers", str(trust), "--jobs", "1",
              "--no-cache", "--format", "json"],
    )  # fmt: skip
    assert store.exit_code == 0 and files.exit_code == 0, store.output + files.output
    assert json.loads(store.stdout) == json.loads(files.stdout)


def test_stored_hashes_asks_in_pieces_and_finds_every_stored_file(clickhouse, history):
    """More hashes than one query carries (a large batch): each stored one is found once."""
    import hashlib

    from netprobe.store.client import ClickHouse
    from netprobe.store.ingest import _HASHES_PER_QUERY, stored_hashes

    folder, paths = history
    url = fresh_url(clickhouse)
    result = ingest(
        str(folder), "--clickhouse", url, "--allowed-signers", str(folder / "allowed_signers")
    )
    assert result.exit_code == 0, result.output
    stored = {hashlib.sha256(path.read_bytes()).hexdigest() for path in paths}
    others = [hashlib.sha256(str(n).encode()).hexdigest() for n in range(2 * _HASHES_PER_QUERY + 5)]
    asked = others[: _HASHES_PER_QUERY - 2] + sorted(stored) + others[_HASHES_PER_QUERY - 2 :]
    with ClickHouse(url) as client:
        assert stored_hashes(client, asked) == stored
        assert stored_hashes(client, others) == set()
