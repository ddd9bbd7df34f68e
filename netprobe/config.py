"""Config file for `netprobe run`, so a crontab line stays short.

Rules:
- YAML mapping of `run` option names (underscores or dashes) to values; unknown keys are errors.
- Location: `--config PATH`, else `$NETPROBE_CONFIG`, else `$XDG_CONFIG_HOME/netprobe/config.yaml`
  (default `~/.config/netprobe/config.yaml`), else `/etc/netprobe/config.yaml` if it exists.
- Flags given on the command line override the file (`merge_options`); a flag counts as given when
  its value is not None.
- Relative paths in the file are relative to the file's folder (cron starts in $HOME).
- Keys and values follow the option table (`netprobe.options`): the same checks and the same
  normalisation (`asn: 7552` -> `AS7552`) as the flags of `netprobe run`.
- Errors name the place: `file:line: key: message` (`ConfigError`, read by the shared
  line-aware reader `netprobe.yamlfile`).
- `read_config`, `parse_config` and `merge_options` are pure; only `read_config_file`,
  `load_config` and `default_config_path` look at disk.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from yaml.nodes import MappingNode, ScalarNode

from netprobe.options import CONFIG, OPTIONS, Given, OptionError, Origin, check, names, values
from netprobe.yamlfile import NodeReader, YamlFileError, line_of


class ConfigError(YamlFileError):
    """A config file that cannot be used; the message is `file:line: key: message`."""


ALLOWED_KEYS = names(CONFIG)
# Options whose values are file-system paths (resolved against the config file's folder).
PATH_KEYS = frozenset(name for name in ALLOWED_KEYS if OPTIONS[name].path)


class _ConfigReader(NodeReader):
    error_class = ConfigError


def read_config(text: str, filename: str) -> dict[str, Given]:
    """Validate a config file's text; {option: Given} with option names using underscores."""
    reader = _ConfigReader(text, filename)
    root = reader.root()
    if root is None or (isinstance(root, ScalarNode) and root.tag.endswith(":null")):
        return {}
    if not isinstance(root, MappingNode):
        raise reader.error(root, None, "the config must be a mapping of option: value")
    config: dict[str, Given] = {}
    entries = reader.entries(
        root, "", ALLOWED_KEYS, normalise=lambda key: key.replace("-", "_"), noun="option"
    )
    for entry in entries:
        origin = Origin.config(filename, line_of(entry.key_node), entry.written)
        try:
            config[entry.key] = Given(
                check(entry.key, reader.value(entry.value_node), origin), origin
            )
        except OptionError as exc:
            raise ConfigError(filename, origin.line, exc.field, exc.message) from None
    return config


def parse_config(text: str, filename: str) -> dict[str, Any]:
    """Validate a config file's text; returns {option: value} with option names using underscores."""
    return values(read_config(text, filename))


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


def read_config_file(path: Path | None) -> dict[str, Given]:
    """Read and validate a config file: {option: Given}, paths made absolute.

    `path=None` (or the default path itself) means the default location, where a missing file is
    simply no config ({}). Any other path that does not exist is a `ConfigError`, and so is a
    missing $NETPROBE_CONFIG.
    """
    default = default_config_path()
    path = Path(path) if path is not None else default
    # Passing the default location explicitly still counts as "no config asked for".
    explicit = path != default or bool(os.environ.get("NETPROBE_CONFIG"))
    from netprobe.regularfile import NotRegularFile, read_regular

    try:
        text = read_regular(path).decode("utf-8")  # a FIFO is refused, never waited on
    except FileNotFoundError:
        if explicit:
            raise ConfigError(str(path), None, None, "config file not found") from None
        return {}
    except NotRegularFile as exc:
        raise ConfigError(str(path), None, None, f"{exc}, expected a YAML config file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), None, None, f"cannot read config file: {exc}") from None
    given = read_config(text, str(path))
    resolved = resolve_paths(values(given), path.resolve().parent)
    return {name: Given(resolved[name], item.origin) for name, item in given.items()}


def load_config(path: Path | None) -> dict[str, Any]:
    """`read_config_file` as plain {option: value}."""
    return values(read_config_file(path))


def merge_options(config: dict[str, Any], flags: dict[str, Any]) -> dict[str, Any]:
    """Options from the config file, overridden by every flag that was given (value not None)."""
    merged = dict(config)
    merged.update({key: value for key, value in flags.items() if value is not None})
    return merged
