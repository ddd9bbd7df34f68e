"""`netprobe run`: probe target lists and write one signed JSONL result file.

Rules: option values come from flags, else the config file, else the target list's `settings`,
else the defaults; the option table (`netprobe.options`) declares the flags below, their help
and defaults, and checks every value (`netprobe.run.prepare` merges the sources). Exit codes:
0 run completed (whatever it found), 1 other failure or deadline reached, 8 run completed
but `--tsa` gave no timestamp (the file is complete and signed; `netprobe timestamp` retries), 2 bad usage or bad
target list (or a run of more than `LARGE_RUN_PROBES` probes without --allow-large), 75
another run holds the lock, 128+N stopped by signal N (the file is closed with a
signed stop checkpoint). The library modules are imported inside the functions so that
`netprobe --help` stays quick (`netprobe.options` is the standard library only).
"""

from __future__ import annotations

import contextlib
import functools
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer

from netprobe.cli.app import app
from netprobe.cli.common import (
    EXIT_FAILURE,
    EXIT_NO_TIMESTAMP,
    EXIT_OK,
    EXIT_USAGE,
    OutputFormat,
    err,
    fail,
    out,
    print_json,
    warn,
)
from netprobe.cli.common import default as default_help
from netprobe.options import OPTIONS


@functools.cache
def _logger() -> Any:
    """The run's logger, made on first use (`--help` and `--version` do not import logging)."""
    import logging

    # Log lines go only to --log; without it they must not fall through to Python's stderr default.
    logging.getLogger("netprobe").addHandler(logging.NullHandler())
    return logging.getLogger("netprobe.run")


class _LazyLog:
    """`log.info(...)` etc. on `_logger()`."""

    def __getattr__(self, name: str) -> Any:
        return getattr(_logger(), name)


log: Any = _LazyLog()


# How `--help` names each option's value (flags take none); what the default of an option
# without a default value means.
METAVARS = {
    "targets": "FILE",
    "out": "DIR",
    "resolvers": "RESOLVER",
    "control_resolvers": "RESOLVER",
    "ca_bundle": "FILE",
    "timeout": "SECONDS",
    "concurrency": "N",
    "repeat": "N",
    "deadline": "SECONDS",
    "udp_wait": "SECONDS",
    "confirm": "N",
    "confirm_spacing": "SECONDS",
    "control_interval": "SECONDS",
    "residual_pause": "SECONDS",
    "vantage": "NAME",
    "asn": "ASN",
    "cc": "CC",
    "key": "FILE",
    "checkpoint_every": "N",
    "checkpoint_seconds": "SECONDS",
    "log": "FILE",
    "keep_days": "DAYS",
    "http_body_limit": "BYTES",
    "tsa": "URL",
    "tsa_ca": "FILE",
    "throughput_bytes": "BYTES",
    "throughput_seconds": "SECONDS",
}
UNSET_DEFAULTS = {
    "ca_bundle": "the system store",
    "log": "no log file",
    "keep_days": "keep every file",
    "tsa": "no timestamp",
    "tsa_ca": "tsa_ca in the config file, else tokens are checked for consistency only",
}


def _help(name: str) -> str:
    """The table's help text; a default that is a rule, not a value, is spelled out in it."""
    option = OPTIONS[name]
    if option.default is None:
        rule = option.shown_default() or UNSET_DEFAULTS.get(name)
        if rule:
            return option.help + default_help(rule)
    return option.help


def _flag(name: str) -> Any:
    """A typer option declared from the table: spelling, help and default (shown by typer)."""
    option = OPTIONS[name]
    spellings = [spelling for spelling in (option.flag, option.short) if spelling]
    value = False if option.kind == "boolean" else option.default
    return typer.Option(value, *spellings, metavar=METAVARS.get(name), help=_help(name))


