"""RFC 3161 trusted timestamps, sans-I/O: the request, and the checks of a reply (issue 11).

Rules:
- A request (`make_request`) holds the SHA-256 of the timestamped bytes, a random 64-bit nonce
  and certReq true, and nothing else: no file name, no policy, no extension. The bytes
  timestamped are a finished result file exactly as on disk (`.jsonl`), so stock
  `openssl ts -verify -data FILE -in FILE.tsr -CAfile ca.pem` checks the same thing.
- The stored token (`<file>.tsr`, `format.tsr_name`) is the TSA's whole TimeStampResp, as
  `openssl ts -reply` writes it and `openssl ts -verify -in` reads it.
- `check_reply(reply, sha256, ...)` decides everything a verifier needs: status granted, the
  message imprint is SHA-256 of the file, the nonce is the one sent (when known), the CMS
  signature over the signed attributes is the signer certificate's, the messageDigest attribute
  is the hash of the TSTInfo, the ESS signing-certificate hash names that certificate, and,
  with CA certificates given, the certificate chains to one of them, every certificate was
  valid at genTime, and the signer's extendedKeyUsage is exactly timeStamping and critical.
  Without CA certificates the result is UNCHECKED (signature consistent, signer not trusted).
- Pure: bytes in, `TimestampCheck` out; ASN.1 by asn1crypto, signatures by cryptography.
  (asn1crypto imports `socket` for `inet_ntop`, so tests/test_purity.py cannot list this module;
  nothing here does I/O.)
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from asn1crypto import algos, cms, core, tsp  # type: ignore[import-untyped]
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from netprobe.evidence.format import TS_INVALID, TS_UNCHECKED, TS_VALID

HASH_NAME = "sha256"
_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
_HASHES_ESS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha384": hashlib.sha384}
_HASHES_ESS["sha512"] = hashlib.sha512
_DER = Encoding.DER


class TimestampError(ValueError):
    """A reply that is not a usable timestamp for these bytes; the text says why."""


@dataclass(frozen=True)
class TimestampRequest:
    der: bytes  # the TimeStampReq, as sent (application/timestamp-query)
    nonce: int
    sha256: bytes


@dataclass
class TimestampCheck:
    """What `check_reply` found. `status` is TS_VALID, TS_UNCHECKED or TS_INVALID."""

    status: str
    message: str
    gen_time: datetime | None = None
    policy: str | None = None
    serial: int | None = None
    nonce: int | None = None
    tsa: str | None = None  # the signer certificate's subject
    chain: list[str] = field(default_factory=list)  # subjects, signer first, CA last

    def to_dict(self) -> dict[str, object]:
        return {
            "status": self.status,
            "message": self.message,
            "gen_time": _iso(self.gen_time),
            "policy": self.policy,
            "serial": self.serial,
            "tsa": self.tsa,
            "chain": list(self.chain),
        }


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.strftime("%Y-%m-%dT%H:%M:%SZ")


def make_request(sha256: bytes, nonce: int | None = None) -> TimestampRequest:
    """The TimeStampReq for a SHA-256 digest: version 1, imprint, nonce, certReq true."""
    if len(sha256) != 32:
        raise ValueError("a SHA-256 digest is 32 bytes")
    nonce = secrets.randbits(63) | 1 if nonce is None else nonce
    request = tsp.TimeStampReq(
        {
            "version": "v1",
            "message_imprint": {
                "hash_algorithm": {"algorithm": HASH_NAME},
                "hashed_message": sha256,
            },
            "nonce": nonce,
            "cert_req": True,
        }
    )
    return TimestampRequest(request.dump(), nonce, sha256)


def request_digest(der: bytes) -> tuple[str, bytes, dict[str, object]]:
    """(hash algorithm, digest, the other fields) of a TimeStampReq: what a TSA receives."""
    request = tsp.TimeStampReq.load(der, strict=True)
    imprint = request["message_imprint"]
    others = {
        name: request[name].native
        for name in ("req_policy", "nonce", "cert_req", "extensions")
        if request[name].native is not None
    }
    return imprint["hash_algorithm"]["algorithm"].native, imprint["hashed_message"].native, others


def load_pem_certificates(pem: bytes) -> list[x509.Certificate]:
    """Every certificate in a PEM file; TimestampError if there is none or one is broken."""
    try:
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError as exc:
        raise TimestampError(f"not a PEM certificate file: {exc}") from None
    return certs


def check_reply(
    reply: bytes,
    sha256: bytes,
    *,
    nonce: int | None = None,
    ca_certs: list[x509.Certificate] | None = None,
    untrusted: list[x509.Certificate] | None = None,
) -> TimestampCheck:
    """Check a TimeStampResp against the file's SHA-256 (see the module rules); never raises."""
    try:
        return _check(reply, sha256, nonce, ca_certs, untrusted or [])
    except TimestampError as exc:
        return TimestampCheck(TS_INVALID, str(exc))
    except (ValueError, TypeError, KeyError, IndexError) as exc:  # asn1crypto's parse errors
        return TimestampCheck(TS_INVALID, f"not a valid RFC 3161 reply: {exc}")


