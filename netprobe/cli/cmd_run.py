"""`netprobe run`: probe target lists and write one signed JSONL result file.

Rules: option values come from flags, else the config file, else the target list's `settings`,
else the defaults in `RunOptions`. Exit codes: 0 run completed (whatever it found), 1 other
failure or deadline reached, 2 bad usage or bad target list, 75 another run holds the lock,
128+N stopped by signal N (the file is closed with a signed stop checkpoint).
The library modules are imported inside the functions so that `netprobe --help` stays quick.
"""

from __future__ import annotations

import contextlib
import logging
import re
import signal
import sys
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

import typer

from netprobe.cli.app import app
from netprobe.cli.common import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_USAGE,
    OutputFormat,
    err,
    fail,
    out,
    print_json,
    warn,
)

log = logging.getLogger("netprobe.run")
# Log lines go only to --log; without it they must not fall through to Python's stderr default.
logging.getLogger("netprobe").addHandler(logging.NullHandler())

# The keys a target list's `settings:` may set for a run.
SETTINGS_KEYS = (
    "timeout",
    "concurrency",
    "repeat",
    "udp_wait",
    "max_addresses_per_domain",
    "deadline",
)


@app.command()
def run(
    target_files: list[Path] = typer.Argument(
        None,
        help="Target list YAML files. Default: the bundled Telegram list (targets/telegram.yaml).",
        show_default=False,
    ),
    out_dir: Path = typer.Option(
        None, "--out", "-o", help="Folder for result files. [default: results]"
    ),
    resolvers: list[str] = typer.Option(
        None,
        "--resolver",
        "-r",
        help="Probe resolver, repeatable: system, udp://IP[:port], tcp://IP[:port], tls://IP[:port] "
        "or https://HOST/dns-query. [default: system]",
    ),
    control_resolvers: list[str] = typer.Option(
        None,
        "--control-resolver",
        help="Control resolver, repeatable, same forms as --resolver. [default: the target list's "
        "controls, else https://1.1.1.1/dns-query and https://8.8.8.8/dns-query]",
    ),
    ca_bundle: Path = typer.Option(
        None,
        "--ca-bundle",
        help="PEM file of CA certificates to trust instead of the system store (SSL_CERT_FILE also works).",
    ),
    timeout: float = typer.Option(None, "--timeout", "-t", help="Seconds per probe. [default: 5]"),
    concurrency: int = typer.Option(
        None, "--concurrency", "-c", help="Probes in flight at once. [default: 64]"
    ),
    repeat: int = typer.Option(
        None, "--repeat", help="Run every probe N times; all attempts are recorded. [default: 1]"
    ),
    deadline: float = typer.Option(
        None,
        "--deadline",
        help="Stop the whole run after S seconds (file stays valid). [default: 1800]",
    ),
    udp_wait: float = typer.Option(
        None,
        "--udp-wait",
        help="Seconds to keep listening after a UDP DNS reply, to catch injected second replies. [default: 0.5]",
    ),
    vantage: str = typer.Option(
        None,
        "--vantage",
        help="A name for this vantage point, e.g. hanoi-vnpt-1 (goes into the file name). [default: unnamed]",
    ),
    asn: str = typer.Option(
        None,
        "--asn",
        help="The network's ASN, e.g. AS7552. Never looked up by netprobe. [default: AS0]",
    ),
    cc: str = typer.Option(None, "--cc", help="The country code, e.g. VN. [default: ZZ]"),
    key: Path = typer.Option(
        None,
        "--key",
        help="Ed25519 OpenSSH private key to sign with. [default: created on first run in the user's data folder]",
    ),
    no_sign: bool = typer.Option(False, "--no-sign", help="Write an explicitly unsigned file."),
    checkpoint_every: int = typer.Option(
        None, "--checkpoint-every", help="Signed checkpoint every N records. [default: 256]"
    ),
    checkpoint_seconds: float = typer.Option(
        None,
        "--checkpoint-seconds",
        help="Signed checkpoint at least every S seconds. [default: 10]",
    ),
    config: Path = typer.Option(
        None,
        "--config",
        help="YAML config file; flags override it. [default: $NETPROBE_CONFIG or ~/.config/netprobe/config.yaml]",
    ),
    log_file: Path = typer.Option(
        None, "--log", help="Append a log of the run to this file (for cron)."
    ),
    keep_days: float = typer.Option(
        None, "--keep-days", help="After the run, delete result files older than N days from --out."
    ),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="Print only the result file's path; no progress."
    ),
    output_format: OutputFormat = typer.Option(
        OutputFormat.table, "--format", "-f", help="Summary as a table or as JSON."
    ),
) -> None:
    """Probe the targets (DNS, TCP, TLS) and write results/<UTC time>_<vantage>.jsonl.

    Example: netprobe run --vantage hanoi-vnpt-1 --asn AS45899 --cc VN

    Example: netprobe run targets/example.yaml --resolver udp://192.0.2.53 --timeout 3 --repeat 3
    """
    flags = {
        "targets": [str(p) for p in target_files] if target_files else None,
        "out": str(out_dir) if out_dir else None,
        "resolvers": resolvers or None,
        "control_resolvers": control_resolvers or None,
        "ca_bundle": str(ca_bundle) if ca_bundle else None,
        "timeout": timeout,
        "concurrency": concurrency,
        "repeat": repeat,
        "deadline": deadline,
        "udp_wait": udp_wait,
        "vantage": vantage,
        "asn": asn,
        "cc": cc,
        "key": str(key) if key else None,
        "sign": False if no_sign else None,
        "log": str(log_file) if log_file else None,
        "keep_days": keep_days,
        "quiet": True if quiet else None,
        "checkpoint_every": checkpoint_every,
        "checkpoint_seconds": checkpoint_seconds,
    }
    settings = _merged_settings(config, flags)
    quiet = bool(settings.get("quiet"))
    _setup_log(settings.get("log"))
    target_lists = _load_target_lists(settings.get("targets"))
    options = _run_options(settings, target_lists)
    _check_resolvers(target_lists, options)  # before a key is created for a run that cannot start
    signer = _signer(settings)

    from netprobe.run.executor import StopRequest, run_targets
    from netprobe.run.lock import LockBusy, default_lock_path, run_lock
    from netprobe.run.planner import count_jobs

    try:
        options.out_dir.mkdir(parents=True, exist_ok=True)
        with run_lock(default_lock_path(options.out_dir)):
            log.info(
                "run started: vantage=%s targets=%s",
                options.vantage,
                settings.get("targets") or "bundled",
            )
            with _progress(
                enabled=not quiet and err.is_terminal,
                total=count_jobs(target_lists, options.repeat),
            ) as on_progress:
                stop = StopRequest()
                with _stop_on_signals(stop):
                    result = run_targets(
                        target_lists, options, signer=signer, on_progress=on_progress, stop=stop
                    )
    except LockBusy as exc:
        log.warning("%s", exc)
        from netprobe.run.lock import EXIT_LOCKED

        fail(str(exc), EXIT_LOCKED)
    except ValueError as exc:  # bad resolver address, bad CA bundle, ...
        fail(str(exc), EXIT_USAGE)
    except OSError as exc:
        log.error("run failed: %s", exc)
        fail(f"cannot write results in {options.out_dir}: {exc}", EXIT_FAILURE)

    log.info(
        "run finished: %s (%d measurements, interrupted=%s)",
        result.path,
        result.summary.measurements,
        result.interrupted,
    )
    _prune(settings.get("keep_days"), options.out_dir, quiet)
    _render(result, output_format, quiet)
    raise typer.Exit(_exit_code(result.interrupted))


