"""Text for running netprobe on a schedule: a crontab line or a systemd service + timer pair.

Rules:
- Pure: functions build text from arguments; nothing is installed or written (the CLI prints).
- Commands use absolute paths (cron and systemd do not share the user's PATH or working folder).
- No `flock` wrapper: `netprobe run` takes its own lock and exits 75 if a run is still going.
- Nothing may fail before netprobe starts on a fresh set-up whose folders do not exist yet: the
  crontab line runs `mkdir -p <log folder> &&` before the command whose output it appends to the
  log (the shell opens that file before netprobe runs), and the systemd service leaves output to
  the journal (systemd opens `append:` files before any command and creates no folders);
  `netprobe run` creates `--out` and the `--log` file's folder itself.
- Runs are spread out: a random minute offset (cron) or `RandomizedDelaySec=` (systemd), so many
  volunteers do not probe at the same second.
"""

from __future__ import annotations

import posixpath
import random
import shlex
from dataclasses import dataclass

# Supported intervals (minutes). Cron can only express intervals that divide an hour or a day evenly.
EVERY_CHOICES: dict[str, int] = {"15m": 15, "30m": 30, "1h": 60, "2h": 120, "6h": 360, "1d": 1440}


@dataclass(frozen=True)
class Every:
    text: str
    minutes: int


def parse_every(text: str) -> Every:
    """Parse `--every` (15m, 30m, 1h, 2h, 6h, 1d); raises ValueError naming the allowed values."""
    key = text.strip().lower()
    aliases = {"60m": "1h", "120m": "2h", "360m": "6h", "24h": "1d", "1440m": "1d"}
    key = aliases.get(key, key)
    if key not in EVERY_CHOICES:
        allowed = ", ".join(EVERY_CHOICES)
        raise ValueError(f"--every {text!r} is not supported; use one of: {allowed}")
    return Every(key, EVERY_CHOICES[key])


def run_command(
    program: list[str], *, config: str | None, out: str | None, log: str | None = None
) -> list[str]:
    """The `netprobe run` argument vector a scheduler should execute (`program` = absolute argv)."""
    argv = [*program, "run", "--quiet"]
    if config:
        argv += ["--config", config]
    if out:
        argv += ["--out", out]
    if log:
        argv += ["--log", log]
    return argv


def _cron_escape(text: str) -> str:
    # In a crontab command an unescaped % ends the command and starts stdin.
    return text.replace("%", r"\%")


def cron_schedule(every: Every, rng: random.Random) -> str:
    """The five cron time fields for `every`, offset by a random minute (and hour for >1h)."""
    minutes = every.minutes
    if minutes < 60:
        first = rng.randrange(minutes)
        return ",".join(str(m) for m in range(first, 60, minutes)) + " * * * *"
    minute = rng.randrange(60)
    hours = minutes // 60
    if hours == 1:
        return f"{minute} * * * *"
    if hours < 24:
        first_hour = rng.randrange(hours)
        return f"{minute} {first_hour}-23/{hours} * * *"
    return f"{minute} {rng.randrange(24)} * * *"


def crontab_line(every: Every, argv: list[str], log: str, rng: random.Random) -> str:
    """One crontab line: schedule, `mkdir -p` of the log's folder, the command, stdout+stderr
    appended to `log` (which catches what netprobe cannot log itself: a crash, a bad config)."""

    def quoted(arg: str) -> str:
        return _cron_escape(shlex.quote(arg))

    folder = posixpath.dirname(log) or "."
    command = " ".join(quoted(arg) for arg in argv)
    return (
        f"{cron_schedule(every, rng)} mkdir -p {quoted(folder)} && {command} >>{quoted(log)} 2>&1"
    )


def systemd_on_calendar(every: Every) -> str:
    return {
        15: "*:0/15",
        30: "*:0/30",
        60: "hourly",
        120: "*-*-* 0/2:00:00",
        360: "*-*-* 0/6:00:00",
        1440: "daily",
    }[every.minutes]


def randomized_delay_seconds(every: Every) -> int:
    """Spread start times over a quarter of the interval (at most 1 h)."""
    return min(every.minutes * 60 // 4, 3600)


def systemd_units(every: Every, argv: list[str], *, user: str | None = None) -> dict[str, str]:
    """`netprobe.service` and `netprobe.timer` file contents (output to the journal; `argv`
    carries `--log`, which netprobe opens itself)."""
    exec_start = " ".join(shlex.quote(arg) for arg in argv)
    user_line = f"User={user}\n" if user else ""
    service = (
        "[Unit]\n"
        "Description=netprobe reachability measurement run\n"
        "Wants=network-online.target\n"
        "After=network-online.target\n"
        "\n"
        "[Service]\n"
        "Type=oneshot\n"
        f"{user_line}"
        # The user's home, as under cron: it exists, where a results folder may not yet.
        "WorkingDirectory=~\n"
        f"ExecStart={exec_start}\n"
        # Exit 75 means the previous run still holds the lock: not a failure worth an alert.
        "SuccessExitStatus=75\n"
    )
    timer = (
        "[Unit]\n"
        f"Description=Run netprobe every {every.text}\n"
        "\n"
        "[Timer]\n"
        f"OnCalendar={systemd_on_calendar(every)}\n"
        f"RandomizedDelaySec={randomized_delay_seconds(every)}\n"
        "Persistent=true\n"
        "AccuracySec=1s\n"
        "\n"
        "[Install]\n"
        "WantedBy=timers.target\n"
    )
    return {"netprobe.service": service, "netprobe.timer": timer}


def cron_instructions(line: str) -> str:
    return (
        "To install: run `crontab -e` and add the line above, or:\n"
        f"  (crontab -l 2>/dev/null; echo {shlex.quote(line)}) | crontab -\n"
        "Check it with `crontab -l`; each run creates the log's folder if missing, appends to the "
        "log file and exits 75 if the previous run is still going."
    )


def systemd_instructions(system_wide: bool) -> str:
    if system_wide:
        folder, ctl = "/etc/systemd/system", "systemctl"
    else:
        folder, ctl = "~/.config/systemd/user", "systemctl --user"
    note = (
        "" if system_wide else "\nTo keep user timers running after logout: loginctl enable-linger"
    )
    return (
        f"To install: save the two files above in {folder}/, then run\n"
        f"  {ctl} daemon-reload && {ctl} enable --now netprobe.timer\n"
        f"Check it with `{ctl} list-timers netprobe.timer` and `journalctl"
        f"{'' if system_wide else ' --user'} -u netprobe.service`.{note}"
    )
