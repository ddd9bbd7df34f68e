"""`netprobe ingest`: verified result files into a ClickHouse store, once; `--watch` a drop folder.

Rules: a thin command. It resolves the trust store and the paths, then calls
`netprobe.store.ingest.ingest_files` or `netprobe.store.watch.watch`, and prints what happened.
Credentials never come from the command line (see `netprobe.store.client`). Exit codes: 0 every
file stored (or already stored), 1 some file rejected, 2 bad usage or ClickHouse unreachable.
"""

from __future__ import annotations

import enum
import signal
from pathlib import Path

import typer

from netprobe.cli.app import app
from netprobe.cli.common import default, err, fail, out, print_json, warn


class IngestFormat(enum.StrEnum):
    table = "table"
    json = "json"


def _trust_store(allowed_signers: Path | None) -> Path:
    from netprobe.evidence.trust import default_trust_store_path

    path = allowed_signers or default_trust_store_path()
    if not path.is_file():
        fail(
            f"no trust store at {path}: nothing unverified is stored; pass --allowed-signers FILE "
            "or set $NETPROBE_ALLOWED_SIGNERS (an OpenSSH allowed_signers file)"
        )
    return path


@app.command()
def ingest(
    paths: list[Path] = typer.Argument(
        None,
        metavar="FILE_OR_DIR...",
        help="Result files or folders (searched recursively for *.jsonl)."
        + default("none: give paths or --watch"),
        show_default=False,
    ),
    clickhouse: str = typer.Option(
        ...,
        "--clickhouse",
        metavar="URL",
        help="ClickHouse HTTP URL, e.g. http://127.0.0.1:8123/netprobe (the path is the "
        "database; default netprobe). Credentials: $NETPROBE_CLICKHOUSE_USER and "
        "$NETPROBE_CLICKHOUSE_PASSWORD, or ~/.config/netprobe/clickhouse.conf.",
    ),
    allowed_signers: Path = typer.Option(
        None,
        "--allowed-signers",
        metavar="FILE",
        help="Trust store (OpenSSH allowed_signers) to verify against."
        + default("the trust store, see `netprobe keys list`"),
    ),
    watch_dir: Path = typer.Option(
        None,
        "--watch",
        metavar="DIR",
        help="Drop folder to watch: ingest files as they finish arriving."
        + default("no watching: ingest the paths once"),
    ),
    quarantine: Path = typer.Option(
        None,
        "--quarantine",
        metavar="DIR",
        help="With --watch: where rejected files go, each with NAME.reason."
        + default("DIR/quarantine"),
    ),
    done: Path = typer.Option(
        None,
        "--done",
        metavar="DIR",
        help="With --watch: where stored files go." + default("DIR/ingested"),
    ),
    interval: float = typer.Option(
        2.0, "--interval", metavar="SECONDS", help="With --watch: seconds between scans."
    ),
    settle: float = typer.Option(
        5.0,
        "--settle",
        metavar="SECONDS",
        help="With --watch: seconds a file must stay unchanged before it is read.",
    ),
    jobs: int = typer.Option(
        None,
        "--jobs",
        "-j",
        metavar="N",
        help="Worker processes for verifying files." + default("CPU count"),
    ),
    output_format: IngestFormat = typer.Option(
        IngestFormat.table,
        "--format",
        "-f",
        metavar="table|json",
        help="table (one line) or json (every file, with why).",
    ),
) -> None:
    """Verify result files against the trust store and store them in ClickHouse (each file once).

    Example: netprobe ingest results/ --clickhouse http://127.0.0.1:8123/netprobe

    Example: netprobe ingest --watch /srv/netprobe/drop --clickhouse http://127.0.0.1:8123
    """
    from netprobe.store.client import ClickHouse, StoreError, load_credentials, parse_url

    trust = _trust_store(allowed_signers)
    try:
        parse_url(clickhouse)
        credentials = load_credentials()
    except StoreError as exc:
        fail(str(exc))
    if watch_dir is not None:
        if paths:
            fail("give either PATHS or --watch DIR, not both")
        _watch(clickhouse, credentials, watch_dir, trust, quarantine, done, interval, settle)
        return
    if not paths:
        fail("nothing to ingest: give result files or folders, or --watch DIR")
    from netprobe.store.ingest import ingest_files
    from netprobe.timeline.files import expand_paths

    files, missing = expand_paths(paths)
    for item in missing:
        fail(f"{item.path}: {item.reason}")
    try:
        with ClickHouse(clickhouse, credentials) as client:
            report = ingest_files(
                client,
                files,
                trust,
                jobs=jobs,
                on_rejected=lambda r: warn(f"rejected {r['path']}: {r['reason']}"),
            )
    except StoreError as exc:
        fail(str(exc))
    if output_format is IngestFormat.json:
        print_json(report.to_dict())
    else:
        out.print(
            f"{len(report.ingested)} files stored ({report.records} records), "
            f"{len(report.duplicates)} already stored, {len(report.rejected)} rejected"
        )
    if report.rejected:
        raise typer.Exit(1)


def _watch(url, credentials, folder, trust, quarantine, done, interval, settle) -> None:
    from netprobe.store.client import ClickHouse
    from netprobe.store.watch import WatchOptions, watch

    if not folder.is_dir():
        fail(f"--watch {folder}: no such folder")
    stop = {"now": False}

    def request_stop(_signum, _frame) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    options = WatchOptions(
        folder=folder, trust=trust, done=done, quarantine=quarantine, interval=interval,
        settle=settle,
    )  # fmt: skip

    def on_event(kind: str, path: str, detail: str) -> None:
        err.print(f"{kind}: {path}: {detail}", markup=False, highlight=False)

    watch(lambda: ClickHouse(url, credentials), options, should_stop=lambda: stop["now"],
          on_event=on_event)  # fmt: skip