def token_of(reply: bytes) -> cms.ContentInfo:
    """The TimeStampToken of a granted reply; TimestampError with the TSA's status otherwise."""
    try:
        response = tsp.TimeStampResp.load(reply, strict=True)
        status = response["status"]["status"].native
    except (ValueError, TypeError) as exc:
        raise TimestampError(f"not an RFC 3161 TimeStampResp: {exc}") from None
    if status not in ("granted", "granted_with_mods"):
        text = response["status"]["status_string"].native
        raise TimestampError(
            f"the TSA refused the request: {status}" + (f" ({text})" if text else "")
        )
    token = response["time_stamp_token"]
    if token.native is None or token["content_type"].native != "signed_data":
        raise TimestampError("the reply holds no signed timestamp token")
    return token


def _check(
    reply: bytes,
    sha256: bytes,
    nonce: int | None,
    ca_certs: list[x509.Certificate] | None,
    untrusted: list[x509.Certificate],
) -> TimestampCheck:
    signed = token_of(reply)["content"]
    encap = signed["encap_content_info"]
    if encap["content_type"].native != "tst_info":
        raise TimestampError("the token's content is not a TSTInfo")
    tst_der = encap["content"].contents  # the OCTET STRING's bytes: the TSTInfo DER
    info = tsp.TSTInfo.load(tst_der, strict=True)
    imprint = info["message_imprint"]
    algorithm = imprint["hash_algorithm"]["algorithm"].native
    if algorithm != HASH_NAME or imprint["hashed_message"].native != sha256:
        raise TimestampError(
            "the timestamp is for other bytes: its message imprint is not this file's SHA-256"
        )
    got_nonce = info["nonce"].native
    if nonce is not None and got_nonce != nonce:
        raise TimestampError("the reply's nonce is not the request's (a replayed reply?)")
    result = TimestampCheck(
        TS_UNCHECKED,
        "",
        gen_time=info["gen_time"].native,
        policy=info["policy"].native,
        serial=info["serial_number"].native,
        nonce=got_nonce,
    )
    certs = [
        x509.load_der_x509_certificate(choice.chosen.dump())
        for choice in signed["certificates"] or []
        if choice.name == "certificate"
    ]
    signer_infos = signed["signer_infos"]
    if len(signer_infos) != 1:
        raise TimestampError(f"the token has {len(signer_infos)} signers, expected one")
    signer_info = signer_infos[0]
    signer = _signer_cert(signer_info, certs + untrusted)
    result.tsa = signer.subject.rfc4514_string()
    _check_signed_attributes(signer_info, tst_der, signer)
    _check_signature(signer_info, signer)
    if not ca_certs:
        result.message = (
            f"signature by {result.tsa} is consistent; not checked against a CA (give --tsa-ca)"
        )
        return result
    assert result.gen_time is not None
    result.chain = _check_chain(signer, certs + untrusted, ca_certs, result.gen_time)
    result.status = TS_VALID
    result.message = f"timestamp by {result.tsa}, chain to {result.chain[-1]}"
    return result


def _signer_cert(signer_info: cms.SignerInfo, certs: list[x509.Certificate]) -> x509.Certificate:
    sid = signer_info["sid"]
    for cert in certs:
        if sid.name == "issuer_and_serial_number":
            wanted = sid.chosen
            if cert.serial_number == wanted["serial_number"].native and (
                cert.issuer.public_bytes() == wanted["issuer"].dump()
            ):
                return cert
        else:
            try:
                ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
            except x509.ExtensionNotFound:
                continue
            if ski.value.digest == sid.chosen.native:
                return cert
    raise TimestampError("the token does not carry the TSA's certificate (request it with certReq)")