def _merged_settings(config_path: Path | None, flags: dict[str, Any]) -> dict[str, Any]:
    from netprobe.config import ConfigError, default_config_path, load_config, merge_options

    try:
        config = load_config(config_path if config_path else default_config_path())
    except ConfigError as exc:
        fail(str(exc))
    return merge_options(config, flags)


def _setup_log(path: str | None) -> None:
    if not path:
        return
    try:
        handler = logging.FileHandler(path, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot open log file {path}: {exc.strerror}")
    handler.setFormatter(
        logging.Formatter("%(asctime)s netprobe[%(process)d] %(levelname)s %(message)s")
    )
    root = logging.getLogger("netprobe")
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def _load_target_lists(paths: list[str] | None) -> list[Any]:
    from netprobe.targets.lists import TargetError, bundled_targets_path, load_targets

    try:
        if not paths:
            return [load_targets(bundled_targets_path())]
        return [load_targets(Path(p)) for p in paths]
    except TargetError as exc:
        log.error("bad target list: %s", exc)
        fail(str(exc))


def _run_options(settings: dict[str, Any], target_lists: list[Any]) -> Any:
    from netprobe.run.executor import RunOptions

    options = RunOptions()
    for tl in target_lists:  # target-list settings first; config and flags override them below
        for name in SETTINGS_KEYS:
            if name in tl.settings:
                setattr(options, name, tl.settings[name])
    names = {f.name for f in fields(RunOptions)}
    aliases = {"out": "out_dir"}
    for key, value in settings.items():
        name = aliases.get(key, key)
        if value is not None and name in names:
            setattr(options, name, value)
    options.out_dir = Path(options.out_dir)
    options.resolvers = list(options.resolvers)
    if options.ca_bundle and not Path(options.ca_bundle).is_file():
        fail(f"--ca-bundle: no such file: {options.ca_bundle}")
    _check_range("--timeout", options.timeout, 0.05, 600)
    _check_range("--concurrency", options.concurrency, 1, 10000)
    _check_range("--repeat", options.repeat, 1, 100)
    _check_range("--deadline", options.deadline, 1, 7 * 86400)
    _check_range("--udp-wait", options.udp_wait, 0, 10)
    _check_range("--checkpoint-every", options.checkpoint_every, 1, 10**7)
    if options.asn is not None:
        match = re.fullmatch(r"(?i)(?:AS)?(\d{1,10})", str(options.asn).strip())
        if not match:
            fail(f"--asn: expected an AS number like AS7552, got {options.asn!r}")
        options.asn = f"AS{match.group(1)}"
    if options.cc is not None:
        if not re.fullmatch(r"[A-Za-z]{2}", str(options.cc)):
            fail(f"--cc: expected a two-letter country code like VN, got {options.cc!r}")
        options.cc = str(options.cc).upper()
    if not re.fullmatch(r"[\w.-]{1,64}", str(options.vantage)):
        fail(f"--vantage: use 1-64 letters, digits, '.', '-' or '_', got {options.vantage!r}")
    return options


def _check_resolvers(target_lists: list[Any], options: Any) -> None:
    from netprobe.run.executor import resolve_option_resolvers

    try:
        resolve_option_resolvers(target_lists, options)
    except ValueError as exc:
        fail(str(exc))


def _check_range(flag: str, value: float, low: float, high: float) -> None:
    if not (low <= value <= high):
        fail(f"{flag}: expected a number from {low} to {high}, got {value}")


def _signer(settings: dict[str, Any]) -> Any:
    if settings.get("sign") is False:
        return None
    from netprobe.evidence.keys import (
        KeyFileError,
        default_key_path,
        load_or_create_signer,
        load_signer,
    )

    key = settings.get("key")
    key_path = Path(key) if key else default_key_path()
    try:
        # Only the default key is created on demand: a mistyped --key must not mint a new one.
        signer, created = (load_signer(key_path), False) if key else load_or_create_signer(None)
    except KeyFileError as exc:
        fail(str(exc))
    if created:
        err.print(
            f"netprobe: created signing key {key_path} (fingerprint {signer.fingerprint}); "
            "share the .pub file with whoever verifies your results",
            highlight=False,
            markup=False,
        )
    return signer


# The signals that stop a run cleanly: the file is closed with a signed `signal` checkpoint and
# the exit code is 128 + the signal's number (130 SIGINT, 143 SIGTERM).
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


@contextlib.contextmanager
def _stop_on_signals(stop: Any) -> Iterator[None]:
    """While the run lasts, SIGTERM/SIGINT/SIGHUP ask it to stop (`stop.stop("SIGTERM")`).

    The handler only records the request and wakes the run's loop; the run then winds down and
    closes its file from the main flow. The previous handlers come back afterwards.
    """
    previous: dict[signal.Signals, Any] = {}
    for sig in STOP_SIGNALS:
        try:
            previous[sig] = signal.signal(
                sig, lambda signum, frame: stop.stop(signal.Signals(signum).name)
            )
        except (ValueError, OSError):
            pass  # not the main thread (tests): signals keep their handlers
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class _progress:
    """A rich progress bar on stderr, or nothing (no TTY, --quiet)."""

    def __init__(self, *, enabled: bool, total: int) -> None:
        self.enabled, self.total, self._bar = enabled, total, None

    def __enter__(self) -> Any:
        if not self.enabled:
            return None
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._bar = Progress(
            TextColumn("probing"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        )
        self._bar.start()
        task = self._bar.add_task("probing", total=self.total)
        return lambda done: self._bar.update(task, completed=done)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


def _prune(keep_days: float | None, out_dir: Path, quiet: bool) -> None:
    if not keep_days:
        return
    from netprobe.run.retention import prune_results

    removed = prune_results(out_dir, keep_days)
    for path in removed:
        log.info("deleted old result file %s", path)
    if removed and not quiet:
        err.print(
            f"netprobe: deleted {len(removed)} result file(s) older than {keep_days:g} days",
            highlight=False,
        )


def _render(result: Any, output_format: OutputFormat, quiet: bool) -> None:
    problem = result.summary.vantage_problem()
    if quiet:
        sys.stdout.write(f"{result.path}\n")
    elif output_format is OutputFormat.json:
        print_json(
            {
                "path": str(result.path),
                "interrupted": result.interrupted,
                **result.summary.to_dict(),
            }
        )
    else:
        from netprobe.render.run import run_table

        out.print(run_table(result.summary))
        out.print(f"results: {result.path}", highlight=False)
    if result.interrupted == "deadline":
        warn(
            "the run reached its --deadline before every probe finished; the file holds what was measured"
        )
    elif result.interrupted:
        warn(f"stopped by {result.interrupted}; the file is closed and signed up to the stop")
    if problem:
        warn(problem)


def _exit_code(interrupted: str | None) -> int:
    if interrupted is None:
        return EXIT_OK
    if interrupted == "deadline":
        return EXIT_FAILURE
    return 128 + signal.Signals[interrupted].value
