"""TCP connect probe against loopback listeners: success, refused, reset, timeout, IPv6."""

from __future__ import annotations

import asyncio

import pytest

from netprobe.probes.tcp import probe_tcp
from tests.localservers import StreamServer, closed_port, never_answer, probe_context, tcp_listener


def run_tcp(ip: str, port: int, timeout: float = 2.0) -> dict:
    return asyncio.run(probe_tcp(probe_context(f"endpoint:{ip}:{port}"), ip, port, timeout=timeout))


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_listening_port_connects(host: str) -> None:
    with tcp_listener(host) as port:
        record = run_tcp(host, port)
    assert record["type"] == "tcp"
    assert record["failure"] is None
    assert record["failed_operation"] is None
    assert (record["ip"], record["port"]) == (host, port)
    assert record["target_id"] == f"endpoint:{host}:{port}"
    assert 0 <= record["t0"] <= record["t"]


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_closed_port_is_refused(host: str) -> None:
    record = run_tcp(host, closed_port(host))
    assert record["failure"] == "connection_refused"
    assert record["failed_operation"] == "connect"


def test_record_fields_match_design() -> None:
    with tcp_listener() as port:
        record = run_tcp("127.0.0.1", port)
    assert list(record) == [
        "schema_version", "type", "target_id", "group", "role", "attempt", "t0", "t",
        "failure", "failed_operation", "ip", "port",
    ]  # fmt: skip


def test_timeout_is_generic_timeout_error() -> None:
    # Loopback connects complete at once, so an expired deadline is simulated with a tiny one
    # that ends before the event loop ever runs the connect.
    with StreamServer(never_answer) as server:
        record = run_tcp("127.0.0.1", server.port, timeout=0)
    assert record["failure"] == "generic_timeout_error"
    assert record["failed_operation"] == "connect"


def test_bad_address_is_an_error_not_a_record() -> None:
    with pytest.raises(ValueError):
        run_tcp("not-an-ip", 443)
