"""The options of `netprobe run`: one table, one validation function, and `RunOptions`.

Rules:
- `OPTIONS` is the only place that gives an option's type, bounds, default, help text and where
  it may be set: on the command line (`CLI`), in the config file (`CONFIG`), in a target list's
  `settings:` block (`LIST`). The flags of `netprobe run`, the config reader and the target-list
  reader all take their rules from it, so a value valid in one place is valid in every place
  that accepts the option.
- `check(name, value, origin)` is the one validation function. It returns the normalised value
  (`7552` and `as7552` -> `AS7552`, `vn` -> `VN`, one string -> a one-item list) or raises
  `OptionError`, whose text says where the bad value came from, in the project's
  `file:line: field: message` style: `config.yaml:4: timeout: ...`, `--timeout: ...`,
  `list.yaml:7: settings.timeout: ...`.
- Numbers must be finite and within their bounds whatever the source; whole numbers written
  where a number is expected stay ints (the result header shows them as written).
- `udp_wait: 0` is valid: it means "do not wait for late (injected) replies".
- `merge(*layers)`: later layers override earlier ones (list settings, then config, then flags).
- A target list's `settings:` may also hold `ports`, which belongs to the list (its groups'
  default ports), not to the run; the target-list reader handles it (`LIST_ONLY_SETTINGS`).
- Pure: standard library only (no I/O, no asyncio/socket/ssl/rich/typer).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CLI = "cli"
CONFIG = "config"
LIST = "list"
_PLACES = {CLI: "on the command line", CONFIG: "in the config file", LIST: "in a list's settings"}

LIST_ONLY_SETTINGS = ("ports",)


@dataclass(frozen=True)
class Option:
    """One run option. `kind` names its check in `_KINDS`; bounds are inclusive."""

    name: str
    kind: str
    default: Any
    help: str
    sources: frozenset[str]
    flag: str | None = None  # the long flag, e.g. "--timeout"; for the positional: its name
    short: str | None = None
    low: float | None = None
    high: float | None = None
    above_low: bool = False  # the low bound itself is not allowed (e.g. keep_days > 0)
    unit: str = ""  # "seconds", "days": named in messages
    run_field: str | None = None  # the RunOptions attribute; None: not part of RunOptions
    default_text: str | None = None  # shown as the default when `default` is no plain value
    path: bool = False  # a file-system path (the config file resolves it against its folder)

    def expected(self) -> str:
        """What a valid value looks like, for messages: `a number of seconds from 0.05 to 600`."""
        if self.kind in ("number", "integer"):
            what = f"a number of {self.unit}" if self.unit else "a number"
            if self.kind == "integer":
                what = f"a whole number of {self.unit}" if self.unit else "a whole number"
            low, high = _number_text(self.low), _number_text(self.high)
            if self.above_low:
                return f"{what} above {low}, up to {high}"
            return f"{what} from {low} to {high}"
        return _KINDS[self.kind][1]

    def shown_default(self) -> str | None:
        """The default as `--help` shows it, or None when there is nothing to show."""
        if self.default_text is not None:
            return self.default_text
        if self.default is None or isinstance(self.default, bool):
            return None
        if isinstance(self.default, list):
            return ", ".join(str(item) for item in self.default)
        return str(self.default)


def _number_text(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


_EVERYWHERE = frozenset({CLI, CONFIG, LIST})
_CLI_AND_CONFIG = frozenset({CLI, CONFIG})

# fmt: off
OPTION_LIST: tuple[Option, ...] = (
    Option("targets", "text_list", None, "Target list YAML files.", _CLI_AND_CONFIG,
           flag="TARGET_FILE", path=True,
           default_text="the bundled Telegram list (targets/telegram.yaml)"),
    Option("out", "text", "results", "Folder for result files.", _CLI_AND_CONFIG,
           flag="--out", short="-o", run_field="out_dir", path=True),
    Option("resolvers", "text_list", ["system"],
           "Probe resolver, repeatable: system, udp://IP[:port], tcp://IP[:port], "
           "tls://IP[:port] or https://HOST/dns-query.", _CLI_AND_CONFIG,
           flag="--resolver", short="-r", run_field="resolvers"),
    Option("control_resolvers", "text_list", None,
           "Control resolver, repeatable, same forms as --resolver.", _CLI_AND_CONFIG,
           flag="--control-resolver", run_field="control_resolvers",
           default_text="the target list's controls, else https://1.1.1.1/dns-query and "
           "https://8.8.8.8/dns-query"),
    Option("ca_bundle", "text", None,
           "PEM file of CA certificates to trust instead of the system store "
           "(SSL_CERT_FILE also works).", _CLI_AND_CONFIG,
           flag="--ca-bundle", run_field="ca_bundle", path=True),
    Option("timeout", "number", 5.0, "Seconds per probe.", _EVERYWHERE,
           flag="--timeout", short="-t", low=0.05, high=600, unit="seconds", run_field="timeout"),
    Option("concurrency", "integer", 64, "Probes in flight at once.", _EVERYWHERE,
           flag="--concurrency", short="-c", low=1, high=10000, run_field="concurrency"),
    Option("repeat", "integer", 1, "Run every probe N times; all attempts are recorded.",
           _EVERYWHERE, flag="--repeat", low=1, high=100, run_field="repeat"),
    Option("deadline", "number", 1800.0,
           "Stop the whole run after S seconds (file stays valid).", _EVERYWHERE,
           flag="--deadline", low=1, high=7 * 86400, unit="seconds", run_field="deadline"),
    Option("udp_wait", "number", 0.5,
           "Seconds to keep listening after a UDP DNS reply, to catch injected second replies "
           "(0: do not wait).", _EVERYWHERE,
           flag="--udp-wait", low=0, high=10, unit="seconds", run_field="udp_wait"),
    Option("confirm", "integer", 2,
           "Re-probe each failed target probe N more times before the run ends, to tell a "
           "lost packet from a block (only once some control worked; 0: never).", _EVERYWHERE,
           flag="--confirm", low=0, high=10, run_field="confirm"),
    Option("confirm_spacing", "number", 1.0,
           "Seconds between a failed probe and each of its re-probes.", _EVERYWHERE,
           flag="--confirm-spacing", low=0, high=600, unit="seconds", run_field="confirm_spacing"),
    Option("control_interval", "number", 120.0,
           "The controls run at the start and the end of a run, and again every S seconds "
           "in between.", _EVERYWHERE,
           flag="--control-interval", low=1, high=7 * 86400, unit="seconds",
           run_field="control_interval"),
    Option("residual_pause", "number", 3.0,
           "When a target SNI fails, retry the control SNI on the same ip:port after S seconds "
           "(catches censors that then block the whole address for a while; 0: do not).",
           _EVERYWHERE, flag="--residual-pause", low=0, high=600, unit="seconds",
           run_field="residual_pause"),
    Option("throughput_bytes", "integer", 1 << 20,
           "Byte cap of each throughput download (the list's `download:` objects; issue 13).",
           _EVERYWHERE, flag="--throughput-bytes", low=1024, high=1 << 30,
           run_field="throughput_bytes"),
    Option("throughput_seconds", "number", 8.0,
           "Time cap of each throughput download: reading stops after S seconds (a throttled "
           "transfer runs to it; at least 1: a throttled download must take 1 s).", _EVERYWHERE,
           flag="--throughput-seconds", low=1, high=600,
           unit="seconds", run_field="throughput_seconds"),
    Option("max_addresses_per_domain", "integer", 4,
           "Resolved addresses given TLS probes per name and resolver.", frozenset({LIST}),
           low=1, high=64, run_field="max_addresses_per_domain"),
    Option("http_body_limit", "integer", 4096,
           "Bytes of each HTTP answer's body kept in the result file (the page's title, hash "
           "and length are always kept).", _CLI_AND_CONFIG,
           flag="--http-body-limit", low=0, high=65536, run_field="http_body_limit"),
    Option("bodies", "boolean", True,
           "Keep no HTTP page content on disk (title, hash and length only).", _CLI_AND_CONFIG,
           flag="--no-bodies", run_field="bodies"),
    Option("vantage", "vantage", "unnamed",
           "A name for this vantage point, e.g. hanoi-vnpt-1 (goes into the file name).",
           _CLI_AND_CONFIG, flag="--vantage", run_field="vantage"),
    Option("asn", "asn", "AS0",
           "The network's ASN, e.g. AS7552 or 7552. Never looked up by netprobe.",
           _CLI_AND_CONFIG, flag="--asn", run_field="asn"),
    Option("cc", "country", "ZZ", "The country code, e.g. VN.", _CLI_AND_CONFIG,
           flag="--cc", run_field="cc"),
    Option("key", "text", None, "Ed25519 OpenSSH private key to sign with.", _CLI_AND_CONFIG,
           flag="--key", path=True, default_text="created on first run in the user's data folder"),
    Option("sign", "boolean", True, "Write an explicitly unsigned file.", _CLI_AND_CONFIG,
           flag="--no-sign"),
    Option("checkpoint_every", "integer", 256, "Signed checkpoint every N records.",
           _CLI_AND_CONFIG, flag="--checkpoint-every", low=1, high=10**7,
           run_field="checkpoint_every"),
    Option("checkpoint_seconds", "number", 10.0, "Signed checkpoint at least every S seconds.",
           _CLI_AND_CONFIG, flag="--checkpoint-seconds", low=0, high=86400, above_low=True,
           unit="seconds", run_field="checkpoint_seconds"),
    Option("tsa", "url", None,
           "RFC 3161 time-stamping authority URL: at the end of the run the SHA-256 of the "
           "result file (nothing else) goes there and the signed token is kept as FILE.tsr.",
           _CLI_AND_CONFIG, flag="--tsa"),
    Option("tsa_ca", "text", None,
           "PEM file of the CA certificate(s) the TSA's certificate must chain to (run and "
           "verify check tokens against it).", _CLI_AND_CONFIG, flag="--tsa-ca", path=True),
    Option("log", "text", None, "Append a log of the run to this file (for cron).",
           _CLI_AND_CONFIG, flag="--log", path=True),
    Option("keep_days", "number", None,
           "After the run, delete result files older than N days from --out.", _CLI_AND_CONFIG,
           flag="--keep-days", low=0, high=100 * 366, above_low=True, unit="days"),
    Option("quiet", "boolean", False, "Print only the result file's path; no progress.",
           _CLI_AND_CONFIG, flag="--quiet", short="-q"),
    Option("allow_large", "boolean", False,
           "Run even when the target lists add up to more than 65,536 probes (a huge range with "
           "`sample: all`, say); without it such a run is refused before any probe.",
           _CLI_AND_CONFIG, flag="--allow-large"),
)
# fmt: on
OPTIONS: dict[str, Option] = {option.name: option for option in OPTION_LIST}


def names(source: str) -> tuple[str, ...]:
    """The options that may be set from `source` (CLI, CONFIG or LIST), in table order."""
    return tuple(option.name for option in OPTION_LIST if source in option.sources)


def default(name: str) -> Any:
    value = OPTIONS[name].default
    return list(value) if isinstance(value, list) else value


@dataclass(frozen=True)
class Origin:
    """Where a value came from; `key` is the key as written (the config file accepts dashes)."""

    source: str
    filename: str | None = None
    line: int | None = None
    key: str | None = None

    @classmethod
    def cli(cls) -> Origin:
        return cls(CLI)

    @classmethod
    def config(cls, filename: str, line: int | None = None, key: str | None = None) -> Origin:
        return cls(CONFIG, filename, line, key)

    @classmethod
    def target_list(cls, filename: str, line: int | None = None, key: str | None = None) -> Origin:
        return cls(LIST, filename, line, key)

    @property
    def where(self) -> str | None:
        """`file:line`, `file`, or None for the command line."""
        if self.filename is None:
            return None
        return self.filename if self.line is None else f"{self.filename}:{self.line}"

    def field_name(self, name: str) -> str:
        """How the option is named at this origin: `--timeout`, `timeout`, `settings.timeout`."""
        option = OPTIONS.get(name)
        if self.source == CLI:
            return option.flag if option is not None and option.flag else name
        written = self.key or name
        return f"settings.{written}" if self.source == LIST else written


class OptionError(ValueError):
    """A bad option value: `str(e)` is `file:line: field: message` or `--flag: message`."""

    def __init__(self, origin: Origin, field: str, message: str):
        self.origin = origin
        self.field = field
        self.message = message
        where = origin.where
        super().__init__(f"{where}: {field}: {message}" if where else f"{field}: {message}")


def shown(value: object) -> str:
    """A value as messages show it: `"soon"`, `2.5`, `true`, `nothing`, `a mapping`."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(shown(item) for item in value) + "]"
    return repr(value)


