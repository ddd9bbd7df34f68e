"""`netprobe schedule`: print a crontab line or systemd units that run netprobe regularly.

Rules: a thin command over `netprobe.run.schedule` (pure text). It installs nothing: the text goes
to stdout, how to install it to stderr; only `--write` writes the two unit files, into the folder
given. Paths are made absolute (cron starts in $HOME). Exit codes: 0 ok, 2 bad usage.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from netprobe.cli.app import app
from netprobe.cli.common import EXIT_USAGE, default, err, fail


@app.command()
def schedule(
    every: str = typer.Option(
        "1h", "--every", metavar="INTERVAL", help="Interval: 15m, 30m, 1h, 2h, 6h or 1d."
    ),
    systemd: bool = typer.Option(
        False, "--systemd", help="Print a systemd service + timer pair instead of a crontab line."
    ),
    config: Path = typer.Option(
        None,
        "--config",
        metavar="FILE",
        help="Config file the scheduled run should use (made absolute)."
        + default("none: the run's own defaults"),
    ),
    out_dir: Path = typer.Option(
        None,
        "--out",
        metavar="DIR",
        help="Folder for result files." + default("the config's `out`, else ./results"),
    ),
    log: Path = typer.Option(
        None, "--log", metavar="FILE", help="Log file for the runs." + default("OUT/netprobe.log")
    ),
    user: str = typer.Option(
        None,
        "--user",
        metavar="USER",
        help="systemd only: run the service as this user." + default("the current user"),
    ),
    write_dir: Path = typer.Option(
        None,
        "--write",
        metavar="DIR",
        help="systemd only: also write the two unit files into this folder."
        + default("print them only"),
    ),
    seed: int = typer.Option(
        None, "--seed", hidden=True, help="Seed for the random offset (tests)."
    ),
) -> None:
    """Print a crontab line (or systemd units) that runs netprobe regularly.

    Nothing is installed: the text goes to stdout, how to install it goes to stderr.

    Example: netprobe schedule --every 1h --config ~/.config/netprobe/config.yaml
    """
    from netprobe.config import ConfigError, load_config
    from netprobe.run.schedule import (
        cron_instructions,
        crontab_line,
        parse_every,
        run_command,
        systemd_instructions,
        systemd_units,
    )

    try:
        interval = parse_every(every)
    except ValueError as exc:
        fail(str(exc))
    if not systemd and (user or write_dir):
        fail("--user and --write only apply with --systemd")
    settings: dict = {}
    if config is not None:
        config = config.expanduser().resolve()
        try:
            settings = load_config(config)
        except ConfigError as exc:
            fail(str(exc))
    results = out_dir.expanduser().resolve() if out_dir else None
    effective_out = results or Path(settings.get("out") or Path("results").resolve())
    log_path = str(log.expanduser().resolve()) if log else settings.get("log")
    log_path = log_path or str(effective_out / "netprobe.log")
    if results is None and "out" not in settings:
        results = effective_out  # cron starts in $HOME: never rely on a relative default
    argv = run_command(
        [sys.executable, "-m", "netprobe"],
        config=str(config) if config else None,
        out=str(results) if results else None,
        log=log_path,
    )
    import random  # here: `--help` does not need it

    rng = random.Random(seed)
    if not systemd:
        line = crontab_line(interval, argv, log_path, rng)
        sys.stdout.write(line + "\n")
        err.print(cron_instructions(line), highlight=False, markup=False)
        return
    units = systemd_units(interval, argv, user=user)
    for name, text in units.items():
        sys.stdout.write(f"# ---- {name} ----\n{text}\n")
    if write_dir is not None:
        try:
            write_dir.mkdir(parents=True, exist_ok=True)
            for name, text in units.items():
                (write_dir / name).write_text(text, encoding="utf-8")
        except OSError as exc:
            fail(f"cannot write units into {write_dir}: {exc}", EXIT_USAGE)
        err.print(f"wrote {', '.join(units)} into {write_dir}", highlight=False, markup=False)
    err.print(systemd_instructions(system_wide=user is not None or _is_root()), markup=False)


def _is_root() -> bool:
    return os.geteuid() == 0
