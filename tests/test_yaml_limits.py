"""Target lists and config files that would hang or blow up a naive reader (issue 12).

A FIFO given where a YAML file belongs must be refused at once ("not a regular file"), never
waited on; a "billion laughs" alias bomb (a few lines whose aliases expand to billions of nodes),
an alias loop and an alias chain nested past the limit are clear `file:line` errors, found
quickly. Every check runs the real command in a subprocess with a timeout, as a user would.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from netprobe.config import ConfigError, read_config_file
from netprobe.targets.lists import TargetError, load_targets, parse_targets
from netprobe.yamlfile import MAX_EXPANDED_NODES

ROOT = Path(__file__).resolve().parent.parent


def netprobe(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "NETPROBE_CONFIG"}
    env.update(XDG_CONFIG_HOME=str(tmp_path / "cfg"), XDG_DATA_HOME=str(tmp_path / "data"))
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "netprobe", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,  # a reader blocked on a FIFO would hit this
    )


def laughs(levels: int = 9, width: int = 9, head: str = "name: bomb\n") -> str:
    """The classic bomb: each anchor is a list of `width` aliases of the one before."""
    lines = [head.rstrip("\n"), 'l0: &l0 ["lol"]']
    for level in range(1, levels + 1):
        lines.append(f"l{level}: &l{level} [{', '.join([f'*l{level - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


def test_a_fifo_target_list_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "targets.yaml"
    os.mkfifo(fifo)
    with pytest.raises(TargetError, match="not a regular file: it is a FIFO") as info:
        load_targets(fifo)
    assert str(fifo) in str(info.value)
    for args in (("targets", "check", str(fifo)), ("run", str(fifo), "--no-sign")):
        done = netprobe(tmp_path, *args)
        assert done.returncode == 2, done.stderr
        assert "not a regular file: it is a FIFO" in done.stderr and "Traceback" not in done.stderr


def test_a_fifo_config_file_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "config.yaml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="not a regular file: it is a FIFO"):
        read_config_file(fifo)
    done = netprobe(tmp_path, "run", "--config", str(fifo), "--no-sign")
    assert done.returncode == 2, done.stderr
    assert f"{fifo}: not a regular file: it is a FIFO" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_billion_laughs_target_list_is_a_quick_clear_error(tmp_path: Path) -> None:
    text = laughs() + "groups:\n  web:\n    domains: [a.example]\n"  # 9**9 = 387 million nodes
    started = time.monotonic()
    with pytest.raises(TargetError, match="an alias bomb") as info:
        parse_targets(text, "bomb.yaml")
    assert time.monotonic() - started < 1.0
    assert info.value.line is not None and info.value.line <= 11
    path = tmp_path / "bomb.yaml"
    path.write_text(text)
    done = netprobe(tmp_path, "targets", "check", str(path))
    assert done.returncode == 2
    assert (
        f"more than {MAX_EXPANDED_NODES:,} nodes" in done.stderr and "Traceback" not in done.stderr
    )


def test_a_billion_laughs_config_file_is_a_quick_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(laughs(head="vantage: bomb\n"))
    started = time.monotonic()
    with pytest.raises(ConfigError, match="an alias bomb"):
        read_config_file(path)
    assert time.monotonic() - started < 1.0
    done = netprobe(tmp_path, "run", "--config", str(path), "--no-sign")
    assert done.returncode == 2 and "alias bomb" in done.stderr, done.stderr


def test_alias_loops_and_deep_alias_chains_are_errors_not_recursion() -> None:
    with pytest.raises(TargetError, match="an alias refers to a node that contains it"):
        parse_targets("name: loop\ngroups: &g\n  web: {domains: [*g]}\n", "loop.yaml")
    chain = ["name: deep", "a0: &a0 [1]"] + [f"a{i}: &a{i} [*a{i - 1}]" for i in range(1, 2000)]
    with pytest.raises(TargetError, match="levels deep"):
        parse_targets("\n".join(chain) + "\ngroups: {}\n", "deep.yaml")


def test_ordinary_aliases_still_work() -> None:
    text = (
        "name: reuse\nsettings: {ports: &p [443, 80]}\n"
        "groups:\n  web: {domains: [a.example], ports: *p}\n  cdn: {domains: [b.example], ports: *p}\n"
    )
    target_list = parse_targets(text, "reuse.yaml")
    assert target_list.counts()["domains"] == 2
