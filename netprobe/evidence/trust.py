"""The trust store: which signers' result files netprobe uses without being told to (issue 11).

Rules:
- The trust store is one OpenSSH `allowed_signers` file, `$XDG_CONFIG_HOME/netprobe/allowed_signers`
  (else `~/.config/netprobe/allowed_signers`), or `$NETPROBE_ALLOWED_SIGNERS` when set. It is
  read by `netprobe.evidence.keys.read_allowed_signers`, so `ssh-keygen -Y verify -f` accepts the
  same file unchanged.
- The local key is always trusted, whether or not its line is in the file.
"""

from __future__ import annotations

import os
from pathlib import Path

TRUST_STORE_ENV = "NETPROBE_ALLOWED_SIGNERS"
TRUST_STORE_NAME = "allowed_signers"


def default_trust_store_path() -> Path:
    """`$NETPROBE_ALLOWED_SIGNERS`, else `$XDG_CONFIG_HOME/netprobe/allowed_signers`."""
    explicit = os.environ.get(TRUST_STORE_ENV)
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(xdg) / "netprobe" / TRUST_STORE_NAME
