"""File-reading layer of `netprobe timeline`: result files and folders -> `RunSummary`s.

Rules:
- Streaming: one file at a time, records go straight into `analysis.analyse`; only the small
  `RunSummary` survives, so memory does not grow with record counts.
- Folders are searched recursively for `*.jsonl` and for `.*.jsonl.partial` (a killed run's file
  is still evidence up to its last valid signature).
- A file that cannot be used is reported (`Skipped`) and the rest still counts; nothing raises
  for bad files, not even an unexpected error (it becomes a `Skipped` naming it, so the pool and
  the other files carry on). Files outside --since/--until are dropped after reading their header only.
- With `jobs > 1` files are read by a process pool (parsing and analysis are CPU-bound).
- With a summary cache (`netprobe.timeline.cache`), a file whose content was summarised before
  is not verified or analysed again. By stat stamp first, so an unchanged file is not even read
  (the trust rule is in the cache's docstring): the main process stats the files and looks the
  stamps up itself; workers look up the rest by content key; the main process writes.
- Trust (issue 11): verified files are checked against the trust store (or the
  --allowed-signers file) with `evidence.trust.signers_for`; a file whose signer is not among
  them is `Skipped` ("UNTRUSTED signer SHA256:...") unless `accept_untrusted`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

from netprobe.evidence.format import is_result_file
from netprobe.timeline.cache import (
    SummaryCache,
    context_digest,
    default_cache_path,
    encode_summary,
    file_key,
    file_stamp,
)
from netprobe.timeline.nogc import paused_gc
from netprobe.timeline.runs import RunSummary, parse_time, summary_from_analysis


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


@dataclass(frozen=True)
class ReadOptions:
    verify: bool = True
    allowed_signers: str | None = None  # replaces the trust store when given
    since: float | None = None
    until: float | None = None
    accept_untrusted: bool = False


UNTRUSTED_HINT = (
    "trust it with `netprobe keys trust KEY.pub --principal NAME` or --accept-untrusted"
)

# What the trust entries were read from (paths and their stat stamps) -> entries, per process:
# a timeline reads thousands of files against one trust store, re-read only when it changes.
_SIGNERS: dict[tuple, list] = {}


def _signers(options: ReadOptions) -> list:
    from netprobe.evidence.keys import default_key_path
    from netprobe.evidence.trust import default_trust_store_path, signers_for

    sources = (
        [options.allowed_signers]
        if options.allowed_signers
        else [
            str(default_trust_store_path()),
            f"{default_key_path()}.pub",
            str(default_key_path()),
        ]
    )
    slot = tuple((source, _stamp(source)) for source in sources)
    if slot not in _SIGNERS:
        allowed = Path(options.allowed_signers) if options.allowed_signers else None
        _SIGNERS.clear()
        _SIGNERS[slot] = signers_for(allowed)
    return _SIGNERS[slot]


def _stamp(path: str) -> tuple[int, int, int]:
    try:
        info = os.stat(path)
    except OSError:
        return (-1, -1, -1)
    return (info.st_mtime_ns, info.st_size, info.st_ino)


def expand_paths(paths: Iterable[Path]) -> tuple[list[Path], list[Skipped]]:
    """Files given directly plus result files found under folders, sorted by name, deduplicated."""
    found: set[Path] = set()
    missing: list[Skipped] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            for candidate in path.rglob("*"):
                # Not only regular files: a FIFO named like a result is reported by the reader.
                if is_result_file(candidate.name) and not candidate.is_dir():
                    found.add(candidate)
        elif path.exists():
            found.add(path)
        else:
            missing.append(Skipped(str(path), "no such file or folder"))
    # Names start with the UTC start time, so sorting by name reads runs roughly in time order.
    return sorted(found, key=lambda p: (p.name.lstrip("."), str(p))), missing


def summarise_file(path: Path, options: ReadOptions) -> RunSummary | Skipped | None:
    """One file -> RunSummary; None when outside the time range; Skipped when unusable."""
    from netprobe.analysis import analyse
    from netprobe.analysis.load import RunRefused, check_header, load_run
    from netprobe.evidence.keys import KeyFileError
    from netprobe.evidence.reader import ResultFileError, iter_records

    try:
        signers = _signers(options) if options.verify else None
        verification, records = iter_records(Path(path), verify=options.verify, signers=signers)
        if verification is not None and verification.trusted is False:
            if not options.accept_untrusted:
                fingerprint = verification.signer_fingerprint
                return Skipped(str(path), f"UNTRUSTED signer {fingerprint}; {UNTRUSTED_HINT}")
        records = iter(records)
        header = next(records, None)
        problem = check_header(header)  # the same refusals as `report` (analysis/load.py)
        if problem or header is None:
            return Skipped(str(path), problem or "no header")
        try:
            started = parse_time(str(header["started_at"]))
        except (KeyError, ValueError):
            return Skipped(str(path), "header has no valid started_at")
        if not _in_range(started, options):
            return None
        run = load_run(header, records)
        return summary_from_analysis(header, analyse(header, run.records, detail=False))
    except RunRefused as exc:
        return Skipped(str(path), str(exc))
    except (ResultFileError, KeyFileError) as exc:
        return Skipped(str(path), str(exc))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return Skipped(str(path), f"{type(exc).__name__}: {exc}")
    except (KeyError, TypeError, AttributeError) as exc:
        # Only reachable with --no-verify: a record that parses as JSON but not as our schema.
        return Skipped(
            str(path), f"records do not follow the result schema ({type(exc).__name__}: {exc})"
        )
    except Exception as exc:  # noqa: BLE001 - one bad file must not end the timeline
        return Skipped(str(path), f"{UNEXPECTED}{type(exc).__name__}: {exc}")


# The reason of a file skipped by the last-resort handler: a netprobe bug, not a bad file.
UNEXPECTED = "unexpected error while reading (please report): "


def _in_range(started: float, options: ReadOptions) -> bool:
    return not (
        (options.since is not None and started < options.since)
        or (options.until is not None and started > options.until)
    )


# Read-only cache connections, one per worker process, opened after the fork (a SQLite
# connection must never cross one).
_READERS: dict[tuple[int, str], SummaryCache] = {}


def _cache_reader(path: str) -> SummaryCache:
    slot = (os.getpid(), path)
    if slot not in _READERS:
        _READERS[slot] = SummaryCache(Path(path), writable=False)
    return _READERS[slot]


def _close_readers() -> None:
    for slot in [slot for slot in _READERS if slot[0] == os.getpid()]:
        _READERS.pop(slot).close()


@dataclass(frozen=True)
class _Job:
    path: Path
    options: ReadOptions
    cache_path: str | None = None
    context: bytes = b""


# (cache key or None, stat stamp to record or None, MISS/HIT/RECENT_HIT, encoded summary to
# store or None, summary). A RECENT_HIT's entry and stamp were marked used within the day
# (`cache.TOUCH_SECONDS`): nothing is written for it.
MISS, HIT, RECENT_HIT = 0, 1, 2
_Result = tuple[str | None, str | None, int, bytes | None, RunSummary | Skipped | None]


def _summarise_job(job: _Job) -> _Result:
    """One file through the cache: by stat stamp, else by content key, else read afresh."""
    if job.cache_path is None or not job.path.is_file():  # hashing a FIFO would block: the
        return None, None, MISS, None, _summarise(job)  # reader names it
    reader = _cache_reader(job.cache_path)
    try:
        stamp = file_stamp(job.path, job.context)
        stamped = reader.get_stamped(stamp) if stamp is not None else None
        if stamped is not None:  # unchanged since it was hashed: its bytes are not read
            key, found_summary, recent = stamped
            return key, stamp, RECENT_HIT if recent else HIT, None, _found(found_summary, job)
        key = file_key(job.path, job.context)
        if stamp is not None and file_stamp(job.path, job.context) != stamp:
            stamp = None  # changed while it was hashed: the stamp may not match these bytes
    except OSError:
        return None, None, MISS, None, _summarise(job)  # it names the error
    found = reader.get(key)
    if found is not None:
        return key, stamp, HIT, None, _found(found, job)
    result = _summarise(job)
    # Encoded here, in the worker, so the main process only inserts.
    blob = encode_summary(result) if isinstance(result, RunSummary) else None
    return key, stamp, MISS, blob, result


def _found(found: RunSummary, job: _Job) -> RunSummary | None:
    found = dataclasses.replace(found, source=str(job.path))
    return found if _in_range(found.started_at, job.options) else None


def _summarise(job: _Job) -> RunSummary | Skipped | None:
    with paused_gc():  # the file's records form no cycles (timeline.nogc)
        result = summarise_file(job.path, job.options)
    if isinstance(result, RunSummary):
        result = dataclasses.replace(result, source=str(job.path))
    return result


def open_cache(options: ReadOptions, path: Path | None = None) -> SummaryCache:
    """The writable summary cache for a timeline with these options (see timeline_cache)."""
    from netprobe.evidence.keys import KeyFileError
    from netprobe.evidence.trust import trust_digest

    cache = SummaryCache(path or default_cache_path(), writable=True)
    try:
        trust = b""
        if options.verify:
            allowed = Path(options.allowed_signers) if options.allowed_signers else None
            trust = trust_digest(allowed) + (b"accept" if options.accept_untrusted else b"only")
        cache.context = context_digest(options.verify, options.allowed_signers, trust)
    except (OSError, KeyFileError) as exc:
        cache.disable(exc)
    return cache


def read_runs(
    files: list[Path],
    options: ReadOptions,
    *,
    jobs: int | None = None,
    cache: SummaryCache | None = None,
) -> Iterator[RunSummary | Skipped]:
    """Summaries of `files` (order not guaranteed with jobs > 1); None results are dropped.

    With a `cache` (from `open_cache`), files seen before are not analysed again and new
    summaries are added to it; the caller closes it.
    """
    jobs = jobs if jobs is not None else (os.cpu_count() or 1)
    use_cache = cache is not None and cache.usable
    if use_cache:
        assert cache is not None
        cache.flush()  # workers read what earlier runs wrote
        rest: list[Path] = []
        yield from _collect(_stamped_results(files, options, cache, rest), cache)
        work = [_Job(path, options, str(cache.path), cache.context) for path in rest]
    else:
        work = [_Job(path, options) for path in files]
    if not work:
        return
    if jobs <= 1 or len(work) < 16:
        results: Iterable = map(_summarise_job, work)
        try:
            yield from _collect(results, cache if use_cache else None)
        finally:
            _close_readers()
        return
    # fork keeps start-up cheap; chunks amortise the pickling of small results.
    with get_context("fork").Pool(jobs) as pool:
        results = pool.imap_unordered(_summarise_job, work, chunksize=32)
        yield from _collect(results, cache if use_cache else None)


def _stamped_results(
    files: list[Path], options: ReadOptions, cache: SummaryCache, rest: list[Path]
) -> Iterator[_Result]:
    """The results of the files found by stat stamp, looked up here; `rest` gets the others.

    A warm timeline is all stamp hits: stat calls and one decode each in this process cost less
    than a pool's start, its per-file round trips and pickling the summaries back. What is not
    found (new, changed or unstamped files, not regular files) is left in `rest`, in file order,
    for `_summarise_job` as before. Files go in slices, so summaries still stream.
    """
    for start in range(0, len(files), _STAMP_SLICE):
        chunk = files[start : start + _STAMP_SLICE]
        stamps: dict[str, list[Path]] = {}
        for path in chunk:
            try:
                stamp = file_stamp(path, cache.context)
            except OSError:
                stamp = None  # `_summarise_job` names the error
            if stamp is not None:
                stamps.setdefault(stamp, []).append(path)  # hard links share a stamp
        found = cache.get_stamped_many({stamp: str(paths[0]) for stamp, paths in stamps.items()})
        for stamp, (key, summary, recent) in found.items():
            hit = RECENT_HIT if recent else HIT
            for index, path in enumerate(stamps[stamp]):
                # Decoded with the first path as its source; another link gets its own.
                same = summary if index == 0 else dataclasses.replace(summary, source=str(path))
                yield key, stamp, hit, None, same if _in_range(same.started_at, options) else None
        done = {path for stamp in found for path in stamps[stamp]}
        rest += [path for path in chunk if path not in done]


# Files stamped and looked up at a time by `_stamped_results` (one query each).
_STAMP_SLICE = 500


def _collect(results: Iterable, cache: SummaryCache | None) -> Iterator[RunSummary | Skipped]:
    # No cyclic GC while the summaries come in (timeline.nogc): the caller's builder grows to
    # hundreds of thousands of small tuples that every full collection would walk again.
    with paused_gc():
        for key, stamp, hit, blob, result in results:
            if cache is not None and key is not None:
                if hit == RECENT_HIT:
                    cache.hits += 1  # marked used within the day: nothing to write
                elif hit:
                    cache.hits += 1
                    cache.touch(key)
                elif blob is not None:
                    cache.misses += 1
                    cache.put(key, blob)
                if stamp is not None and hit != RECENT_HIT and (hit or blob is not None):
                    cache.put_stamp(stamp, key)  # a stamp found again is marked as used
            if result is not None:
                yield result
