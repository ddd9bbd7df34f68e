"""Asking a time-stamping authority for a token, and checking `.tsr` files on disk (issue 11).

Rules:
- `timestamp_file(path, url)` hashes the finished file, POSTs the TimeStampReq
  (`timestamp.make_request`: the SHA-256, a nonce, certReq; nothing else leaves the machine,
  and no header names the file) as `application/timestamp-query`, checks the reply against the
  hash and the nonce (and the CA, when given), and writes it durably to `<file>.tsr`
  (`format.tsr_name`). It never raises for a TSA problem: an unreachable TSA, an HTTP error or
  a bad reply is returned as `Stamped.problem`, and no `.tsr` is written then.
- `check_file(path, ca)` checks the `.tsr` next to a file, if any (`format.TS_NONE` if none).
- The only I/O here: reading the file and the CA file, one HTTP POST, writing the `.tsr`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from netprobe.evidence import format as fmt
from netprobe.evidence.durable import write_durably
from netprobe.evidence.timestamp import (
    TimestampCheck,
    TimestampError,
    check_reply,
    load_pem_certificates,
    make_request,
)

QUERY_TYPE = "application/timestamp-query"
REPLY_TYPE = "application/timestamp-reply"
TIMEOUT = 30.0  # seconds for the whole exchange
MAX_REPLY = 1024 * 1024


@dataclass
class Stamped:
    """The outcome of `timestamp_file`: the `.tsr` written and its check, or the problem."""

    path: Path
    tsr: Path | None
    check: TimestampCheck | None
    problem: str | None


def tsr_path(path: Path) -> Path:
    return Path(path).with_name(fmt.tsr_name(Path(path).name))


def file_sha256(path: Path) -> bytes:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.digest()


def read_ca(path: Path | None) -> list | None:
    """The CA certificates in a PEM file (None for no file); TimestampError naming the file."""
    if path is None:
        return None
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise TimestampError(f"{path}: cannot read TSA CA file: {exc.strerror}") from None
    try:
        return load_pem_certificates(data)
    except TimestampError as exc:
        raise TimestampError(f"{path}: {exc}") from None


def timestamp_file(
    path: Path, url: str, *, ca: Path | None = None, timeout: float = TIMEOUT
) -> Stamped:
    """Get a token for the file at `path` from the TSA at `url`; see the module rules."""
    import httpx

    path = Path(path)
    try:
        ca_certs = read_ca(ca)
        request = make_request(file_sha256(path))
    except (OSError, TimestampError) as exc:
        return Stamped(path, None, None, str(exc))
    try:
        response = httpx.post(
            url,
            content=request.der,
            headers={"Content-Type": QUERY_TYPE, "Accept": REPLY_TYPE},
            timeout=timeout,
            follow_redirects=False,
        )
    except httpx.HTTPError as exc:
        return Stamped(path, None, None, f"TSA {url} unreachable: {exc or type(exc).__name__}")
    except ValueError as exc:  # a URL httpx cannot use
        return Stamped(path, None, None, f"TSA {url}: {exc}")
    if response.status_code != 200:
        return Stamped(path, None, None, f"TSA {url} answered HTTP {response.status_code}")
    reply = response.content
    if len(reply) > MAX_REPLY:
        return Stamped(path, None, None, f"TSA {url} sent a reply of {len(reply)} bytes")
    check = check_reply(reply, request.sha256, nonce=request.nonce, ca_certs=ca_certs)
    if check.status == fmt.TS_INVALID:
        return Stamped(path, None, check, f"TSA {url} sent an unusable reply: {check.message}")
    target = tsr_path(path)
    try:
        write_durably(target, reply)
    except OSError as exc:
        return Stamped(path, None, check, f"cannot write {target}: {exc.strerror}")
    return Stamped(path, target, check, None)


def check_file(path: Path, ca: Path | None) -> TimestampCheck:
    """The check of the `.tsr` next to `path` (status TS_NONE when there is none)."""
    target = tsr_path(path)
    try:
        reply = target.read_bytes()
    except FileNotFoundError:
        return TimestampCheck(fmt.TS_NONE, "no timestamp")
    except OSError as exc:
        return TimestampCheck(fmt.TS_INVALID, f"{target}: cannot read: {exc.strerror}")
    try:
        ca_certs = read_ca(ca)
        digest = file_sha256(path)
    except TimestampError as exc:
        return TimestampCheck(fmt.TS_INVALID, str(exc))
    except OSError as exc:
        return TimestampCheck(fmt.TS_INVALID, f"{path}: cannot read: {exc.strerror}")
    return check_reply(reply, digest, ca_certs=ca_certs)
