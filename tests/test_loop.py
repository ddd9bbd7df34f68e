"""The run's event loop (netprobe/run/loop.py): uvloop when installed, asyncio when asked; a real
loopback run on each gives the same records."""

from __future__ import annotations

import asyncio
import json
import socket
import threading

import pytest

from netprobe.run import loop
from netprobe.run.executor import RunOptions, run_targets
from netprobe.targets.lists import parse_targets


def test_env_chooses_the_loop(monkeypatch):
    monkeypatch.setenv(loop.ENV, "asyncio")
    assert loop.loop_factory() is None and loop.loop_name() == "asyncio"
    monkeypatch.setenv(loop.ENV, "uvloop")
    assert loop.loop_name() == "uvloop"  # the test extra installs it
    monkeypatch.delenv(loop.ENV)
    assert loop.loop_name() == "uvloop"  # installed: used by default


def test_required_uvloop_missing_is_a_clear_error(monkeypatch):
    import sys

    monkeypatch.setenv(loop.ENV, "uvloop")
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import fails
    with pytest.raises(RuntimeError, match="uvloop is not installed"):
        loop.loop_factory()
    monkeypatch.delenv(loop.ENV)
    assert loop.loop_factory() is None  # not asked for: the standard loop


def test_run_returns_the_coroutines_value_on_each_loop(monkeypatch):
    async def which() -> str:
        return type(asyncio.get_running_loop()).__module__

    monkeypatch.setenv(loop.ENV, "asyncio")
    assert loop.run(which()).startswith("asyncio")
    monkeypatch.setenv(loop.ENV, "uvloop")
    assert loop.run(which()).startswith("uvloop")


@pytest.fixture
def listener():
    """A loopback listener on an ephemeral port that accepts and closes; and a closed port."""
    server = socket.create_server(("127.0.0.1", 0), backlog=128)
    closed = socket.create_server(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                conn.close()
            except TimeoutError:
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], closed_port
    stop.set()
    thread.join()
    server.close()


@pytest.mark.parametrize("name", ["asyncio", "uvloop"])
def test_tcp_run_on_each_loop(tmp_path, monkeypatch, listener, name):
    open_port, closed_port = listener
    monkeypatch.setenv(loop.ENV, name)
    text = (
        "name: t\ngroups:\n  g:\n    endpoints:\n"
        f"      - 127.0.0.1:{open_port}\n      - 127.0.0.1:{closed_port}\n"
    )
    options = RunOptions(
        out_dir=tmp_path, timeout=2.0, concurrency=4, control_resolvers=[], resolvers=[], confirm=0
    )
    result = run_targets([parse_targets(text, "t.yaml")], options)
    lines = [json.loads(line) for line in result.path.read_text().splitlines()]
    tcp = {r["port"]: r["failure"] for r in lines if r["type"] == "tcp"}
    assert tcp == {open_port: None, closed_port: "connection_refused"}
