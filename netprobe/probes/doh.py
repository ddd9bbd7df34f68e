"""The DoH transport of the DNS probe (RFC 8484): HTTP/2 first, HTTP/1.1 where only that is offered.

Rules:
- TLS offers ALPN "h2" and "http/1.1" (httpx with `http2=True`, which needs the `h2` package);
  the server picks. Resolvers that speak only HTTP/2 (BIND 9.18) work, and so do HTTP/1.1-only
  ones. The record says which version answered (`http_version`: "HTTP/2" | "HTTP/1.1").
- One pooled client per resolver per run: the runner creates a `DohClients` for the run, hands
  it to every DNS probe (`ProbeSettings.doh_clients`) and closes it at the end of the run, so all
  the run's queries to one resolver share one HTTP/2 connection (or a keep-alive HTTP/1.1 pool).
  Without a pool (a probe called alone) each query gets a client of its own, closed after it.
- The SSLContext is the run's shared verifying context. httpcore sets ALPN on it at each
  connect immediately before wrapping the socket, with no await in between (the TLS probe's and
  DoT's rule too), so a concurrent probe's ALPN never leaks into a DoH ClientHello.
- No proxy from the environment (`trust_env=False`): a proxy would measure its network, not ours.
- POST with `application/dns-message`; a non-200 answer is no DNS reply (`http_status` recorded).
"""

from __future__ import annotations

import ssl
from typing import Any

import dns.message
import dns.query
import httpx

DOH_MEDIA_TYPE = "application/dns-message"
_HEADERS = {"content-type": DOH_MEDIA_TYPE, "accept": DOH_MEDIA_TYPE}


def _new_client(ssl_context: ssl.SSLContext) -> httpx.AsyncClient:
    return httpx.AsyncClient(verify=ssl_context, http1=True, http2=True, trust_env=False)


class DohClients:
    """The run's DoH clients: one `httpx.AsyncClient` per resolver URL, made on first use."""

    def __init__(self, ssl_context: ssl.SSLContext) -> None:
        self._ssl_context = ssl_context
        self._clients: dict[str, httpx.AsyncClient] = {}

    def client(self, url: str) -> httpx.AsyncClient:
        """The resolver's client (created now if it is the first query to that URL)."""
        client = self._clients.get(url)
        if client is None:
            client = self._clients[url] = _new_client(self._ssl_context)
        return client

    def __len__(self) -> int:
        return len(self._clients)

    async def aclose(self) -> None:
        """Close every client (and its connections); the pool may be used again afterwards."""
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()


async def ask_doh(
    query: dns.message.Message,
    url: str,
    exchange: dict[str, Any],
    timeout: float,
    ssl_context: ssl.SSLContext,
    clients: DohClients | None = None,
) -> dns.message.Message | None:
    """The reply to `query` from the DoH resolver at `url`, or None for a non-200 HTTP status.

    Sets `exchange["http_status"]` and `exchange["http_version"]` once an HTTP response came.
    """
    if clients is not None:
        response = await _post(clients.client(url), url, query, timeout)
    else:
        async with _new_client(ssl_context) as client:
            response = await _post(client, url, query, timeout)
    exchange["http_status"] = response.status_code
    exchange["http_version"] = response.http_version
    if response.status_code != 200:
        return None
    reply = dns.message.from_wire(response.content)
    if not query.is_response(reply):
        raise dns.query.BadResponse
    return reply


async def _post(
    client: httpx.AsyncClient, url: str, query: dns.message.Message, timeout: float
) -> httpx.Response:
    return await client.post(url, content=query.to_wire(), headers=_HEADERS, timeout=timeout)
