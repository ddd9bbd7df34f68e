"""Views of `netprobe verify` results: the rich table and the JSON items.

Rules:
- Rendering only: one item per file given, in the order given; an item is a
  `reader.Verification` or, for a file that could not be read, `(path, message)`, shown with the
  status `UNREADABLE`.
- The signer column says whether the signature is trusted: trusted (the key is in the trust
  store or --allowed-signers), UNTRUSTED (not listed there), or `-` when the file has no
  signature. Values from files are markup-escaped.
- JSON items are `Verification.to_dict()` without the covered digest (a 128-hex-digit value that
  only the signature check itself needs).
"""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape
from rich.table import Table

from netprobe.evidence import format as fmt
from netprobe.evidence.format import UNREADABLE
from netprobe.evidence.reader import Verification

STATUS_STYLE = {fmt.COMPLETE: "green", fmt.PARTIAL: "yellow", fmt.UNSIGNED: "yellow"}

VerifyItem = Verification | tuple[Path, str]


def verify_status(item: VerifyItem) -> str:
    """COMPLETE, PARTIAL, UNSIGNED, INVALID or UNREADABLE."""
    return item.status if isinstance(item, Verification) else UNREADABLE


def verify_dict(item: VerifyItem) -> dict[str, object]:
    """One file's JSON item."""
    if isinstance(item, Verification):
        data = item.to_dict()
        data.pop("covered_sha512", None)
        return data
    path, message = item
    return {"path": str(path), "status": UNREADABLE, "message": message}


def verify_table(results: list[VerifyItem]) -> Table:
    """One row per file: status, records covered and not covered by a signature, signer, details."""
    table = Table(title="Result file verification")
    table.add_column("file", overflow="fold")
    table.add_column("status", no_wrap=True)
    table.add_column("signed", justify="right")
    table.add_column("unsigned", justify="right")
    table.add_column("signer", overflow="fold")
    table.add_column("details", overflow="fold")
    for item in results:
        if not isinstance(item, Verification):
            path, message = item
            table.add_row(escape(str(path)), f"[red]{UNREADABLE}[/]", "", "", "", escape(message))
            continue
        style = STATUS_STYLE.get(item.status, "red")
        table.add_row(
            escape(str(item.path)),
            f"[{style}]{item.status}[/]",
            str(item.records_covered),
            str(item.records_uncovered),
            escape(_signer(item)),
            escape(item.message),
        )
    return table


def _signer(item: Verification) -> str:
    if item.trusted:
        return f"{item.principal} (trusted)"
    if item.signer_fingerprint is None:
        return "-"
    if item.trusted is False:
        return f"UNTRUSTED: not in the trust store or --allowed-signers; {item.signer_fingerprint}"
    return f"untrusted (not checked against any signers); {item.signer_fingerprint}"


def trusted_table(listing: list, store: Path) -> Table:
    """`netprobe keys list`: one row per trusted key (`evidence.trust.TrustedSigner`)."""
    table = Table(title=f"Trusted signers ({escape(str(store))})")
    table.add_column("principal", overflow="fold")
    table.add_column("fingerprint", overflow="fold")
    table.add_column("source", no_wrap=True)
    for item in listing:
        table.add_row(escape(item.principal), item.fingerprint, item.source)
    if not listing:
        table.caption = "no trusted signers yet: `netprobe keys trust FILE.pub --principal NAME`"
    return table
