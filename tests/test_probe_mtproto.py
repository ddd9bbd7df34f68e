"""MTProto probe against loopback DC stand-ins: resPQ over each transport, and every failure."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading

import pytest

from netprobe.probes import mtproto_wire as w
from netprobe.probes.mtproto import probe_mtproto
from tests.localservers import (
    StreamServer,
    closed_port,
    never_answer,
    probe_context,
    reset_after_hello,
)

SERVER_NONCE = bytes(range(50, 66))
FINGERPRINT = -3414540481677951611  # 0xd09d1d85de64fd85 as int64


def dc(conn: socket.socket, stop: threading.Event) -> None:
    """A DC stand-in: answers req_pq_multi with resPQ in whatever transport the client chose."""
    session = w.ServerSession(SERVER_NONCE, fingerprints=(FINGERPRINT, 7))
    while data := conn.recv(4096):
        conn.sendall(session.feed(data))


def plain_blind_dc(conn: socket.socket, stop: threading.Event) -> None:
    """A DC behind protocol DPI: plain-transport requests vanish, obfuscated2 is answered."""
    first = conn.recv(4096)
    if first[:1] == w.ABRIDGED_TAG or first[:4] == w.INTERMEDIATE_TAG:
        never_answer(conn, stop)
        return
    session = w.ServerSession(SERVER_NONCE)
    conn.sendall(session.feed(first))
    never_answer(conn, stop)


def http_501(conn: socket.socket, stop: threading.Event) -> None:
    conn.recv(4096)
    conn.sendall(b"HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\n\r\n")
    never_answer(conn, stop)


def transport_error(conn: socket.socket, stop: threading.Event) -> None:
    conn.recv(4096)
    conn.sendall(struct.pack("<I", 4) + struct.pack("<i", -404))
    never_answer(conn, stop)


def half_then_close(conn: socket.socket, stop: threading.Event) -> None:
    conn.recv(4096)
    conn.sendall(b"\x50\x00\x00\x00" + bytes(10))  # announces 80 bytes, sends 10, closes


def run(port: int, transport: str, host: str = "127.0.0.1", timeout: float = 2.0) -> dict:
    ctx = probe_context(f"endpoint:{host}:{port}")
    return asyncio.run(probe_mtproto(ctx, host, port, transport, timeout=timeout))


@pytest.mark.parametrize("transport", w.TRANSPORTS)
@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_dc_answers_res_pq_over_every_transport(transport: str, host: str) -> None:
    with StreamServer(dc, host) as server:
        record = run(server.port, transport, host)
    assert record["type"] == "mtproto"
    assert record["failure"] is None and record["failed_operation"] is None
    assert record["transport"] == transport
    assert record["res_pq"] is True
    assert record["server_nonce"] == SERVER_NONCE.hex()
    assert record["fingerprints"] == ["d09d1d85de64fd85", "0000000000000007"]
    assert (
        record["bytes_sent"] == {"intermediate": 48, "abridged": 42, "obfuscated2": 108}[transport]
    )
    assert record["bytes_received"] > 60
    assert 0 <= record["first_byte"] <= record["t"] - record["t0"]
    assert record["mtproto_error"] is None


def test_record_fields_match_design() -> None:
    with StreamServer(dc) as server:
        record = run(server.port, w.INTERMEDIATE)
    assert list(record) == [
        "schema_version", "type", "target_id", "group", "role", "attempt", "t0", "t",
        "failure", "failed_operation", "ip", "port", "transport", "bytes_sent",
        "bytes_received", "first_byte", "res_pq", "server_nonce", "fingerprints",
        "mtproto_error",
    ]  # fmt: skip


def test_protocol_dpi_shows_as_timeouts_on_plain_transports_only() -> None:
    with StreamServer(plain_blind_dc) as server:
        records = {t: run(server.port, t, timeout=0.5) for t in w.TRANSPORTS}
    for transport in w.PLAIN_TRANSPORTS:
        assert records[transport]["failure"] == "generic_timeout_error"
        assert records[transport]["failed_operation"] == "mtproto_handshake"
        assert records[transport]["bytes_received"] == 0
        assert records[transport]["first_byte"] is None
        assert records[transport]["bytes_sent"] > 0
    assert records["obfuscated2"]["res_pq"] is True


@pytest.mark.parametrize(
    ("handler", "failure", "words"),
    [
        (http_501, "mtproto_no_valid_reply", "not an MTProto reply"),
        (transport_error, "mtproto_no_valid_reply", "transport error -404"),
        (half_then_close, "eof_error", "closed after 14 bytes"),
        (reset_after_hello, "connection_reset", None),
    ],
)
def test_failures_after_connect(handler, failure: str, words: str | None) -> None:
    with StreamServer(handler) as server:
        record = run(server.port, w.INTERMEDIATE)
    assert record["failure"] == failure
    assert record["failed_operation"] == "mtproto_handshake"
    assert record["res_pq"] is False and record["server_nonce"] is None
    if words is None:
        assert record["mtproto_error"] is None
    else:
        assert words in record["mtproto_error"]


def test_closed_port_fails_at_connect() -> None:
    record = run(closed_port(), w.ABRIDGED)
    assert record["failure"] == "connection_refused"
    assert record["failed_operation"] == "connect"
    assert record["bytes_sent"] == 0


def test_bad_input_is_an_error_not_a_record() -> None:
    with pytest.raises(ValueError):
        run(443, "padded")
    with pytest.raises(ValueError):
        asyncio.run(probe_mtproto(probe_context(), "not-an-ip", 443, "abridged", timeout=1))


def test_a_reply_cut_short_by_the_deadline_says_how_much_came() -> None:
    def half_then_silence(conn: socket.socket, stop: threading.Event) -> None:
        conn.recv(4096)
        conn.sendall(b"\x50\x00\x00\x00" + bytes(10))
        never_answer(conn, stop)

    with StreamServer(half_then_silence) as server:
        record = run(server.port, w.INTERMEDIATE, timeout=0.5)
    assert record["failure"] == "generic_timeout_error"
    assert record["bytes_received"] == 14 and record["first_byte"] is not None
    assert record["mtproto_error"] == "the connection ended after 14 bytes, no whole packet"
