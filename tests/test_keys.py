"""keys: generation, loading, permission checks, clear errors, allowed_signers parsing."""

from __future__ import annotations

import base64
import os
import pwd
import stat
import tempfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    PrivateFormat,
)

from netprobe.evidence import sshsig
from netprobe.evidence.keys import (
    KeyFileError,
    default_key_path,
    generate_key,
    load_or_create_signer,
    load_signer,
    read_allowed_signers,
)


def test_generate_writes_0600_key_and_pub(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "id_ed25519"
    signer = generate_key(path, "hanoi-1")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert (tmp_path / "sub" / "id_ed25519.pub").read_text() == signer.public_key_line + "\n"
    assert signer.public_key_line.startswith("ssh-ed25519 AAAA")
    assert signer.public_key_line.endswith(" hanoi-1")
    assert signer.allowed_signers_line() == (
        'hanoi-1 namespaces="netprobe-result@v1" ' + " ".join(signer.public_key_line.split()[:2])
    )
    assert signer.header_info() == {
        "public_key": signer.public_key_line,
        "fingerprint": signer.fingerprint,
        "namespace": "netprobe-result@v1",
    }


def test_generate_ignores_a_loose_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        generate_key(tmp_path / "k", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "k").stat().st_mode) == 0o600


@pytest.mark.parametrize("existing", ["k", "k.pub"])
def test_generate_refuses_to_overwrite(tmp_path: Path, existing: str) -> None:
    (tmp_path / existing).write_text("keep me")
    with pytest.raises(KeyFileError, match="refusing to overwrite"):
        generate_key(tmp_path / "k", "x")
    assert (tmp_path / existing).read_text() == "keep me"


@pytest.mark.parametrize("principal", ["", "two words", 'quo"te'])
def test_generate_rejects_bad_principals(tmp_path: Path, principal: str) -> None:
    with pytest.raises(KeyFileError, match="principal"):
        generate_key(tmp_path / "k", principal)


def test_load_round_trip_keeps_principal_and_fingerprint(tmp_path: Path) -> None:
    made = generate_key(tmp_path / "k", "alice")
    loaded = load_signer(tmp_path / "k")
    assert (loaded.principal, loaded.fingerprint) == ("alice", made.fingerprint)
    digest = b"\x01" * 64
    sshsig.verify_digest(loaded.sign_digest(digest), sshsig.NAMESPACE, digest)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o602, 0o620])
def test_load_refuses_loose_permissions(tmp_path: Path, mode: int) -> None:
    generate_key(tmp_path / "k", "x")
    os.chmod(tmp_path / "k", mode)
    with pytest.raises(KeyFileError, match=f"permissions {mode:04o} for '.*k' are too open"):
        load_signer(tmp_path / "k")


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_load_accepts_owner_only_modes(tmp_path: Path, mode: int) -> None:
    generate_key(tmp_path / "k", "x")
    os.chmod(tmp_path / "k", mode)
    assert load_signer(tmp_path / "k").principal == "x"


def write_key(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    os.chmod(path, 0o600)
    return path


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (b"", "not a valid OpenSSH private key"),
        (b"hello world\n", "not a valid OpenSSH private key"),
        (
            b"-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
            "valid",
        ),
    ],
)
def test_load_rejects_malformed_files(tmp_path: Path, content: bytes, error: str) -> None:
    with pytest.raises(KeyFileError, match=error):
        load_signer(write_key(tmp_path / "k", content))


