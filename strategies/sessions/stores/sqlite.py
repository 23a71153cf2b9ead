"""`SqliteSessionStore`: sessions in one SQLite file (the default), durable across restarts.

The file is opened in WAL mode with `synchronous=NORMAL`: a write that has returned is in the WAL file,
in the operating system's hands, so a process killed right after it (SIGKILL, a crash, a client
restarting its stdio server) loses nothing it acknowledged. What NORMAL gives up against FULL is the
fsync per commit (the WAL is synced at checkpoints instead): a power cut or kernel crash may lose the
last few commits, never corrupt the file. That fsync was ~6-8 ms per commit here, the largest single
cost of a tool call; process crashes are what a session store must survive in use (and what
tests/server/test_sessions_processes.py checks), power cuts are the disk's and the host's business.
Writes are `BEGIN IMMEDIATE` transactions, so concurrent appends — from tasks of this process or from
other processes on the same file — are serialised whole, in arrival order; a new session and its first
exchange are one transaction (`create(turns=...)`).

sqlite3 is blocking; every operation runs in a worker thread, one at a time per store (`SqliteFile`).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from chorus_mcp.strategies.core.completion import Usage
from chorus_mcp.strategies.sessions.ownership import LOCAL, Principal
from chorus_mcp.strategies.sessions.session import (
    ContextMemo,
    Session,
    SessionInfo,
    SessionStoreError,
    StoreLimits,
    Turn,
    add_usage,
    clip,
    new_session_id,
    unknown_session,
    utc_now,
)
from chorus_mcp.strategies.storage.sqlite_file import SqliteFile, transaction

SCHEMA_VERSION = 2
"""2: `owner` and `grants` (sessions stored by version 1 become the local user's)."""
_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    max_cost_usd TEXT,
    next_seq INTEGER NOT NULL DEFAULT 0,
    dropped INTEGER NOT NULL DEFAULT 0,
    usage TEXT NOT NULL,
    memos TEXT NOT NULL DEFAULT '{}',
    owner TEXT NOT NULL DEFAULT '@local',
    grants TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS sessions_by_activity ON sessions (updated_at);
CREATE TABLE IF NOT EXISTS turns (
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (session_id, seq)
) WITHOUT ROWID;
"""

T = TypeVar("T")


def _ts(value: datetime) -> float:
    return value.timestamp()


def _dt(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


class SqliteSessionStore:
    def __init__(
        self,
        path: str | Path,
        limits: StoreLimits | None = None,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.path = Path(path)
        self._limits = limits or StoreLimits()
        self._clock = clock
        self._db = SqliteFile(
            self.path,
            schema=_statements(_SCHEMA),
            error=SessionStoreError,
            what="session store",
            pragmas=["PRAGMA foreign_keys=ON"],
            setting="sessions.sqlite_path",
            migrate=_migrate,
        )

    def open_now(self) -> None:
        """Open the file at start-up: a read-only or corrupt one stops the server with the fix."""
        self._db.open_now()

    # -- plumbing ----------------------------------------------------------------------------------

    def _cutoff(self) -> float:
        if self._limits.ttl_s is None:
            return float("-inf")
        return _ts(self._clock()) - self._limits.ttl_s

    def _expiry(self, updated_at: float) -> datetime | None:
        return None if self._limits.ttl_s is None else _dt(updated_at) + timedelta(seconds=self._limits.ttl_s)

    def _info(self, row: sqlite3.Row | tuple[Any, ...]) -> SessionInfo:
        session_id, created, updated, max_cost, next_seq, dropped, usage, _memos, owner, grants = row[:10]
        return SessionInfo(
            owner=owner,
            grants=json.loads(grants),
            id=session_id,
            created_at=_dt(created),
            updated_at=_dt(updated),
            turn_count=next_seq - dropped,
            dropped_turns=dropped,
            usage=Usage.model_validate_json(usage),
            max_cost_usd=None if max_cost is None else Decimal(max_cost),
            expires_at=self._expiry(updated),
        )

    # -- the protocol ------------------------------------------------------------------------------

    async def create(
        self,
        *,
        max_cost_usd: Decimal | None = None,
        session_id: str | None = None,
        turns: Sequence[Turn] = (),
        usage: Usage | None = None,
        owner: str = LOCAL,
        grants: Sequence[str] = (),
    ) -> str:
        session_id = session_id or new_session_id()
        now = _ts(self._clock())
        stored = [t.model_dump_json(exclude={"seq"}) for t in clip(turns, self._limits)]

        def create(conn: sqlite3.Connection) -> None:
            with transaction(conn):
                conn.execute(
                    "INSERT INTO sessions (id, created_at, updated_at, max_cost_usd, usage, owner, grants) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        session_id,
                        now,
                        now,
                        None if max_cost_usd is None else str(max_cost_usd),
                        Usage().model_dump_json(),
                        owner,
                        json.dumps(list(grants)),
                    ),
                )
                if stored or usage is not None:
                    self._append_in(conn, session_id, stored, usage, now)
                conn.execute("DELETE FROM sessions WHERE updated_at <= ?", (self._cutoff(),))
                (owned,) = conn.execute("SELECT count(*) FROM sessions WHERE owner = ?", (owner,)).fetchone()
                if owned > self._limits.max_sessions_per_owner:
                    conn.execute(
                        "DELETE FROM sessions WHERE id IN (SELECT id FROM sessions WHERE owner = ? "
                        "ORDER BY updated_at, rowid LIMIT ?)",
                        (owner, owned - self._limits.max_sessions_per_owner),
                    )
                # Counting is cheap (~0.03 ms for 10,000 sessions); walking the activity index past
                # `max_sessions` entries on every create was not (~0.7 ms in a full store).
                (count,) = conn.execute("SELECT count(*) FROM sessions").fetchone()
                if count > self._limits.max_sessions:
                    conn.execute(
                        "DELETE FROM sessions WHERE id IN "
                        "(SELECT id FROM sessions ORDER BY updated_at, rowid LIMIT ?)",
                        (count - self._limits.max_sessions,),
                    )

        await self._db.run(create)
        return session_id

    async def get(
        self, session_id: str, *, latest: int | None = None, before: int | None = None
    ) -> Session | None:
        # Newest first, so LIMIT keeps the latest; put back in order below.
        query = "SELECT seq, data FROM turns WHERE session_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?"
        bounds = (session_id, 2**62 if before is None else before, -1 if latest is None else max(0, latest))

        def get(conn: sqlite3.Connection) -> Session | None:
            with transaction(conn, immediate=False):
                row = conn.execute(_SELECT_LIVE, (session_id, self._cutoff())).fetchone()
                if row is None:
                    return None
                turns = [
                    Turn.model_validate_json(data).model_copy(update={"seq": seq})
                    for seq, data in reversed(conn.execute(query, bounds).fetchall())
                ]
            memos = {kind: ContextMemo.model_validate(m) for kind, m in json.loads(row[7]).items()}
            return Session(**self._info(row).model_dump(), turns=turns, memos=memos)

        return await self._db.run(get)

    async def info(self, session_id: str) -> SessionInfo | None:
        def info(conn: sqlite3.Connection) -> SessionInfo | None:
            row = conn.execute(_SELECT_LIVE, (session_id, self._cutoff())).fetchone()
            return None if row is None else self._info(row)

        return await self._db.run(info)

    async def append(self, session_id: str, turns: Sequence[Turn], *, usage: Usage | None = None) -> None:
        stored = [t.model_dump_json(exclude={"seq"}) for t in clip(turns, self._limits)]
        now = _ts(self._clock())

        def append(conn: sqlite3.Connection) -> bool:
            with transaction(conn):
                return self._append_in(conn, session_id, stored, usage, now)

        if not await self._db.run(append):
            raise unknown_session()

    def _append_in(
        self, conn: sqlite3.Connection, session_id: str, stored: list[str], usage: Usage | None, now: float
    ) -> bool:
        """Inside an open write transaction: add the turns (already serialised) and the usage; False
        when the session is not there (or has expired)."""
        row = conn.execute(
            "SELECT next_seq, dropped, usage FROM sessions WHERE id = ? AND updated_at > ?",
            (session_id, self._cutoff()),
        ).fetchone()
        if row is None:
            return False
        next_seq, dropped, total = row
        conn.executemany(
            "INSERT INTO turns (session_id, seq, data) VALUES (?, ?, ?)",
            [(session_id, next_seq + i, data) for i, data in enumerate(stored)],
        )
        next_seq += len(stored)
        if next_seq - dropped > self._limits.max_turns:
            dropped = next_seq - self._limits.max_turns
            conn.execute("DELETE FROM turns WHERE session_id = ? AND seq < ?", (session_id, dropped))
        if usage is not None:
            total = add_usage(Usage.model_validate_json(total), usage).model_dump_json()
        conn.execute(
            "UPDATE sessions SET next_seq = ?, dropped = ?, usage = ?, updated_at = ? WHERE id = ?",
            (next_seq, dropped, total, now, session_id),
        )
        return True

    async def save_memo(self, session_id: str, memo: ContextMemo) -> None:
        def save(conn: sqlite3.Connection) -> None:
            with transaction(conn):
                row = conn.execute("SELECT memos FROM sessions WHERE id = ?", (session_id,)).fetchone()
                if row is None:
                    return
                memos = json.loads(row[0])
                memos[memo.kind] = memo.model_dump(mode="json")
                conn.execute("UPDATE sessions SET memos = ? WHERE id = ?", (json.dumps(memos), session_id))

        await self._db.run(save)

    async def list_recent(self, limit: int = 20, *, viewer: Principal | None = None) -> list[SessionInfo]:
        where = "updated_at > ?"
        args: list[Any] = [self._cutoff()]
        if viewer is not None and not viewer.admin:
            names = sorted(viewer.names)
            marks = ", ".join("?" * len(names))
            where += f" AND (owner = ? OR EXISTS (SELECT 1 FROM json_each(grants) WHERE value IN ({marks})))"
            args += [viewer.id, *names]

        def recent(conn: sqlite3.Connection) -> list[SessionInfo]:
            rows = conn.execute(
                _SELECT + f" WHERE {where} ORDER BY updated_at DESC, rowid DESC LIMIT ?",
                (*args, max(0, limit)),
            ).fetchall()
            return [self._info(row) for row in rows]

        return await self._db.run(recent)

    async def delete(self, session_id: str) -> bool:
        def delete(conn: sqlite3.Connection) -> bool:
            with transaction(conn):
                return conn.execute("DELETE FROM sessions WHERE id = ?", (session_id,)).rowcount > 0

        return await self._db.run(delete)

    async def aclose(self) -> None:
        await self._db.aclose()


_SELECT = (
    "SELECT id, created_at, updated_at, max_cost_usd, next_seq, dropped, usage, memos, owner, grants "
    "FROM sessions"
)
_SELECT_LIVE = _SELECT + " WHERE id = ? AND updated_at > ?"


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring a version-1 file up to date: its sessions gain an owner (the local user) and no grants."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(sessions)")}
    if "owner" not in columns:
        conn.execute("ALTER TABLE sessions ADD COLUMN owner TEXT NOT NULL DEFAULT '@local'")
    if "grants" not in columns:
        conn.execute("ALTER TABLE sessions ADD COLUMN grants TEXT NOT NULL DEFAULT '[]'")
    conn.execute("CREATE INDEX IF NOT EXISTS sessions_by_owner ON sessions (owner, updated_at)")
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]
