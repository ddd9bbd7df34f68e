"""`ingest` with a process pool, whose workers insert their chunks' measurements and verdicts
themselves: the same rows as without a pool, copies in later chunks never inserted twice, and a
worker's server error stops the ingest before any runs row of its chunk is in.

Rules: a real ClickHouse server on loopback (`tests/clickhouse_server.py`); small chunks so that
a few files make many chunks.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.clickhouse_server import (
    HISTORY_HOURS,
    count,
    fresh_url,
    history_fixture,
    server_fixture,
)

HOURS = HISTORY_HOURS


@pytest.fixture(scope="module")
def clickhouse(tmp_path_factory):
    yield from server_fixture(tmp_path_factory)


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> tuple[Path, list[Path]]:
    return history_fixture(tmp_path_factory)


def _dump(clickhouse, url: str) -> dict[str, str]:
    database = url.rsplit("/", 1)[1]
    tables = {}
    for table in ("runs", "measurements", "verdicts"):
        columns = [
            line
            for line in clickhouse.query(
                f"SELECT name FROM system.columns WHERE database = '{database}' "
                f"AND table = '{table}' FORMAT TSV"
            ).split()
            if line not in ("ingest_id", "ingested_at")
        ]
        names = ", ".join(columns)
        tables[table] = clickhouse.query(
            f"SELECT {names} FROM {database}.{table} ORDER BY {names} FORMAT TSV"
        )
    return tables


def _files(history, tmp_path: Path) -> list[Path]:
    """Each file three times (a copy under another name too) and a tampered one: 19 files."""
    folder, paths = history
    copies = tmp_path / "copies"
    copies.mkdir()
    for path in paths:
        shutil.copy(path, copies / path.name)
    tampered = tmp_path / paths[0].name
    tampered.write_bytes(paths[0].read_bytes().replace(b'"rcode":"NOERROR"', b'"rcode":"X"', 1))
    return [*paths, tampered, *sorted(copies.iterdir()), *reversed(paths)]


def test_the_pool_stores_each_file_once_and_the_same_rows(clickhouse, history, tmp_path):
    from netprobe.store.client import ClickHouse
    from netprobe.store.ingest import ingest_files

    folder, paths = history
    trust = folder / "allowed_signers"
    files = _files(history, tmp_path)
    alone, pooled = fresh_url(clickhouse), fresh_url(clickhouse)
    with ClickHouse(alone) as client:
        expected = ingest_files(client, files, trust, jobs=1)
    with ClickHouse(pooled) as client:
        report = ingest_files(client, files, trust, jobs=2, batch=3)  # 7 chunks
        again = ingest_files(client, files, trust, jobs=2, batch=3)
    assert report.to_dict() == expected.to_dict()
    assert len(report.ingested) == HOURS and len(report.duplicates) == 2 * HOURS
    assert [item["path"] for item in report.rejected] == [str(files[HOURS])]
    assert again.ingested == [] and len(again.duplicates) == 3 * HOURS
    # Not even before merges is a row there twice: no copy was inserted.
    assert count(clickhouse, pooled, "runs") == HOURS
    assert count(clickhouse, pooled, "verdicts") == HOURS * 25
    assert _dump(clickhouse, pooled) == _dump(clickhouse, alone)


def test_a_workers_server_error_stops_the_ingest_before_its_runs_rows(
    clickhouse, history, tmp_path, monkeypatch
):
    from netprobe.store import ingest as module
    from netprobe.store.client import ClickHouse, StoreUnavailable

    folder, paths = history
    files = _files(history, tmp_path)
    real = module.insert_body

    def failing(client, table, *args):  # inherited by the forked workers
        if table == "verdicts":
            raise StoreUnavailable("ClickHouse at test: gone")
        real(client, table, *args)

    monkeypatch.setattr(module, "insert_body", failing)
    url = fresh_url(clickhouse)
    with ClickHouse(url) as client, pytest.raises(StoreUnavailable, match="gone"):
        module.ingest_files(client, files, folder / "allowed_signers", jobs=2, batch=3)
    assert count(clickhouse, url, "runs") == 0


def test_a_copy_in_the_next_chunk_waits_for_the_first_to_be_committed(
    clickhouse, history, tmp_path, monkeypatch
):
    # The runs rows go in slowly: a worker that did not wait for the earlier chunk's commit
    # would find its copies not stored yet and insert their rows a second time.
    import time

    from netprobe.store import ingest as module
    from netprobe.store.client import ClickHouse

    folder, paths = history
    copies = tmp_path / "copies"
    copies.mkdir()
    for path in paths:
        shutil.copy(path, copies / path.name)
    files = [*paths[:3], *sorted(copies.iterdir())[:3], *paths[3:], *sorted(copies.iterdir())[3:]]
    real = module.insert_body

    def slow_runs(client, table, *args):
        if table == "runs":
            time.sleep(1.0)
        real(client, table, *args)

    monkeypatch.setattr(module, "insert_body", slow_runs)
    url = fresh_url(clickhouse)
    with ClickHouse(url) as client:
        report = module.ingest_files(client, files * 2, folder / "allowed_signers", jobs=2, batch=3)
    assert len(report.ingested) == HOURS and len(report.duplicates) == 3 * HOURS
    assert count(clickhouse, url, "runs") == HOURS
    assert count(clickhouse, url, "verdicts") == HOURS * 25
