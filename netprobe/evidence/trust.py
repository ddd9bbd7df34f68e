"""The trust store: which signers' result files netprobe uses without being told to (issue 11).

Rules:
- The trust store is one OpenSSH `allowed_signers` file, `$XDG_CONFIG_HOME/netprobe/allowed_signers`
  (else `~/.config/netprobe/allowed_signers`), or `$NETPROBE_ALLOWED_SIGNERS` when set. It is
  read by `netprobe.evidence.keys.read_allowed_signers`, so `ssh-keygen -Y verify -f` accepts the
  same file unchanged. A missing trust store is an empty one.
- The local key (`keys.default_key_path()`, the key `netprobe run` creates and signs with) is
  always trusted, whether or not its line is in the file.
- `--allowed-signers FILE` replaces the trust store and the local key (`signers_for(FILE)`); it
  may be an allowed_signers file or a `.pub` file. A bad file is a `KeyFileError` naming the file
  and line: a usage error, never a property of the result files checked against it.
- `add_trusted` writes the store atomically (temporary file + rename), one line per key, with
  `namespaces="netprobe-result@v1"`; a key is listed once.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from netprobe.evidence import sshsig
from netprobe.evidence.durable import write_durably
from netprobe.evidence.format import NAMESPACE
from netprobe.evidence.keys import (
    KeyFileError,
    check_principal,
    default_key_path,
    load_signer,
    public_key_text,
    read_allowed_signers,
)

TRUST_STORE_ENV = "NETPROBE_ALLOWED_SIGNERS"
TRUST_STORE_NAME = "allowed_signers"
LOCAL = "local key"
STORE = "trust store"

Entries = list[tuple[str, Ed25519PublicKey]]


def default_trust_store_path() -> Path:
    """`$NETPROBE_ALLOWED_SIGNERS`, else `$XDG_CONFIG_HOME/netprobe/allowed_signers`."""
    explicit = os.environ.get(TRUST_STORE_ENV)
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(xdg) / "netprobe" / TRUST_STORE_NAME


@dataclass(frozen=True)
class TrustedSigner:
    """One trusted key as `keys list` shows it."""

    principal: str
    fingerprint: str
    public_key: str  # `ssh-ed25519 AAAA...`
    source: str  # LOCAL or STORE

    def to_dict(self) -> dict[str, str]:
        return {
            "principal": self.principal,
            "fingerprint": self.fingerprint,
            "public_key": self.public_key,
            "source": self.source,
        }


def allowed_signers_line(principal: str, key: Ed25519PublicKey) -> str:
    """`principal namespaces="netprobe-result@v1" ssh-ed25519 AAAA...`."""
    return f'{principal} namespaces="{NAMESPACE}" {public_key_text(key)}'


def local_signer_entry(key_path: Path | None = None) -> tuple[str, Ed25519PublicKey] | None:
    """(principal, key) of the local signing key, or None when there is none (yet).

    Read from `<key>.pub`; a key without its `.pub` is loaded (and checked) instead.
    """
    path = Path(key_path) if key_path is not None else default_key_path()
    pub = path.with_name(path.name + ".pub")
    try:
        entries = read_allowed_signers(pub) if pub.is_file() else []
    except KeyFileError:
        entries = []
    if entries:
        return entries[0]
    if not path.is_file():
        return None
    try:
        signer = load_signer(path)
    except KeyFileError:
        return None
    return signer.principal, signer.public_key


def load_trust_store(path: Path | None = None, *, include_local: bool = True) -> Entries:
    """The trusted (principal, key) pairs: the store's entries, then the local key.

    A missing store is empty; a malformed one raises KeyFileError naming the file and line.
    """
    store = Path(path) if path is not None else default_trust_store_path()
    entries: Entries = read_allowed_signers(store) if store.exists() else []
    if include_local:
        local = local_signer_entry()
        if local is not None:
            entries.append(local)
    return entries


def signers_for(allowed_signers: Path | None) -> Entries:
    """What a reader trusts: the `--allowed-signers` file when given, else the trust store."""
    if allowed_signers is None:
        return load_trust_store()
    path = Path(allowed_signers)
    if not path.is_file():
        raise KeyFileError(f"allowed signers file {path}: no such file")
    return read_allowed_signers(path)


def trust_digest(allowed_signers: Path | None) -> bytes:
    """A digest of everything `signers_for(allowed_signers)` depends on (for caches)."""
    digest = hashlib.sha256()
    for principal, key in sorted(
        (principal, sshsig.public_key_blob(key)) for principal, key in signers_for(allowed_signers)
    ):
        digest.update(principal.encode() + b"\0" + key + b"\0")
    return digest.digest()


def list_trusted(path: Path | None = None) -> list[TrustedSigner]:
    """The local key (if any) then the store's entries, for `netprobe keys list`."""
    store = Path(path) if path is not None else default_trust_store_path()
    listing: list[TrustedSigner] = []
    local = local_signer_entry()
    if local is not None:
        listing.append(_listed(local, LOCAL))
    if store.exists():
        listing += [_listed(entry, STORE) for entry in read_allowed_signers(store)]
    return listing


def _listed(entry: tuple[str, Ed25519PublicKey], source: str) -> TrustedSigner:
    principal, key = entry
    return TrustedSigner(principal, sshsig.fingerprint(key), public_key_text(key), source)


def add_trusted(pub_path: Path, principal: str, store: Path | None = None) -> tuple[str, bool]:
    """Add the key in `pub_path` to the trust store as `principal`.

    Returns (the allowed_signers line, added); added is False when the key was already listed
    under that principal. KeyFileError for a bad `.pub` file or principal, or a key already
    trusted under another principal.
    """
    check_principal(principal)
    pub_path = Path(pub_path)
    if not pub_path.is_file():
        raise KeyFileError(f"{pub_path}: no such public key file")
    keys = read_allowed_signers(pub_path)
    if len(keys) != 1:
        raise KeyFileError(
            f"{pub_path}: expected one ssh-ed25519 public key, found {len(keys)} "
            "(a .pub file holds one 'ssh-ed25519 AAAA... comment' line)"
        )
    key = keys[0][1]
    line = allowed_signers_line(principal, key)
    path = Path(store) if store is not None else default_trust_store_path()
    existing = read_allowed_signers(path) if path.exists() else []
    blob = sshsig.public_key_blob(key)
    for known, known_key in existing:
        if sshsig.public_key_blob(known_key) == blob:
            if known == principal:
                return line, False
            raise KeyFileError(
                f"{path}: key {sshsig.fingerprint(key)} is already trusted as {known!r}; "
                "edit that line to rename it"
            )
    try:
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        if text and not text.endswith("\n"):
            text += "\n"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_durably(path, (text + line + "\n").encode())
    except OSError as exc:
        raise KeyFileError(f"cannot write trust store {path}: {exc.strerror}") from None
    return line, True
