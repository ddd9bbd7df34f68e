"""Signing keys: generate, load (with OpenSSH's permission rule), allowed_signers files.

Rules:
- Keys are Ed25519 in OpenSSH format; the private key is written mode 0600 and never appears in
  any message, repr or log; `<key>.pub` holds `ssh-ed25519 AAAA... principal`.
- A private key readable or writable by group or others is refused, as OpenSSH does.
- Every problem with a key file is a `KeyFileError` whose message names the file and the fix.
- The default principal is "netprobe", not user@host: a volunteer's file should not leak their
  login or machine name. The researcher names the signer in their own allowed_signers file.
"""

from __future__ import annotations

import base64
import contextlib
import fnmatch
import functools
import os
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_ssh_private_key,
    load_ssh_public_key,
)

from netprobe.evidence import sshsig
from netprobe.evidence.durable import fsync_dir
from netprobe.evidence.format import DEFAULT_PRINCIPAL, NAMESPACE

KEY_FILE_NAME = "id_ed25519"


class KeyFileError(Exception):
    """A key or allowed_signers file is missing, unreadable, malformed or unsafe."""


def default_key_path() -> Path:
    """`$XDG_DATA_HOME/netprobe/id_ed25519`, else `~/.local/share/netprobe/id_ed25519`."""
    data_home = os.environ.get("XDG_DATA_HOME")
    base = Path(data_home) if data_home else Path.home() / ".local" / "share"
    return base / "netprobe" / KEY_FILE_NAME


def public_key_text(public_key: Ed25519PublicKey) -> str:
    """`ssh-ed25519 AAAA...` without a comment."""
    return f"{sshsig.KEY_TYPE} " + base64.b64encode(sshsig.public_key_blob(public_key)).decode()


class Signer:
    """An Ed25519 private key ready to sign result files in the netprobe namespace."""

    def __init__(
        self, private_key: Ed25519PrivateKey, principal: str, path: Path | None = None
    ) -> None:
        self._private_key = private_key
        self.namespace = NAMESPACE
        self.principal = principal
        self.path = path
        self.public_key = private_key.public_key()
        self.public_key_line = f"{public_key_text(self.public_key)} {principal}"
        self.fingerprint = sshsig.fingerprint(self.public_key)

    def __repr__(self) -> str:  # never show key material
        return f"Signer(principal={self.principal!r}, fingerprint={self.fingerprint!r})"

    def sign_digest(self, sha512_digest: bytes) -> bytes:
        """A binary SSHSIG blob over a message with this SHA-512 digest."""
        return sshsig.sign_digest(self._private_key, self.namespace, sha512_digest)

    def sign_digest_for(self, namespace: str, sha512_digest: bytes) -> bytes:
        """The same in another namespace (`format.BUNDLE_NAMESPACE` for bundle manifests)."""
        return sshsig.sign_digest(self._private_key, namespace, sha512_digest)

    def header_info(self) -> dict[str, str]:
        return {
            "public_key": self.public_key_line,
            "fingerprint": self.fingerprint,
            "namespace": self.namespace,
        }

    def allowed_signers_line(self) -> str:
        return f'{self.principal} namespaces="{self.namespace}" {public_key_text(self.public_key)}'


def check_principal(principal: str) -> None:
    """KeyFileError unless `principal` is a non-empty name without spaces or quotes."""
    if not principal or any(ch.isspace() for ch in principal) or '"' in principal:
        raise KeyFileError(
            f"principal {principal!r} must be a non-empty name without spaces or quotes"
        )


def generate_key(path: Path, principal: str = DEFAULT_PRINCIPAL) -> Signer:
    """Create a new key at `path` (0600) and `path.pub`; never overwrite either."""
    signer = _generate(Path(path), principal, exist_ok=False)
    assert signer is not None
    return signer


def _generate(path: Path, principal: str, *, exist_ok: bool) -> Signer | None:
    """Write a new key atomically: complete temporary files, then hard links to the real names.

    The private key appears whole or not at all, so concurrent first runs never read half a key.
    When another process links its key first, returns None with `exist_ok` (the caller loads
    that key), else raises KeyFileError.
    """
    check_principal(principal)
    pub_path = _pub_path(path)
    # With exist_ok (a first run) only the link below decides: a racing run may link both files
    # between two checks here, and its key is then the one to load.
    for existing in (path, pub_path):
        if existing.exists() and not exist_ok:
            raise KeyFileError(f"{existing} already exists; refusing to overwrite a key")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise KeyFileError(f"cannot create key directory {path.parent}: {exc.strerror}") from None
    private_key = Ed25519PrivateKey.generate()
    signer = Signer(private_key, principal, path)
    pem = private_key.private_bytes(Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption())
    tag = f"{os.getpid()}.{base64.b32encode(os.urandom(5)).decode().lower()}"
    tmp_key = path.with_name(f".{path.name}.{tag}.tmp")
    tmp_pub = path.with_name(f".{pub_path.name}.{tag}.tmp")
    try:
        _create_file(tmp_key, pem, 0o600)
        _create_file(tmp_pub, (signer.public_key_line + "\n").encode(), 0o644)
        try:
            os.link(tmp_key, path)
        except FileExistsError:
            if exist_ok:
                return None
            raise KeyFileError(f"{path} already exists; refusing to overwrite a key") from None
        try:
            os.link(tmp_pub, pub_path)
        except FileExistsError:
            raise KeyFileError(f"{pub_path} already exists; refusing to overwrite a key") from None
        fsync_dir(path.parent)
    except OSError as exc:
        raise KeyFileError(f"cannot write key {exc.filename or path}: {exc.strerror}") from None
    finally:
        for tmp in (tmp_key, tmp_pub):
            with contextlib.suppress(OSError):
                tmp.unlink()
    return signer


