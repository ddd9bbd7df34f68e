"""`netprobe ingest --watch`: a drop folder across a ClickHouse restart, no loss, no duplicates."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.clickhouse_server import count, fresh_url, server_fixture

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("gen_history", ROOT / "bench" / "gen_history.py")
gen_history = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gen_history)


@pytest.fixture(scope="module")
def clickhouse(tmp_path_factory):
    yield from server_fixture(tmp_path_factory)


def wait_for(condition, timeout: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def names(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir() if p.is_file()} if folder.is_dir() else set()


def records_in(paths: list[Path]) -> int:
    return sum(
        1
        for path in paths
        for line in path.read_text().splitlines()
        if json.loads(line)["type"] in ("dns", "tcp", "tls")
    )


def test_watch_survives_a_server_restart_and_quarantines_bad_files(clickhouse, tmp_path):
    source = tmp_path / "source"
    paths = gen_history.write_history(
        source, hours=8, onset_hour=4, outage_hour=None, gap_hour=None, ranges=2, signed=8
    )
    drop = tmp_path / "drop"
    drop.mkdir()
    url = fresh_url(clickhouse)
    log = tmp_path / "watch.log"
    watcher = subprocess.Popen(
        [sys.executable, "-m", "netprobe", "ingest", "--watch", str(drop), "--clickhouse", url,
         "--allowed-signers", str(source / "allowed_signers"), "--interval", "0.2",
         "--settle", "0.5"],
        stdout=subprocess.DEVNULL, stderr=log.open("wb"), cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    try:
        done, quarantine = drop / "ingested", drop / "quarantine"
        # 1. Three good files, one tampered with, and one still arriving (its first half).
        for path in paths[:3]:
            shutil.copy(path, drop / path.name)
        tampered_name = paths[3].name.replace("_bench", "_tampered")
        bad = drop / tampered_name
        bad.write_bytes(paths[3].read_bytes().replace(b'"port":443', b'"port":444', 1))
        arriving = drop / paths[4].name
        data = paths[4].read_bytes()
        arriving.write_bytes(data[:100])  # not even the header line yet: nothing signed
        wait_for(lambda: names(done) >= {p.name for p in paths[:3]}, what="the first files")
        wait_for(lambda: tampered_name in names(quarantine), what="the quarantine")
        reason = (quarantine / (tampered_name + ".reason")).read_text()
        assert "INVALID" in reason
        time.sleep(1.0)  # well past --settle: a file still arriving is not taken, nor refused
        assert arriving.name in names(drop) and arriving.name not in names(done)
        with arriving.open("ab") as handle:
            handle.write(data[100 : len(data) // 2])  # signed up to its start checkpoint
        time.sleep(1.0)
        assert arriving.name in names(drop) and arriving.name not in names(done)
        assert not names(quarantine) - {tampered_name, tampered_name + ".reason"}
        with arriving.open("ab") as handle:
            handle.write(data[len(data) // 2 :])
        wait_for(lambda: arriving.name in names(done), what="the file that finished arriving")

        # 2. The server goes away; new files wait in the drop folder, nothing is lost.
        clickhouse.stop()
        for path in paths[5:]:
            shutil.copy(path, drop / path.name)
        wait_for(lambda: "unavailable" in log.read_text(), what="the watcher to notice")
        assert {p.name for p in paths[5:]} <= names(drop)
        clickhouse.start()
        wait_for(lambda: names(done) >= {p.name for p in paths[5:]}, what="the files after restart")

        # 3. The same file dropped again (another name) is stored once.
        shutil.copy(paths[0], drop / paths[0].name.replace("_bench", "_again"))
        wait_for(lambda: len(names(done)) == 8, what="the duplicate to be moved")
    finally:
        watcher.send_signal(signal.SIGTERM)
        watcher.wait(30)
    assert watcher.returncode == 0, log.read_text()
    good = [paths[i] for i in (0, 1, 2, 4, 5, 6, 7)]
    for final in (False, True):
        assert count(clickhouse, url, "runs", final) == len(good)
        assert count(clickhouse, url, "measurements", final) == records_in(good)
    assert "duplicate" in log.read_text()
