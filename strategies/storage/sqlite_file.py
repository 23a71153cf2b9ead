"""`SqliteFile`: one SQLite database file used from async code (the session store, the response cache).

WAL mode, so readers (`chorus-mcp cache stats`, other server processes) never wait for a writer;
`synchronous=NORMAL`: a committed write survives a process crash (not a power cut); a 10 s busy
time-out for other processes' writes. sqlite3 is blocking, so every operation runs in a worker thread,
one at a time per file; a sqlite3 error becomes the caller's `ChorusError` naming the file.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import anyio

from chorus_mcp.strategies.core.errors import ChorusError

T = TypeVar("T")


class SqliteFile:
    def __init__(
        self,
        path: Path,
        *,
        schema: Sequence[str],
        error: Callable[[str], ChorusError],
        what: str,
        pragmas: Sequence[str] = (),
    ) -> None:
        """`schema`: statements run in one transaction when the file is first opened (so `IF NOT EXISTS`);
        `error(message)` is raised for a sqlite3 error, the message starting with `what` and the path."""
        self.path = path
        self._schema = schema
        self._error = error
        self._what = what
        self._pragmas = pragmas
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
        except sqlite3.Error as exc:
            raise self._error(f"{self._what} {self.path}: {type(exc).__name__}: {exc}") from exc

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=10000")
            for pragma in self._pragmas:
                conn.execute(pragma)
            with transaction(conn):
                # Statement by statement: `executescript` would commit the open transaction first.
                for statement in self._schema:
                    conn.execute(statement)
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
