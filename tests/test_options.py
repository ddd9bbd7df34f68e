"""One option table for every source: each option x each source gives the same verdict.

A value is tried on the command line (`netprobe run` itself, in-process), in a config file and
in a target list's `settings:`, wherever the table says the option may be set. Valid values must
come out the same (normalised) everywhere; invalid ones must be refused everywhere, by an error
that names where the value came from: `--timeout: ...`, `config.yaml:4: timeout: ...`,
`list.yaml:5: settings.timeout: ...`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from netprobe.cli import app
from netprobe.config import ConfigError, parse_config
from netprobe.options import (
    CLI,
    CONFIG,
    LIST,
    OPTIONS,
    OptionError,
    Origin,
    RunOptions,
    check,
    names,
)
from netprobe.run import prepare
from netprobe.targets.lists import TargetError, parse_targets

SOURCES = (CLI, CONFIG, LIST)


@dataclass(frozen=True)
class Case:
    name: str
    yaml: str  # the value as written in YAML
    valid: bool
    cli: str | None = None  # the value as typed after the flag, when it differs from `yaml`
    value: Any = None  # the normalised value, when it differs from the YAML value
    only: tuple[str, ...] = SOURCES  # sources that can spell this value at all

    def __str__(self) -> str:
        return f"{self.name}={self.yaml}:{'ok' if self.valid else 'bad'}"


YAML_ONLY = (CONFIG, LIST)
CASES = [
    Case("timeout", "5", True),
    Case("timeout", "0.05", True),
    Case("timeout", "600", True),
    Case("timeout", "0", False),
    Case("timeout", "601", False),
    Case("timeout", "-1", False),
    Case("timeout", ".inf", False, cli="inf"),
    Case("timeout", "soon", False),
    Case("concurrency", "1", True),
    Case("concurrency", "10000", True),
    Case("concurrency", "0", False),
    Case("concurrency", "100000000", False),
    Case("concurrency", "2.5", False),
    Case("repeat", "100", True),
    Case("repeat", "101", False),
    Case("repeat", "true", False, only=YAML_ONLY),
    Case("deadline", "1", True),
    Case("deadline", "604800", True),
    Case("deadline", "0.5", False),
    Case("deadline", "604801", False),
    # udp_wait 0 means "do not wait for late replies", wherever it is written.
    Case("udp_wait", "0", True),
    Case("udp_wait", "10", True),
    Case("udp_wait", "-0.1", False),
    Case("udp_wait", "10.5", False),
    Case("udp_wait", ".nan", False, cli="nan"),
    # confirm 0 turns confirmation re-probes off; residual_pause 0 turns the `after` probe off.
    Case("confirm", "0", True),
    Case("confirm", "10", True),
    Case("confirm", "11", False),
    Case("confirm", "-1", False),
    Case("confirm", "1.5", False),
    Case("confirm_spacing", "0", True),
    Case("confirm_spacing", "0.25", True),
    Case("confirm_spacing", "-0.5", False),
    Case("confirm_spacing", "601", False),
    Case("control_interval", "1", True),
    Case("control_interval", "120", True),
    Case("control_interval", "0", False),
    Case("control_interval", "604801", False),
    Case("residual_pause", "0", True),
    Case("residual_pause", "3", True),
    Case("residual_pause", "-1", False),
    Case("residual_pause", "601", False),
    Case("http_body_limit", "0", True),
    Case("http_body_limit", "4096", True),
    Case("http_body_limit", "-1", False),
    Case("http_body_limit", "65537", False),
    Case("http_body_limit", "1.5", False),
    Case("throughput_bytes", "1048576", True),
    Case("throughput_bytes", "1023", False),
    Case("throughput_bytes", "1.5", False),
    Case("throughput_seconds", "1", True),
    Case("throughput_seconds", "0.9", False),
    Case("throughput_seconds", "601", False),
    Case("max_addresses_per_domain", "1", True),
    Case("max_addresses_per_domain", "64", True),
    Case("max_addresses_per_domain", "0", False),
    Case("max_addresses_per_domain", "65", False),
    Case("vantage", "hanoi-vnpt-1", True),
    Case("vantage", "hanoi vnpt", False, cli="hanoi vnpt"),
    Case("vantage", "x" * 65, False),
    Case("asn", "AS7552", True),
    Case("asn", "7552", True, value="AS7552"),
    Case("asn", "as007552", True, value="AS7552"),
    Case("asn", "VNPT", False),
    Case("asn", "AS99999999999", False),
    Case("cc", "VN", True),
    Case("cc", "vn", True, value="VN"),
    Case("cc", "VNM", False),
    Case("out", "results", True),
    Case("out", "[a, b]", False, only=YAML_ONLY),
    Case("resolvers", "system", True, value=["system"]),
    Case("resolvers", "[]", False, only=YAML_ONLY),
    Case(
        "control_resolvers", "https://1.1.1.1/dns-query", True, value=["https://1.1.1.1/dns-query"]
    ),
    Case("control_resolvers", "{a: 1}", False, only=YAML_ONLY),
    Case("ca_bundle", "[ca.pem]", False, only=YAML_ONLY),
    Case("key", "'  '", False, only=YAML_ONLY),
    Case("sign", "false", True, cli="", value=False),
    Case("sign", "'yes please'", False, only=YAML_ONLY),
    Case("quiet", "true", True, cli="", value=True),
    Case("quiet", "1", False, only=YAML_ONLY),
    Case("bodies", "false", True, cli="", value=False),
    Case("bodies", "'no'", False, only=YAML_ONLY),
    Case("allow_large", "true", True, cli="", value=True),
    Case("allow_large", "1", False, only=YAML_ONLY),
    Case("checkpoint_every", "10000000", True),
    Case("checkpoint_every", "0", False),
    Case("checkpoint_seconds", "0.5", True),
    Case("checkpoint_seconds", "0", False),
    Case("checkpoint_seconds", "86401", False),
    Case("log", "[]", False, only=YAML_ONLY),
    Case("tsa", "http://127.0.0.1:8318/tsa", True),
    Case("tsa", "ftp://tsa.example/", False),
    Case("tsa", "'http:// x'", False, cli="http:// x"),
    Case("tsa_ca", "[ca.pem]", False, only=YAML_ONLY),
    Case("keep_days", "0.5", True),
    Case("keep_days", "0", False),
    Case("keep_days", "-1", False),
    Case("keep_days", "40000", False),
    Case("targets", "[]", False, only=YAML_ONLY),
]


def yaml_value(text: str) -> Any:
    import yaml

    return yaml.safe_load(text)


def try_cli(case: Case, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[bool, Any, str]:
    """Run `netprobe run FLAG VALUE` up to the point where the options are merged."""
    seen: dict[str, Any] = {}

    def capture(settings: Any, target_lists: Any) -> Any:
        seen.update(settings)
        raise ValueError("stopped by the test")

    monkeypatch.setattr(prepare, "load_target_lists", lambda paths: [])
    monkeypatch.setattr(prepare, "run_options", capture)
    option = OPTIONS[case.name]
    text = case.yaml if case.cli is None else case.cli
    argv = ["run", option.flag] + ([text] if text != "" else [])
    env = {"NETPROBE_CONFIG": None, "XDG_CONFIG_HOME": str(tmp_path / "no-config")}
    result = CliRunner().invoke(app, argv, env=env)
    assert result.exit_code == 2, result.output
    if "stopped by the test" in result.stderr:
        return True, seen[case.name].value, ""
    return False, None, result.stderr


def try_config(case: Case) -> tuple[bool, Any, str]:
    text = f"# netprobe\n# config\n\n{case.name}: {case.yaml}\n"
    try:
        return True, parse_config(text, "config.yaml")[case.name], ""
    except ConfigError as exc:
        return False, None, str(exc)


def try_list(case: Case) -> tuple[bool, Any, str]:
    text = (
        f"name: l\nsettings:\n  ports: [443]\n  # run options\n  {case.name}: {case.yaml}\n"
        "groups:\n  web:\n    domains: [example.com]\n"
    )
    try:
        return True, parse_targets(text, "list.yaml").settings[case.name], ""
    except TargetError as exc:
        return False, None, str(exc)


# Each case in every source that accepts the option and can spell the value.
CASE_SOURCES = [
    pytest.param(case, source, id=f"{source}-{case}")
    for case in CASES
    for source in SOURCES
    if source in OPTIONS[case.name].sources and source in case.only
]


@pytest.mark.parametrize(("case", "source"), CASE_SOURCES)
def test_same_verdict_and_origin_everywhere(
    case: Case, source: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    option = OPTIONS[case.name]
    if source == CLI:
        valid, value, message = try_cli(case, monkeypatch, tmp_path)
    elif source == CONFIG:
        valid, value, message = try_config(case)
    else:
        valid, value, message = try_list(case)
    assert valid is case.valid, message
    if valid:
        expected = yaml_value(case.yaml) if case.value is None else case.value
        assert value == expected
        return
    if source == CLI:
        # Our own check names the flag first; typer's type errors ("soon") name it too.
        assert f"netprobe: error: {option.flag}: expected" in message or option.flag in message
    elif source == CONFIG:
        assert message.startswith(f"config.yaml:4: {case.name}: expected "), message
    else:
        assert message.startswith(f"list.yaml:5: settings.{case.name}: expected "), message


def test_the_cases_cover_every_option_valid_and_invalid() -> None:
    for name in OPTIONS:
        verdicts = {case.valid for case in CASES if case.name == name}
        assert False in verdicts, f"no invalid value tried for {name}"


@pytest.mark.parametrize("name", list(OPTIONS))
def test_options_are_refused_where_the_table_does_not_allow_them(name: str) -> None:
    option = OPTIONS[name]
    if CONFIG not in option.sources:
        with pytest.raises(ConfigError, match=f"^c.yaml:1: {name}: unknown option"):
            parse_config(f"{name}: 1\n", "c.yaml")
    if LIST not in option.sources:
        text = f"settings:\n  {name}: 1\ngroups:\n  g:\n    domains: [example.com]\n"
        with pytest.raises(TargetError, match=f"^l.yaml:2: settings.{name}: unknown key"):
            parse_targets(text, "l.yaml")
    for source in set(SOURCES) - option.sources:
        with pytest.raises(OptionError, match="cannot be set"):
            check(name, option.default, Origin(source, "f.yaml", 1))


def run_command() -> Any:
    return typer.main.get_command(app).commands["run"]


def test_cli_flags_are_the_table_with_its_defaults_and_help() -> None:
    params = {
        max(p.opts, key=len): p for p in run_command().params if p.param_type_name == "option"
    }
    for name in names(CLI):
        option = OPTIONS[name]
        if name == "targets":
            continue  # the positional TARGET_FILE...
        param = params[option.flag]
        assert option.help in param.help
        if option.short:
            assert option.short in param.opts
        shown = option.shown_default()
        if shown is not None and option.default is not None:
            assert str(param.default) == str(option.default) or param.default == option.default
        elif shown is not None:
            assert f"[default: {shown}]" in param.help  # written out: the default is a rule
    table_flags = {OPTIONS[n].flag for n in names(CLI)}
    assert set(params) - table_flags == {"--config", "--format"}


def test_help_shows_the_table_defaults() -> None:
    result = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "250"})
    assert "[default: 5.0]" in result.stdout  # --timeout, as typer shows a float default
    assert "[default: 1800.0]" in result.stdout
    assert "[default: AS0]" in result.stdout


def test_run_options_defaults_come_from_the_table() -> None:
    defaults = RunOptions()
    by_field = {o.run_field: o for o in OPTIONS.values() if o.run_field}
    assert set(by_field) == {f.name for f in fields(RunOptions)} - {"resolv_conf"}
    for attribute, option in by_field.items():
        value = getattr(defaults, attribute)
        assert value == (Path(option.default) if attribute == "out_dir" else option.default)


def test_old_import_path_still_works() -> None:
    from netprobe.run.executor import RunOptions as FromExecutor

    assert FromExecutor is RunOptions


def test_precedence_flags_over_config_over_lists(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("timeout: 3\nudp_wait: 0\n")
    target_list = parse_targets(
        "settings: {timeout: 2, repeat: 4, udp_wait: 1}\ngroups:\n  g:\n    domains: [a.example]\n",
        "l.yaml",
    )
    settings = prepare.merged_settings({"timeout": 9.0, "asn": "7552"}, config)
    options = prepare.run_options(settings, [target_list])
    assert (options.timeout, options.repeat, options.udp_wait) == (9.0, 4, 0)
    assert options.asn == "AS7552" and options.cc == "ZZ"


def test_a_missing_ca_bundle_names_where_it_was_set(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("vantage: v\nca_bundle: missing.pem\n")
    settings = prepare.merged_settings({}, config)
    with pytest.raises(OptionError, match=rf"^{config}:2: ca_bundle: no such file: "):
        prepare.run_options(settings, [])
    settings = prepare.merged_settings({"ca_bundle": "/nonexistent.pem"}, config)
    with pytest.raises(OptionError, match="^--ca-bundle: no such file: /nonexistent.pem"):
        prepare.run_options(settings, [])
