"""Cache of per-file timeline summaries, so re-running `netprobe timeline` over a growing
history analyses only the files it has not seen.

Rules:
- Keyed by content, never by name or date: the key is a SHA-256 over the file's bytes and over
  everything else that decides its summary (verification on or off, the allowed_signers file's
  bytes, and a fingerprint of the reading and analysis code). Same key, same summary: a cached
  entry is exactly what verifying and analysing the file again would give. An edited, grown
  (`.partial`) or re-signed file has a new key; a new netprobe version starts afresh.
- The code fingerprint covers every netprobe module that `summarise_file` can run: the modules
  `SUMMARY_ENTRY_POINT` imports, directly or not, at module level or inside a function, found by
  reading their import statements (never a hand-kept list, so a new module cannot be forgotten).
  Editing any of them changes every key; editing a module off that path (the CLI) changes none.
- Stamps (a warm timeline reads no file): a file's stat stamp (device, inode, size, mtime and
  ctime in ns, under the same context) also leads to its content key, so an unchanged file is
  found without reading its bytes. Any write to a file, and any rename over it, moves its ctime
  forward, and user space cannot set a ctime; a file created in an old one's place has a new
  ctime too. The one gap is a write within the same clock tick as the stat: so a stamp is only
  recorded when the file's ctime is `SETTLED_NS` older than the stat, and the stat is the same
  after the bytes were hashed (the "racy git" rule). A stamp maps only to the content key of a
  file that was hashed with that stamp; every entry is still the summary of bytes that verified.
  Someone who can set the system clock back can forge a ctime; they could also edit this cache.
- Only `RunSummary`s are stored (run id, vantage, time, health, per-layer scores and methods;
  the layout is `netprobe.timeline.entry`'s), never records or anything the result files do not already hold. Unusable files are not cached:
  they are read again and reported again.
- The cache is an optimisation and never an error: if it cannot be opened, read or written, the
  timeline runs without it (`SummaryCache.problem` says why, once). Workers only read it; the
  main process reads (stamps, `get_stamped_many`) and is the only writer.
- Location: `$NETPROBE_CACHE_DIR/timeline.sqlite3`, else `$XDG_CACHE_HOME/netprobe/...`, else
  `~/.cache/netprobe/...`. Entries unused for `KEEP_DAYS` are dropped when a writer closes.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import os
import sqlite3
import stat
import time
from pathlib import Path

# The stored form of a summary (timeline.entry), used through this module.
from netprobe.timeline.entry import decode_summary as decode_summary
from netprobe.timeline.entry import encode_summary as encode_summary
from netprobe.timeline.runs import RunSummary

CACHE_ENV = "NETPROBE_CACHE_DIR"
CACHE_FILE = "timeline.sqlite3"
KEEP_DAYS = 180
# Stamps per `get_stamped_many` query: below SQLite's smallest bound-parameter limit (999).
_STAMPS_PER_QUERY = 500
TOUCH_SECONDS = 86400  # "used" is kept to the day: a hit used within it is not marked again
FORMAT = 4  # bump when the stored summary layout changes (timeline.entry)
# The module of `summarise_file`: the code of everything it imports decides a summary.
SUMMARY_ENTRY_POINT = "netprobe.timeline.files"
_PACKAGE = "netprobe"
_SOURCE_ROOT = Path(__file__).resolve().parent.parent.parent  # the folder holding netprobe/


def default_cache_path() -> Path:
    base = os.environ.get(CACHE_ENV)
    if not base:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = str(Path(xdg) / "netprobe") if xdg else str(Path.home() / ".cache" / "netprobe")
    return Path(base) / CACHE_FILE


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """SHA-256 over netprobe's version and the source of every module a summary depends on."""
    from netprobe import __version__

    digest = hashlib.sha256(f"netprobe {__version__} cache format {FORMAT}\n".encode())
    for name in summary_modules():
        digest.update(name.encode() + b"\0" + module_source(name) + b"\0")
    return digest.hexdigest()


def summary_modules(entry: str = SUMMARY_ENTRY_POINT) -> tuple[str, ...]:
    """`entry` and every netprobe module (and package) it imports, transitively, sorted.

    Read from the import statements anywhere in each module, so imports inside functions (how
    `summarise_file` loads the reader and the analysis) count as well as module-level ones.
    """
    found: set[str] = set()
    pending = [entry]
    while pending:
        name = pending.pop()
        if name in found:
            continue
        path = _module_path(name)
        if path is None:
            continue  # not a netprobe module: another library, or a name inside a module
        found.add(name)
        parts = name.split(".")
        pending += [".".join(parts[:size]) for size in range(1, len(parts))]  # its packages
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        pending += _imported_names(ast.parse(path.read_bytes(), str(path)), package)
    return tuple(sorted(found))


