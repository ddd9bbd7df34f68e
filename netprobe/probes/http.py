"""HTTP probe: what does ip:80 answer to a plain `GET /` for a name? (record type `http`, issue 13)

Rules:
- One request per probe: `GET /` over HTTP/1.1 to the IP literal (never the name: no lookup
  here), with `Host: hostname`, through httpx with redirects *not* followed, no proxy from the
  environment, no cookies kept. One deadline (`timeout`) covers connect, request and reading.
- The record keeps a bounded view of the answer: the status, the headers of `HEADERS` (values cut
  to `HEADER_VALUE_LIMIT` characters; `Set-Cookie` as cookie *names* only, never values), the
  `<title>`, the SHA-256 and length of the (content-decoded) body bytes read (at most `READ_LIMIT`; `body_truncated`
  says there was more), and the first `body_limit` bytes as text (`body_limit` 0: `body` is
  None, for volunteers who do not want page content on disk: `--no-bodies`).
- Privacy: a blockpage may print the visitor's address. Every IP address in the stored title,
  header values and body is replaced by "[scrubbed]" except the address probed itself
  (`model.failures.scrub`); the hash is of the bytes as received.
- A network failure is data: `failure` from `probes.errors.classify`, `failed_operation`
  `connect` when no connection was made, else `http_round_trip`.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import ipaddress
import re
from collections.abc import Sequence
from typing import Any, cast

import httpx

from netprobe.model import records
from netprobe.model.failures import CONNECT_OPERATION, HTTP_OPERATION, scrub
from netprobe.probes import ProbeContext
from netprobe.probes.errors import classify

# The response headers a record keeps (lower-case names), in record order.
HEADERS = ("server", "location", "content-type", "content-length", "via", "set-cookie")
HEADER_VALUE_LIMIT = 512
READ_LIMIT = 256 * 1024  # bytes of body read (hashed, searched for the title) at most
TITLE_LIMIT = 200  # characters

_TITLE = re.compile(rb"<title[^>]*>(.*?)</title", re.IGNORECASE | re.DOTALL)
_CHARSET = re.compile(r"charset=[\"']?([\w.:-]+)", re.IGNORECASE)
NETWORK_ERRORS = (httpx.HTTPError, OSError, TimeoutError, EOFError)


def url_for(ip: str, port: int) -> str:
    """`http://ip:port/`, with an IPv6 literal in brackets; ValueError if `ip` is not an IP."""
    address = ipaddress.ip_address(ip)
    host = f"[{address}]" if address.version == 6 else str(address)
    return f"http://{host}:{port}{records.HTTP_PATH}"


async def probe_http(
    ctx: ProbeContext,
    ip: str,
    hostname: str,
    *,
    port: int = 80,
    timeout: float,
    body_limit: int,
    address_sources: Sequence[str] = (),
) -> records.HttpRecord:
    """`GET /` with `Host: hostname` to ip:port within `timeout` s; an `http` record."""
    url = url_for(ip, port)  # bad input raises here, before any record is made
    keep = frozenset({str(ipaddress.ip_address(ip))})
    t0 = ctx.now()
    failure: str | None = None
    operation = HTTP_OPERATION
    fields: dict[str, Any] = _empty_answer()
    connected = False

    async def trace(event: str, info: dict[str, Any]) -> None:  # httpcore's request tracing
        nonlocal connected
        if event == "connection.connect_tcp.complete":
            connected = True

    try:
        async with asyncio.timeout(timeout):
            async with httpx.AsyncClient(
                follow_redirects=False, trust_env=False, timeout=timeout, http2=False
            ) as client:
                request = client.build_request(
                    records.HTTP_METHOD,
                    url,
                    headers={"Host": hostname, **dict(records.HTTP_REQUEST_HEADERS)},
                    extensions={"trace": trace},
                )
                response = await client.send(request, stream=True)
                try:
                    fields = await _read_answer(response, body_limit, keep)
                finally:
                    await response.aclose()
    except NETWORK_ERRORS as exc:
        failure = classify(exc)
        operation = HTTP_OPERATION if connected else CONNECT_OPERATION
    record = ctx.record(
        records.HTTP,
        t0=t0,
        failure=failure,
        failed_operation=operation,
        ip=ip,
        port=port,
        hostname=hostname,
        address_sources=list(address_sources),
        **fields,
    )
    return cast(records.HttpRecord, record)


def _empty_answer() -> dict[str, Any]:
    return {
        "status": None,
        "headers": {},
        "title": None,
        "body_sha256": None,
        "body_length": None,
        "body_truncated": False,
        "body": None,
    }


async def _read_answer(
    response: httpx.Response, body_limit: int, keep: frozenset[str]
) -> dict[str, Any]:
    """The record fields of a response, reading at most READ_LIMIT body bytes."""
    fields = _empty_answer()
    fields["status"] = response.status_code
    fields["headers"] = kept_headers(response.headers.multi_items(), keep)
    body = bytearray()
    truncated = False
    async for chunk in response.aiter_bytes():  # content-decoded, if a server insists
        body += chunk
        if len(body) > READ_LIMIT:
            truncated = True
            del body[READ_LIMIT:]
            break
    data = bytes(body)
    charset = _charset(response.headers.get("content-type"))
    fields["title"] = extract_title(data, charset, keep)
    fields["body_sha256"] = hashlib.sha256(data).hexdigest()
    fields["body_length"] = len(data)
    fields["body_truncated"] = truncated
    fields["body"] = scrub(_decode(data[:body_limit], charset), keep) if body_limit > 0 else None
    return fields


def kept_headers(items: Sequence[tuple[str, str]], keep: frozenset[str]) -> dict[str, Any]:
    """The bounded header view (see the module rules): {name: value}, set-cookie: [names]."""
    kept: dict[str, Any] = {}
    for name, value in items:
        key = name.lower()
        if key not in HEADERS:
            continue
        if key == "set-cookie":
            cookie = value.split(";", 1)[0].split("=", 1)[0].strip()
            kept.setdefault(key, []).append(scrub(cookie[:HEADER_VALUE_LIMIT], keep))
        elif key not in kept:
            kept[key] = scrub(value[:HEADER_VALUE_LIMIT], keep)
    return {name: kept[name] for name in HEADERS if name in kept}


def extract_title(
    data: bytes, charset: str | None, keep: frozenset[str] = frozenset()
) -> str | None:
    """The first `<title>` of an HTML body, unescaped, whitespace collapsed, bounded; else None."""
    match = _TITLE.search(data)
    if match is None:
        return None
    text = " ".join(html.unescape(_decode(match.group(1), charset)).split())
    return scrub(text[:TITLE_LIMIT], keep)


def _charset(content_type: str | None) -> str | None:
    match = _CHARSET.search(content_type or "")
    return match.group(1) if match else None


def _decode(data: bytes, charset: str | None) -> str:
    try:
        return data.decode(charset or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        return data.decode("utf-8", errors="replace")
