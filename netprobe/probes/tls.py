"""TLS handshake probe: does ip:port complete a TLS handshake for a given SNI? (record type `tls`)

Rules:
- The handshake is driven by hand over a plain non-blocking socket (`SSLContext.wrap_bio` +
  `loop.sock_sendall`/`sock_recv`), not asyncio's SSL transport, so a reset (connection_reset) and
  a peer close (eof_error) stay distinguishable. One deadline covers connect + handshake;
  `failed_operation` says which phase failed.
- No application data is ever sent: the probe stops after the handshake.
- Certificates are recorded leaf first. When verification fails (wrong host, unknown authority,
  invalid certificate) a second, non-verifying handshake with the same SNI and ALPN captures them
  and the record says `certificates_from_unverified_handshake: true`; the failure stays the
  verification failure.
- The caller's SSLContext is shared by concurrent probes: ALPN is set on it immediately before
  `wrap_bio` with no await in between (OpenSSL copies it into the connection), so that is race-free.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import ssl
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, cast

from cryptography import x509

from netprobe.model import records
from netprobe.model.failures import CERTIFICATE_FAILURES
from netprobe.probes import ProbeContext
from netprobe.probes.errors import classify
from netprobe.probes.tcp import NETWORK_ERRORS, connect_socket, socket_family

DEFAULT_ALPN = ("h2", "http/1.1")
_RECV_SIZE = 65536


class PeerClosed(EOFError):
    """The peer closed the connection (recv returned b"") during a TLS exchange."""


def make_ssl_context(ca_bundle: str | None = None) -> ssl.SSLContext:
    """A verifying client context: the system store (honours SSL_CERT_FILE), or only `ca_bundle`.

    Raises ValueError naming the file if the bundle cannot be read or holds no certificate.
    """
    if ca_bundle is None:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cafile=ca_bundle)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ValueError(f"CA bundle {ca_bundle}: cannot load certificates: {reason}") from exc


@functools.cache
def _unverified_context() -> ssl.SSLContext:
    """A context that accepts any certificate: only used to capture certificates."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class TlsChannel:
    """A TLS client connection over a connected non-blocking socket, driven through memory BIOs."""

    def __init__(
        self, sock: Any, context: ssl.SSLContext, server_name: str | None, alpn: tuple[str, ...]
    ) -> None:
        self.sock = sock
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        if alpn:
            context.set_alpn_protocols(list(alpn))
        self.sslobj = context.wrap_bio(self._incoming, self._outgoing, server_hostname=server_name)

    async def handshake(self) -> None:
        """Complete the handshake; raises ssl.SSLError, OSError or PeerClosed."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                self.sslobj.do_handshake()
            except ssl.SSLWantReadError:
                await self._flush(loop)
                await self._receive(loop)
            except ssl.SSLError:
                self._send_alert_nowait()
                raise
            else:
                await self._flush(loop)  # the client Finished (TLS 1.3) is still queued
                return

    async def send(self, data: bytes) -> None:
        self.sslobj.write(data)
        await self._flush(asyncio.get_running_loop())

    async def receive_exactly(self, size: int) -> bytes:
        loop = asyncio.get_running_loop()
        data = b""
        while len(data) < size:
            try:
                chunk = self.sslobj.read(size - len(data))
            except ssl.SSLWantReadError:
                await self._receive(loop)
                continue
            if not chunk:
                raise PeerClosed("peer closed the TLS connection")
            data += chunk
        return data

    async def receive_some(self, size: int) -> bytes:
        """Up to `size` decrypted bytes as soon as any arrive; b"" once the peer has closed
        (close_notify or a plain EOF after the handshake). Raises ssl.SSLError or OSError."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                return self.sslobj.read(size)
            except ssl.SSLWantReadError:
                try:
                    await self._receive(loop)
                except PeerClosed:
                    return b""
            except ssl.SSLZeroReturnError:
                return b""

    def peer_certificates_der(self) -> list[bytes]:
        """The chain as the peer sent it, leaf first (only the leaf where CPython lacks the API)."""
        inner = getattr(self.sslobj, "_sslobj", None)
        get_chain = getattr(inner, "get_unverified_chain", None) or getattr(
            self.sslobj, "get_unverified_chain", None
        )
        if get_chain is not None:
            chain = get_chain() or []
            return [
                item if isinstance(item, bytes) else item.public_bytes(ssl._ssl.ENCODING_DER)  # type: ignore[attr-defined]
                for item in chain
            ]
        leaf = self.sslobj.getpeercert(binary_form=True)
        return [leaf] if leaf else []

    async def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        pending = self._outgoing.read()
        if pending:
            await loop.sock_sendall(self.sock, pending)

    async def _receive(self, loop: asyncio.AbstractEventLoop) -> None:
        data = await loop.sock_recv(self.sock, _RECV_SIZE)
        if not data:
            raise PeerClosed("peer closed the connection during the TLS exchange")
        self._incoming.write(data)

    def _send_alert_nowait(self) -> None:
        """Best effort: tell the server why we abort, as a normal client would."""
        pending = self._outgoing.read()
        if pending:
            try:
                self.sock.send(pending)
            except OSError:
                pass


