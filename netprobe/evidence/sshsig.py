"""OpenSSH SSHSIG signatures (PROTOCOL.sshsig), pure functions, Ed25519 only.

Rules:
- Only the hash of the message is signed, so callers sign a digest they computed themselves
  (e.g. a running `hashlib.sha512()` over a growing file); nothing here touches files.
- Blobs are byte-identical to `ssh-keygen -Y sign` (Ed25519 signatures are deterministic), and the
  armored form wraps base64 at 70 columns exactly like ssh-keygen.
- Every verification failure is a `ValueError` with a message naming what did not match.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from netprobe.evidence.format import NAMESPACE  # noqa: F401 - netprobe's namespace, defined there

MAGIC = b"SSHSIG"
SIG_VERSION = 1
KEY_TYPE = "ssh-ed25519"
ARMOR_BEGIN = "-----BEGIN SSH SIGNATURE-----"
ARMOR_END = "-----END SSH SIGNATURE-----"
ARMOR_WIDTH = 70
DIGEST_SIZES = {"sha512": hashlib.sha512().digest_size, "sha256": hashlib.sha256().digest_size}


@dataclass(frozen=True)
class SshSig:
    public_key: Ed25519PublicKey
    namespace: str
    hash_alg: str
    signature: bytes  # the raw 64-byte Ed25519 signature


def _string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def public_key_blob(public_key: Ed25519PublicKey) -> bytes:
    """SSH wire encoding of an Ed25519 key (what `ssh-ed25519 AAAA...` base64-encodes)."""
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return _string(KEY_TYPE.encode()) + _string(raw)


def fingerprint(public_key: Ed25519PublicKey) -> str:
    """`SHA256:...` exactly as `ssh-keygen -l` prints it (unpadded base64)."""
    digest = hashlib.sha256(public_key_blob(public_key)).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def signed_data(namespace: str, message_digest: bytes, hash_alg: str = "sha512") -> bytes:
    """The bytes the key actually signs: MAGIC, namespace, reserved, hash algorithm, H(message)."""
    return (
        MAGIC
        + _string(namespace.encode())
        + _string(b"")
        + _string(hash_alg.encode())
        + _string(message_digest)
    )


def sign_digest(private_key: Ed25519PrivateKey, namespace: str, sha512_digest: bytes) -> bytes:
    """A binary SSHSIG blob over a message whose SHA-512 digest is `sha512_digest`."""
    if len(sha512_digest) != DIGEST_SIZES["sha512"]:
        raise ValueError(f"expected a 64-byte SHA-512 digest, got {len(sha512_digest)} bytes")
    raw_signature = private_key.sign(signed_data(namespace, sha512_digest, "sha512"))
    return (
        MAGIC
        + struct.pack(">I", SIG_VERSION)
        + _string(public_key_blob(private_key.public_key()))
        + _string(namespace.encode())
        + _string(b"")
        + _string(b"sha512")
        + _string(_string(KEY_TYPE.encode()) + _string(raw_signature))
    )


def armor(blob: bytes) -> str:
    """The armored text ssh-keygen writes to `FILE.sig` (ends with a newline)."""
    text = base64.b64encode(blob).decode()
    lines = [text[i : i + ARMOR_WIDTH] for i in range(0, len(text), ARMOR_WIDTH)]
    return "\n".join([ARMOR_BEGIN, *lines, ARMOR_END]) + "\n"


def dearmor(text: str) -> bytes:
    """The binary blob inside an armored signature; ValueError if the armor is broken."""
    lines = [line.strip() for line in text.strip().splitlines()]
    if len(lines) < 3 or lines[0] != ARMOR_BEGIN or lines[-1] != ARMOR_END:
        raise ValueError(f"not an armored SSH signature (expected {ARMOR_BEGIN} ... {ARMOR_END})")
    try:
        return base64.b64decode("".join(lines[1:-1]), validate=True)
    except ValueError as exc:
        raise ValueError(f"armored SSH signature has broken base64: {exc}") from None


class _Reader:
    """Reads SSH wire-format fields; every short read is a ValueError."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, size: int, what: str) -> bytes:
        if self.pos + size > len(self.data):
            raise ValueError(f"SSHSIG blob truncated while reading {what}")
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return chunk

    def uint32(self, what: str) -> int:
        return struct.unpack(">I", self.take(4, what))[0]

    def string(self, what: str) -> bytes:
        return self.take(self.uint32(what), what)

    def text(self, what: str) -> str:
        try:
            return self.string(what).decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"SSHSIG {what} is not UTF-8") from None

    def finish(self, what: str) -> None:
        if self.pos != len(self.data):
            raise ValueError(f"{len(self.data) - self.pos} unexpected trailing bytes in {what}")


@functools.lru_cache(maxsize=64)
def parse_public_key_blob(blob: bytes) -> Ed25519PublicKey:
    # Cached (keys are immutable): a timeline checks thousands of signatures by one or a few
    # keys, and loading a key into OpenSSL costs more than the rest of parsing a signature.
    reader = _Reader(blob)
    key_type = reader.text("public key type")
    if key_type != KEY_TYPE:
        raise ValueError(f"unsupported key type {key_type!r} (only {KEY_TYPE} is supported)")
    raw = reader.string("public key")
    reader.finish("public key")
    if len(raw) != 32:
        raise ValueError(f"Ed25519 public key must be 32 bytes, got {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def parse_blob(blob: bytes) -> SshSig:
    """Decode a binary SSHSIG blob; ValueError if it is not a well-formed Ed25519 SSHSIG."""
    reader = _Reader(blob)
    if reader.take(len(MAGIC), "magic") != MAGIC:
        raise ValueError("not an SSHSIG blob (bad magic preamble)")
    version = reader.uint32("version")
    if version != SIG_VERSION:
        raise ValueError(f"unsupported SSHSIG version {version}")
    public_key = parse_public_key_blob(reader.string("public key"))
    namespace = reader.text("namespace")
    reader.string("reserved")  # reserved: ignored, as ssh-keygen does
    hash_alg = reader.text("hash algorithm")
    signature = _Reader(reader.string("signature"))
    reader.finish("SSHSIG blob")
    sig_type = signature.text("signature type")
    if sig_type != KEY_TYPE:
        raise ValueError(f"unsupported signature type {sig_type!r}")
    raw_signature = signature.string("signature")
    signature.finish("signature")
    if len(raw_signature) != 64:
        raise ValueError(f"Ed25519 signature must be 64 bytes, got {len(raw_signature)}")
    return SshSig(public_key, namespace, hash_alg, raw_signature)


def verify_digest(
    blob: bytes, namespace: str, digest: bytes, *, hash_alg: str = "sha512"
) -> Ed25519PublicKey:
    """Check `blob` signs `digest` (H(message)) in `namespace`; return the signer's public key.

    The key is the one embedded in the blob: the caller decides whether it is trusted.
    """
    sig = parse_blob(blob)
    if sig.namespace != namespace:
        raise ValueError(f"signature namespace is {sig.namespace!r}, expected {namespace!r}")
    if sig.hash_alg != hash_alg:
        raise ValueError(f"signature hash algorithm is {sig.hash_alg!r}, expected {hash_alg!r}")
    if len(digest) != DIGEST_SIZES.get(hash_alg, -1):
        raise ValueError(f"digest length {len(digest)} does not fit hash algorithm {hash_alg!r}")
    try:
        sig.public_key.verify(sig.signature, signed_data(namespace, digest, hash_alg))
    except InvalidSignature:
        raise ValueError("signature does not match the signed bytes") from None
    return sig.public_key