def load_signer(path: Path) -> Signer:
    """Load a private key; refuse loose permissions, explain missing/unreadable/malformed files."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise KeyFileError(
            f"no key at {path}; create one with: netprobe keygen --out {path}"
        ) from None
    except OSError as exc:
        raise KeyFileError(f"cannot read key {path}: {exc.strerror}") from None
    if not path.is_file():
        raise KeyFileError(f"key {path} is not a regular file")
    if mode & 0o077:
        raise KeyFileError(
            f"permissions {mode & 0o777:04o} for '{path}' are too open: a private key must not "
            f"be accessible by others (fix: chmod 600 {path})"
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read key {path}: {exc.strerror}") from None
    try:
        private_key = load_ssh_private_key(data, password=None)
    except (TypeError, UnsupportedAlgorithm):
        # TypeError: "key is password-protected"; UnsupportedAlgorithm: an encrypted key read
        # without the bcrypt package. Either way the key has a passphrase.
        raise KeyFileError(
            f"key {path} is protected by a passphrase; netprobe runs unattended and needs an "
            f"unencrypted key (create one with: netprobe keygen)"
        ) from None
    except (ValueError, Exception) as exc:  # cryptography raises various types on garbage
        kind = "an OpenSSH private key" if b"PRIVATE KEY" in data else "a private key file"
        raise KeyFileError(
            f"key {path} is not a valid OpenSSH private key ({kind}?): {type(exc).__name__}"
        ) from None
    if not isinstance(private_key, Ed25519PrivateKey):
        raise KeyFileError(f"key {path} is not an Ed25519 key; netprobe signs with Ed25519 only")
    return Signer(private_key, _principal_from_pub(path, private_key), path)


def load_or_create_signer(path: Path | None) -> tuple[Signer, bool]:
    """Load the key at `path` (default: `default_key_path()`); create it there if missing.

    Returns (signer, created). An explicit `path` that does not exist is created too.
    """
    path = Path(path) if path is not None else default_key_path()
    if not path.exists() and not path.is_symlink():
        signer = _generate(path, DEFAULT_PRINCIPAL, exist_ok=True)
        if signer is not None:
            return signer, True
        # Another run created the key between our check and our link: use that one.
    return load_signer(path), False


def read_allowed_signers(path: Path) -> list[tuple[str, Ed25519PublicKey]]:
    """(principal pattern, key) pairs usable for netprobe's namespace.

    Format as in ssh-keygen(1) ALLOWED SIGNERS: `principals [options] keytype base64 [comment]`.
    Entries whose `namespaces="..."` option excludes netprobe's namespace, non-Ed25519 keys and
    `cert-authority` entries are skipped (netprobe does not use certificates). A line that
    starts with a key type is a `.pub` line (`ssh-ed25519 AAAA... comment`), named by its comment,
    so a volunteer's `.pub` file can be given where an allowed_signers file is expected.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise KeyFileError(f"cannot read allowed signers file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise KeyFileError(f"allowed signers file {path} is not UTF-8 text") from None
    entries: list[tuple[str, Ed25519PublicKey]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{path}:{number}"
        if _looks_like_key_type(line.split()[0]):
            entries.append(_pub_line(where, line))
            continue
        fields = _split_outside_quotes(line, " \t", limit=4)
        if fields is None:
            raise KeyFileError(f"{where}: unbalanced double quote")
        if len(fields) < 3:
            raise KeyFileError(f"{where}: expected 'principals [options] ssh-ed25519 AAAA...'")
        principals, rest = fields[0], fields[1:]
        options: dict[str, str | None] = {}
        if not _looks_like_key_type(rest[0]):
            options = _parse_options(rest[0])
            rest = rest[1:]
        if len(rest) < 2:
            raise KeyFileError(
                f"{where}: missing key type or key data (expected "
                f"'principal namespaces=\"{NAMESPACE}\" ssh-ed25519 AAAA...' or a .pub line "
                "'ssh-ed25519 AAAA... comment')"
            )
        key_type, key_data = rest[0], rest[1]
        if "cert-authority" in options or key_type != sshsig.KEY_TYPE:
            continue
        namespaces = options.get("namespaces")
        if namespaces is not None and not any(
            fnmatch.fnmatchcase(NAMESPACE, pattern.strip()) for pattern in namespaces.split(",")
        ):
            continue
        try:
            key = load_ssh_public_key(f"{key_type} {key_data}".encode())
        except (ValueError, Exception):
            raise KeyFileError(f"{where}: key data is not a valid {key_type} public key") from None
        if not isinstance(key, Ed25519PublicKey):
            raise KeyFileError(f"{where}: key data is not an Ed25519 public key")
        for principal in principals.split(","):
            if principal:
                entries.append((principal, key))
    return entries


def _pub_line(where: str, line: str) -> tuple[str, Ed25519PublicKey]:
    """A `.pub` line (`ssh-ed25519 AAAA... [comment]`): its key, named by the comment."""
    fields = line.split(maxsplit=2)
    if fields[0] != sshsig.KEY_TYPE:
        raise KeyFileError(f"{where}: a {fields[0]} key; netprobe signs with ssh-ed25519 only")
    if len(fields) < 2:
        raise KeyFileError(f"{where}: 'ssh-ed25519' without its key data")
    key, _fingerprint = _public_key(f"{fields[0]} {fields[1]}")
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"{where}: key data is not a valid ssh-ed25519 public key")
    comment = fields[2].split()[0] if len(fields) > 2 and fields[2].split() else ""
    return comment or DEFAULT_PRINCIPAL, key