def module_source(name: str) -> bytes:
    """The source bytes of netprobe module `name` (what the fingerprint hashes)."""
    path = _module_path(name)
    if path is None:
        raise ValueError(f"{name} is not a netprobe module")
    return path.read_bytes()


def _module_path(name: str) -> Path | None:
    if name != _PACKAGE and not name.startswith(_PACKAGE + "."):
        return None
    base = _SOURCE_ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_names(tree: ast.AST, package: str) -> list[str]:
    # Candidate module names: for `from a.b import c`, both `a.b` and `a.b.c` (c may be a module).
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{node.module}" if node.module else anchor
            else:
                base = node.module or ""
            names.append(base)
            names += [f"{base}.{alias.name}" for alias in node.names if alias.name != "*"]
    return names


def context_digest(verify: bool, allowed_signers: str | None, trust: bytes = b"") -> bytes:
    """What besides the file decides its summary; raises OSError if allowed_signers is unreadable.

    `trust`: what decides which signers are used (`evidence.trust.trust_digest` and the
    --accept-untrusted flag), so a summary of a file trusted before is not reused once it is not.
    """
    digest = hashlib.sha256(code_fingerprint().encode())
    digest.update(b"verify" if verify else b"no-verify")
    if verify and allowed_signers:
        digest.update(b"allowed_signers\0" + Path(allowed_signers).read_bytes())
    if verify and trust:
        digest.update(b"trust\0" + trust)
    return digest.digest()


def file_key(path: Path, context: bytes) -> str:
    """The cache key of one result file (reads the whole file; raises OSError)."""
    digest = hashlib.sha256(context)
    with open(path, "rb", buffering=0) as handle:
        digest = hashlib.file_digest(handle, lambda: digest)  # type: ignore[arg-type]
    return digest.hexdigest()


# A stamp is only trusted for a file last changed this long before the stat (the rule above):
# far beyond any file system's timestamp granularity (ext4/xfs: a clock tick, FAT: 2 s).
SETTLED_NS = 3_000_000_000


def file_stamp(path: Path, context: bytes) -> str | None:
    """The stat stamp of a regular file, None if it changed too recently (raises OSError)."""
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode) or time.time_ns() - info.st_ctime_ns < SETTLED_NS:
        return None
    digest = hashlib.sha256(context)
    digest.update(
        f"stamp {info.st_dev} {info.st_ino} {info.st_size} {info.st_mtime_ns} "
        f"{info.st_ctime_ns}".encode()
    )
    return digest.hexdigest()


