"""`netprobe keygen` and `netprobe verify`: signing keys and result-file verification.

Rules: thin commands over `netprobe.evidence.keys` and `netprobe.evidence.reader`; the verify table
and JSON items come from `netprobe.render.keys`. The private key is never printed. verify exits 0 COMPLETE, 3 PARTIAL, 4 UNSIGNED, 5 INVALID, 2 unreadable; with several
files the most severe wins, in the order COMPLETE < PARTIAL < UNSIGNED < unreadable < INVALID.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from netprobe.cli.app import app
from netprobe.cli.common import EXIT_USAGE, OutputFormat, escape, fail, out, print_json
from netprobe.evidence.format import DEFAULT_PRINCIPAL, UNREADABLE

if TYPE_CHECKING:  # imported by the commands themselves: `--help` stays fast
    from netprobe.evidence.reader import Verification

EXIT_PARTIAL = 3
EXIT_UNSIGNED = 4
EXIT_INVALID = 5
EXIT_CODES = {"COMPLETE": 0, "PARTIAL": EXIT_PARTIAL, "UNSIGNED": EXIT_UNSIGNED}
EXIT_CODES.update({UNREADABLE: EXIT_USAGE, "INVALID": EXIT_INVALID})
SEVERITY = ["COMPLETE", "PARTIAL", "UNSIGNED", UNREADABLE, "INVALID"]


@app.command()
def keygen(
    out_path: Path = typer.Option(
        None,
        "--out",
        help="Where to write the private key (PATH.pub gets the public key). "
        "[default: $XDG_DATA_HOME/netprobe/id_ed25519, else ~/.local/share/netprobe/id_ed25519]",
    ),
    principal: str = typer.Option(
        DEFAULT_PRINCIPAL,
        "--principal",
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
        ..., help="Result files to check (.jsonl, or .partial files left by a killed run)."
    ),
    allowed_signers: Path = typer.Option(
        None,
        "--allowed-signers",
        help="OpenSSH allowed_signers file naming the keys you trust. Without it, signatures "
        "are checked against the key named in each file, which proves nothing about who signed.",
    ),
    output_format: OutputFormat = typer.Option(
        OutputFormat.table, "--format", help="table (default) or json."
    ),
) -> None:
    """Check result-file signatures: COMPLETE, PARTIAL, UNSIGNED or INVALID per file.

    Exit codes: 0 all COMPLETE, 3 PARTIAL, 4 UNSIGNED, 5 INVALID, 2 unreadable (worst file wins).

    Example: netprobe verify results/*.jsonl --allowed-signers ~/allowed_signers
    """
    from netprobe.evidence.reader import ResultFileError, verify_file
    from netprobe.render.keys import verify_dict, verify_status, verify_table

    if allowed_signers is not None and not allowed_signers.is_file():
        fail(f"--allowed-signers: {allowed_signers} is not a readable file")
    results: list[Verification | tuple[Path, str]] = []
    for path in files:
        try:
            results.append(verify_file(path, allowed_signers=allowed_signers))
        except ResultFileError as exc:
            results.append((path, str(exc)))
    if output_format == OutputFormat.json:
        print_json([verify_dict(item) for item in results])
    else:
        out.print(verify_table(results))
    worst = max((verify_status(item) for item in results), key=SEVERITY.index)
    raise typer.Exit(EXIT_CODES[worst])
