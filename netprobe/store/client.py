"""A small ClickHouse HTTP client over httpx: statements, JSONEachRow inserts, TSV/JSON reads.

Rules:
- The URL names the server and, optionally, the database as its path
  (`http://127.0.0.1:8123/netprobe`; default database `netprobe`). A URL carrying a user name or
  a password is refused: credentials come from `$NETPROBE_CLICKHOUSE_USER` and
  `$NETPROBE_CLICKHOUSE_PASSWORD`, else from the credentials file (`$NETPROBE_CLICKHOUSE_CONFIG`,
  else `$XDG_CONFIG_HOME/netprobe/clickhouse.conf`: `user = NAME` and `password = SECRET` lines),
  else ClickHouse's `default` user. They travel in the X-ClickHouse-User/-Key headers only.
- Every server or transport problem is a `StoreError` with a one-line message (the server's first
  line), never a traceback; `StoreUnavailable` (a subclass) means "not reachable now, try later".
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

DEFAULT_DATABASE = "netprobe"
USER_ENV = "NETPROBE_CLICKHOUSE_USER"
PASSWORD_ENV = "NETPROBE_CLICKHOUSE_PASSWORD"
CONFIG_ENV = "NETPROBE_CLICKHOUSE_CONFIG"
CONFIG_NAME = "clickhouse.conf"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class StoreError(Exception):
    """A ClickHouse problem, as one line for the user."""


class StoreUnavailable(StoreError):
    """The server could not be reached (connection refused, timeout, 5xx while starting)."""


@dataclass(frozen=True)
class Credentials:
    user: str | None = None
    password: str | None = None
    source: str = "none"


def default_config_path() -> Path:
    explicit = os.environ.get(CONFIG_ENV)
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(xdg) / "netprobe" / CONFIG_NAME


def load_credentials(path: Path | None = None) -> Credentials:
    """Environment first, then the credentials file; a malformed file is a StoreError."""
    user, password = os.environ.get(USER_ENV), os.environ.get(PASSWORD_ENV)
    if user or password:
        return Credentials(user, password, "environment")
    path = path or default_config_path()
    if not path.is_file():
        return Credentials()
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or key not in ("user", "password"):
            raise StoreError(f"{path}:{number}: expected 'user = NAME' or 'password = SECRET'")
        values[key] = value.strip()
    return Credentials(values.get("user"), values.get("password"), str(path))


def parse_url(url: str) -> tuple[str, str]:
    """(server base URL, database) from `http(s)://host:port[/database]`."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise StoreError(f"--clickhouse {url!r}: expected http://HOST:PORT[/DATABASE]")
    if parts.username or parts.password:
        raise StoreError(
            f"--clickhouse: the URL must not carry credentials; set ${USER_ENV} and "
            f"${PASSWORD_ENV} or write them to {default_config_path()}"
        )
    database = parts.path.strip("/") or DEFAULT_DATABASE
    if not _NAME.match(database):
        raise StoreError(f"--clickhouse: bad database name {database!r}")
    return f"{parts.scheme}://{parts.netloc}", database


class ClickHouse:
    """One server and database; `close()` (or `with`) releases the connection pool."""

    def __init__(
        self, url: str, credentials: Credentials | None = None, timeout: float = 60.0
    ) -> None:
        self.base, self.database = parse_url(url)
        creds = credentials if credentials is not None else load_credentials()
        self._url, self._credentials, self._timeout = url, creds, timeout
        headers = {}
        if creds.user:
            headers["X-ClickHouse-User"] = creds.user
        if creds.password:
            headers["X-ClickHouse-Key"] = creds.password
        self._http = httpx.Client(base_url=self.base, headers=headers, timeout=timeout)

    def __enter__(self) -> ClickHouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def copy(self) -> ClickHouse:
        """The same server, database and credentials on connections of its own (for a forked
        worker: an HTTP connection is never shared across processes)."""
        return ClickHouse(self._url, self._credentials, self._timeout)

    def _post(self, query: str, body: bytes | list[bytes] | None = None) -> httpx.Response:
        """`body` as a list of pieces goes out chunked, piece by piece (`_chunks`)."""
        params = {"database": self.database} if body is not None else {}
        content = _chunks(body) if isinstance(body, list) else body
        try:
            if content is None:
                response = self._http.post("/", content=query.encode(), params=params)
            else:
                response = self._http.post("/", content=content, params={**params, "query": query})
        except httpx.TransportError as exc:
            raise StoreUnavailable(
                f"ClickHouse at {self.base}: {type(exc).__name__}: {exc}"
            ) from None
        if response.status_code != 200:
            first = (response.text.strip().splitlines() or [""])[0][:500]
            error = (
                StoreUnavailable
                if response.status_code >= 500 and "Code:" not in first
                else StoreError
            )
            raise error(f"ClickHouse at {self.base}: HTTP {response.status_code}: {first}")
        return response

    def execute(self, statement: str) -> str:
        """Run one statement (DDL, or a query with its FORMAT); the response text."""
        return self._post(statement).text

    def insert(self, table: str, rows: Iterable[dict]) -> int:
        """INSERT rows (dicts) as JSONEachRow in one request; returns the row count."""
        lines = [json.dumps(row, separators=(",", ":"), ensure_ascii=False) for row in rows]
        if not lines:
            return 0
        body = ("\n".join(lines) + "\n").encode()
        self._post(f"INSERT INTO {self.database}.{table} FORMAT JSONEachRow", body)
        return len(lines)

    def rows(self, query: str) -> Iterator[dict]:
        """A SELECT's rows as dicts (the query must not name a FORMAT)."""
        text = self._post(query + "\nFORMAT JSONEachRow").text
        for line in text.splitlines():
            if line:
                yield json.loads(line)

    def tsv(self, query: str) -> list[list[str]]:
        """A SELECT's rows as lists of TabSeparated fields (fast for large plain results)."""
        text = self._post(query + "\nFORMAT TabSeparated").text
        return [line.split("\t") for line in text.splitlines() if line]

    def raw(self, query: str, fmt: str = "RowBinary") -> bytes:
        """A SELECT's result in a binary format (see `store.rowbinary`)."""
        return self._post(f"{query}\nFORMAT {fmt}").content

    def ping(self) -> bool:
        try:
            return self._http.get("/ping").status_code == 200
        except httpx.TransportError:
            return False


_CHUNK = 1 << 20


def _chunks(pieces: list[bytes]) -> Iterator[bytes]:
    """A request body's pieces as HTTP chunks of at most 1 MiB, without joining them first.

    (httpcore sends a buffer by slicing off what the socket took, a copy of the rest each time:
    a 30 MB INSERT in one piece is copied over and over.)"""
    for piece in pieces:
        view = memoryview(piece)
        for start in range(0, len(view), _CHUNK):
            yield view[start : start + _CHUNK]  # type: ignore[misc]  # httpx sends memoryviews


def insert_body(
    client: ClickHouse,
    table: str,
    body: bytes | list[bytes],
    fmt: str = "JSONEachRow",
    columns: tuple[str, ...] | None = None,
) -> None:
    """INSERT pre-encoded rows (what `ingest`'s workers produce) in one request; `body` may be
    the pieces (one per file), sent as they are."""
    if isinstance(body, list):
        body = [piece for piece in body if piece]
    if body:
        names = f" ({', '.join(columns)})" if columns else ""
        client._post(f"INSERT INTO {client.database}.{table}{names} FORMAT {fmt}", body)
