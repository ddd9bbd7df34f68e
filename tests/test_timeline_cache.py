"""The timeline's summary cache: a repeated timeline reuses summaries, and only ever for the
same bytes read the same way (an edited file, other trusted keys or --no-verify miss)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from netprobe.cli import app
from netprobe.timeline import cache as cache_module
from netprobe.timeline import files as files_module
from netprobe.timeline.cache import CACHE_ENV, SummaryCache, decode_summary, encode_summary
from netprobe.timeline.files import ReadOptions, Skipped, expand_paths, open_cache, read_runs
from netprobe.timeline.runs import RunSummary

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("gen_history", ROOT / "bench" / "gen_history.py")
gen_history = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gen_history)

runner = CliRunner()
HOURS = 24


@pytest.fixture(scope="module")
def signed_history(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("signed-history")
    gen_history.write_history(
        folder, hours=HOURS, onset_hour=12, outage_hour=None, gap_hour=None, ranges=2, signed=HOURS
    )
    return folder


@pytest.fixture
def history(signed_history, tmp_path, monkeypatch) -> Path:
    # A private copy: some tests edit files. Its signer is in the trust store.
    copy = Path(shutil.copytree(signed_history, tmp_path / "history"))
    monkeypatch.setenv("NETPROBE_ALLOWED_SIGNERS", str(copy / "allowed_signers"))
    return copy


def cache_file() -> Path:
    return Path(os.environ[CACHE_ENV]) / "timeline.sqlite3"


def timeline_json(*args: str) -> dict:
    result = runner.invoke(app, ["timeline", *args, "--format", "json", "--jobs", "1"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def read_all(history: Path, options: ReadOptions, jobs: int = 1):
    files, _ = expand_paths([history])
    cache = open_cache(options)
    results = list(read_runs(files, options, jobs=jobs, cache=cache))
    cache.close()
    return results, cache


def test_summary_round_trips_through_its_stored_form():
    run = RunSummary(
        started_at=1735693620.0,
        probe_asn="AS45899",
        vantage="hanoi-1",
        run_id="r1",
        healthy=True,
        scores={("domain:telegram.org", "tls"): 1.0, ("endpoint:1.2.3.4:443", "tcp"): 0.3333},
        methods={"domain:telegram.org": "sni"},
    )
    assert decode_summary(encode_summary(run)) == run
    with pytest.raises(ValueError):
        decode_summary(b"not zlib")


def test_second_timeline_reuses_every_summary_and_prints_the_same_report(history):
    trust = ["--allowed-signers", str(history / "allowed_signers")]
    first = timeline_json(str(history), *trust)
    assert cache_file().is_file()
    options = ReadOptions(verify=True, allowed_signers=str(history / "allowed_signers"))
    results, cache = read_all(history, options, jobs=2)
    assert (cache.hits, cache.misses) == (HOURS, 0)
    assert all(isinstance(r, RunSummary) for r in results)
    assert timeline_json(str(history), *trust) == first
    assert timeline_json(str(history), *trust, "--no-cache") == first


def test_an_edited_file_is_verified_again_not_taken_from_the_cache(history):
    first = timeline_json(str(history))
    assert first["skipped"] == []
    victim = sorted(history.glob("*.jsonl"))[5]
    text = victim.read_text()
    assert '"failure":null' in text
    victim.write_text(text.replace('"failure":null', '"failure":"connection_reset"', 1))
    again = timeline_json(str(history))
    assert [s["path"] for s in again["skipped"]] == [str(victim)]
    assert "INVALID" in again["skipped"][0]["reason"]


def test_other_trusted_keys_or_no_verify_do_not_reuse_entries(history, tmp_path):
    timeline_json(str(history))  # fills the cache: verified against the trust store
    other = tmp_path / "other_signers"
    other.write_text(
        "someone ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"
    )
    result = runner.invoke(app, ["timeline", str(history), "--allowed-signers", str(other)])
    # Nobody in that file signed these runs: every file is checked again and refused.
    assert result.exit_code == 2
    assert f"none of the {HOURS} files could be used" in result.stderr
    assert "UNTRUSTED signer SHA256:" in result.stderr
    options = ReadOptions(verify=False)
    _, cache = read_all(history, options)
    assert (cache.hits, cache.misses) == (0, HOURS)


def test_no_cache_writes_nothing(history):
    timeline_json(str(history), "--no-cache")
    assert not cache_file().exists()


def test_unusable_cache_warns_and_the_timeline_still_works(history, tmp_path, monkeypatch):
    expected = timeline_json(str(history), "--no-cache")
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be\n")
    monkeypatch.setenv(CACHE_ENV, str(blocker))
    result = runner.invoke(app, ["timeline", str(history), "--format", "json", "--jobs", "1"])
    assert result.exit_code == 0, result.output
    assert "summary cache" in result.stderr and "not used" in result.stderr
    assert json.loads(result.stdout) == expected


def test_corrupt_cache_file_warns_and_the_timeline_still_works(history):
    expected = timeline_json(str(history), "--no-cache")
    cache_file().parent.mkdir(parents=True, exist_ok=True)
    cache_file().write_bytes(b"this is not a database" * 100)
    result = runner.invoke(app, ["timeline", str(history), "--format", "json", "--jobs", "1"])
    assert result.exit_code == 0, result.output
    assert "not used" in result.stderr
    assert json.loads(result.stdout) == expected


def test_damaged_entry_is_a_miss_and_gets_replaced(history):
    timeline_json(str(history))
    with sqlite3.connect(cache_file()) as db:
        db.execute("UPDATE summaries SET summary = x'00'")
    options = ReadOptions(verify=True)
    results, cache = read_all(history, options)
    assert (cache.hits, cache.misses) == (0, HOURS)
    assert not any(isinstance(r, Skipped) for r in results)
    _, cache = read_all(history, options)
    assert (cache.hits, cache.misses) == (HOURS, 0)


def test_reader_without_a_cache_file_finds_nothing(tmp_path):
    reader = SummaryCache(tmp_path / "absent.sqlite3", writable=False)
    assert reader.get("0" * 64) is None and not (tmp_path / "absent.sqlite3").exists()


def stamps_in_cache() -> int:
    with sqlite3.connect(cache_file()) as db:
        return db.execute("SELECT count(*) FROM stamps").fetchone()[0]


def test_unchanged_files_are_found_by_their_stat_stamp_without_being_read(history, monkeypatch):
    monkeypatch.setattr(cache_module, "SETTLED_NS", 0)  # the copy is only just written
    options = ReadOptions(verify=True, allowed_signers=str(history / "allowed_signers"))
    first, cache = read_all(history, options)
    assert (cache.hits, cache.misses) == (0, HOURS)
    assert stamps_in_cache() == HOURS

    def no_reading(*_args):
        raise AssertionError("a stamped file was read")

    monkeypatch.setattr(files_module, "file_key", no_reading)
    monkeypatch.setattr(files_module, "summarise_file", no_reading)
    again, cache = read_all(history, options)
    assert (cache.hits, cache.misses) == (HOURS, 0)
    assert sorted(again, key=lambda r: r.source) == sorted(first, key=lambda r: r.source)


def test_a_rewrite_keeping_size_and_mtime_is_read_again(history, monkeypatch):
    monkeypatch.setattr(cache_module, "SETTLED_NS", 0)
    options = ReadOptions(verify=True, allowed_signers=str(history / "allowed_signers"))
    read_all(history, options)
    victim = sorted(history.glob("*.jsonl"))[5]
    data, info = victim.read_bytes(), victim.stat()
    assert b'"failure":null,' in data
    edited = data.replace(b'"failure":null,', b'"failure":true,', 1)  # the same size
    victim.write_bytes(edited)
    os.utime(victim, ns=(info.st_atime_ns, info.st_mtime_ns))  # mtime back; ctime moves on
    assert victim.stat().st_size == info.st_size
    results, cache = read_all(history, options)
    assert (cache.hits, cache.misses) == (HOURS - 1, 0)
    skipped = [r for r in results if isinstance(r, Skipped)]
    assert [s.path for s in skipped] == [str(victim)]
    assert "INVALID" in skipped[0].reason


def test_a_recently_changed_file_gets_no_stamp(history):
    # Written less than SETTLED_NS ago: a write in the same clock tick would keep its ctime.
    options = ReadOptions(verify=True, allowed_signers=str(history / "allowed_signers"))
    _, cache = read_all(history, options)
    assert cache.misses == HOURS
    assert stamps_in_cache() == 0
    _, cache = read_all(history, options)
    assert (cache.hits, cache.misses) == (HOURS, 0)  # found by content instead


def used_marks() -> list[tuple[str, int]]:
    with sqlite3.connect(cache_file()) as db:
        rows = db.execute("SELECT 's' || key, used FROM summaries UNION ALL "
                          "SELECT 't' || stamp, used FROM stamps").fetchall()  # fmt: skip
    return sorted(rows)


def age_marks_and_read_again(history: Path, options: ReadOptions, seconds: int):
    """Move every entry's and stamp's "used" mark back by `seconds`, then read the history
    again (all from the cache): the marks before and after that read."""
    with sqlite3.connect(cache_file()) as db:
        db.execute("UPDATE summaries SET used = used - ?", (seconds,))
        db.execute("UPDATE stamps SET used = used - ?", (seconds,))
    before = used_marks()
    _, cache = read_all(history, options)
    assert (cache.hits, cache.misses) == (HOURS, 0)
    return before, used_marks()


def test_a_warm_run_within_the_day_marks_nothing_and_an_older_mark_is_renewed(history, monkeypatch):
    # "used" only decides what KEEP_DAYS drops: renewing it more than once a day writes for
    # nothing on every warm run; an entry last used days ago is still marked used again.
    monkeypatch.setattr(cache_module, "SETTLED_NS", 0)
    options = ReadOptions(verify=True, allowed_signers=str(history / "allowed_signers"))
    read_all(history, options)
    before, after = age_marks_and_read_again(history, options, 3600)
    assert after == before  # an hour old: left as it is
    stale, renewed = age_marks_and_read_again(history, options, 2 * 86400)
    assert len(renewed) == len(stale) == 2 * HOURS
    assert all(new[1] > old[1] + 86400 for new, old in zip(renewed, stale, strict=True))


def test_a_warm_read_starts_no_pool_and_hard_links_keep_their_own_source(history, monkeypatch):
    monkeypatch.setattr(cache_module, "SETTLED_NS", 0)
    victim = sorted(history.glob("*.jsonl"))[3]
    link = history / "sub" / victim.name
    link.parent.mkdir()
    os.link(victim, link)
    options = ReadOptions(allowed_signers=str(history / "allowed_signers"))
    first, cache = read_all(history, options, jobs=2)
    assert (cache.hits, cache.misses) == (0, HOURS + 1)

    def no_pool(*_args):
        raise AssertionError("a pool was started for a warm read")

    monkeypatch.setattr(files_module, "get_context", no_pool)
    again, cache = read_all(history, options, jobs=2)
    assert (cache.hits, cache.misses) == (HOURS + 1, 0)
    assert sorted(r.source for r in again) == sorted(
        str(p) for p in [*history.glob("*.jsonl"), link]
    )
    assert sorted(again, key=lambda r: r.source) == sorted(first, key=lambda r: r.source)


def test_a_damaged_entry_found_by_stamp_is_read_again(history, monkeypatch):
    monkeypatch.setattr(cache_module, "SETTLED_NS", 0)
    options = ReadOptions(allowed_signers=str(history / "allowed_signers"))
    first, _ = read_all(history, options)
    with sqlite3.connect(cache_file()) as db:
        db.execute("UPDATE summaries SET summary = substr(summary, 1, 40)")
    again, cache = read_all(history, options)
    assert (cache.hits, cache.misses) == (0, HOURS)
    assert sorted(again, key=lambda r: r.source) == sorted(first, key=lambda r: r.source)
