"""Preparing `netprobe run`: its options from flags, the config file and the target lists.

Rules:
- Precedence: a flag given on the command line, else the config file, else the target lists'
  `settings:` (a later list over an earlier one), else the defaults in `netprobe.options`.
- Every value is checked by `netprobe.options.check` where it is read (flags here, the config
  file and the lists by their readers), so an error names the flag, or the file, line and key.
- Nothing here prints or exits: errors are ValueErrors (`OptionError`, `ConfigError`,
  `TargetError`) whose text is ready for the user.
- Looks at disk only to read the config file and the target lists, and to check that a CA
  bundle file exists.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from netprobe.config import default_config_path, read_config_file
from netprobe.options import (
    OPTIONS,
    Given,
    OptionError,
    Origin,
    RunOptions,
    check,
    merge,
    values,
)
from netprobe.options import run_options as options_from_values
from netprobe.targets.lists import TargetList, bundled_targets_path, load_targets


def flag_settings(flags: Mapping[str, Any]) -> dict[str, Given]:
    """The flags that were given (value not None), checked: {option: Given}."""
    origin = Origin.cli()
    return {
        name: Given(check(name, value, origin), origin)
        for name, value in flags.items()
        if value is not None
    }


def merged_settings(flags: Mapping[str, Any], config_path: Path | None) -> dict[str, Given]:
    """The config file's options (`config_path`, else the default location), overridden by flags."""
    config = read_config_file(config_path if config_path else default_config_path())
    return merge(config, flag_settings(flags))


def load_target_lists(paths: list[str] | None) -> list[TargetList]:
    """The target lists named by `paths`, else the bundled Telegram list."""
    if not paths:
        return [load_targets(bundled_targets_path())]
    return [load_targets(Path(p)) for p in paths]


def list_settings(target_list: TargetList) -> dict[str, Given]:
    """A list's run options (already checked by the reader); `ports` stays with the list."""
    origin = Origin.target_list(target_list.filename)
    return {
        name: Given(value, origin)
        for name, value in target_list.settings.items()
        if name in OPTIONS
    }


def run_options(settings: Mapping[str, Given], target_lists: list[TargetList]) -> RunOptions:
    """RunOptions from the lists' settings overridden by `settings` (config and flags)."""
    merged = merge(*(list_settings(tl) for tl in target_lists), settings)
    ca_bundle = merged.get("ca_bundle")
    if ca_bundle is not None and not Path(ca_bundle.value).is_file():
        origin = ca_bundle.origin
        raise OptionError(
            origin, origin.field_name("ca_bundle"), f"no such file: {ca_bundle.value}"
        )
    return options_from_values(values(merged))