def test_load_rejects_a_truncated_key(tmp_path: Path) -> None:
    generate_key(tmp_path / "good", "x")
    data = (tmp_path / "good").read_bytes()
    with pytest.raises(KeyFileError, match="not a valid"):
        load_signer(write_key(tmp_path / "k", data[: len(data) // 2]))


def test_load_explains_passphrase_keys(tmp_path: Path) -> None:
    data = Ed25519PrivateKey.generate().private_bytes(
        Encoding.PEM, PrivateFormat.OpenSSH, BestAvailableEncryption(b"secret")
    )
    with pytest.raises(KeyFileError, match="passphrase"):
        load_signer(write_key(tmp_path / "k", data))


def test_load_rejects_non_ed25519_keys(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.serialization import NoEncryption

    data = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption()
    )
    with pytest.raises(KeyFileError, match="not an Ed25519 key"):
        load_signer(write_key(tmp_path / "k", data))


def test_missing_key_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="netprobe keygen"):
        load_signer(tmp_path / "nope")


def test_directory_instead_of_key(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir(mode=0o700)
    with pytest.raises(KeyFileError, match="not a regular file"):
        load_signer(tmp_path / "d")


def _as_nobody(check) -> str:
    """Run `check()` (-> str) in a forked child that has dropped root for `nobody`; its result.

    Forked, not exec'd: the interpreter may live where `nobody` cannot reach (root's home), and
    the child needs nothing it has not already imported.
    """
    nobody = pwd.getpwnam("nobody")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            result = check()
        except BaseException as exc:  # everything goes back to the parent as text
            result = f"{type(exc).__name__}: {exc}"
        os.write(write_end, result.encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        result = pipe.read().decode()
    os.waitpid(pid, 0)
    return result


def test_unreadable_key_when_not_root(tmp_path: Path) -> None:
    # A mode 0000 key in a folder anyone can traverse: reachable (stat works), not readable.
    # As root (CI) the check runs as `nobody`, since root reads any file whatever its mode.
    generate_key(tmp_path / "warm", "warm")
    load_signer(tmp_path / "warm")  # import everything loading needs before dropping root
    with tempfile.TemporaryDirectory(prefix="netprobe-unreadable-") as folder:
        os.chmod(folder, 0o711)
        path = write_key(Path(folder) / "k", b"x")
        os.chmod(path, 0o000)

        def check() -> str:
            assert os.geteuid() != 0
            path.stat()  # reachable: the failure below is about reading the file
            try:
                load_signer(path)
            except KeyFileError as exc:
                return f"KeyFileError: {exc}"
            return "loaded"

        result = _as_nobody(check) if os.geteuid() == 0 else check()
    assert result == f"KeyFileError: cannot read key {path}: Permission denied"


def test_mismatched_pub_file_is_reported(tmp_path: Path) -> None:
    generate_key(tmp_path / "a", "a")
    generate_key(tmp_path / "b", "b")
    (tmp_path / "a.pub").write_text((tmp_path / "b.pub").read_text())
    with pytest.raises(KeyFileError, match="does not belong"):
        load_signer(tmp_path / "a")


def test_private_key_never_in_repr_or_header(tmp_path: Path) -> None:
    signer = generate_key(tmp_path / "k", "x")
    private = (tmp_path / "k").read_text().splitlines()[1]
    shown = repr(signer) + str(signer.header_info()) + signer.allowed_signers_line()
    assert private[:20] not in shown and "PRIVATE" not in shown


def test_default_key_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_key_path() == tmp_path / "xdg" / "netprobe" / "id_ed25519"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_key_path() == tmp_path / "home" / ".local/share/netprobe/id_ed25519"


def test_load_or_create_creates_once(tmp_path: Path) -> None:
    first, created = load_or_create_signer(tmp_path / "k")
    again, created_again = load_or_create_signer(tmp_path / "k")
    assert (created, created_again) == (True, False)
    assert first.fingerprint == again.fingerprint


def test_load_or_create_does_not_hide_a_bad_key(tmp_path: Path) -> None:
    generate_key(tmp_path / "k", "x")
    os.chmod(tmp_path / "k", 0o644)
    with pytest.raises(KeyFileError, match="too open"):
        load_or_create_signer(tmp_path / "k")


@pytest.fixture
def keys(tmp_path: Path) -> tuple[str, str]:
    a = generate_key(tmp_path / "a", "a").public_key_line.rsplit(" ", 1)[0]
    b = generate_key(tmp_path / "b", "b").public_key_line.rsplit(" ", 1)[0]
    return a, b


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("alice {a}", ["alice"]),
        ('alice namespaces="netprobe-result@v1" {a}', ["alice"]),
        ('alice namespaces="git,netprobe-result@v1" {a} comment', ["alice"]),
        ('alice namespaces="netprobe-*" {a}', ["alice"]),
        ('alice namespaces="git" {a}', []),
        ("alice,bob@example.org {a}", ["alice", "bob@example.org"]),
        ('alice cert-authority,namespaces="netprobe-result@v1" {a}', []),
        ("alice ssh-rsa AAAAB3NzaC1yc2E= rsa key", []),
        ("# comment\n\n  alice {a}  # trailing words are a comment", ["alice"]),
        ("alice {a} it's bob's \"key\"", ["alice"]),
        ('alice valid-after="20250101",namespaces="netprobe-result@v1" {a}', ["alice"]),
    ],
)
def test_read_allowed_signers(tmp_path: Path, keys, template: str, expected: list[str]) -> None:
    path = tmp_path / "allowed"
    path.write_text(template.format(a=keys[0]) + "\n")
    entries = read_allowed_signers(path)
    assert [principal for principal, _key in entries] == expected
    for _principal, key in entries:
        assert base64.b64encode(sshsig.public_key_blob(key)).decode() == keys[0].split()[1]


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("alice", "expected"),
        ("alice ssh-ed25519", "expected"),
        ("alice ssh-ed25519 notbase64!!", "key data is not a valid"),
        ('alice namespaces="x ssh-ed25519 AAAA', "unbalanced double quote"),
    ],
)
def test_read_allowed_signers_names_the_bad_line(tmp_path: Path, line: str, error: str) -> None:
    path = tmp_path / "allowed"
    path.write_text(f"# first\n{line}\n")
    with pytest.raises(KeyFileError, match=f"{path}:2"):
        read_allowed_signers(path)
    with pytest.raises(KeyFileError, match=error):
        read_allowed_signers(path)


def test_read_allowed_signers_missing_file(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="cannot read allowed signers file"):
        read_allowed_signers(tmp_path / "nope")
