"""Schedule text: crontab lines and systemd units (pure), plus the `schedule` command."""

from __future__ import annotations

import random
import re
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from netprobe.cli import app
from netprobe.run.schedule import (
    cron_schedule,
    crontab_line,
    parse_every,
    run_command,
    systemd_units,
)


@pytest.mark.parametrize(
    ("text", "minutes"),
    [("15m", 15), ("30m", 30), ("1h", 60), ("60m", 60), ("2h", 120), ("6h", 360), ("1d", 1440),
     ("24h", 1440), (" 1H ", 60)],
)  # fmt: skip
def test_parse_every_accepts_supported_intervals(text, minutes):
    assert parse_every(text).minutes == minutes


@pytest.mark.parametrize("text", ["7m", "1w", "", "hourly", "-1h", "90m"])
def test_parse_every_rejects_others_naming_the_choices(text):
    with pytest.raises(ValueError, match="15m, 30m, 1h, 2h, 6h, 1d"):
        parse_every(text)


@pytest.mark.parametrize(
    ("every", "pattern"),
    [
        ("15m", r"(\d+),(\d+),(\d+),(\d+) \* \* \* \*"),
        ("30m", r"(\d+),(\d+) \* \* \* \*"),
        ("1h", r"(\d+) \* \* \* \*"),
        ("2h", r"(\d+) [01]-23/2 \* \* \*"),
        ("6h", r"(\d+) [0-5]-23/6 \* \* \*"),
        ("1d", r"(\d+) (\d+) \* \* \*"),
    ],
)
def test_cron_schedule_fields(every, pattern):
    for seed in range(20):
        fields = cron_schedule(parse_every(every), random.Random(seed))
        match = re.fullmatch(pattern, fields)
        assert match, fields
        minutes = [int(m) for m in match.groups()[: 4 if every == "15m" else 1]]
        assert all(0 <= m < 60 for m in minutes)
        if every in ("15m", "30m"):
            step = int(every[:-1])
            assert all(b - a == step for a, b in zip(minutes, minutes[1:], strict=False))


def test_random_offset_varies_between_installs():
    offsets = {cron_schedule(parse_every("1h"), random.Random(seed)) for seed in range(30)}
    assert len(offsets) > 5


def test_crontab_line_quotes_paths_and_escapes_percent():
    argv = run_command(["/usr/bin/python3", "-m", "netprobe"], config="/home/v/my conf%.yaml",
                       out=None, log="/var/log/np.log")  # fmt: skip
    line = crontab_line(parse_every("1h"), argv, "/var/log/np 1.log", random.Random(1))
    assert "/usr/bin/python3 -m netprobe run --quiet --config '/home/v/my conf\\%.yaml'" in line
    assert line.endswith(">>'/var/log/np 1.log' 2>&1")
    assert "flock" not in line  # netprobe takes its own lock
    # The shell opens the log before netprobe runs: its folder is made first.
    assert re.match(r"\d+ \* \* \* \* mkdir -p /var/log && /usr/bin/python3 ", line), line
    line = crontab_line(parse_every("1h"), argv, "/srv/50% np/np.log", random.Random(1))
    assert " mkdir -p '/srv/50\\% np' && " in line


def test_crontab_line_works_in_sh_on_a_fresh_setup(tmp_path):
    """The line's command, run by sh as cron does, creates the missing log folder and logs."""
    log = tmp_path / "fresh" / "logs" / "np.log"
    line = crontab_line(parse_every("1h"), ["echo", "ran"], str(log), random.Random(1))
    command = line.split(" ", 5)[5]
    done = subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True, timeout=10)
    assert done.returncode == 0, done.stderr
    assert log.read_text() == "ran\n"


def test_systemd_units_have_timer_with_random_delay_and_persistent():
    argv = ["/usr/bin/python3", "-m", "netprobe", "run", "--quiet"]
    units = systemd_units(parse_every("1h"), argv)
    service, timer = units["netprobe.service"], units["netprobe.timer"]
    assert "ExecStart=/usr/bin/python3 -m netprobe run --quiet\n" in service
    assert "Type=oneshot" in service and "SuccessExitStatus=75" in service
    # systemd opens append: files and the working folder before any command and creates no
    # folder: nothing there may name a results folder that does not exist yet.
    assert "append:" not in service and "WorkingDirectory=~\n" in service
    assert "OnCalendar=hourly" in timer and "RandomizedDelaySec=900" in timer
    assert "Persistent=true" in timer and "WantedBy=timers.target" in timer


runner = CliRunner()


def test_schedule_command_prints_an_absolute_crontab_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["schedule", "--every", "1h", "--seed", "3"])
    assert result.exit_code == 0, result.output
    line = result.stdout.strip().splitlines()[0]
    assert re.match(r"\d+ \* \* \* \* ", line)
    assert (
        f"* mkdir -p {tmp_path}/results && {sys.executable} -m netprobe run --quiet --out "
        f"{tmp_path}/results" in line
    )
    assert f"--log {tmp_path}/results/netprobe.log >>{tmp_path}/results/netprobe.log 2>&1" in line
    assert not (tmp_path / "results").exists()  # installs and creates nothing


def test_schedule_command_uses_the_config_file_out_and_log(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("out: data\nlog: np.log\nvantage: hanoi-vnpt-1\n")
    result = runner.invoke(app, ["schedule", "--config", str(config), "--seed", "1"])
    assert result.exit_code == 0, result.output
    line = result.stdout.strip()
    assert f"--config {config}" in line and "--out" not in line
    assert line.endswith(f">>{tmp_path}/np.log 2>&1")
    assert f" mkdir -p {tmp_path} && " in line


def test_schedule_systemd_writes_units_only_when_asked(tmp_path):
    result = runner.invoke(app, ["schedule", "--every", "6h", "--systemd", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "# ---- netprobe.timer ----" in result.stdout
    assert "RandomizedDelaySec=3600" in result.stdout
    assert list(tmp_path.iterdir()) == []
    units = tmp_path / "units"
    result = runner.invoke(app, ["schedule", "--systemd", "--write", str(units)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in units.iterdir()) == ["netprobe.service", "netprobe.timer"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--every", "7m"], "--every '7m' is not supported"),
        (["--user", "np"], "only apply with --systemd"),
        (["--config", "/nonexistent/netprobe.yaml"], "config file not found"),
    ],
)
def test_schedule_bad_input_exits_2(args, message):
    result = runner.invoke(app, ["schedule", *args])
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output
