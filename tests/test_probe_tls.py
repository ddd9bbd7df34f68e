"""TLS handshake probe against loopback servers with trustme certificates."""

from __future__ import annotations

import asyncio
import hashlib
import ssl

import pytest

from netprobe.probes.tls import make_ssl_context, probe_tls
from tests.localservers import (
    StreamServer,
    close_after_hello,
    closed_port,
    make_ca,
    never_answer,
    probe_context,
    reset_after_hello,
    tls_server,
    write_ca_bundle,
)


@pytest.fixture()
def client_context(ca, tmp_path) -> ssl.SSLContext:
    return make_ssl_context(write_ca_bundle(ca, str(tmp_path)))


def run_tls(
    port: int,
    server_name: str,
    context: ssl.SSLContext,
    *,
    ip: str = "127.0.0.1",
    timeout: float = 3.0,
    alpn: tuple[str, ...] = ("h2", "http/1.1"),
) -> dict:
    return asyncio.run(
        probe_tls(
            probe_context(f"domain:{server_name}"),
            ip,
            port,
            server_name,
            sni_role="target",
            hostname=server_name,
            address_sources=["probe:system"],
            ssl_context=context,
            timeout=timeout,
            alpn=alpn,
        )
    )


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_valid_certificate_succeeds_with_details(host, cert, client_context) -> None:
    with tls_server(cert, host) as server:
        record = run_tls(server.port, "example.test", client_context, ip=host)
    assert record["failure"] is None
    assert record["failed_operation"] is None
    assert record["tls_version"] == "TLSv1.3"
    assert record["cipher_suite"].startswith("TLS_")
    assert record["negotiated_protocol"] == "h2"
    assert record["alpn_offered"] == ["h2", "http/1.1"]
    assert record["certificates_from_unverified_handshake"] is False
    leaf = record["peer_certificates"][0]
    leaf_der = ssl.PEM_cert_to_DER_cert(cert.cert_chain_pems[0].bytes().decode())
    assert leaf["sha256"] == hashlib.sha256(leaf_der).hexdigest()
    assert "DNS:example.test" in leaf["san"] and "IP:127.0.0.1" in leaf["san"]
    assert leaf["issuer"] != leaf["subject"]
    assert leaf["not_before"].endswith("Z") and leaf["not_after"] > leaf["not_before"]


def test_record_fields_match_design(cert, client_context) -> None:
    with tls_server(cert) as server:
        record = run_tls(server.port, "example.test", client_context)
    assert list(record)[10:] == [
        "ip", "port", "server_name", "sni_role", "hostname", "address_sources", "alpn_offered",
        "tls_version", "cipher_suite", "negotiated_protocol", "peer_certificates",
        "certificates_from_unverified_handshake",
    ]  # fmt: skip
    assert record["address_sources"] == ["probe:system"]
    assert record["sni_role"] == "target"


def test_alpn_follows_what_was_offered(cert, client_context) -> None:
    with tls_server(cert) as server:
        record = run_tls(server.port, "example.test", client_context, alpn=("http/1.1",))
    assert record["negotiated_protocol"] == "http/1.1"


def test_wrong_name_is_invalid_hostname_with_certificates(cert, client_context) -> None:
    with tls_server(cert) as server:
        record = run_tls(server.port, "telegram.org", client_context)
    assert record["failure"] == "ssl_invalid_hostname"
    assert record["failed_operation"] == "tls_handshake"
    assert record["certificates_from_unverified_handshake"] is True
    assert "DNS:example.test" in record["peer_certificates"][0]["san"]
    assert record["tls_version"] is None  # the verified handshake never completed


def test_unknown_authority(cert, tmp_path) -> None:
    other_ca_bundle = write_ca_bundle(make_ca(), str(tmp_path))
    with tls_server(cert) as server:
        record = run_tls(server.port, "example.test", make_ssl_context(other_ca_bundle))
    assert record["failure"] == "ssl_unknown_authority"
    assert record["certificates_from_unverified_handshake"] is True
    assert len(record["peer_certificates"]) >= 1


def test_expired_certificate_is_invalid_certificate(ca, client_context) -> None:
    import datetime

    expired = ca.issue_cert(
        "example.test", not_after=datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    )
    with tls_server(expired) as server:
        record = run_tls(server.port, "example.test", client_context)
    assert record["failure"] == "ssl_invalid_certificate"
    assert record["peer_certificates"][0]["not_after"].startswith("2020-01-01")


@pytest.mark.parametrize(
    ("handler", "failure"),
    [
        (reset_after_hello, "connection_reset"),
        (close_after_hello, "eof_error"),
        (never_answer, "generic_timeout_error"),
    ],
)
def test_middlebox_behaviours_after_client_hello(handler, failure, client_context) -> None:
    with StreamServer(handler) as server:
        record = run_tls(server.port, "telegram.org", client_context, timeout=0.5)
    assert record["failure"] == failure
    assert record["failed_operation"] == "tls_handshake"
    assert record["peer_certificates"] == []
    assert record["certificates_from_unverified_handshake"] is False


def test_connect_failure_is_reported_as_connect(client_context) -> None:
    record = run_tls(closed_port(), "example.test", client_context)
    assert record["failure"] == "connection_refused"
    assert record["failed_operation"] == "connect"


def test_unreadable_ca_bundle_names_the_file(tmp_path) -> None:
    missing = str(tmp_path / "missing.pem")
    with pytest.raises(ValueError, match="missing.pem"):
        make_ssl_context(missing)