def _check_signed_attributes(
    signer_info: cms.SignerInfo, tst_der: bytes, signer: x509.Certificate
) -> None:
    attrs = signer_info["signed_attrs"]
    if attrs.native is None:
        raise TimestampError("the token's signature has no signed attributes")
    found: dict[str, object] = {}
    for attr in attrs:
        found[attr["type"].native] = attr["values"][0]
    digest_name = signer_info["digest_algorithm"]["algorithm"].native
    if digest_name not in _HASHES:
        raise TimestampError(f"unsupported digest algorithm {digest_name}")
    content_type = found.get("content_type")
    if not isinstance(content_type, core.ObjectIdentifier) or content_type.native != "tst_info":
        raise TimestampError("the signed content type is not a TSTInfo")
    message_digest = found.get("message_digest")
    expected = hashlib.new(digest_name, tst_der).digest()
    if not isinstance(message_digest, core.OctetString) or message_digest.native != expected:
        raise TimestampError("the token's signed messageDigest is not the hash of its TSTInfo")
    cert_der = signer.public_bytes(_DER)
    ess_v2 = found.get("signing_certificate_v2")
    ess_v1 = found.get("signing_certificate")
    if ess_v2 is not None:
        cert_id = ess_v2["certs"][0]  # type: ignore[index]
        algorithm = cert_id["hash_algorithm"]["algorithm"].native
        cert_hash = cert_id["cert_hash"].native
    elif ess_v1 is not None:
        cert_id = ess_v1["certs"][0]  # type: ignore[index]
        algorithm, cert_hash = "sha1", cert_id["cert_hash"].native
    else:
        raise TimestampError("the token names no signing certificate (ESS)")
    if algorithm not in _HASHES_ESS or _HASHES_ESS[algorithm](cert_der).digest() != cert_hash:
        raise TimestampError("the token's signing-certificate hash does not match its certificate")


def _check_signature(signer_info: cms.SignerInfo, signer: x509.Certificate) -> None:
    signed_bytes = b"\x31" + signer_info["signed_attrs"].dump()[1:]  # [0] IMPLICIT -> SET OF
    signature = signer_info["signature"].native
    digest_name = signer_info["digest_algorithm"]["algorithm"].native
    key = signer.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            sig_algo: algos.SignedDigestAlgorithm = signer_info["signature_algorithm"]
            if sig_algo.signature_algo == "rsassa_pss":
                params = sig_algo["parameters"]
                pss_hash = _HASHES[params["hash_algorithm"]["algorithm"].native]()
                pad: padding.AsymmetricPadding = padding.PSS(
                    padding.MGF1(pss_hash), params["salt_length"].native
                )
                key.verify(signature, signed_bytes, pad, pss_hash)
            else:
                key.verify(signature, signed_bytes, padding.PKCS1v15(), _HASHES[digest_name]())
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, signed_bytes, ec.ECDSA(_HASHES[digest_name]()))
        elif isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, signed_bytes)
        else:
            raise TimestampError("the TSA's key type is not supported")
    except InvalidSignature:
        raise TimestampError("the token's signature does not match its TSA certificate") from None


def _check_chain(
    signer: x509.Certificate,
    pool: list[x509.Certificate],
    ca_certs: list[x509.Certificate],
    when: datetime,
) -> list[str]:
    """Subjects from the signer to a trusted CA; TimestampError if there is no valid chain."""
    try:
        eku = signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        raise TimestampError("the TSA certificate has no extendedKeyUsage timeStamping") from None
    if not eku.critical or list(eku.value) != [ExtendedKeyUsageOID.TIME_STAMPING]:
        raise TimestampError("the TSA certificate's extendedKeyUsage is not critical timeStamping")
    chain = [signer]
    trusted = {cert.public_bytes(_DER) for cert in ca_certs}
    current = signer
    for _ in range(8):
        _valid_at(current, when)
        if current.public_bytes(_DER) in trusted:
            return [cert.subject.rfc4514_string() for cert in chain]
        issuer = _issuer_of(current, ca_certs) or _issuer_of(current, pool)
        if issuer is None or issuer in chain:
            raise TimestampError(
                f"the TSA certificate {signer.subject.rfc4514_string()} does not chain to the "
                "given CA certificates"
            )
        chain.append(issuer)
        current = issuer
    raise TimestampError("the TSA certificate chain is too long")


def _issuer_of(cert: x509.Certificate, pool: list[x509.Certificate]) -> x509.Certificate | None:
    for candidate in pool:
        if candidate.subject != cert.issuer or candidate == cert or not _is_ca(candidate):
            continue
        try:
            cert.verify_directly_issued_by(candidate)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return candidate
    return None


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _valid_at(cert: x509.Certificate, when: datetime) -> None:
    if not cert.not_valid_before_utc <= when <= cert.not_valid_after_utc:
        raise TimestampError(
            f"the certificate {cert.subject.rfc4514_string()} was not valid at the timestamp's "
            f"time {_iso(when)}"
        )