async def _handshake(
    ip: str,
    port: int,
    server_name: str,
    context: ssl.SSLContext,
    alpn: tuple[str, ...],
    timeout: float,
    outcome: dict[str, Any],
) -> None:
    """Connect + handshake under one deadline, filling `outcome`; exceptions propagate.

    `outcome["phase"]` tells the caller which operation was running when it failed.
    """
    outcome["phase"] = "connect"
    async with asyncio.timeout(timeout):
        sock = await connect_socket(ip, port)
        try:
            outcome["phase"] = "tls_handshake"
            channel = TlsChannel(sock, context, server_name, alpn)
            await channel.handshake()
            outcome["certificates"] = channel.peer_certificates_der()
            outcome["tls_version"] = channel.sslobj.version()
            cipher = channel.sslobj.cipher()
            outcome["cipher_suite"] = cipher[0] if cipher else None
            outcome["negotiated_protocol"] = channel.sslobj.selected_alpn_protocol()
        finally:
            sock.close()


async def probe_tls(
    ctx: ProbeContext,
    ip: str,
    port: int,
    server_name: str,
    *,
    sni_role: str,
    hostname: str | None,
    address_sources: Sequence[str],
    ssl_context: ssl.SSLContext,
    timeout: float,
    alpn: tuple[str, ...] = DEFAULT_ALPN,
) -> records.TlsRecord:
    """Handshake with ip:port sending SNI `server_name`; return a `tls` record (never sends data)."""
    socket_family(ip)  # bad input raises here, before any record is made
    t0 = ctx.now()
    outcome: dict[str, Any] = {}
    failure: str | None = None
    try:
        await _handshake(ip, port, server_name, ssl_context, alpn, timeout, outcome)
    except NETWORK_ERRORS as exc:
        failure = classify(exc)
    certificates: list[bytes] = outcome.get("certificates") or []
    from_unverified = False
    if failure in CERTIFICATE_FAILURES:
        second: dict[str, Any] = {}
        try:
            await _handshake(ip, port, server_name, _unverified_context(), alpn, timeout, second)
        except NETWORK_ERRORS:
            pass  # the certificates are a bonus; the record's failure is already decided
        if second.get("certificates"):
            certificates = second["certificates"]
            from_unverified = True
    record = ctx.record(
        records.TLS,
        t0=t0,
        failure=failure,
        failed_operation=outcome.get("phase"),
        ip=ip,
        port=port,
        server_name=server_name,
        sni_role=sni_role,
        hostname=hostname,
        address_sources=list(address_sources),
        alpn_offered=list(alpn),
        tls_version=outcome.get("tls_version"),
        cipher_suite=outcome.get("cipher_suite"),
        negotiated_protocol=outcome.get("negotiated_protocol"),
        peer_certificates=[describe_certificate(der) for der in certificates],
        certificates_from_unverified_handshake=from_unverified,
    )
    return cast(records.TlsRecord, record)


def describe_certificate(der: bytes) -> records.PeerCertificate:
    """The record form of one DER certificate (sha256, subject, issuer, san, validity)."""
    described: dict[str, Any] = {"sha256": hashlib.sha256(der).hexdigest()}
    try:
        cert = x509.load_der_x509_certificate(der)
        described["subject"] = cert.subject.rfc4514_string()
        described["issuer"] = cert.issuer.rfc4514_string()
        described["san"] = _subject_alt_names(cert)
        described["not_before"] = _utc_z(cert.not_valid_before_utc)
        described["not_after"] = _utc_z(cert.not_valid_after_utc)
    except ValueError:  # a malformed certificate is evidence too: keep its fingerprint
        described.update(subject=None, issuer=None, san=[], not_before=None, not_after=None)
    return cast(records.PeerCertificate, described)


def _subject_alt_names(cert: x509.Certificate) -> list[str]:
    try:
        extension = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    names = [f"DNS:{name}" for name in extension.value.get_values_for_type(x509.DNSName)]
    names += [f"IP:{ip}" for ip in extension.value.get_values_for_type(x509.IPAddress)]
    return names


def _utc_z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
