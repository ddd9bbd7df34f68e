"""`netprobe keys trust|list|show`: the trust store of signers (issue 11).

Rules: thin commands over `netprobe.evidence.trust` (the store's path, reading and writing it)
and `netprobe.evidence.keys`; tables come from `netprobe.render.keys`. The private key is never
printed. A bad `.pub` or trust store file is a usage error (exit 2) naming the file and line.
"""

from __future__ import annotations

from pathlib import Path

import typer

from netprobe.cli.app import app
from netprobe.cli.common import OutputFormat, escape, fail, out, print_json

keys_app = typer.Typer(
    help="The signers whose result files report, diff and timeline trust (the trust store).\n\n"
    "Example: netprobe keys trust hanoi.pub --principal hanoi-vnpt-1",
    no_args_is_help=True,
)
app.add_typer(keys_app, name="keys")

STORE_HELP = (
    "The trust store (an OpenSSH allowed_signers file). \\[default: $NETPROBE_ALLOWED_SIGNERS, "
    "else $XDG_CONFIG_HOME/netprobe/allowed_signers, else ~/.config/netprobe/allowed_signers]"
)


@keys_app.command("trust")
def trust(
    pub_file: Path = typer.Argument(
        ..., metavar="FILE", help="The signer's public key file (FILE.pub)."
    ),
    principal: str = typer.Option(
        ...,
        "--principal",
        metavar="NAME",
        help="Who the key belongs to, e.g. hanoi-vnpt-1 (no spaces).",
    ),
    store: Path = typer.Option(None, "--store", metavar="FILE", help=STORE_HELP),
) -> None:
    """Trust the result files signed by this key (adds a line to the trust store).

    Example: netprobe keys trust ~/Downloads/id_ed25519.pub --principal hanoi-vnpt-1
    """
    from netprobe.evidence import sshsig
    from netprobe.evidence.keys import KeyFileError, read_allowed_signers
    from netprobe.evidence.trust import add_trusted, default_trust_store_path

    path = store or default_trust_store_path()
    try:
        line, added = add_trusted(pub_file, principal, path)
        fingerprint = sshsig.fingerprint(read_allowed_signers(pub_file)[0][1])
    except KeyFileError as exc:
        fail(str(exc))
    verb = "trusted" if added else "already trusted"
    out.print(f"{verb}: {escape(principal)} {fingerprint}", highlight=False)
    out.print(f"trust store: {escape(str(path))}", highlight=False)
    out.print(escape(line), highlight=False)


@keys_app.command("list")
def list_keys(
    store: Path = typer.Option(None, "--store", metavar="FILE", help=STORE_HELP),
    output_format: OutputFormat = typer.Option(
        OutputFormat.table, "--format", "-f", metavar="table|json", help="table or json."
    ),
) -> None:
    """List the trusted signers: the local key (always trusted) and the trust store's entries.

    Example: netprobe keys list --format json
    """
    from netprobe.evidence.keys import KeyFileError
    from netprobe.evidence.trust import default_trust_store_path, list_trusted
    from netprobe.render.keys import trusted_table

    path = store or default_trust_store_path()
    try:
        listing = list_trusted(path)
    except KeyFileError as exc:
        fail(f"trust store {path}: {exc}")
    if output_format == OutputFormat.json:
        print_json({"trust_store": str(path), "signers": [item.to_dict() for item in listing]})
    else:
        out.print(trusted_table(listing, path))


@keys_app.command("show")
def show(
    key: Path = typer.Option(
        None,
        "--key",
        metavar="FILE",
        help="The private key. \\[default: $XDG_DATA_HOME/netprobe/id_ed25519, "
        "else ~/.local/share/netprobe/id_ed25519]",
    ),
    output_format: OutputFormat = typer.Option(
        OutputFormat.table, "--format", "-f", metavar="table|json", help="table or json."
    ),
) -> None:
    """Print the local public key, its fingerprint and its ready allowed_signers line.

    Send the line (or the .pub file) to whoever checks your results.

    Example: netprobe keys show
    """
    from netprobe.evidence.keys import KeyFileError, default_key_path, load_signer

    path = key or default_key_path()
    if not path.exists():
        fail(f"no key at {path}; `netprobe run` creates one, or run `netprobe keygen`")
    try:
        signer = load_signer(path)
    except KeyFileError as exc:
        fail(str(exc))
    document = {
        "key": str(path),
        "public_key_file": f"{path}.pub",
        "fingerprint": signer.fingerprint,
        "public_key": signer.public_key_line,
        "allowed_signers_line": signer.allowed_signers_line(),
    }
    if output_format == OutputFormat.json:
        print_json(document)
        return
    out.print(f"Private key: {escape(str(path))} (never shared)", highlight=False)
    out.print(f"Public key:  {escape(str(path))}.pub", highlight=False)
    out.print(f"Fingerprint: {signer.fingerprint}", highlight=False)
    out.print(escape(signer.public_key_line), highlight=False)
    out.print("\nLine for the verifier's allowed_signers file:", highlight=False)
    out.print(escape(signer.allowed_signers_line()), highlight=False)