class SummaryCache:
    """One SQLite file of key -> compressed summary. Any failure disables it; `problem` says why."""

    def __init__(self, path: Path, *, writable: bool) -> None:
        self.path = Path(path)
        self.writable = writable
        self.problem: str | None = None
        self._db: sqlite3.Connection | None = None
        self._new: list[tuple[str, bytes, int]] = []  # (key, summary, used), written in batches
        self._used: list[tuple[int, str]] = []  # (used, key) of entries found again
        self._stamps: list[tuple[str, str, int]] = []  # (stamp, key, used), new or found again
        self.hits = self.misses = 0  # counted by the reader of results (timeline_files)
        self.context = b""  # context_digest() of the reading options, set by its opener
        try:
            if writable:
                self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                self._db = sqlite3.connect(self.path, timeout=10)
                self._db.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
                # A cache: a commit lost to a power cut is only recomputed, so no fsync per batch.
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.execute(
                    "CREATE TABLE IF NOT EXISTS summaries "
                    "(key TEXT PRIMARY KEY, summary BLOB NOT NULL, used INTEGER NOT NULL)"
                )
                self._db.execute(
                    "CREATE TABLE IF NOT EXISTS stamps "
                    "(stamp TEXT PRIMARY KEY, key TEXT NOT NULL, used INTEGER NOT NULL)"
                )
                self._db.commit()
            elif self.path.exists():
                self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=10)
        except (sqlite3.Error, OSError) as exc:
            self.disable(exc)

    @property
    def usable(self) -> bool:
        return self._db is not None

    def disable(self, exc: Exception) -> None:
        """Stop using the cache, remembering why (the CLI prints it once)."""
        self.problem = self.problem or f"summary cache {self.path} not used: {exc}"
        if self._db is not None:
            try:
                self._db.close()
            except sqlite3.Error:
                pass
        self._db = None

    def get(self, key: str) -> RunSummary | None:
        if self._db is None:
            return None
        try:
            row = self._db.execute("SELECT summary FROM summaries WHERE key = ?", (key,)).fetchone()
            found = decode_summary(row[0]) if row else None
        except sqlite3.Error as exc:
            self.disable(exc)
            return None
        except ValueError:
            found = None  # a damaged entry is a miss; the writer replaces it
        return found

    def get_stamped(self, stamp: str) -> tuple[str, RunSummary, bool] | None:
        """(content key, summary, recently used) of the file last hashed with this stat stamp.

        Recently used: the entry and its stamp were both marked used within `TOUCH_SECONDS`, so
        marking them again would change nothing that `KEEP_DAYS` can tell apart (a warm run
        writes nothing for them)."""
        if self._db is None:
            return None
        try:
            row = self._db.execute(
                "SELECT s.key, s.summary, min(s.used, t.used) FROM stamps t "
                "JOIN summaries s ON s.key = t.key WHERE t.stamp = ?",
                (stamp,),
            ).fetchone()
            if not row:
                return None
            recent = row[2] >= int(time.time()) - TOUCH_SECONDS
            return (row[0], decode_summary(row[1]), recent)
        except sqlite3.Error:
            return None  # e.g. a cache written before stamps: the content key still works
        except ValueError:
            return None

    def get_stamped_many(self, sources: dict[str, str]) -> dict[str, tuple[str, RunSummary, bool]]:
        """`get_stamped` of many stamps in a few queries: stamp -> (key, summary, recent).

        `sources`: stamp -> the path its summary is given as `source`. Stamps not found, and
        entries that do not decode, are left out (misses)."""
        stamps = list(sources)
        found: dict[str, tuple[str, RunSummary, bool]] = {}
        if self._db is None:
            return found
        recent_since = int(time.time()) - TOUCH_SECONDS
        try:
            for start in range(0, len(stamps), _STAMPS_PER_QUERY):
                chunk = stamps[start : start + _STAMPS_PER_QUERY]
                rows = self._db.execute(
                    "SELECT t.stamp, s.key, s.summary, min(s.used, t.used) FROM stamps t "
                    "JOIN summaries s ON s.key = t.key "
                    f"WHERE t.stamp IN ({','.join('?' * len(chunk))})",
                    chunk,
                ).fetchall()
                for stamp, key, blob, used in rows:
                    try:
                        summary = decode_summary(blob, source=sources[stamp])
                        found[stamp] = (key, summary, used >= recent_since)
                    except ValueError:
                        pass  # a damaged entry is a miss; the writer replaces it
        except sqlite3.Error:
            return {}  # e.g. a cache written before stamps: the content key still works
        return found

    def put_stamp(self, stamp: str, key: str) -> None:
        """Record that the file with this stat stamp has content key `key` (batched)."""
        if self._db is not None and self.writable:
            self._stamps.append((stamp, key, int(time.time())))
            if len(self._stamps) >= 256:
                self.flush()

    def put(self, key: str, blob: bytes) -> None:
        """Store `encode_summary(run)` under `key` (written in batches)."""
        if self._db is None or not self.writable:
            return
        self._new.append((key, blob, int(time.time())))
        if len(self._new) >= 256:
            self.flush()

    def touch(self, key: str) -> None:
        """Mark an entry as used now (entries unused for KEEP_DAYS are dropped)."""
        if self._db is not None and self.writable:
            self._used.append((int(time.time()), key))
            if len(self._used) >= 256:
                self.flush()

    def flush(self) -> None:
        new, used, stamps = self._new, self._used, self._stamps
        self._new, self._used, self._stamps = [], [], []
        if self._db is None or not (new or used or stamps):
            return
        try:
            with self._db:
                self._db.executemany("INSERT OR REPLACE INTO summaries VALUES (?, ?, ?)", new)
                self._db.executemany("UPDATE summaries SET used = ? WHERE key = ?", used)
                self._db.executemany("INSERT OR REPLACE INTO stamps VALUES (?, ?, ?)", stamps)
        except sqlite3.Error as exc:
            self.disable(exc)

    def close(self) -> None:
        if self._db is None:
            return
        self.flush()
        try:
            if self.writable and self._db is not None:
                with self._db:
                    cutoff = int(time.time()) - KEEP_DAYS * 86400
                    self._db.execute("DELETE FROM summaries WHERE used < ?", (cutoff,))
                    self._db.execute("DELETE FROM stamps WHERE used < ?", (cutoff,))
            if self._db is not None:
                self._db.close()
        except sqlite3.Error as exc:
            self.disable(exc)
        self._db = None
