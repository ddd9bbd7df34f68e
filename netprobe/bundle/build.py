"""Making an evidence bundle: `make_bundle(results, out)` writes `case.tar.gz` (issue 11).

Rules:
- Only finished, signed result files go in (`<stem>.jsonl` with its `.sig`, COMPLETE against
  the bundle's own `allowed_signers`); a `.tsr` next to one goes in too and must check VALID
  against the TSA CA (`--tsa-ca`, copied in as `tsa-ca.pem`). Anything else is a `BundleError`
  naming the file, and no archive is written.
- `allowed_signers`: the lines for the keys that signed the bundled files (and the manifest),
  taken from `--allowed-signers FILE`, else the trust store (`evidence.trust`), the local key
  being trusted either way. With no trust store yet, the keys named in the files' headers are
  used and VERIFY.md says so. A file whose key is in neither is refused.
- Reports are made from the signed records with the same library calls as `report --format
  json` and the `report` table (text), and, with more than one run, `timeline --format html`.
- The manifest (`script.manifest_text`) covers every file but itself and its signature, which
  the local key signs in `format.BUNDLE_NAMESPACE`. The archive has one top folder named after
  it (`case/` for `case.tar.gz`); it is written to a temporary name and renamed.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from netprobe.bundle.script import (
    BundledResult,
    BundlePlan,
    manifest_text,
    verify_readme,
    verify_script,
)
from netprobe.evidence import format as fmt
from netprobe.evidence import sshsig
from netprobe.evidence.keys import (
    KeyFileError,
    Signer,
    header_signer_key,
    public_key_text,
    read_allowed_signers,
    trusted_principal,
)


class BundleError(Exception):
    """A bundle that cannot be made or read; the text names the file and the reason."""


@dataclass
class Made:
    path: Path
    files: list[str]  # paths inside the bundle, sorted
    plan: BundlePlan


def archive_folder_name(out: Path) -> str:
    name = out.name
    for suffix in (".tar.gz", ".tgz", ".tar"):
        if name.endswith(suffix):
            return name[: -len(suffix)] or "bundle"
    return name or "bundle"


def make_bundle(
    results: list[Path],
    out: Path,
    *,
    signer: Signer,
    local: Signer | None = None,
    allowed_signers: Path | None = None,
    trust_store: Path | None = None,
    tsa_ca: Path | None = None,
) -> Made:
    """Write the bundle of `results` to `out` (see the module rules); BundleError if unusable.

    `signer` signs the manifest; `local` is the local key (trusted like the trust store's keys).
    """
    out = Path(out)
    if out.exists():
        raise BundleError(f"{out} already exists; refusing to overwrite it")
    if not results:
        raise BundleError("no result files given")
    sources = [_source(Path(path)) for path in results]
    entries, where, trust_source, fallback = _trust(allowed_signers, trust_store, signer, local)
    chosen: dict[bytes, tuple[str, Ed25519PublicKey]] = {}  # key blob -> (principal, key)
    items = []
    for path, key, header_principal in sources:
        principal = trusted_principal(entries, key)
        if principal is None and fallback:
            principal = header_principal
        if principal is None:
            raise BundleError(
                f"{path}: signed by {sshsig.fingerprint(key)}, which is not in {where}; "
                "trust it first (netprobe keys trust) or pass --allowed-signers"
            )
        principal = _choose(chosen, principal, key)
        tsr = path.with_name(fmt.tsr_name(path.name))
        item = BundledResult(
            f"{fmt.BUNDLE_RESULTS}/{path.name}", principal, sshsig.fingerprint(key), tsr.is_file()
        )
        items.append((path, item))
    own_principal = _choose(chosen, signer.principal, signer.public_key)
    if len({item.path for _, item in items}) != len(items):
        raise BundleError("two result files have the same name")
    if any(item.tsr for _, item in items) and tsa_ca is None:
        raise BundleError("a result file has a .tsr timestamp: give the TSA's CA with --tsa-ca")
    with tempfile.TemporaryDirectory(prefix="netprobe-bundle-") as scratch:
        root = Path(scratch) / archive_folder_name(out)
        plan = _stage(root, items, chosen, own_principal, signer, trust_source, tsa_ca)
        files = _finish(root, signer)
        _write_archive(root, out)
    return Made(out, files, plan)


def _choose(
    chosen: dict[bytes, tuple[str, Ed25519PublicKey]], principal: str, key: Ed25519PublicKey
) -> str:
    """The bundle's principal for `key`: the one it already has, else `principal`, made unique
    (every volunteer's default principal is `netprobe`: `netprobe-2`, `netprobe-3`, ...)."""
    blob = sshsig.public_key_blob(key)
    if blob in chosen:
        return chosen[blob][0]
    taken = {name for name, _ in chosen.values()}
    unique, number = principal, 1
    while unique in taken:
        number += 1
        unique = f"{principal}-{number}"
    chosen[blob] = (unique, key)
    return unique


def _source(path: Path) -> tuple[Path, Ed25519PublicKey, str]:
    """(path, signer key, principal named in the header) of a bundleable result file."""
    if not path.name.endswith(fmt.RESULT_SUFFIX) or path.name.startswith("."):
        raise BundleError(f"{path}: not a finished result file (<UTC time>_<vantage>.jsonl)")
    if not re.fullmatch(r"[A-Za-z0-9._-]+", path.name):
        raise BundleError(f"{path}: only letters, digits, '.', '-' and '_' in bundled file names")
    if not path.is_file():
        raise BundleError(f"{path}: no such file")
    if not path.with_name(fmt.sig_name(path.name[: -len(fmt.RESULT_SUFFIX)])).is_file():
        raise BundleError(f"{path}: no detached signature {path.name}{fmt.SIG_SUFFIX} next to it")
    with open(path, "rb") as handle:
        header = fmt.decode_line(handle.readline(fmt.MAX_LINE_BYTES).rstrip(b"\n"))
    if header is None or header.get("type") != fmt.HEADER:
        raise BundleError(f"{path}:1: not a netprobe result file (no header line)")
    try:
        key = header_signer_key(header.get("signer"))
    except ValueError as exc:
        raise BundleError(f"{path}:1: {exc}") from None
    if key is None:
        raise BundleError(f"{path}: unsigned; only signed files go in a bundle")
    words = str(header["signer"].get("public_key", "")).split()
    principal = words[2] if len(words) > 2 and _plain(words[2]) else "signer"
    return path, key, principal


def _plain(principal: str) -> bool:
    return bool(principal) and not any(c.isspace() or c in "\"',*?!" for c in principal)


def _trust(
    allowed_signers: Path | None, trust_store: Path | None, signer: Signer, local: Signer | None
) -> tuple[list[tuple[str, Ed25519PublicKey]], str, str, bool]:
    """(entries, their source, a sentence about it for VERIFY.md, fallback?).

    The local key and the manifest's signer are always trusted.
    """
    own = [(s.principal, s.public_key) for s in (signer, local) if s is not None]
    # `where` names the file in messages; VERIFY.md says only its kind and base name (no home
    # folder or user name goes into a bundle).
    if allowed_signers is not None:
        path, where = allowed_signers, f"the allowed signers file {allowed_signers}"
        what = f"the allowed signers file {allowed_signers.name} given to `netprobe bundle`"
    elif trust_store is not None and trust_store.is_file():
        path, where = trust_store, f"the trust store {trust_store}"
        what = "the bundler's netprobe trust store"
    else:
        sentence = (
            "There was no trust store on the machine that made this bundle: allowed_signers "
            "holds the keys named inside the result files themselves and the bundler's own key. "
            "Step 0 is the only thing that ties them to a person."
        )
        return own, "the files", sentence, True
    try:
        entries = [
            (p, k) for p, k in read_allowed_signers(path) if _plain(p) and not p.startswith("!")
        ]
    except KeyFileError as exc:
        raise BundleError(str(exc)) from None
    sentence = f"allowed_signers was taken from {what} and the bundler's own key."
    return entries + own, where, sentence, False


def _stage(
    root: Path,
    items: list[tuple[Path, BundledResult]],
    chosen: dict[bytes, tuple[str, Ed25519PublicKey]],
    own_principal: str,
    signer: Signer,
    trust_source: str,
    tsa_ca: Path | None,
) -> BundlePlan:
    from netprobe.evidence.reader import ResultFileError, verify_file
    from netprobe.evidence.tsa_client import check_file

    results = root / fmt.BUNDLE_RESULTS
    results.mkdir(parents=True)
    signers = root / fmt.BUNDLE_SIGNERS
    namespaces = f"{fmt.NAMESPACE},{fmt.BUNDLE_NAMESPACE}"
    signers.write_text(
        "".join(
            f'{principal} namespaces="{namespaces}" {public_key_text(key)}\n'
            for principal, key in chosen.values()
        )
    )
    ca_copy = root / fmt.BUNDLE_TSA_CA
    if any(item.tsr for _, item in items) and tsa_ca is not None:
        try:
            shutil.copyfile(tsa_ca, ca_copy)
        except OSError as exc:
            raise BundleError(f"--tsa-ca: {tsa_ca}: {exc.strerror}") from None
    staged = []
    for path, item in items:
        target = root / item.path
        for suffix in ("", fmt.SIG_SUFFIX) + ((fmt.TSR_SUFFIX,) if item.tsr else ()):
            shutil.copyfile(
                path.with_name(path.name + suffix), target.with_name(target.name + suffix)
            )
        try:
            verification = verify_file(target, allowed_signers=signers)
        except ResultFileError as exc:
            raise BundleError(str(exc)) from None
        if verification.status != fmt.COMPLETE:
            raise BundleError(f"{path}: {verification.status}: {verification.message}")
        if item.tsr:
            check = check_file(target, ca_copy)
            if check.status != fmt.TS_VALID:
                raise BundleError(f"{path}{fmt.TSR_SUFFIX}: {check.status}: {check.message}")
        staged.append(target)
    reports = _reports(root, staged, signers)
    plan = BundlePlan(
        [item for _, item in items],
        own_principal,
        signer.fingerprint,
        trust_source,
        datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        reports,
    )
    (root / fmt.BUNDLE_README).write_text(verify_readme(plan))
    script = root / fmt.BUNDLE_SCRIPT
    script.write_text(verify_script(plan))
    script.chmod(0o755)
    return plan


def _reports(root: Path, staged: list[Path], signers: Path) -> list[str]:
    """reports/<stem>.json and .txt per run, reports/timeline.html with more than one run."""
    folder = root / fmt.BUNDLE_REPORTS
    folder.mkdir()
    names = []
    for path in staged:
        document = report_document(path, signers, shown_path=f"{fmt.BUNDLE_RESULTS}/{path.name}")
        stem = path.name[: -len(fmt.RESULT_SUFFIX)]
        (folder / f"{stem}.json").write_text(
            json.dumps(document, indent=2, ensure_ascii=False) + "\n"
        )
        (folder / f"{stem}.txt").write_text(report_text(document))
        names += [f"{fmt.BUNDLE_REPORTS}/{stem}.json", f"{fmt.BUNDLE_REPORTS}/{stem}.txt"]
    if len(staged) > 1:
        from netprobe.render.timeline_html import render_html
        from netprobe.timeline.builder import TimelineOptions
        from netprobe.timeline.files import ReadOptions
        from netprobe.timeline.report import timeline_report

        read_options = ReadOptions(verify=True, allowed_signers=str(signers))
        timeline = timeline_report(
            staged, read_options, TimelineOptions(), jobs=1, use_cache=False
        ).report
        timeline["skipped"] = [
            {**item, "path": Path(item["path"]).name} for item in timeline["skipped"]
        ]
        (folder / "timeline.html").write_text(render_html(timeline))
        names.append(f"{fmt.BUNDLE_REPORTS}/timeline.html")
    return names


def report_document(path: Path, signers: Path, *, shown_path: str) -> dict[str, Any]:
    """What `netprobe report --format json` prints for `path`, with `file.path` = `shown_path`."""
    from netprobe.analysis import analyse
    from netprobe.analysis.load import RunRefused, load_run
    from netprobe.evidence.reader import ResultFileError, load_result

    try:
        loaded = load_result(path, verify=True, allowed_signers=signers)
        run = load_run(loaded.header, loaded.records)
    except (ResultFileError, RunRefused) as exc:
        raise BundleError(f"{path}: {exc}") from None
    summary = loaded.summary or {}
    verification = loaded.verification
    info = {
        "path": shown_path,
        "verification": verification.status if verification is not None else "not verified",
        "finished_at": summary.get("finished_at"),
        "interrupted": summary.get("interrupted"),
        "dropped": loaded.dropped,
    }
    return {"file": info, **analyse(run.header, run.records).to_dict()}


def report_text(document: dict[str, Any]) -> str:
    """The `report` table as plain text (no colour), 120 columns."""
    from rich.console import Console

    from netprobe.render.report import report_renderable

    buffer = io.StringIO()
    console = Console(file=buffer, width=120, color_system=None, emoji=False, highlight=False)
    console.print(report_renderable(document))
    return buffer.getvalue()


def _finish(root: Path, signer: Signer) -> list[str]:
    """Write MANIFEST.sha256 and its signature; the sorted list of every file in the bundle."""
    digests = {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).digest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }
    manifest = manifest_text(digests).encode()
    (root / fmt.BUNDLE_MANIFEST).write_bytes(manifest)
    blob = signer.sign_digest_for(fmt.BUNDLE_NAMESPACE, hashlib.sha512(manifest).digest())
    (root / fmt.BUNDLE_MANIFEST_SIG).write_text(sshsig.armor(blob))
    return sorted([*digests, fmt.BUNDLE_MANIFEST, fmt.BUNDLE_MANIFEST_SIG])


def _write_archive(root: Path, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(f".{out.name}.tmp")
    try:
        with tarfile.open(temporary, "w:gz") as archive:
            for path in sorted(root.rglob("*")):
                info = archive.gettarinfo(
                    str(path), arcname=f"{root.name}/{path.relative_to(root)}"
                )
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                if path.is_file():
                    with open(path, "rb") as handle:
                        archive.addfile(info, handle)
                else:
                    archive.addfile(info)
        os.replace(temporary, out)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise BundleError(f"cannot write {out}: {exc.strerror or exc}") from None
