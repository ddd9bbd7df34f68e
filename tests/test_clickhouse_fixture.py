"""The tests' ClickHouse server survives a port taken between choosing it and binding it."""

from __future__ import annotations

import socket

import httpx
import pytest

from tests.clickhouse_server import ClickHouseServer, available


@pytest.mark.skipif(available() is None, reason="clickhouse-server is not installed")
def test_a_taken_port_on_first_start_moves_the_server_to_another(tmp_path):
    server = ClickHouseServer(tmp_path / "ch")
    taken = server.http_port
    with socket.socket() as squatter:  # what an outgoing connection or another server can do
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", taken))
        squatter.listen()
        server.start()
        try:
            assert server.http_port != taken
            assert httpx.get(server.url + "/ping", timeout=5).text.strip() == "Ok."
        finally:
            server.stop()
