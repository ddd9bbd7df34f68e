"""Config file for `netprobe run`, so a crontab line stays short.

Rules:
- YAML mapping of `run` option names (underscores or dashes) to values; unknown keys are errors.
- Location: `--config PATH`, else `$NETPROBE_CONFIG`, else `$XDG_CONFIG_HOME/netprobe/config.yaml`
  (default `~/.config/netprobe/config.yaml`), else `/etc/netprobe/config.yaml` if it exists.
- Flags given on the command line override the file (`merge_options`); a flag counts as given when
  its value is not None.
- Relative paths in the file are relative to the file's folder (cron starts in $HOME).
- Errors name the place: `file:line: key: message` (`ConfigError`).
- `parse_config` and `merge_options` are pure; only `load_config`/`default_config_path` look at disk.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A config file that cannot be used; the message is `file:line: key: message`."""


# Options whose values are file-system paths (resolved against the config file's folder).
PATH_KEYS = frozenset({"targets", "out", "ca_bundle", "key", "log"})


def _string(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("expected a non-empty string")
    return value


def _string_list(value: Any) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise ValueError("expected a string or a non-empty list of strings")
    return [_string(item) for item in value]


def _positive_number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError("expected a positive number")
    return float(value)


def _positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError("expected a positive whole number")
    return value


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("expected true or false")
    return value


def _asn(value: Any) -> str:
    text = _string(value)
    if not re.fullmatch(r"AS\d+", text):
        raise ValueError("expected an AS number like AS7552")
    return text


def _country(value: Any) -> str:
    text = _string(value)
    if not re.fullmatch(r"[A-Z]{2}", text):
        raise ValueError("expected a two-letter upper-case country code like VN")
    return text


VALIDATORS: dict[str, Callable[[Any], Any]] = {
    "targets": _string_list,
    "out": _string,
    "resolvers": _string_list,
    "control_resolvers": _string_list,
    "ca_bundle": _string,
    "timeout": _positive_number,
    "concurrency": _positive_int,
    "repeat": _positive_int,
    "vantage": _string,
    "asn": _asn,
    "cc": _country,
    "key": _string,
    "sign": _boolean,
    "log": _string,
    "keep_days": _positive_number,
    "quiet": _boolean,
    "deadline": _positive_number,
    # Also accepted because `netprobe run` has these flags too (extension of the list).
    "udp_wait": _positive_number,
    "checkpoint_every": _positive_int,
    "checkpoint_seconds": _positive_number,
}
ALLOWED_KEYS = frozenset(VALIDATORS)


def parse_config(text: str, filename: str) -> dict[str, Any]:
    """Validate a config file's text; returns {option: value} with option names using underscores."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{filename}:{line}: not valid YAML: {problem}") from None
    if root is None or (isinstance(root, yaml.ScalarNode) and root.tag.endswith(":null")):
        return {}
    if not isinstance(root, yaml.MappingNode):
        raise ConfigError(
            f"{filename}:{root.start_mark.line + 1}: the config must be a mapping of option: value"
        )
    loader = yaml.SafeLoader("")
    config: dict[str, Any] = {}
    for key_node, value_node in root.value:
        line = key_node.start_mark.line + 1
        raw_key = str(key_node.value)
        key = raw_key.replace("-", "_")
        if key not in ALLOWED_KEYS:
            allowed = ", ".join(sorted(ALLOWED_KEYS))
            raise ConfigError(f"{filename}:{line}: {raw_key}: unknown option (allowed: {allowed})")
        if key in config:
            raise ConfigError(f"{filename}:{line}: {raw_key}: given twice")
        value = loader.construct_object(value_node, deep=True)
        try:
            config[key] = VALIDATORS[key](value)
        except ValueError as exc:
            raise ConfigError(f"{filename}:{line}: {raw_key}: {exc}, got {value!r}") from None
    loader.dispose()
    return config


def resolve_paths(config: dict[str, Any], base_dir: Path) -> dict[str, Any]:
    """Make path options absolute relative to `base_dir` (pure; `~` is expanded)."""

    def resolve(text: str) -> str:
        path = Path(text).expanduser()
        return str(path if path.is_absolute() else base_dir / path)

    resolved = dict(config)
    for key in PATH_KEYS & resolved.keys():
        value = resolved[key]
        resolved[key] = [resolve(v) for v in value] if isinstance(value, list) else resolve(value)
    return resolved


def default_config_path() -> Path:
    """Where `netprobe run` looks for a config file when `--config` is not given."""
    explicit = os.environ.get("NETPROBE_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    user_path = Path(xdg).expanduser() / "netprobe" / "config.yaml"
    system_path = Path("/etc/netprobe/config.yaml")
    if not user_path.exists() and system_path.exists():
        return system_path
    return user_path


def load_config(path: Path | None) -> dict[str, Any]:
    """Read and validate a config file.

    `path=None` (or the default path itself) means the default location, where a missing file is
    simply no config ({}). Any other path that does not exist is a `ConfigError`, and so is a
    missing $NETPROBE_CONFIG.
    """
    default = default_config_path()
    path = Path(path) if path is not None else default
    # Passing the default location explicitly still counts as "no config asked for".
    explicit = path != default or bool(os.environ.get("NETPROBE_CONFIG"))
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if explicit:
            raise ConfigError(f"{path}: config file not found") from None
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc}") from None
    return resolve_paths(parse_config(text, str(path)), path.resolve().parent)


def merge_options(config: dict[str, Any], flags: dict[str, Any]) -> dict[str, Any]:
    """Options from the config file, overridden by every flag that was given (value not None)."""
    merged = dict(config)
    merged.update({key: value for key, value in flags.items() if value is not None})
    return merged
