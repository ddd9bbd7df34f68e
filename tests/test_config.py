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
    assert config["timeout"] == 3.0 and config["concurrency"] == 32
    assert config["keep_days"] == 90.0  # dashes are accepted for option names
    assert config["sign"] is True and config["asn"] == "AS45899"


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n"])
def test_empty_config_is_no_options(text):
    assert parse_config(text, "c.yaml") == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("vantage: a\ncolour: red\n", "c.yaml:2: colour: unknown option"),
        ("timeout: -1\n", "c.yaml:1: timeout: expected a positive number, got -1"),
        ("timeout: fast\n", "c.yaml:1: timeout: expected a positive number"),
        ("concurrency: 2.5\n", "c.yaml:1: concurrency: expected a positive whole number"),
        ("repeat: true\n", "c.yaml:1: repeat: expected a positive whole number"),
        ("sign: 'yes please'\n", "c.yaml:1: sign: expected true or false"),
        ("asn: 45899\n", "c.yaml:1: asn: expected a non-empty string"),
        ("asn: VNPT\n", "c.yaml:1: asn: expected an AS number"),
        ("cc: vn\n", "c.yaml:1: cc: expected a two-letter upper-case country code"),
        ("targets: []\n", "c.yaml:1: targets: expected a string or a non-empty list"),
        ("out: a\nout: b\n", "c.yaml:2: out: given twice"),
        ("- out\n", "c.yaml:1: the config must be a mapping"),
        ("out: [a\n", "c.yaml:2: not valid YAML"),
    ],
)
def test_bad_configs_name_file_line_and_key(text, message):
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "c.yaml")
    assert str(caught.value).startswith(message)


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
    with pytest.raises(ConfigError, match=rf"^{path}:2: timeout: expected a positive number"):
        load_config(path)
