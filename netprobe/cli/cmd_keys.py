"""`netprobe keygen` and `netprobe verify`: signing keys and result-file verification.

Rules: thin commands over `netprobe.evidence.keys` and `netprobe.evidence.reader`; the verify table
and JSON items come from `netprobe.render.keys`. The private key is never printed. Without
--allowed-signers, verify checks signers against the trust store (`evidence.trust`) and only
reports whether each is trusted; with it, an unlisted signer is INVALID. A bad signers file is a
usage error (2) naming its file and line. `verify --write-sig` re-creates the detached `.sig` of
a COMPLETE file with the key that signed it (after a disk-full error at the end of a run). verify exits 0 COMPLETE, 3 PARTIAL, 4 UNSIGNED, 5 INVALID, 2 unreadable; with several
files the most severe wins, in the order COMPLETE < PARTIAL < UNSIGNED < unreadable < INVALID.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from netprobe.cli.app import app
from netprobe.cli.common import (
    EXIT_FAILURE,
    EXIT_USAGE,
    OutputFormat,
    default,
    err,
    escape,
    fail,
    out,
    print_json,
)
from netprobe.evidence.format import (
    COMPLETE,
    DEFAULT_PRINCIPAL,
    INVALID,
    PARTIAL,
    UNREADABLE,
    UNSIGNED,
)

if TYPE_CHECKING:  # imported by the commands themselves: `--help` stays fast
    from netprobe.evidence.reader import Verification

EXIT_PARTIAL = 3
EXIT_UNSIGNED = 4
EXIT_INVALID = 5
EXIT_CODES = {COMPLETE: 0, PARTIAL: EXIT_PARTIAL, UNSIGNED: EXIT_UNSIGNED}
EXIT_CODES.update({UNREADABLE: EXIT_USAGE, INVALID: EXIT_INVALID})
SEVERITY = [COMPLETE, PARTIAL, UNSIGNED, UNREADABLE, INVALID]


@app.command()
def keygen(
    out_path: Path = typer.Option(
        None,
        "--out",
        metavar="FILE",
        help="Where to write the private key (FILE.pub gets the public key)."
        + default("$XDG_DATA_HOME/netprobe/id_ed25519, else ~/.local/share/netprobe/id_ed25519"),
    ),
    principal: str = typer.Option(
        DEFAULT_PRINCIPAL,
        "--principal",
        metavar="NAME",
        help="Name recorded with the public key and used in the allowed_signers line.",
    ),
) -> None:
    """Create an Ed25519 signing key for result files (never overwrites an existing key).

    Example: netprobe keygen --out /var/lib/netprobe/id_ed25519 --principal hanoi-vnpt-1
    """
    from netprobe.evidence.keys import KeyFileError, default_key_path, generate_key

    path = out_path or default_key_path()
    try:
        signer = generate_key(path, principal)
    except KeyFileError as exc:
        fail(str(exc))
    out.print(f"Private key: {escape(str(path))} (mode 0600; keep it secret)", highlight=False)
    out.print(f"Public key:  {escape(str(path))}.pub", highlight=False)
    out.print(f"Fingerprint: {signer.fingerprint}", highlight=False)
    out.print(escape(signer.public_key_line), highlight=False)
    out.print("\nLine for the verifier's allowed_signers file:", highlight=False)
    out.print(escape(signer.allowed_signers_line()), highlight=False)


@app.command()
def verify(
    files: list[Path] = typer.Argument(
        ...,
        metavar="FILE",
        help="Result files to check (.jsonl, or .partial files left by a killed run).",
    ),
    allowed_signers: Path = typer.Option(
        None,
        "--allowed-signers",
        metavar="FILE",
        help="OpenSSH allowed_signers file naming the keys you trust. Without it, signatures "
        "are checked against the key named in each file, which proves nothing about who signed."
        + default("the key named in each file"),
    ),
    output_format: OutputFormat = typer.Option(
        OutputFormat.table, "--format", "-f", metavar="table|json", help="table or json."
    ),
    write_sig: bool = typer.Option(
        False,
        "--write-sig",
        help="Re-create each COMPLETE file's detached .sig (e.g. after a disk-full error) with "
        "the local key (or --key), which must be the key that signed the file.",
    ),
    key: Path = typer.Option(
        None,
        "--key",
        metavar="FILE",
        help="The private key for --write-sig. \\[default: the local key]",
    ),
    tsa_ca: Path = typer.Option(
        None,
        "--tsa-ca",
        metavar="FILE",
        help="PEM CA certificate(s) a FILE.tsr timestamp's TSA must chain to. "
        "\\[default: tsa_ca in the config file; without one a .tsr is only checked for "
        "consistency]",
    ),
) -> None:
    """Check result-file signatures: COMPLETE, PARTIAL, UNSIGNED or INVALID per file.

    Also checks the RFC 3161 timestamp FILE.tsr next to a file when there is one (its genTime is
    printed).

    Without --allowed-signers the signer column says whether the key is in the trust store
    (`netprobe keys list`); with it, a signer not listed makes the file INVALID.

    Exit codes: 0 all COMPLETE, 3 PARTIAL, 4 UNSIGNED, 5 INVALID (a .tsr that does not match
    its file or its CA counts as INVALID), 2 unreadable (worst file wins).

    Example: netprobe verify results/*.jsonl --allowed-signers ~/allowed_signers

    Example: netprobe verify --write-sig results/20250526T010000Z_hanoi-vnpt-1.jsonl
    """
    from netprobe.evidence.keys import KeyFileError
    from netprobe.evidence.reader import ResultFileError, verify_file
    from netprobe.evidence.trust import default_trust_store_path, signers_for
    from netprobe.render.keys import verify_dict, verify_status, verify_table

    try:  # a bad signers file is a usage error, never a property of the result files
        signers = signers_for(allowed_signers)
    except KeyFileError as exc:
        where = (
            "--allowed-signers" if allowed_signers else f"trust store {default_trust_store_path()}"
        )
        fail(f"{where}: {exc}")
    signer = _sig_signer(key) if write_sig else None
    results: list[Verification | tuple[Path, str]] = []
    for path in files:
        try:
            if allowed_signers is not None:
                results.append(verify_file(path, allowed_signers=allowed_signers))
            else:
                results.append(verify_file(path, signers=signers))
        except ResultFileError as exc:
            results.append((path, str(exc)))
        if signer is not None:
            _rewrite_sig(results[-1], signer)
    from netprobe.cli.timestamps import check_timestamps, print_timestamps
    from netprobe.evidence.format import TS_INVALID

    stamps = check_timestamps(files, tsa_ca)
    if output_format == OutputFormat.json:
        print_json(
            [
                {**verify_dict(i), "timestamp": c.to_dict()}
                for i, c in zip(results, stamps, strict=True)
            ]
        )
    else:
        out.print(verify_table(results))
        print_timestamps(files, stamps)
    statuses = [verify_status(item) for item in results]
    statuses += [INVALID for check in stamps if check.status == TS_INVALID]  # a bad .tsr
    worst = max(statuses, key=SEVERITY.index)
    raise typer.Exit(EXIT_CODES[worst])


def _sig_signer(key: Path | None) -> Any:
    from netprobe.evidence.keys import KeyFileError, default_key_path, load_signer

    try:
        return load_signer(key or default_key_path())
    except KeyFileError as exc:
        fail(f"--write-sig: {exc}")


def _rewrite_sig(item: Verification | tuple[Path, str], signer: Any) -> None:
    """Re-create the `.sig` of a COMPLETE file signed by `signer`; exit 2 naming the problem."""
    from netprobe.evidence.format import RESULT_SUFFIX
    from netprobe.evidence.reader import Verification
    from netprobe.evidence.writer import (
        SignatureFileError,
        detached_signature_digest,
        write_detached_signature,
    )

    if not isinstance(item, Verification) or item.status != COMPLETE:
        path = item.path if isinstance(item, Verification) else item[0]
        fail(f"--write-sig: {path} is not COMPLETE; only a finished file gets a .sig")
    path = Path(item.path)
    if not path.name.endswith(RESULT_SUFFIX):
        fail(f"--write-sig: {path} is not a finished result file (*{RESULT_SUFFIX})")
    if item.signer_fingerprint != signer.fingerprint:
        fail(
            f"--write-sig: {path} was signed by {item.signer_fingerprint}, not by the key "
            f"{signer.path} ({signer.fingerprint})"
        )
    sig_path = path.with_name(path.name + ".sig")
    try:
        write_detached_signature(
            path, sig_path, signer.sign_digest(detached_signature_digest(path))
        )
    except SignatureFileError as exc:
        fail(str(exc.strerror), EXIT_FAILURE)
    except OSError as exc:
        fail(f"--write-sig: {path}: {exc.strerror or exc}", EXIT_FAILURE)
    err.print(f"netprobe: wrote {sig_path}", highlight=False, markup=False)
