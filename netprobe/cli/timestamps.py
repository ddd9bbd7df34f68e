"""Timestamp helpers shared by `verify`, `timestamp` and `bundle`: the CA file, the checks.

Rules: the TSA CA file is `--tsa-ca`, else `tsa_ca` in the config file (a config file that
cannot be read is a warning here, not an error: verifying needs no config); the checks are
`netprobe.evidence.tsa_client.check_file`; the text comes from `netprobe.render.timestamp`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from netprobe.cli.common import escape, out, warn
from netprobe.evidence import format as fmt

if TYPE_CHECKING:  # asn1crypto and cryptography load when a timestamp is checked, not for --help
    from netprobe.evidence.timestamp import TimestampCheck


def tsa_ca_path(given: Path | None) -> Path | None:
    """`--tsa-ca` if given, else the config file's `tsa_ca`, else None."""
    if given is not None:
        return given
    from netprobe.config import read_config_file

    try:
        config = read_config_file(None)
    except ValueError as exc:
        warn(f"config file not used for tsa_ca: {exc}")
        return None
    item = config.get("tsa_ca")
    return Path(item.value) if item is not None else None


def check_timestamps(files: list[Path], tsa_ca: Path | None) -> list[TimestampCheck]:
    """The check of each file's `.tsr` (TS_NONE where there is none), in order."""
    from netprobe.evidence.tsa_client import check_file, tsr_path

    # The config file is looked at only when some file has a timestamp to check.
    any_tsr = any(tsr_path(path).exists() for path in files)
    ca = tsa_ca_path(tsa_ca) if any_tsr else tsa_ca
    return [check_file(path, ca) for path in files]


def print_timestamps(files: list[Path], checks: list[TimestampCheck]) -> None:
    """One line per file that has a `.tsr`: `FILE.tsr: VALID genTime ... by CN=...`."""
    from netprobe.evidence.tsa_client import tsr_path
    from netprobe.render.timestamp import check_cell

    for path, check in zip(files, checks, strict=True):
        if check.status == fmt.TS_NONE:
            continue
        style = {fmt.TS_VALID: "green", fmt.TS_UNCHECKED: "yellow"}.get(check.status, "red")
        text = escape(f"{tsr_path(path)}: ")
        out.print(f"timestamp {text}[{style}]{escape(check_cell(check))}[/]", highlight=False)
