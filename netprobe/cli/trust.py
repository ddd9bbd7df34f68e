"""Trust options shared by `report`, `diff` and `timeline`: --allowed-signers, --accept-untrusted.

Rules: the entries come from `netprobe.evidence.trust.signers_for` (the trust store, or the
--allowed-signers file); a bad file is a usage error (exit 2) naming the file and line, never a
property of the result files. "UNTRUSTED signer SHA256:..." is spelled here once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from netprobe.cli.common import fail

SIGNERS_HELP = (
    "Trust the keys in this OpenSSH allowed_signers (or .pub) file instead of the trust store. "
    "\\[default: the trust store, see `netprobe keys list`]"
)
ACCEPT_HELP = "Use files whose signer is not trusted (they are still marked UNTRUSTED)."


def trusted_signers(allowed_signers: Path | None, no_verify: bool = False) -> Any:
    """The (principal, key) entries files are checked against; exit 2 naming a bad file."""
    from netprobe.evidence.keys import KeyFileError
    from netprobe.evidence.trust import default_trust_store_path, signers_for

    if no_verify:
        return None
    try:
        return signers_for(allowed_signers)
    except KeyFileError as exc:
        where = (
            "--allowed-signers" if allowed_signers else f"trust store {default_trust_store_path()}"
        )
        fail(f"{where}: {exc}")


def untrusted(loaded: Any) -> str | None:
    """ "UNTRUSTED signer SHA256:..." when the file's signer is not trusted, else None."""
    verification = loaded.verification
    if verification is None or verification.trusted is not False:
        return None
    return f"UNTRUSTED signer {verification.signer_fingerprint}"


TRUST_HINT = (
    "trust the signer with `netprobe keys trust THEIR_KEY.pub --principal NAME`, "
    "or pass --accept-untrusted"
)
