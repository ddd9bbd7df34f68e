"""`netprobe bundle --check`: the checks of verify.sh, in Python, each reported (issue 11).

Rules:
- The archive is read member by member into a private temporary folder: only regular files and
  folders under one top folder, with safe relative names (`script.safe_path`), are accepted;
  links, devices, absolute or `..` names make it unreadable (`BundleError`), never extracted.
- The checks, in verify.sh's order: the manifest's signature (BUNDLE_NAMESPACE, by a key in the
  bundle's allowed_signers); every file against the manifest, and no file missing from it or
  extra; every result file COMPLETE against the bundle's allowed_signers and its detached `.sig`
  valid; every `.tsr` VALID against `tsa-ca.pem`. Each gives a `Check(what, ok, detail)`; a
  failed check does not stop the later ones (the report lists all).
"""

from __future__ import annotations

import hashlib
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from netprobe.bundle.build import BundleError
from netprobe.bundle.script import parse_manifest, safe_path
from netprobe.evidence import format as fmt
from netprobe.evidence import sshsig
from netprobe.evidence.keys import KeyFileError, read_allowed_signers, trusted_principal

MAX_MEMBER = 2 * 1024**3


@dataclass(frozen=True)
class Check:
    what: str
    ok: bool
    detail: str

    def to_dict(self) -> dict[str, object]:
        return {"check": self.what, "ok": self.ok, "detail": self.detail}


def check_bundle(archive: Path) -> list[Check]:
    """Every check of the bundle at `archive`; BundleError if it cannot be read as a bundle."""
    with tempfile.TemporaryDirectory(prefix="netprobe-check-") as scratch:
        root = _unpack(Path(archive), Path(scratch))
        return check_folder(root)


def _unpack(archive: Path, into: Path) -> Path:
    try:
        tar = tarfile.open(archive, "r:*")
    except (OSError, tarfile.TarError) as exc:
        raise BundleError(f"{archive}: not a readable tar archive: {exc}") from None
    tops: set[str] = set()
    with tar:
        try:
            for member in tar:
                name = member.name.rstrip("/")
                if not safe_path(name):
                    raise BundleError(f"{archive}: unsafe member name {member.name!r}")
                tops.add(name.split("/")[0])
                if len(tops) > 1:
                    raise BundleError(f"{archive}: more than one top folder")
                target = into / name
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                elif member.isfile() and member.size <= MAX_MEMBER:
                    if target.exists():
                        raise BundleError(f"{archive}: {name} appears twice")
                    target.parent.mkdir(parents=True, exist_ok=True)
                    source = tar.extractfile(member)
                    assert source is not None
                    target.write_bytes(source.read())
                else:
                    raise BundleError(f"{archive}: {name} is not a regular file")
        except (OSError, tarfile.TarError, EOFError) as exc:
            raise BundleError(f"{archive}: broken archive: {exc}") from None
    if not tops:
        raise BundleError(f"{archive}: empty archive")
    root = into / tops.pop()
    if not root.is_dir():
        raise BundleError(f"{archive}: no top folder")
    return root


def check_folder(root: Path) -> list[Check]:
    """The checks of an unpacked bundle folder (see the module rules)."""
    checks: list[Check] = []
    signers = root / fmt.BUNDLE_SIGNERS
    try:
        allowed = read_allowed_signers(signers)
    except KeyFileError as exc:
        return [Check(fmt.BUNDLE_SIGNERS, False, str(exc))]
    checks.append(_manifest_signature(root, allowed))
    checks += _manifest(root)
    results = sorted((root / fmt.BUNDLE_RESULTS).glob(f"*{fmt.RESULT_SUFFIX}"))
    if not results:
        checks.append(Check(fmt.BUNDLE_RESULTS, False, "no result file in the bundle"))
    for path in results:
        checks.append(_result(root, path, signers, allowed))
    for path in results:
        if path.with_name(path.name + fmt.TSR_SUFFIX).exists():
            checks.append(_timestamp(root, path))
    return checks


def _manifest_signature(root: Path, allowed: list) -> Check:
    what = f"{fmt.BUNDLE_MANIFEST_SIG} signs {fmt.BUNDLE_MANIFEST}"
    try:
        manifest = (root / fmt.BUNDLE_MANIFEST).read_bytes()
        blob = sshsig.dearmor((root / fmt.BUNDLE_MANIFEST_SIG).read_text("ascii"))
        key = sshsig.verify_digest(blob, fmt.BUNDLE_NAMESPACE, hashlib.sha512(manifest).digest())
    except (OSError, ValueError) as exc:
        return Check(what, False, str(exc))
    principal = trusted_principal(allowed, key)
    if principal is None:
        return Check(what, False, f"signer {sshsig.fingerprint(key)} is not in allowed_signers")
    return Check(what, True, f"signed by {principal} ({sshsig.fingerprint(key)})")


def _manifest(root: Path) -> list[Check]:
    try:
        listed = parse_manifest((root / fmt.BUNDLE_MANIFEST).read_text("utf-8"))
    except (OSError, ValueError) as exc:
        return [Check(fmt.BUNDLE_MANIFEST, False, str(exc))]
    present = {str(path.relative_to(root)) for path in root.rglob("*") if path.is_file()} - {
        fmt.BUNDLE_MANIFEST,
        fmt.BUNDLE_MANIFEST_SIG,
    }
    checks = []
    for name in sorted(present - set(listed)):
        checks.append(Check(name, False, "not listed in the manifest"))
    for name, digest in listed.items():
        path = root / name
        if name not in present:
            checks.append(Check(name, False, "listed in the manifest but missing"))
        elif hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            checks.append(Check(name, False, "SHA-256 differs from the manifest"))
    if not checks:
        checks.append(Check(fmt.BUNDLE_MANIFEST, True, f"{len(listed)} files match"))
    return checks


def _result(root: Path, path: Path, signers: Path, allowed: list) -> Check:
    from netprobe.evidence.reader import ResultFileError, verify_file

    name = str(path.relative_to(root))
    try:
        verification = verify_file(path, allowed_signers=signers)
    except ResultFileError as exc:
        return Check(name, False, str(exc))
    if verification.status != fmt.COMPLETE:
        return Check(name, False, f"{verification.status}: {verification.message}")
    sig = path.with_name(path.name + fmt.SIG_SUFFIX)
    try:
        blob = sshsig.dearmor(sig.read_text("ascii"))
        digest = hashlib.sha512(path.read_bytes()).digest()
        key = sshsig.verify_digest(blob, fmt.NAMESPACE, digest)
    except (OSError, ValueError) as exc:
        return Check(name, False, f"{sig.name}: {exc}")
    if trusted_principal(allowed, key) is None:
        return Check(name, False, f"{sig.name}: signer {sshsig.fingerprint(key)} not allowed")
    return Check(
        name,
        True,
        f"COMPLETE, .sig valid, signed by {verification.principal} "
        f"({verification.signer_fingerprint})",
    )


def _timestamp(root: Path, path: Path) -> Check:
    from netprobe.evidence.tsa_client import check_file
    from netprobe.render.timestamp import check_cell

    name = str(path.relative_to(root)) + fmt.TSR_SUFFIX
    ca = root / fmt.BUNDLE_TSA_CA
    if not ca.is_file():
        return Check(name, False, f"no {fmt.BUNDLE_TSA_CA} in the bundle")
    check = check_file(path, ca)
    return Check(name, check.status == fmt.TS_VALID, check_cell(check))
