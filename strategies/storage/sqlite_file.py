"""`SqliteFile`: one SQLite database file used from async code (the session store, the response cache).

WAL mode, so readers (`chorus-mcp cache stats`, other server processes) never wait for a writer;
`synchronous=NORMAL`: a committed write survives a process crash (not a power cut); a 10 s busy
time-out for other processes' writes. sqlite3 is blocking, so every operation runs in a worker thread,
one at a time per file.

Errors have two audiences. A failure while serving becomes the caller's `ChorusError` naming the file by
its name only (a tool result must not tell a client where the server keeps its files); the log line
beside it has the whole path. `open_now`, called at start-up, opens the file at once and turns a
read-only or corrupt file into a `ConfigError` for the operator, with the whole path and the fix.
"""

from __future__ import annotations

import errno
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import anyio

from chorus_mcp.strategies.core.errors import ChorusError, ConfigError

T = TypeVar("T")

log = logging.getLogger("chorus.storage")

_READ_ONLY = ("readonly", "read-only", "unable to open", "permission", "disk i/o")
_CORRUPT = ("not a database", "malformed", "corrupt", "encrypted")


class SqliteFile:
    def __init__(
        self,
        path: Path,
        *,
        schema: Sequence[str],
        error: Callable[[str], ChorusError],
        what: str,
        pragmas: Sequence[str] = (),
        setting: str | None = None,
        migrate: Callable[[sqlite3.Connection], None] | None = None,
    ) -> None:
        """`schema`: statements run in one transaction when the file is first opened (so `IF NOT EXISTS`),
        then `migrate(connection)` in the same transaction (bring an older file's tables up to date);
        `error(message)` is raised for a sqlite3 error, the message starting with `what` and the file's
        name. `setting`: the config key that chooses the file, named in start-up errors."""
        self.path = path
        self._schema = schema
        self._error = error
        self._what = what
        self._pragmas = pragmas
        self._setting = setting
        self._migrate = migrate
        self._conn: sqlite3.Connection | None = None
        self._thread_lock = threading.Lock()
        self._limiter = anyio.CapacityLimiter(1)

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """`fn(connection)` in a worker thread, alone on this file."""

        def locked() -> T:
            with self._thread_lock:
                return fn(self._connection())

        try:
            return await anyio.to_thread.run_sync(locked, limiter=self._limiter)
        except (sqlite3.Error, OSError) as exc:
            log.warning("%s %s: %s: %s", self._what, self.path, type(exc).__name__, exc)
            shown = str(exc).replace(str(self.path), self.path.name).replace(str(self.path.parent), "…")
            raise self._error(f"{self._what} {self.path.name}: {type(exc).__name__}: {shown}") from exc

    def open_now(self) -> None:
        """Open (create, migrate) the file now, in this thread: at start-up, before anything is served.
        A file that cannot be written or is not a SQLite database raises `ConfigError` with its whole
        path and what to do."""
        try:
            with self._thread_lock:
                conn = self._connection()
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except (sqlite3.Error, OSError) as exc:
            raise ConfigError(self._startup_problem(exc)) from None

    def _startup_problem(self, exc: BaseException) -> str:
        text = str(exc).lower()
        setting = f"set {self._setting} to another file" if self._setting else "choose another file"
        where = f"{self._what} {self.path}"
        if isinstance(exc, sqlite3.DatabaseError) and any(word in text for word in _CORRUPT):
            return (
                f"{where} is not a usable SQLite database ({exc}): it is corrupt or another kind of file. "
                f"Fix: move it aside (what it held is lost; keep it to inspect) and start again, or {setting}"
            )
        denied = isinstance(exc, PermissionError) or getattr(exc, "errno", None) in (
            errno.EACCES,
            errno.EROFS,
        )
        if denied or any(word in text for word in _READ_ONLY):
            return (
                f"{where} cannot be opened for writing ({type(exc).__name__}: {exc}): the file or its "
                f"directory {self.path.parent} is read-only for this user. Fix: make both writable by the "
                f"user the server runs as, or {setting} in a writable directory"
            )
        return f"{where} cannot be used ({type(exc).__name__}: {exc}). Fix: check the file, or {setting}"

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=False)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("PRAGMA busy_timeout=10000")
                for pragma in self._pragmas:
                    conn.execute(pragma)
                with transaction(conn):
                    # Statement by statement: `executescript` would commit the open transaction first.
                    for statement in self._schema:
                        conn.execute(statement)
                    if self._migrate is not None:
                        self._migrate(conn)
            except BaseException:
                conn.close()  # a broken file is opened afresh next time, not half-set-up
                raise
            self._conn = conn
        return self._conn

    @property
    def is_open(self) -> bool:
        return self._conn is not None

    async def aclose(self, last: Callable[[sqlite3.Connection], None] | None = None) -> None:
        """Close the connection (after `last(connection)`, when given), if it was ever opened."""

        def close(conn: sqlite3.Connection) -> None:
            try:
                if last is not None:
                    last(conn)
            finally:
                conn.close()
                self._conn = None

        if self._conn is not None:
            await self.run(close)


@contextmanager
def transaction(conn: sqlite3.Connection, *, immediate: bool = True) -> Iterator[sqlite3.Connection]:
    """`BEGIN IMMEDIATE` (a write lock up front; or a plain read transaction) … `COMMIT`; rolled back on
    any exception."""
    conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
