"""`netprobe bundle RESULTS... --out case.tar.gz` and `netprobe bundle --check case.tar.gz`.

Rules: thin command over `netprobe.bundle.build.make_bundle` and `netprobe.bundle.check`;
output from `netprobe.render.bundle`. The manifest is signed with `--key`, else the local key
(created on first use, like `run`). allowed_signers: `--allowed-signers`, else the trust store.
Exit codes: make: 0 written, 2 a file cannot go in (unsigned, not COMPLETE, untrusted signer,
bad timestamp) or bad usage; --check: 0 every check passed, 5 some check failed, 2 not a
readable bundle.
"""

from __future__ import annotations

from pathlib import Path

import typer

from netprobe.cli.app import app
from netprobe.cli.common import EXIT_OK, OutputFormat, fail, out, print_json

EXIT_CHECK_FAILED = 5  # as `verify` says INVALID


@app.command()
def bundle(
    results: list[Path] = typer.Argument(
        None,
        metavar="FILE...",
        help="Finished result files (.jsonl) to pack. \\[default: none: give files, or --check]",
        show_default=False,
    ),
    out_path: Path = typer.Option(
        None,
        "--out",
        "-o",
        metavar="FILE",
        help="The archive to write (.tar.gz). \\[default: none: required unless --check]",
    ),
    check: Path = typer.Option(
        None,
        "--check",
        metavar="FILE",
        help="Check this bundle instead (the same checks as its verify.sh). \\[default: none: build]",
    ),
    allowed_signers: Path = typer.Option(
        None,
        "--allowed-signers",
        metavar="FILE",
        help="Take the signers' lines from this OpenSSH allowed_signers file. "
        "\\[default: the trust store, else the keys named in the files]",
    ),
    tsa_ca: Path = typer.Option(
        None,
        "--tsa-ca",
        metavar="FILE",
        help="PEM CA certificate(s) of the TSA (needed when a file has a .tsr). "
        "\\[default: tsa_ca in the config file]",
    ),
    key: Path = typer.Option(
        None,
        "--key",
        metavar="FILE",
        help="Key that signs the manifest. \\[default: the local key]",
    ),
    output_format: OutputFormat = typer.Option(
        OutputFormat.table, "--format", "-f", metavar="table|json", help="table or json."
    ),
) -> None:
    """Pack result files, signatures, timestamps and reports into one checkable archive.

    The archive holds the files with their .sig and .tsr, the signers' keys, a signed SHA-256
    manifest, reports (text, JSON; HTML timeline for several runs), VERIFY.md and a POSIX verify.sh that
    checks everything with only ssh-keygen, openssl and sha256sum.

    Example: netprobe bundle results/2025052*.jsonl --out case.tar.gz --tsa-ca tsa-ca.pem

    Example: netprobe bundle --check case.tar.gz
    """
    from netprobe.bundle.build import BundleError

    if check is not None:
        if results or out_path:
            fail("--check takes only the archive: no RESULTS or --out with it")
        _check(check, output_format)
    if not results or out_path is None:
        fail("give RESULTS... and --out ARCHIVE (or --check ARCHIVE)")
    from netprobe.bundle.build import make_bundle
    from netprobe.cli.timestamps import tsa_ca_path
    from netprobe.evidence.keys import (
        KeyFileError,
        default_key_path,
        load_or_create_signer,
        load_signer,
    )
    from netprobe.evidence.trust import default_trust_store_path
    from netprobe.render.bundle import made_dict, made_lines

    try:
        local = load_or_create_signer(None)[0] if not key or default_key_path().exists() else None
        signer = load_signer(key) if key else local
    except KeyFileError as exc:
        fail(str(exc))
    assert signer is not None
    try:
        made = make_bundle(
            results,
            out_path,
            signer=signer,
            local=local,
            allowed_signers=allowed_signers,
            trust_store=default_trust_store_path(),
            tsa_ca=tsa_ca_path(tsa_ca),
        )
    except BundleError as exc:
        fail(str(exc))
    if output_format == OutputFormat.json:
        print_json(made_dict(made))
    else:
        for line in made_lines(made):
            out.print(line, highlight=False, markup=False)
    raise typer.Exit(EXIT_OK)


def _check(archive: Path, output_format: OutputFormat) -> None:
    from netprobe.bundle.build import BundleError
    from netprobe.bundle.check import check_bundle
    from netprobe.render.bundle import checks_table

    try:
        checks = check_bundle(archive)
    except BundleError as exc:
        fail(str(exc))
    if output_format == OutputFormat.json:
        print_json([item.to_dict() for item in checks])
    else:
        out.print(checks_table(checks))
    raise typer.Exit(EXIT_OK if all(item.ok for item in checks) else EXIT_CHECK_FAILED)