@app.command()
def run(
    ctx: typer.Context,
    target_files: list[Path] = typer.Argument(
        None,
        metavar=METAVARS["targets"],
        help=OPTIONS["targets"].help + default_help(str(OPTIONS["targets"].default_text)),
        show_default=False,
    ),
    out_dir: Path = _flag("out"),
    resolvers: list[str] = _flag("resolvers"),
    control_resolvers: list[str] = _flag("control_resolvers"),
    ca_bundle: Path = _flag("ca_bundle"),
    timeout: float = _flag("timeout"),
    concurrency: int = _flag("concurrency"),
    repeat: int = _flag("repeat"),
    deadline: float = _flag("deadline"),
    udp_wait: float = _flag("udp_wait"),
    confirm: int = _flag("confirm"),
    confirm_spacing: float = _flag("confirm_spacing"),
    control_interval: float = _flag("control_interval"),
    residual_pause: float = _flag("residual_pause"),
    throughput_bytes: int = _flag("throughput_bytes"),
    throughput_seconds: float = _flag("throughput_seconds"),
    vantage: str = _flag("vantage"),
    asn: str = _flag("asn"),
    cc: str = _flag("cc"),
    key: Path = _flag("key"),
    no_sign: bool = _flag("sign"),
    http_body_limit: int = _flag("http_body_limit"),
    no_bodies: bool = _flag("bodies"),
    checkpoint_every: int = _flag("checkpoint_every"),
    checkpoint_seconds: float = _flag("checkpoint_seconds"),
    config: Path = typer.Option(
        None,
        "--config",
        metavar="FILE",
        help="YAML config file; flags override it."
        + default_help("$NETPROBE_CONFIG or ~/.config/netprobe/config.yaml"),
    ),
    tsa: str = _flag("tsa"),
    tsa_ca: Path = _flag("tsa_ca"),
    log_file: Path = _flag("log"),
    keep_days: float = _flag("keep_days"),
    quiet: bool = _flag("quiet"),
    output_format: OutputFormat = typer.Option(
        OutputFormat.table,
        "--format",
        "-f",
        metavar="table|json",
        help="Summary as a table or as JSON.",
    ),
    allow_large: bool = _flag("allow_large"),
) -> None:
    """Probe the targets (DNS, TCP, TLS) and write results/<UTC time>_<vantage>.jsonl.

    Example: netprobe run --vantage hanoi-vnpt-1 --asn AS45899 --cc VN

    Example: netprobe run targets/example.yaml --resolver udp://192.0.2.53 --timeout 3 --repeat 3
    """

    def given(param: str, value: Any) -> Any:
        # Only flags typed on the command line override the config file and the lists.
        source = ctx.get_parameter_source(param)
        if source is None or source.name in ("DEFAULT", "DEFAULT_MAP"):
            return None
        if isinstance(value, list):
            return [str(item) for item in value]
        return str(value) if isinstance(value, Path) else value

    flags = {
        "targets": given("target_files", target_files),
        "out": given("out_dir", out_dir),
        "resolvers": given("resolvers", resolvers),
        "control_resolvers": given("control_resolvers", control_resolvers),
        "ca_bundle": given("ca_bundle", ca_bundle),
        "timeout": given("timeout", timeout),
        "concurrency": given("concurrency", concurrency),
        "repeat": given("repeat", repeat),
        "deadline": given("deadline", deadline),
        "udp_wait": given("udp_wait", udp_wait),
        "confirm": given("confirm", confirm),
        "confirm_spacing": given("confirm_spacing", confirm_spacing),
        "control_interval": given("control_interval", control_interval),
        "residual_pause": given("residual_pause", residual_pause),
        "throughput_bytes": given("throughput_bytes", throughput_bytes),
        "throughput_seconds": given("throughput_seconds", throughput_seconds),
        "vantage": given("vantage", vantage),
        "asn": given("asn", asn),
        "cc": given("cc", cc),
        "key": given("key", key),
        "sign": given("no_sign", not no_sign),
        "tsa": given("tsa", tsa),
        "tsa_ca": given("tsa_ca", tsa_ca),
        "http_body_limit": given("http_body_limit", http_body_limit),
        "bodies": given("no_bodies", not no_bodies),
        "log": given("log_file", log_file),
        "keep_days": given("keep_days", keep_days),
        "quiet": given("quiet", quiet),
        "allow_large": given("allow_large", allow_large),
        "checkpoint_every": given("checkpoint_every", checkpoint_every),
        "checkpoint_seconds": given("checkpoint_seconds", checkpoint_seconds),
    }
    from netprobe.options import values
    from netprobe.run import prepare

    try:
        given_settings = prepare.merged_settings(flags, config)  # a bad flag or config file
    except ValueError as exc:
        fail(str(exc))
    settings = values(given_settings)
    quiet = bool(settings.get("quiet"))
    _setup_log(settings.get("log"))
    target_lists = _load_target_lists(settings.get("targets"))
    try:
        options = prepare.run_options(given_settings, target_lists)  # a bad CA bundle
    except ValueError as exc:
        fail(str(exc))
    _check_size(
        target_lists, options.repeat, bool(settings.get("allow_large"))
    )  # before any probe, key or file
    _check_resolvers(target_lists, options)  # before a key is created for a run that cannot start
    _check_tsa_ca(settings.get("tsa_ca"))
    signer = _signer(settings)

    from netprobe.evidence.writer import SignatureFileError
    from netprobe.run.executor import StopRequest, run_targets
    from netprobe.run.lock import LockBusy, default_lock_path, run_lock
    from netprobe.run.planner import count_jobs

    try:
        options.out_dir.mkdir(parents=True, exist_ok=True)  # a fresh set-up has no folder yet
        with run_lock(default_lock_path(options.out_dir)):
            log.info(
                "run started: vantage=%s targets=%s",
                options.vantage,
                settings.get("targets") or "bundled",
            )
            with _progress(quiet, count_jobs(target_lists, options.repeat)) as on_progress:
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
    except SignatureFileError as exc:  # the .jsonl is complete: say so, and how to fix the .sig
        log.error("%s", exc.strerror)
        fail(str(exc.strerror), EXIT_FAILURE)
    except OSError as exc:
        log.error("run failed: %s", exc)
        fail(f"cannot write results in {options.out_dir}: {exc}", EXIT_FAILURE)

    log.info(
        "run finished: %s (%d measurements%s)",
        result.path,
        result.summary.measurements,
        f", stopped early: {result.interrupted}" if result.interrupted else ", complete",
    )
    stamped = _timestamp(result.path, settings.get("tsa"), settings.get("tsa_ca"))
    _prune(settings.get("keep_days"), options.out_dir, quiet)
    _render(result, output_format, quiet, stamped)
    code = _exit_code(result.interrupted)
    if code == EXIT_OK and stamped is not None and stamped.problem:
        code = EXIT_NO_TIMESTAMP
    raise typer.Exit(code)


