"""`netprobe targets show|check` through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from netprobe.cli import app

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "targets" / "example.yaml"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_show_bundled_list_as_json(runner: CliRunner) -> None:
    result = runner.invoke(app, ["targets", "show", "--format", "json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["name"] == "telegram"
    assert set(info["groups"]) == {"web", "dc", "ranges"}
    assert info["groups"]["dc"]["endpoints"] == 26  # 7 v4 DCs x 3 ports, 5 v6 DCs on 443
    # 14 target domains once, 4 control domains at the start and the end; A and AAAA each.
    assert info["counts"]["dns_queries_per_resolver"] == (14 + 4 * 2) * 2
    assert "telegram" in info["expected_ranges"]
    assert info["controls"]["resolvers"] == [
        "https://1.1.1.1/dns-query",
        "https://8.8.8.8/dns-query",
    ]


def test_show_table_lists_groups_ranges_controls_and_per_resolver_queries(
    runner: CliRunner,
) -> None:
    result = runner.invoke(app, ["targets", "show", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    for text in (
        "Groups",
        "netblock",
        "198.51.100.64/29",
        "Expected ranges",
        "example-cdn",
        "[2001:db8::53]:443",
        "dns queries per resolver",
    ):
        assert text in result.stdout, text


def test_show_json_range_details(runner: CliRunner) -> None:
    result = runner.invoke(app, ["targets", "show", str(EXAMPLE), "-f", "json"])
    ranges = json.loads(result.stdout)["groups"]["netblock"]["ranges_detail"]
    assert ranges[1] == {
        "cidr": "198.51.100.64/29",
        "sample": "all",
        "addresses": 6,
        "ports": [80, 443],
        "sni": None,
    }


def test_show_bad_file_exits_2_with_the_error_line(runner: CliRunner, tmp_path: Path) -> None:
    bad = write(tmp_path, "bad.yaml", "groups:\n  web:\n    domains: [example.com]\n    ports: x\n")
    result = runner.invoke(app, ["targets", "show", str(bad)])
    assert result.exit_code == 2
    assert f"{bad}:4: groups.web.ports: expected a list of integers 1-65535" in result.stderr
    assert "Traceback" not in result.output


def test_check_reports_every_file_and_exits_2_if_any_is_bad(
    runner: CliRunner, tmp_path: Path
) -> None:
    good = write(tmp_path, "good.yaml", "groups:\n  dc:\n    endpoints: [192.0.2.1:443]\n")
    bad = write(tmp_path, "bad.yaml", "groups:\n  dc:\n    endpoint: [192.0.2.1:443]\n")
    missing = tmp_path / "missing.yaml"
    result = runner.invoke(app, ["targets", "check", str(bad), str(good), str(missing)])
    assert result.exit_code == 2
    assert f"ok: {good} (1 targets)" in result.stdout
    assert f'{bad}:3: groups.dc.endpoint: unknown key; did you mean "endpoints"?' in result.stderr
    assert f"{missing}: no such file" in result.stderr


def test_check_shipped_lists_are_ok(runner: CliRunner) -> None:
    files = [str(REPO / "targets" / "telegram.yaml"), str(EXAMPLE)]
    result = runner.invoke(app, ["targets", "check", *files])
    assert result.exit_code == 0, result.output
    assert result.stdout.count("ok: ") == 2
    assert "(70 targets)" in result.stdout  # 14 names, 26 DC endpoints, 30 range samples


def test_help_has_examples(runner: CliRunner) -> None:
    for command in ("show", "check"):
        result = runner.invoke(app, ["targets", command, "--help"])
        assert result.exit_code == 0
        assert "Example:" in result.stdout


HUGE = "name: huge\ngroups:\n  all:\n    ranges:\n      - {cidr: 0.0.0.0/0, sample: all}\n"
OVERLAP = """\
name: overlap
groups:
  dc:
    endpoints: ["198.51.100.2:443"]
  block:
    ranges:
      - {cidr: 198.51.100.0/29, sample: all}
"""


def test_check_warns_about_a_huge_sweep_but_accepts_it(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["targets", "check", str(write(tmp_path, "huge.yaml", HUGE))])
    assert result.exit_code == 0, result.output
    assert "4294967294 targets" in result.stdout
    assert "4,294,967,294 probes, more than 65,536" in result.stderr
    assert "--allow-large" in result.stderr
    small = runner.invoke(app, ["targets", "check", str(EXAMPLE)])
    assert small.exit_code == 0 and "warning" not in small.stderr


def test_show_addresses_is_bounded_for_huge_ranges(runner: CliRunner, tmp_path: Path) -> None:
    path = str(write(tmp_path, "huge.yaml", HUGE))
    result = runner.invoke(app, ["targets", "show", path, "--addresses", "--format", "json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    sampled = info["groups"]["all"]["ranges_detail"][0]["sampled"]
    assert sampled["shown"][:3] == ["0.0.0.1", "0.0.0.2", "0.0.0.3"] and len(sampled["shown"]) == 32
    assert sampled["total"] == 2**32 - 2 and sampled["more"] == 2**32 - 2 - 32
    assert info["counts"]["probes"] > info["large_run_probes"] == 65_536
    table = runner.invoke(app, ["targets", "show", path, "--addresses"])
    assert "and 4,294,967,262 more (first 32 shown)" in table.stdout
    assert "needs --allow-large" in table.stdout
    plain = json.loads(runner.invoke(app, ["targets", "show", path, "--format", "json"]).stdout)
    assert "sampled" not in plain["groups"]["all"]["ranges_detail"][0]


def test_show_addresses_says_when_a_sample_is_an_explicit_endpoint(
    runner: CliRunner, tmp_path: Path
) -> None:
    path = str(write(tmp_path, "overlap.yaml", OVERLAP))
    result = runner.invoke(app, ["targets", "show", path, "--addresses"])
    assert result.exit_code == 0, result.output
    assert "198.51.100.1 198.51.100.2 198.51.100.3" in result.stdout
    assert "skipped: the sample 198.51.100.2:443 is also an explicit endpoint" in result.stdout
    info = json.loads(
        runner.invoke(app, ["targets", "show", path, "--addresses", "-f", "json"]).stdout
    )
    block = info["groups"]["block"]
    assert block["ranges_detail"][0]["sampled"]["skipped"] == ["198.51.100.2:443"]
    assert block["range_endpoints"] == 6 - 1 and block["ranges_detail"][0]["sampled"]["more"] == 0