def trusted_principal(
    allowed: list[tuple[str, Ed25519PublicKey]], public_key: Ed25519PublicKey
) -> str | None:
    """The first principal pattern in `allowed` listed with `public_key`, or None."""
    wanted = sshsig.public_key_blob(public_key)
    for principal, key in allowed:
        if sshsig.public_key_blob(key) == wanted:
            return principal
    return None


def header_signer_key(signer: object) -> Ed25519PublicKey | None:
    """The key a result header's `signer` field names (None for an unsigned file).

    ValueError if the field is malformed, not an Ed25519 OpenSSH key, or its fingerprint does
    not match the key.
    """
    if signer is None:
        return None
    if not isinstance(signer, dict) or not isinstance(signer.get("public_key"), str):
        raise ValueError("header field 'signer' is malformed")
    key, fingerprint = _public_key(" ".join(signer["public_key"].split()[:2]))
    if key is None:
        raise ValueError("header signer public_key is not an OpenSSH public key")
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("header signer public_key is not an Ed25519 key")
    if signer.get("fingerprint") not in (None, fingerprint):
        raise ValueError("header signer fingerprint does not match its public_key")
    return key


@functools.lru_cache(maxsize=64)
def _public_key(text: str) -> tuple[object, str | None]:
    # One volunteer's files all name the same key: parse it once per process, not per file.
    try:
        key = load_ssh_public_key(text.encode())
    except Exception:
        return None, None
    return key, sshsig.fingerprint(key) if isinstance(key, Ed25519PublicKey) else None


def _looks_like_key_type(token: str) -> bool:
    return token.startswith(("ssh-", "ecdsa-", "sk-", "rsa-"))


def _split_outside_quotes(text: str, separators: str, limit: int = 0) -> list[str] | None:
    """Split on `separators` outside double quotes (quotes kept); None if a quote is unbalanced.

    With `limit`, stop after that many fields (the rest, e.g. a free-form comment, is ignored).
    """
    fields: list[str] = []
    current: list[str] = []
    in_quote = False
    for char in text:
        if char == '"':
            in_quote = not in_quote
        if char in separators and not in_quote:
            if current:
                fields.append("".join(current))
                current = []
                if limit and len(fields) == limit:
                    return fields
            continue
        current.append(char)
    if in_quote and not (limit and len(fields) >= 3):
        return None
    if current:
        fields.append("".join(current))
    return fields


def _parse_options(text: str) -> dict[str, str | None]:
    """`namespaces="a,b",cert-authority` -> {"namespaces": "a,b", "cert-authority": None}."""
    options: dict[str, str | None] = {}
    for part in _split_outside_quotes(text, ",") or []:
        name, sep, value = part.partition("=")
        options[name.lower()] = value.strip('"') if sep else None
    return options


def _pub_path(path: Path) -> Path:
    return path.with_name(path.name + ".pub")


def _create_file(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        os.fchmod(fd, mode)  # the umask must not loosen (or tighten) the mode we chose
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _principal_from_pub(path: Path, private_key: Ed25519PrivateKey) -> str:
    """The comment of `<key>.pub` when it matches the key, else the default principal."""
    pub_path = _pub_path(path)
    try:
        fields = pub_path.read_text(encoding="utf-8").split()
    except (OSError, UnicodeDecodeError):
        return DEFAULT_PRINCIPAL
    if len(fields) < 2:
        return DEFAULT_PRINCIPAL
    ours = public_key_text(private_key.public_key())
    if f"{fields[0]} {fields[1]}" != ours:
        raise KeyFileError(f"{pub_path} does not belong to the private key {path}")
    return fields[2] if len(fields) > 2 else DEFAULT_PRINCIPAL
