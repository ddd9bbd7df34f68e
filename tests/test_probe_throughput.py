"""Throughput probe against a loopback HTTPS server (tests/localservers.py `object_server`)."""

from __future__ import annotations

import asyncio
import ssl

import pytest

from netprobe.model import failures
from netprobe.model.records import THROUGHPUT
from netprobe.probes.throughput import parse_head, probe_throughput, progress_samples
from netprobe.probes.tls import make_ssl_context
from tests.localservers import (
    OBJECT_SIZE,
    closed_port,
    object_server,
    probe_context,
    write_ca_bundle,
)


@pytest.fixture()
def client_context(ca, tmp_path) -> ssl.SSLContext:
    return make_ssl_context(write_ca_bundle(ca, str(tmp_path)))


def fetch(
    port: int,
    path: str,
    context: ssl.SSLContext,
    *,
    server_name: str = "example.test",
    sni_role: str = "target",
    ip: str = "127.0.0.1",
    max_bytes: int = 4 * OBJECT_SIZE,
    max_seconds: float = 5.0,
    timeout: float = 3.0,
) -> dict:
    return asyncio.run(
        probe_throughput(
            probe_context("domain:example.test"),
            ip,
            port,
            server_name,
            path,
            hostname="example.test",
            sni_role=sni_role,
            ssl_context=context,
            timeout=timeout,
            max_bytes=max_bytes,
            max_seconds=max_seconds,
        )
    )


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_whole_object_is_fetched_with_its_size_and_rate(host, cert, client_context) -> None:
    with object_server(cert, host) as server:
        record = fetch(server.port, "/object", client_context, ip=host)
    assert record["type"] == THROUGHPUT and record["failure"] is None
    assert record["http_status"] == 200 and record["stopped"] == "complete"
    assert record["body_bytes"] == OBJECT_SIZE and record["bytes"] > OBJECT_SIZE
    assert 0 < record["ttfb"] <= record["duration"] < 5
    assert record["rate"] == pytest.approx(record["bytes"] / record["duration"], rel=1e-3)
    assert len(record["samples"]) == 8 and record["samples"][-1]["bytes"] == record["bytes"]
    counts = [s["bytes"] for s in record["samples"]]
    assert counts == sorted(counts)


def test_record_fields_match_design(cert, client_context) -> None:
    with object_server(cert) as server:
        record = fetch(server.port, "/object", client_context)
    assert list(record)[:10] == [
        "schema_version", "type", "target_id", "group", "role", "attempt", "t0", "t",
        "failure", "failed_operation",
    ]  # fmt: skip
    for name in ("ip", "port", "server_name", "sni_role", "hostname", "path", "sequence",
                 "max_bytes", "max_seconds", "http_status", "bytes", "body_bytes", "ttfb",
                 "duration", "rate", "stopped", "samples"):  # fmt: skip
        assert name in record, name


def test_time_cap_stops_a_slow_transfer_without_a_failure(cert, client_context) -> None:
    with object_server(cert) as server:
        record = fetch(server.port, "/slow", client_context, max_seconds=1.0)
    assert record["failure"] is None and record["stopped"] == "time_cap"
    assert 0.9 < record["duration"] < 2.0
    assert 0 < record["body_bytes"] < OBJECT_SIZE / 4
    # Paced at ~80 KB/s: far below what the same server gives at once.
    assert record["rate"] < 200_000
    samples = [s["bytes"] for s in record["samples"]]
    assert samples[0] < samples[3] < samples[-1]  # it kept arriving over the whole second


def test_byte_cap_stops_early(cert, client_context) -> None:
    with object_server(cert) as server:
        record = fetch(server.port, "/object", client_context, max_bytes=100_000)
    assert record["failure"] is None and record["stopped"] == "byte_cap"
    assert 100_000 <= record["bytes"] < OBJECT_SIZE


def test_an_sni_throttler_on_the_same_address(cert, client_context) -> None:
    with object_server(cert, slow_sni="example.test") as server:
        target = fetch(server.port, "/object", client_context, max_seconds=1.0)
        control = fetch(
            server.port, "/object", client_context, server_name="localhost", sni_role="control"
        )
    assert target["stopped"] == "time_cap" and control["stopped"] == "complete"
    assert target["rate"] * 4 < control["rate"]
    assert control["server_name"] == "localhost" and control["hostname"] == "example.test"


def test_control_sni_is_fetched_without_hostname_check(cert, client_context) -> None:
    # The server's certificate names the target; the control name is only the SNI sent.
    with object_server(cert) as server:
        record = fetch(
            server.port, "/object", client_context, server_name="other.invalid", sni_role="control"
        )
    assert record["failure"] is None and record["body_bytes"] == OBJECT_SIZE


def test_target_sni_certificate_is_verified(cert, client_context) -> None:
    with object_server(cert) as server:
        record = fetch(server.port, "/object", client_context, server_name="other.invalid")
    assert record["failure"] == failures.SSL_INVALID_HOSTNAME
    assert record["failed_operation"] == "tls_handshake" and record["bytes"] == 0


@pytest.mark.parametrize(
    ("path", "failure"),
    [
        ("/reset", failures.CONNECTION_RESET),
        ("/short", failures.EOF_ERROR),
        ("/garbage", failures.HTTP_INVALID_RESPONSE),
        ("/silent", failures.GENERIC_TIMEOUT),
    ],
)
def test_transfer_failures_keep_the_bytes_read(cert, client_context, path, failure) -> None:
    with object_server(cert) as server:
        record = fetch(server.port, path, client_context, max_seconds=1.0)
    assert record["failure"] == failure
    assert record["failed_operation"] == "http_transaction" and record["stopped"] is None
    if path == "/reset":
        assert 10_000 < record["body_bytes"] < OBJECT_SIZE
    if path == "/short":
        assert record["body_bytes"] == 100 and record["http_status"] == 200
    if path == "/silent":
        assert record["bytes"] == 0 and record["ttfb"] is None


def test_not_found_is_recorded_not_a_failure(cert, client_context) -> None:
    with object_server(cert) as server:
        record = fetch(server.port, "/missing", client_context)
    assert record["failure"] is None and record["http_status"] == 404
    assert record["stopped"] == "complete" and record["body_bytes"] == 9


def test_connect_failure_is_reported_as_connect(client_context) -> None:
    record = fetch(closed_port(), "/object", client_context)
    assert record["failure"] == failures.CONNECTION_REFUSED
    assert record["failed_operation"] == "connect" and record["duration"] is None


def test_bad_input_raises() -> None:
    with pytest.raises(ValueError):
        fetch(443, "/x", ssl.create_default_context(), ip="not-an-ip")
    with pytest.raises(ValueError):
        fetch(443, "no-slash", ssl.create_default_context())


def test_parse_head_and_samples() -> None:
    assert parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 12") == (200, 12)
    assert parse_head(b"HTTP/1.0 301 Moved\r\nLocation: /") == (301, None)
    events = [(0.1, 10), (0.5, 50), (0.9, 90)]
    assert [s["bytes"] for s in progress_samples(events, 1.0, 4)] == [10, 50, 50, 90]
