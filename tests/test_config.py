"""Config file parsing (pure), default location, loading and merging with flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from netprobe.config import (
    ConfigError,
    default_config_path,
    load_config,
    merge_options,
    parse_config,
)

FULL = """\
targets: [targets/telegram.yaml, /etc/netprobe/extra.yaml]
out: results
resolvers: system
control_resolvers: [https://1.1.1.1/dns-query]
timeout: 3
concurrency: 32
repeat: 2
vantage: hanoi-vnpt-1
asn: AS45899
cc: VN
key: ~/.netprobe/key
sign: true
log: netprobe.log
keep-days: 90
quiet: true
deadline: 600
"""


def test_parse_full_config():
    config = parse_config(FULL, "c.yaml")
    assert config["targets"] == ["targets/telegram.yaml", "/etc/netprobe/extra.yaml"]
    assert config["resolvers"] == ["system"]  # a single string becomes a list
    assert config["timeout"] == 3 and config["concurrency"] == 32
    assert config["keep_days"] == 90.0  # dashes are accepted for option names
    assert config["sign"] is True and config["asn"] == "AS45899"


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n"])
def test_empty_config_is_no_options(text):
    assert parse_config(text, "c.yaml") == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("vantage: a\ncolour: red\n", "c.yaml:2: colour: unknown option"),
        ("timeoutt: 3\n", 'c.yaml:1: timeoutt: unknown option; did you mean "timeout"?'),
        ("max_addresses_per_domain: 3\n", "c.yaml:1: max_addresses_per_domain: unknown option"),
        (
            "timeout: -1\n",
            "c.yaml:1: timeout: expected a number of seconds from 0.05 to 600, got -1",
        ),
        (
            "timeout: fast\n",
            'c.yaml:1: timeout: expected a number of seconds from 0.05 to 600, got "fast"',
        ),
        (
            "timeout: .inf\n",
            "c.yaml:1: timeout: expected a number of seconds from 0.05 to 600, got inf",
        ),
        (
            "concurrency: 2.5\n",
            "c.yaml:1: concurrency: expected a whole number from 1 to 10000, got 2.5",
        ),
        (
            "concurrency: 100000000\n",
            "c.yaml:1: concurrency: expected a whole number from 1 to 10000",
        ),
        ("repeat: true\n", "c.yaml:1: repeat: expected a whole number from 1 to 100, got true"),
        ("udp_wait: -0.5\n", "c.yaml:1: udp_wait: expected a number of seconds from 0 to 10"),
        ("keep_days: 0\n", "c.yaml:1: keep_days: expected a number of days above 0"),
        ("sign: 'yes please'\n", "c.yaml:1: sign: expected true or false"),
        ("asn: true\n", "c.yaml:1: asn: expected an AS number like AS7552 or 7552, got true"),
        ("asn: VNPT\n", 'c.yaml:1: asn: expected an AS number like AS7552 or 7552, got "VNPT"'),
        ("cc: VNM\n", "c.yaml:1: cc: expected a two-letter country code"),
        ("vantage: hanoi vnpt\n", "c.yaml:1: vantage: expected 1-64 letters, digits"),
        ("targets: []\n", "c.yaml:1: targets: expected a string or a non-empty list"),
        ("out: a\nout: b\n", "c.yaml:2: out: duplicate option (first at line 1)"),
        ("keep_days: 1\nkeep-days: 2\n", "c.yaml:2: keep-days: duplicate option (first at line 1)"),
        ("- out\n", "c.yaml:1: the config must be a mapping"),
        ("out: [a\n", "c.yaml:2: invalid YAML"),
    ],
)
def test_bad_configs_name_file_line_and_key(text, message):
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "c.yaml")
    assert str(caught.value).startswith(message)


def test_fixed_inconsistencies_are_accepted_and_normalised_like_the_flags():
    config = parse_config("udp_wait: 0\nasn: 7552\ncc: vn\n", "c.yaml")
    assert config == {"udp_wait": 0, "asn": "AS7552", "cc": "VN"}
    assert parse_config("asn: as7552\n", "c.yaml") == {"asn": "AS7552"}


def test_errors_carry_file_line_and_key_attributes():
    with pytest.raises(ConfigError) as caught:
        parse_config("vantage: a\n\nkeep-days: -3\n", "c.yaml")
    error = caught.value
    assert (error.filename, error.line, error.field) == ("c.yaml", 3, "keep-days")
    assert isinstance(error, ValueError)


def test_merge_flags_override_config_only_when_given():
    config = {"timeout": 3.0, "vantage": "from-config", "quiet": True}
    flags = {"timeout": 10.0, "vantage": None, "quiet": None, "repeat": 2}
    assert merge_options(config, flags) == {
        "timeout": 10.0,
        "vantage": "from-config",
        "quiet": True,
        "repeat": 2,
    }


def test_load_config_resolves_relative_paths_against_the_file(tmp_path):
    path = tmp_path / "conf" / "netprobe.yaml"
    path.parent.mkdir()
    path.write_text("out: results\nlog: /var/log/np.log\ntargets: [t.yaml]\nkey: ~/k\n")
    config = load_config(path)
    assert config["out"] == str(tmp_path / "conf" / "results")
    assert config["log"] == "/var/log/np.log"
    assert config["targets"] == [str(tmp_path / "conf" / "t.yaml")]
    assert config["key"] == str(Path("~/k").expanduser())


def test_default_path_order(tmp_path, monkeypatch):
    monkeypatch.delenv("NETPROBE_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert default_config_path() == tmp_path / "xdg" / "netprobe" / "config.yaml"
    monkeypatch.setenv("NETPROBE_CONFIG", str(tmp_path / "env.yaml"))
    assert default_config_path() == tmp_path / "env.yaml"


def test_missing_default_config_is_empty_but_missing_explicit_is_an_error(tmp_path, monkeypatch):
    monkeypatch.delenv("NETPROBE_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    if Path("/etc/netprobe/config.yaml").exists():
        pytest.skip("this machine has /etc/netprobe/config.yaml")
    assert load_config(None) == {}
    assert load_config(default_config_path()) == {}
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "absent.yaml")
    monkeypatch.setenv("NETPROBE_CONFIG", str(tmp_path / "absent-env.yaml"))
    with pytest.raises(ConfigError, match="absent-env.yaml: config file not found"):
        load_config(None)


def test_load_config_reports_the_real_file_name(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("vantage: x\ntimeout: 0\n")
    with pytest.raises(ConfigError, match=rf"^{path}:2: timeout: expected a number of seconds"):
        load_config(path)
