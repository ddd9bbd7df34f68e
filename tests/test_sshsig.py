"""sshsig: blob layout, armor, sign/verify round trip and every way a check must fail."""

from __future__ import annotations

import base64
import hashlib
import struct

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from netprobe.evidence import sshsig

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
DIGEST = hashlib.sha512(b"hello\n").digest()


def string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def test_signed_data_layout_matches_protocol_sshsig() -> None:
    expected = b"SSHSIG" + string(b"ns") + string(b"") + string(b"sha512") + string(DIGEST)
    assert sshsig.signed_data("ns", DIGEST) == expected


def test_blob_layout_and_parse() -> None:
    blob = sshsig.sign_digest(KEY, sshsig.NAMESPACE, DIGEST)
    assert blob.startswith(b"SSHSIG\x00\x00\x00\x01")
    parsed = sshsig.parse_blob(blob)
    assert (parsed.namespace, parsed.hash_alg) == (sshsig.NAMESPACE, "sha512")
    assert sshsig.fingerprint(parsed.public_key) == sshsig.fingerprint(KEY.public_key())
    assert len(parsed.signature) == 64


def test_round_trip_returns_the_signing_key() -> None:
    blob = sshsig.sign_digest(KEY, sshsig.NAMESPACE, DIGEST)
    key = sshsig.verify_digest(blob, sshsig.NAMESPACE, DIGEST)
    assert sshsig.public_key_blob(key) == sshsig.public_key_blob(KEY.public_key())


def test_signatures_are_deterministic() -> None:
    # What makes byte-for-byte comparison with `ssh-keygen -Y sign` possible.
    assert sshsig.sign_digest(KEY, "x", DIGEST) == sshsig.sign_digest(KEY, "x", DIGEST)


@pytest.mark.parametrize(
    ("namespace", "digest", "hash_alg", "error"),
    [
        ("other@v1", DIGEST, "sha512", "namespace"),
        (sshsig.NAMESPACE, hashlib.sha512(b"hellO\n").digest(), "sha512", "does not match"),
        (sshsig.NAMESPACE, DIGEST, "sha256", "hash algorithm"),
    ],
)
def test_verify_rejects_mismatches(namespace: str, digest: bytes, hash_alg: str, error: str):
    blob = sshsig.sign_digest(KEY, sshsig.NAMESPACE, DIGEST)
    with pytest.raises(ValueError, match=error):
        sshsig.verify_digest(blob, namespace, digest, hash_alg=hash_alg)


def test_verify_rejects_a_signature_spliced_onto_another_key() -> None:
    blob = sshsig.sign_digest(KEY, sshsig.NAMESPACE, DIGEST)
    spliced = blob.replace(
        sshsig.public_key_blob(KEY.public_key()), sshsig.public_key_blob(OTHER.public_key())
    )
    with pytest.raises(ValueError, match="does not match"):
        sshsig.verify_digest(spliced, sshsig.NAMESPACE, DIGEST)


def test_every_single_bit_flip_in_the_blob_is_rejected() -> None:
    blob = sshsig.sign_digest(KEY, sshsig.NAMESPACE, DIGEST)
    for position in range(len(blob)):
        for bit in (0x01, 0x80):
            damaged = bytearray(blob)
            damaged[position] ^= bit
            with pytest.raises(ValueError):
                sshsig.verify_digest(bytes(damaged), sshsig.NAMESPACE, DIGEST)


@pytest.mark.parametrize(
    ("blob", "error"),
    [
        (b"", "truncated"),
        (b"SSHSIH\x00\x00\x00\x01", "magic"),
        (b"SSHSIG\x00\x00\x00\x02", "version"),
        (b"SSHSIG\x00\x00\x00\x01" + string(string(b"ssh-rsa") + string(b"x")), "key type"),
        (b"SSHSIG\x00\x00\x00\x01\x00\x00\xff\xff", "truncated"),
    ],
)
def test_parse_blob_rejects_malformed_input(blob: bytes, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        sshsig.parse_blob(blob)


def test_trailing_bytes_are_rejected() -> None:
    blob = sshsig.sign_digest(KEY, sshsig.NAMESPACE, DIGEST)
    with pytest.raises(ValueError, match="trailing"):
        sshsig.parse_blob(blob + b"\x00")


def test_armor_wraps_at_70_columns_and_round_trips() -> None:
    blob = sshsig.sign_digest(KEY, sshsig.NAMESPACE, DIGEST)
    text = sshsig.armor(blob)
    lines = text.splitlines()
    assert lines[0] == "-----BEGIN SSH SIGNATURE-----"
    assert lines[-1] == "-----END SSH SIGNATURE-----" and text.endswith("\n")
    assert all(len(line) == 70 for line in lines[1:-2]) and 0 < len(lines[-2]) <= 70
    assert sshsig.dearmor(text) == blob
    assert sshsig.dearmor(text.replace("\n", "\r\n")) == blob


@pytest.mark.parametrize(
    "text",
    ["", "hello", "-----BEGIN SSH SIGNATURE-----\n@@@@\n-----END SSH SIGNATURE-----\n"],
)
def test_dearmor_rejects_broken_armor(text: str) -> None:
    with pytest.raises(ValueError):
        sshsig.dearmor(text)


def test_fingerprint_format() -> None:
    digest = hashlib.sha256(sshsig.public_key_blob(KEY.public_key())).digest()
    expected = "SHA256:" + base64.b64encode(digest).decode().rstrip("=")
    assert sshsig.fingerprint(KEY.public_key()) == expected
    assert "=" not in expected
