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

from pathlib import Path
from typing import Any

import typer

from netprobe.cli import run_steps as steps
from netprobe.cli.app import app
from netprobe.cli.common import (
    EXIT_FAILURE,
    EXIT_NO_TIMESTAMP,
    EXIT_OK,
    EXIT_USAGE,
    OutputFormat,
    fail,
)
from netprobe.cli.common import default as default_help
from netprobe.options import OPTIONS

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
    steps.setup_log(settings.get("log"))
    target_lists = steps.load_target_lists(settings.get("targets"))
    try:
        options = prepare.run_options(given_settings, target_lists)  # a bad CA bundle
    except ValueError as exc:
        fail(str(exc))
    steps.check_size(
        target_lists, options.repeat, bool(settings.get("allow_large"))
    )  # before any probe, key or file
    steps.check_resolvers(
        target_lists, options
    )  # before a key is created for a run that cannot start
    steps.check_tsa_ca(settings.get("tsa_ca"))
    signer = steps.signer(settings)

    from netprobe.evidence.writer import SignatureFileError
    from netprobe.run.executor import StopRequest, run_targets
    from netprobe.run.lock import LockBusy, default_lock_path, run_lock
    from netprobe.run.planner import count_jobs

    try:
        options.out_dir.mkdir(parents=True, exist_ok=True)  # a fresh set-up has no folder yet
        with run_lock(default_lock_path(options.out_dir)):
            steps.log.info(
                "run started: vantage=%s targets=%s",
                options.vantage,
                settings.get("targets") or "bundled",
            )
            with steps.progress(quiet, count_jobs(target_lists, options.repeat)) as on_progress:
                stop = StopRequest()
                with steps.stop_on_signals(stop):
                    result = run_targets(
                        target_lists, options, signer=signer, on_progress=on_progress, stop=stop
                    )
    except LockBusy as exc:
        steps.log.warning("%s", exc)
        from netprobe.run.lock import EXIT_LOCKED

        fail(str(exc), EXIT_LOCKED)
    except ValueError as exc:  # bad resolver address, bad CA bundle, ...
        fail(str(exc), EXIT_USAGE)
    except SignatureFileError as exc:  # the .jsonl is complete: say so, and how to fix the .sig
        steps.log.error("%s", exc.strerror)
        fail(str(exc.strerror), EXIT_FAILURE)
    except OSError as exc:
        steps.log.error("run failed: %s", exc)
        fail(f"cannot write results in {options.out_dir}: {exc}", EXIT_FAILURE)

    steps.log.info(
        "run finished: %s (%d measurements%s)",
        result.path,
        result.summary.measurements,
        f", stopped early: {result.interrupted}" if result.interrupted else ", complete",
    )
    stamped = steps.timestamp(result.path, settings.get("tsa"), settings.get("tsa_ca"))
    steps.prune(settings.get("keep_days"), options.out_dir, quiet)
    steps.render(result, output_format, quiet, stamped)
    code = steps.exit_code(result.interrupted)
    if code == EXIT_OK and stamped is not None and stamped.problem:
        code = EXIT_NO_TIMESTAMP
    raise typer.Exit(code)
