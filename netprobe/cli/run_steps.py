"""The steps of `netprobe run` around the run itself (netprobe/cli/cmd_run.py): the log, the
target lists and checks before any probe, the key, signals, the timestamp, pruning, the summary.

Rules: cmd_run's (its docstring: exit codes, what is checked before any probe); the library
modules are imported inside the functions, so that `netprobe --help` stays quick.
"""

from __future__ import annotations

import contextlib
import functools
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from netprobe.cli.common import (
    EXIT_FAILURE,
    EXIT_OK,
    OutputFormat,
    err,
    fail,
    out,
    print_json,
    warn,
)


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


def progress(quiet: bool, total: int) -> Any:
    """The progress bar on a terminal without --quiet; else nothing, and rich is not imported."""
    if quiet or not err.is_terminal:
        return contextlib.nullcontext(None)  # what a disabled progress_bar gives: no callback
    from netprobe.render.run import progress_bar

    return progress_bar(err, enabled=True, total=total)


def setup_log(path: str | None) -> None:
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


def load_target_lists(paths: list[str] | None) -> list[Any]:
    from netprobe.run.prepare import load_target_lists
    from netprobe.targets.lists import TargetError

    try:
        return load_target_lists(paths)
    except TargetError as exc:
        log.error("bad target list: %s", exc)
        fail(str(exc))


def check_size(target_lists: list[Any], repeat: int, allow_large: bool) -> None:
    """Exit 2 when the run is larger than `LARGE_RUN_PROBES` and --allow-large was not given."""
    from netprobe.targets.lists import LARGE_RUN_PROBES, large_run_message

    probes = sum(tl.counts(repeat=repeat)["probes"] for tl in target_lists)
    if probes > LARGE_RUN_PROBES and not allow_large:
        log.error("run refused: %d probes", probes)
        fail(large_run_message(probes))


def check_resolvers(target_lists: list[Any], options: Any) -> None:
    from netprobe.run.executor import resolve_option_resolvers

    try:
        resolve_option_resolvers(target_lists, options)
    except ValueError as exc:
        fail(str(exc))


def signer(settings: dict[str, Any]) -> Any:
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
def stop_on_signals(stop: Any) -> Iterator[None]:
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


def prune(keep_days: float | None, out_dir: Path, quiet: bool) -> None:
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


def check_tsa_ca(path: str | None) -> None:
    """A --tsa-ca / tsa_ca that is not a readable PEM file stops the run before any probe."""
    if path is None:
        return
    from netprobe.evidence.timestamp import TimestampError
    from netprobe.evidence.tsa_client import read_ca

    try:
        read_ca(Path(path))
    except TimestampError as exc:
        fail(f"--tsa-ca: {exc}")


def timestamp(path: Path, url: str | None, ca: str | None) -> Any:
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


def render(result: Any, output_format: OutputFormat, quiet: bool, stamped: Any = None) -> None:
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


def exit_code(interrupted: str | None) -> int:
    if interrupted is None:
        return EXIT_OK
    if interrupted == "deadline":
        return EXIT_FAILURE
    return 128 + signal.Signals[interrupted].value