def _progress(quiet: bool, total: int) -> Any:
    """The progress bar on a terminal without --quiet; else nothing, and rich is not imported."""
    if quiet or not err.is_terminal:
        return contextlib.nullcontext(None)  # what a disabled progress_bar gives: no callback
    from netprobe.render.run import progress_bar

    return progress_bar(err, enabled=True, total=total)


def _setup_log(path: str | None) -> None:
    """Append log lines to `path`, creating its folder first (a fresh set-up has none yet)."""
    if not path:
        return
    import logging

    _logger()
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
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
    from netprobe.run.prepare import load_target_lists
    from netprobe.targets.lists import TargetError

    try:
        return load_target_lists(paths)
    except TargetError as exc:
        log.error("bad target list: %s", exc)
        fail(str(exc))


def _check_size(target_lists: list[Any], repeat: int, allow_large: bool) -> None:
    """Exit 2 when the run is larger than `LARGE_RUN_PROBES` and --allow-large was not given."""
    from netprobe.targets.lists import LARGE_RUN_PROBES, large_run_message

    probes = sum(tl.counts(repeat=repeat)["probes"] for tl in target_lists)
    if probes > LARGE_RUN_PROBES and not allow_large:
        log.error("run refused: %d probes", probes)
        fail(large_run_message(probes))


def _check_resolvers(target_lists: list[Any], options: Any) -> None:
    from netprobe.run.executor import resolve_option_resolvers

    try:
        resolve_option_resolvers(target_lists, options)
    except ValueError as exc:
        fail(str(exc))


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


def _check_tsa_ca(path: str | None) -> None:
    """A --tsa-ca / tsa_ca that is not a readable PEM file stops the run before any probe."""
    if path is None:
        return
    from netprobe.evidence.timestamp import TimestampError
    from netprobe.evidence.tsa_client import read_ca

    try:
        read_ca(Path(path))
    except TimestampError as exc:
        fail(f"--tsa-ca: {exc}")


def _timestamp(path: Path, url: str | None, ca: str | None) -> Any:
    """The run's `.tsr` from the TSA at `url` (None without --tsa); never fails the run."""
    if not url:
        return None
    from netprobe.evidence.tsa_client import timestamp_file

    stamped = timestamp_file(path, url, ca=Path(ca) if ca else None)
    if stamped.problem:
        log.warning("timestamp missing: %s", stamped.problem)
    else:
        log.info("timestamp: %s", stamped.tsr)
    return stamped


def _render(result: Any, output_format: OutputFormat, quiet: bool, stamped: Any = None) -> None:
    """The end of a run: the path (--quiet), the JSON document or the table on stdout, then the
    warnings on stderr and in the log, whatever the format (--quiet drops only the table)."""
    from netprobe.render.run_plain import run_document, run_warnings  # no rich for --quiet
    from netprobe.render.timestamp import stamp_dict, stamp_line, stamp_warning

    if quiet:
        sys.stdout.write(f"{result.path}\n")
    elif output_format is OutputFormat.json:
        document = run_document(result)
        if stamped is not None:
            document["timestamp"] = stamp_dict(stamped)
            document["warnings"] += [stamp_warning(stamped)] if stamped.problem else []
        print_json(document)
    else:
        from netprobe.render.run import run_table

        out.print(run_table(result.summary, out.width))
        out.print(f"results: {result.path}", highlight=False)
        if stamped is not None and not stamped.problem:
            out.print(stamp_line(stamped), highlight=False)
    if stamped is not None and stamped.problem:
        warn(stamp_warning(stamped))
    for message in run_warnings(result):
        log.warning("%s", message)
        warn(message)


def _exit_code(interrupted: str | None) -> int:
    if interrupted is None:
        return EXIT_OK
    if interrupted == "deadline":
        return EXIT_FAILURE
    return 128 + signal.Signals[interrupted].value
