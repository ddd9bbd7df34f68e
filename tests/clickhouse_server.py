"""A real ClickHouse server on loopback for the tests and bench/fleet.py, its data in a temp folder.

Rules:
- Uses the `clickhouse-server` binary on PATH (Debian's package, installed by `.ci/run`); listens
  on 127.0.0.1 only, on free ports, with every path (data, tmp, logs, user files) under `root`.
- Two users: `default` (no password, loopback only: the tests' admin) and whatever the test
  creates. `start()` waits until `/ping` answers; `stop()` ends only the process it started.
- `stop()` then `start()` again on the same folder is a server restart with its data kept.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.bench_modules import load_gen_history

BINARY = "clickhouse-server"

CONFIG = """<?xml version="1.0"?>
<yandex>
    <logger><level>warning</level><log>{root}/log/server.log</log>
        <errorlog>{root}/log/server.err.log</errorlog><size>10M</size><count>1</count></logger>
    <http_port>{http_port}</http_port>
    <tcp_port>{tcp_port}</tcp_port>
    <listen_host>127.0.0.1</listen_host>
    <max_connections>64</max_connections>
    <keep_alive_timeout>30</keep_alive_timeout>
    <max_concurrent_queries>32</max_concurrent_queries>
    <uncompressed_cache_size>67108864</uncompressed_cache_size>
    <mark_cache_size>67108864</mark_cache_size>
    <path>{root}/data/</path>
    <tmp_path>{root}/tmp/</tmp_path>
    <user_files_path>{root}/user_files/</user_files_path>
    <format_schema_path>{root}/format_schemas/</format_schema_path>
    <users_config>{root}/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mlock_executable>false</mlock_executable>
    <builtin_dictionaries_reload_interval>3600</builtin_dictionaries_reload_interval>
    <max_session_timeout>3600</max_session_timeout>
    <default_session_timeout>60</default_session_timeout>
</yandex>
"""

USERS = """<?xml version="1.0"?>
<yandex>
    <profiles><default><max_memory_usage>4000000000</max_memory_usage>
        <load_balancing>random</load_balancing></default>
        <readonly><readonly>1</readonly></readonly></profiles>
    <users><default><password></password>
        <networks><ip>127.0.0.1</ip></networks>
        <profile>default</profile><quota>default</quota></default></users>
    <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>
        <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time>
        </interval></default></quotas>
</yandex>
"""


def available() -> str | None:
    """The server binary's path, or None when it is not installed."""
    return shutil.which(BINARY) or (
        f"/usr/sbin/{BINARY}" if os.path.exists(f"/usr/sbin/{BINARY}") else None
    )


# Below Linux's ephemeral range (32768-60999): a port the kernel hands out for bind(0) may be
# taken again by any outgoing connection (the ingest pool opens many) before the server binds it.
_PORTS = range(20000, 32768)


def _free_port() -> int:
    while True:
        port = random.choice(_PORTS)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue  # in use: another one
            return port


class _PortTaken(Exception):
    """The server exited because its port was bound by someone else first."""


class ClickHouseServer:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.process: subprocess.Popen | None = None
        self.started_once = False
        self._errors_from = 0
        for sub in ("data", "tmp", "log", "user_files", "format_schemas"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self._configure()

    def _configure(self) -> None:
        self.http_port = _free_port()
        self.tcp_port = _free_port()
        values = {"root": self.root, "http_port": self.http_port, "tcp_port": self.tcp_port}
        (self.root / "config.xml").write_text(CONFIG.format(**values))
        (self.root / "users.xml").write_text(USERS)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self, timeout: float = 60.0) -> None:
        # A first start whose port was taken in the meantime tries other ports; a restart keeps
        # its ports (clients hold the URL).
        for _ in range(5):
            try:
                return self._start(timeout)
            except _PortTaken:
                if self.started_once:
                    raise RuntimeError(
                        f"clickhouse-server: port taken, see {self.root / 'log'}"
                    ) from None
                self._configure()
        raise RuntimeError(f"clickhouse-server: no free port found, see {self.root / 'log'}")

    def _start(self, timeout: float) -> None:
        self._errors_from = len(self._errors(0))  # only this start's errors count
        binary = available()
        if binary is None:
            raise RuntimeError(f"{BINARY} is not installed (apt-get install clickhouse-server)")
        log = open(self.root / "log" / "stdout.log", "ab")  # noqa: SIM115 - the child keeps it
        self.process = subprocess.Popen(
            [binary, f"--config-file={self.root / 'config.xml'}"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.root,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.process = None
                if "Address already in use" in self._errors():
                    raise _PortTaken
                raise RuntimeError(f"clickhouse-server exited: see {self.root / 'log'}")
            try:
                if httpx.get(self.url + "/ping", timeout=1.0).status_code == 200:
                    self.started_once = True
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"clickhouse-server did not answer within {timeout} s")

    def _errors(self, start: int | None = None) -> str:
        try:
            text = (self.root / "log" / "server.err.log").read_text(errors="replace")
        except OSError:
            return ""
        return text[self._errors_from if start is None else start :]

    def query(self, sql: str) -> str:
        """Run one statement as the admin user (tests only); the response text."""
        response = httpx.post(self.url + "/", content=sql.encode(), timeout=60.0)
        if response.status_code != 200:
            raise RuntimeError(response.text)
        return response.text

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None


# The store tests' signed history: six hourly runs, a block from the third hour, two ranges.
HISTORY_HOURS = 6


def history_fixture(tmp_path_factory) -> tuple[Path, list[Path]]:
    """Body of the store tests' module-scoped `history` fixture: the folder and its files."""
    folder = tmp_path_factory.mktemp("history")
    paths = load_gen_history().write_history(
        folder,
        hours=HISTORY_HOURS,
        onset_hour=3,
        outage_hour=None,
        gap_hour=None,
        ranges=2,
        signed=HISTORY_HOURS,
    )
    return folder, paths


def server_fixture(tmp_path_factory) -> Iterator[ClickHouseServer]:
    """Body of the tests' module-scoped `clickhouse` fixture: one server per test module."""
    if available() is None:
        import pytest

        pytest.skip("clickhouse-server is not installed (.ci/run installs it)")
    server = ClickHouseServer(tmp_path_factory.mktemp("clickhouse"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


_databases = iter(range(1, 10**6))


def fresh_url(server: ClickHouseServer) -> str:
    """A URL naming a database no other test in this process used."""
    return f"{server.url}/t{os.getpid()}_{next(_databases)}"


def count(server: ClickHouseServer, url: str, table: str, final: bool = False) -> int:
    database = url.rsplit("/", 1)[1]
    suffix = " FINAL" if final else ""
    return int(server.query(f"SELECT count() FROM {database}.{table}{suffix}").strip())
