"""`timeline --clickhouse` gives the same JSON as the file-based timeline for the same runs."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from netprobe.cli import app
from tests.clickhouse_server import fresh_url, server_fixture

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("gen_history", ROOT / "bench" / "gen_history.py")
gen_history = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gen_history)
runner = CliRunner()
HOURS = 60


@pytest.fixture(scope="module")
def clickhouse(tmp_path_factory):
    yield from server_fixture(tmp_path_factory)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory, clickhouse) -> tuple[Path, Path, str]:
    """Three signed histories: VNPT twice (two runs in most hours, onsets 6 h apart, so hourly
    medians mix blocked and open runs), Viettel once (its own onset, an outage and a gap)."""
    root = tmp_path_factory.mktemp("fleet")
    specs = [
        ("vnpt-a", "bench-vnpt", "AS45899", 30, None, None, 1),
        ("vnpt-b", "bench-vnpt", "AS45899", 36, 10, None, 2),
        ("viettel", "bench-viettel", "AS7552", 20, 12, 40, 3),
    ]
    lines = []
    for folder, vantage, asn, onset, outage, gap, seed in specs:
        gen_history.write_history(
            root / folder, hours=HOURS, onset_hour=onset, outage_hour=outage, gap_hour=gap,
            vantage=vantage, asn=asn, ranges=2, signed=HOURS, seed=seed,
        )  # fmt: skip
        lines.append((root / folder / "allowed_signers").read_text())
    trust = root / "trust_store"
    trust.write_text("".join(lines))
    url = fresh_url(clickhouse)
    done = runner.invoke(
        app, ["ingest", str(root), "--clickhouse", url, "--allowed-signers", str(trust)]
    )
    assert done.exit_code == 0, done.output
    return root, trust, url


def timeline_json(*args: str) -> dict:
    result = runner.invoke(app, ["timeline", *args, "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def by_hash(path: str) -> str:
    return "sha256:" + hashlib.sha256(Path(path).read_bytes()).hexdigest()


def from_files(paths: list[Path], trust: Path, *args: str) -> dict:
    """The file timeline's JSON, its `duplicates` named as the store names them.

    The store has no file paths (one row per file SHA-256, wherever it was read from), so its
    `duplicates` name both files by hash (`sha256:<hex>`): the same entries, with each path
    replaced by its file's hash, is what can be compared. (A byte-identical copy is one stored
    file, so only copies with different bytes can be listed by both; the fleet's are.)
    """
    report = timeline_json(
        *map(str, paths), "--allowed-signers", str(trust), "--jobs", "1", "--no-cache", *args
    )
    report["duplicates"] = [
        {**item, "path": by_hash(item["path"]), "copy_of": by_hash(item["copy_of"])}
        for item in report["duplicates"]
    ]
    return report


def test_store_timeline_equals_the_file_timeline(fleet):
    root, trust, url = fleet
    store = timeline_json("--clickhouse", url)
    files = from_files([root], trust)
    assert store == files
    # VNPT's two vantages started a few runs in the same second: the same run id, counted once.
    assert store["duplicates"]
    networks = {(n["probe_asn"], n["vantage"]): n for n in store["networks"]}
    assert set(networks) == {("AS45899", "bench-vnpt"), ("AS7552", "bench-viettel")}
    assert networks[("AS45899", "bench-vnpt")]["runs"] == 2 * HOURS - len(store["duplicates"])
    web = next(
        t
        for t in networks[("AS7552", "bench-viettel")]["targets"]
        if t["target_id"] == "domain:telegram.org"
    )
    assert web["state"] == "blocked" and web["method"] == "sni"
    assert web["group"] == "web"
    viettel = networks[("AS7552", "bench-viettel")]
    assert viettel["group_labels"]["web"] == "Telegram web names"
    assert "Telegram web names blocked by sni" in viettel["summary"]["line"]


def test_the_html_cells_of_the_store_equal_the_files_cells(fleet):
    """The HTML page's tooltips (`cells`) come from the same hourly samples and methods."""
    from netprobe.store.client import ClickHouse
    from netprobe.store.timeline import store_timeline
    from netprobe.timeline.builder import TimelineOptions
    from netprobe.timeline.files import ReadOptions, expand_paths
    from netprobe.timeline.report import timeline_report

    root, trust, url = fleet
    options = TimelineOptions(strip_width=240, cells=True)
    with ClickHouse(url) as client:
        store = store_timeline(client, options, vantages=["bench-viettel"])
    files, _missing = expand_paths([root / "viettel"])
    read = ReadOptions(verify=True, allowed_signers=str(trust))
    result = timeline_report(files, read, options, jobs=1, use_cache=False)
    assert store["networks"] == result.report["networks"]
    cells = store["networks"][0]["targets"][0]["cells"]
    assert cells and any(cell.get("method") for cell in cells)


def test_network_and_time_filters_match_the_same_files(fleet):
    root, trust, url = fleet
    store = timeline_json(
        "--clickhouse", url, "--asn", "AS7552", "--since", "2025-01-01T10:00Z",
        "--until", "2025-01-02T05:07Z", "--target", "endpoint:149.154.175.50:443",
    )  # fmt: skip
    files = from_files(
        [root / "viettel"], trust, "--since", "2025-01-01T10:00Z", "--until", "2025-01-02T05:07Z",
        "--target", "endpoint:149.154.175.50:443",
    )  # fmt: skip
    assert store == files
    assert store["runs"] > 0 and [n["probe_asn"] for n in store["networks"]] == ["AS7552"]
    by_vantage = timeline_json("--clickhouse", url, "--vantage", "bench-vnpt")
    assert by_vantage == from_files([root / "vnpt-a", root / "vnpt-b"], trust)


def test_an_unknown_target_in_the_store_lists_close_matches(fleet):
    _root, _trust, url = fleet
    result = runner.invoke(
        app, ["timeline", "--clickhouse", url, "--target", "domain:telegram.orgg"]
    )
    assert result.exit_code == 2
    assert "domain:telegram.org" in result.output


def readme_sql() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Running a fleet", 1)[1].split("\n## ", 1)[0]
    return [block.split("\n```", 1)[0] for block in section.split("```sql\n")[1:]]


def test_readme_shows_the_schema_netprobe_creates_and_its_example_sql_runs(fleet, clickhouse):
    from netprobe.store.schema import create_statements

    _root, _trust, url = fleet
    schema_block, *queries = readme_sql()
    assert schema_block.strip() == ";\n\n".join(create_statements("netprobe")) + ";"
    database = url.rsplit("/", 1)[1]
    assert len(queries) == 4
    results = [
        [json.loads(line) for line in clickhouse.query(
            query.replace("netprobe.", f"{database}.") + "\nFORMAT JSONEachRow"
        ).splitlines()]
        for query in queries
    ]  # fmt: skip
    first_blocked = {(r["probe_asn"], r["target_id"]): r for r in results[0]}
    # Viettel's block starts at hour 20 (2025-01-01 20:07 UTC), VNPT's first vantage at hour 30.
    assert first_blocked[("AS7552", "domain:telegram.org")]["first_blocked"].startswith(
        "2025-01-01 20:"
    )
    assert first_blocked[("AS7552", "domain:telegram.org")]["method"] == "sni"
    assert first_blocked[("AS45899", "endpoint:149.154.175.50:443")]["first_blocked"].startswith(
        "2025-01-02 06:"
    )
    assert {r["method"] for r in results[1]} == {"sni", "ip"}
    assert results[2] and all(0 <= float(r["blocked_share"]) <= 1 for r in results[2])
    assert {r["failure"] for r in results[3]} == {"generic_timeout_error"}