class _Invalid(Exception):
    """Raised by a kind's check; `check` turns it into an OptionError naming the origin."""


def _number(option: Option, value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _Invalid
    low = -math.inf if option.low is None else option.low
    high = math.inf if option.high is None else option.high
    if not (low < value if option.above_low else low <= value) or not value <= high:
        raise _Invalid
    return value


def _integer(option: Option, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _Invalid
    return int(_number(option, value))


def _boolean(option: Option, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Invalid
    return value


def _text(option: Option, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _Invalid
    return value


def _url(option: Option, value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(
        r"(?i)https?://[^\s/?#]+(?:[/?#]\S*)?", value
    ):
        raise _Invalid
    return value


def _text_list(option: Option, value: Any) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items:
        raise _Invalid
    return [_text(option, item) for item in items]


def _asn(option: Option, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise _Invalid
    match = re.fullmatch(r"(?i)(?:AS)?(\d{1,10})", str(value).strip())
    if not match or int(match.group(1)) > 2**32 - 1:
        raise _Invalid
    return f"AS{int(match.group(1))}"


def _country(option: Option, value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z]{2}", value.strip()):
        raise _Invalid
    return value.strip().upper()


def _vantage(option: Option, value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[\w.-]{1,64}", value):
        raise _Invalid
    return value


_KINDS: dict[str, tuple[Callable[[Option, Any], Any], str]] = {
    "number": (_number, "a number"),
    "integer": (_integer, "a whole number"),
    "boolean": (_boolean, "true or false"),
    "text": (_text, "a non-empty string"),
    "text_list": (_text_list, "a string or a non-empty list of strings"),
    "url": (_url, "an http:// or https:// URL"),
    "asn": (_asn, "an AS number like AS7552 or 7552"),
    "country": (_country, "a two-letter country code like VN"),
    "vantage": (_vantage, "1-64 letters, digits, '.', '-' or '_'"),
}


def check(name: str, value: Any, origin: Origin) -> Any:
    """The normalised `value` of option `name`, or OptionError naming `origin`."""
    option = OPTIONS.get(name)
    if option is None:
        raise OptionError(origin, origin.field_name(name), "unknown option")
    if origin.source not in option.sources:
        places = " or ".join(_PLACES[s] for s in (CLI, CONFIG, LIST) if s in option.sources)
        raise OptionError(
            origin,
            origin.field_name(name),
            f"cannot be set {_PLACES[origin.source]} (only {places})",
        )
    validate = _KINDS[option.kind][0]
    try:
        return validate(option, value)
    except _Invalid:
        message = f"expected {option.expected()}, got {shown(value)}"
        raise OptionError(origin, origin.field_name(name), message) from None


@dataclass(frozen=True)
class Given:
    """A checked value and where it came from."""

    value: Any
    origin: Origin


def merge(*layers: Mapping[str, Given]) -> dict[str, Given]:
    """One {option: Given}; a later layer's value replaces an earlier one's."""
    merged: dict[str, Given] = {}
    for layer in layers:
        merged.update(layer)
    return merged


def values(given: Mapping[str, Given]) -> dict[str, Any]:
    return {name: item.value for name, item in given.items()}


@dataclass
class RunOptions:
    """Everything a run needs besides the target lists. Defaults come from `OPTIONS`."""

    out_dir: Path = field(default_factory=lambda: Path(default("out")))
    resolvers: list[str] = field(default_factory=lambda: default("resolvers"))
    control_resolvers: list[str] | None = default(
        "control_resolvers"
    )  # None: the lists', else defaults
    ca_bundle: str | None = default("ca_bundle")
    timeout: float = default("timeout")
    concurrency: int = default("concurrency")
    repeat: int = default("repeat")
    deadline: float = default("deadline")
    udp_wait: float = default("udp_wait")
    max_addresses_per_domain: int = default("max_addresses_per_domain")
    confirm: int = default("confirm")
    confirm_spacing: float = default("confirm_spacing")
    control_interval: float = default("control_interval")
    residual_pause: float = default("residual_pause")
    http_body_limit: int = default("http_body_limit")  # issue 13
    bodies: bool = default("bodies")  # False: --no-bodies (no HTTP body text stored)
    throughput_bytes: int = default("throughput_bytes")
    throughput_seconds: float = default("throughput_seconds")
    vantage: str = default("vantage")
    asn: str | None = default("asn")
    cc: str | None = default("cc")
    checkpoint_every: int = default("checkpoint_every")
    checkpoint_seconds: float = default("checkpoint_seconds")
    resolv_conf: str = "/etc/resolv.conf"  # not an option: tests point it at a fixture


def run_options(settings: Mapping[str, Any]) -> RunOptions:
    """RunOptions from {option: checked value}; options that are not RunOptions fields are ignored."""
    options = RunOptions()
    for name, value in settings.items():
        option = OPTIONS.get(name)
        if option is not None and option.run_field is not None and value is not None:
            setattr(options, option.run_field, list(value) if isinstance(value, list) else value)
    options.out_dir = Path(options.out_dir)
    return options
