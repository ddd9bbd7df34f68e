"""`netprobe --version` and `--help` stay light: the heavy libraries load only in the commands
that use them (issue 16). The time itself is measured by bench/startup.py, not here."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("httpx", "rich", "cryptography", "dns", "asn1crypto", "yaml")


def imported(*args: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "netprobe", *args],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    names = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    return {name.split(".")[0] for name in names}


@pytest.mark.parametrize("args", [("--version",)])
def test_version_imports_no_heavy_library(args: tuple[str, ...]) -> None:
    assert not imported(*args) & set(HEAVY)


def test_help_imports_no_network_or_crypto_library() -> None:
    # The top-level page is click's plain text (cli/app.py): not even rich is needed to list
    # the commands. A command's own page (typer's rich help) needs rich, nothing else heavy.
    assert not imported("--help") & set(HEAVY)
    assert not imported("run", "--help") & {"httpx", "cryptography", "dns", "asn1crypto"}
