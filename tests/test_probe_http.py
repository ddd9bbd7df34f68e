"""The HTTP probe against local servers on loopback: what it sends, what its record keeps, and
how it fails (issue 13). Every server here is started by the test on 127.0.0.1 or ::1."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import time
from collections.abc import Awaitable, Callable

import pytest

from netprobe.probes import ProbeContext, real_probes
from netprobe.probes.http import READ_LIMIT, probe_http

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def _ctx() -> ProbeContext:
    return ProbeContext("domain:telegram.org", "web", "target", 0, time.monotonic())


def _response(status: str, body: bytes, *headers: str) -> bytes:
    head = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", "Connection: close", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


async def _serve(handler: Handler, host: str = "127.0.0.1") -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(handler, host, 0)
    return server, server.sockets[0].getsockname()[1]


def _answering(response: bytes, seen: list[bytes] | None = None) -> Handler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        if seen is not None:
            seen.append(request)
        writer.write(response)
        await writer.drain()
        writer.close()

    return handle


async def _probe(handler: Handler, *, host: str = "127.0.0.1", **kwargs):
    server, port = await _serve(handler, host)
    async with server:
        kwargs.setdefault("timeout", 2.0)
        kwargs.setdefault("body_limit", 4096)
        return await probe_http(_ctx(), host, "telegram.org", port=port, **kwargs)


BLOCKPAGE = (
    b"<!doctype html><html><head><TITLE>\n  Trang web  bi chan &amp; blocked </TITLE></head>"
    b"<body>Your address is 10.9.8.7; this page was served by 127.0.0.1.</body></html>"
)


def test_a_page_is_recorded_with_status_headers_title_hash_and_bounded_body() -> None:
    seen: list[bytes] = []
    response = _response(
        "403 Forbidden",
        BLOCKPAGE,
        "Server: lab-isp/1.0",
        "Content-Type: text/html; charset=utf-8",
        "Set-Cookie: session=very-secret-value; Path=/",
        "Set-Cookie: tracker=also-secret",
        "X-Other: not kept",
    )
    record = asyncio.run(_probe(_answering(response, seen), body_limit=40))

    request = seen[0].decode("latin-1")
    assert request.startswith("GET / HTTP/1.1\r\n")
    assert "\r\nHost: telegram.org\r\n" in request  # the name, although we connected to the IP
    assert record["type"] == "http" and record["failure"] is None
    assert record["failed_operation"] is None
    assert (record["ip"], record["hostname"]) == ("127.0.0.1", "telegram.org")
    assert record["status"] == 403
    assert record["headers"] == {
        "server": "lab-isp/1.0",
        "content-type": "text/html; charset=utf-8",
        "content-length": str(len(BLOCKPAGE)),
        "set-cookie": ["session", "tracker"],  # names only: no cookie value reaches the file
    }
    assert "secret" not in str(record)
    assert record["title"] == "Trang web bi chan & blocked"
    assert record["body_sha256"] == hashlib.sha256(BLOCKPAGE).hexdigest()
    assert record["body_length"] == len(BLOCKPAGE) and record["body_truncated"] is False
    assert record["body"] == BLOCKPAGE[:40].decode()


def test_addresses_in_the_page_are_scrubbed_except_the_one_probed() -> None:
    record = asyncio.run(_probe(_answering(_response("200 OK", BLOCKPAGE))))
    assert "10.9.8.7" not in record["body"]  # e.g. the visitor's own address on a blockpage
    assert "Your address is [scrubbed]" in record["body"]
    assert "served by 127.0.0.1" in record["body"]  # the address probed is no secret


def test_no_bodies_keeps_title_hash_and_length_but_no_page_text() -> None:
    record = asyncio.run(_probe(_answering(_response("200 OK", BLOCKPAGE)), body_limit=0))
    assert record["body"] is None
    assert record["title"] == "Trang web bi chan & blocked"
    assert record["body_sha256"] == hashlib.sha256(BLOCKPAGE).hexdigest()


def test_redirects_are_recorded_not_followed() -> None:
    seen: list[bytes] = []
    response = _response("302 Found", b"", "Location: http://blocked.example/warning")
    record = asyncio.run(_probe(_answering(response, seen)))
    assert record["status"] == 302
    assert record["headers"]["location"] == "http://blocked.example/warning"
    assert len(seen) == 1  # nothing fetched from the redirect's target
    assert record["title"] is None and record["body_length"] == 0


def test_a_long_body_is_read_up_to_the_limit_and_marked_truncated() -> None:
    body = b"<title>big</title>" + b"x" * (READ_LIMIT + 5000)
    record = asyncio.run(_probe(_answering(_response("200 OK", body)), body_limit=100))
    assert record["body_length"] == READ_LIMIT and record["body_truncated"] is True
    assert record["body_sha256"] == hashlib.sha256(body[:READ_LIMIT]).hexdigest()
    assert len(record["body"]) == 100 and record["title"] == "big"


def test_ipv6_literal_is_connected_to_in_brackets() -> None:
    if not socket.has_ipv6:
        pytest.fail("this machine has no IPv6 loopback")
    record = asyncio.run(_probe(_answering(_response("200 OK", b"<title>six</title>")), host="::1"))
    assert record["failure"] is None and record["ip"] == "::1" and record["title"] == "six"


def _closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def test_a_closed_port_is_connection_refused_at_connect() -> None:
    record = asyncio.run(
        probe_http(_ctx(), "127.0.0.1", "t.me", port=_closed_port(), timeout=2, body_limit=10)
    )
    assert record["failure"] == "connection_refused"
    assert record["failed_operation"] == "connect"
    assert record["status"] is None and record["body"] is None


async def _silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(5)  # connects, reads the request, never answers
    writer.close()


async def _hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.close()  # the censor's "drop after the request" in its polite form


async def _reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    writer.transport.abort()  # RST, as an injecting middlebox sends


def test_a_server_that_never_answers_times_out_after_connect_within_the_timeout() -> None:
    started = time.monotonic()
    record = asyncio.run(_probe(_silent, timeout=0.5))
    assert record["failure"] == "generic_timeout_error"
    assert record["failed_operation"] == "http_round_trip"
    assert time.monotonic() - started < 2.0


def test_a_hang_up_after_the_request_is_eof() -> None:
    record = asyncio.run(_probe(_hang_up))
    assert record["failure"] == "eof_error"
    assert record["failed_operation"] == "http_round_trip"


def test_a_reset_after_the_request_is_connection_reset() -> None:
    record = asyncio.run(_probe(_reset))
    assert record["failure"] == "connection_reset"
    assert record["failed_operation"] == "http_round_trip"


def test_bad_input_raises_before_any_record() -> None:
    with pytest.raises(ValueError):
        asyncio.run(probe_http(_ctx(), "telegram.org", "t.me", timeout=1, body_limit=0))


def test_the_real_probes_include_http() -> None:
    assert real_probes().http is probe_http


def test_scrub_keeps_only_the_addresses_it_is_told_to_keep() -> None:
    from netprobe.model.failures import scrub

    text = "from 10.0.0.1 via 2001:db8::1 to 2001:DB8:0::2: and 192.0.2.7."
    kept = scrub(text, frozenset({"2001:db8::2", "192.0.2.7"}))
    assert kept == "from [scrubbed] via [scrubbed] to 2001:DB8:0::2: and 192.0.2.7."
    assert scrub(text) == "from [scrubbed] via [scrubbed] to [scrubbed]: and [scrubbed]."
