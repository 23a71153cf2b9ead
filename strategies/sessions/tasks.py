"""Where long tool calls run as tasks are kept: beside the sessions, so a restarted server (or another
replica) answers a poll for a task that finished, and a client can fetch the result later.

One record per task, written when it is created, when its status message changes (at most every few
seconds), and when it ends. The backend follows `sessions.store`: memory, SQLite (a `tasks` table in
the sessions' file) or Redis (one key per task, expiring with the task). Nothing here knows MCP: the
record's `result` and `error` are the wire objects the server hands in.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel

from chorus_mcp.strategies.core.errors import ChorusError
from chorus_mcp.strategies.sessions.session import SessionSettings

TaskStatus = Literal["working", "input_required", "completed", "cancelled", "failed"]
TERMINAL: frozenset[str] = frozenset({"completed", "cancelled", "failed"})


class TaskStoreError(ChorusError):
    """The task store could not be read or written."""


class TaskRecord(BaseModel):
    task_id: str
    owner: str
    """The principal that created the task; only it may read or cancel it."""
    tool: str
    status: TaskStatus = "working"
    status_message: str | None = None
    created_at: float
    """Unix time."""
    updated_at: float
    """Unix time of the last write; a working task's runner refreshes it, so a stale one has no runner."""
    ttl_s: float | None = None
    """How long after creation the task is kept; None: as long as the store keeps anything."""
    cancel_requested: bool = False
    result: dict[str, Any] | None = None
    """The final tool result, as sent on the wire (status `completed`)."""
    error: dict[str, Any] | None = None
    """The JSON-RPC error that ended the task (status `failed`)."""

    def expired(self, now: float | None = None) -> bool:
        return self.ttl_s is not None and (now or time.time()) > self.created_at + self.ttl_s


class TaskStore(Protocol):
    async def put(self, record: TaskRecord) -> None:
        """Create or replace `record`."""
        ...

    async def get(self, task_id: str) -> TaskRecord | None:
        """The task, or None if it never existed or has expired."""
        ...

    async def aclose(self) -> None: ...


class MemoryTaskStore:
    def __init__(self) -> None:
        self._records: dict[str, str] = {}

    async def put(self, record: TaskRecord) -> None:
        self._records[record.task_id] = record.model_dump_json()

    async def get(self, task_id: str) -> TaskRecord | None:
        found = self._records.get(task_id)
        record = None if found is None else TaskRecord.model_validate_json(found)
        return None if record is None or record.expired() else record

    async def aclose(self) -> None:
        return None


_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS tasks (task_id TEXT PRIMARY KEY, record TEXT NOT NULL, expires_at REAL)",
    "CREATE INDEX IF NOT EXISTS tasks_expiry ON tasks (expires_at)",
)


class SqliteTaskStore:
    """A `tasks` table in the sessions' SQLite file (its own connection; WAL lets both write)."""

    def __init__(self, path: Path) -> None:
        from chorus_mcp.strategies.storage.sqlite_file import SqliteFile

        self._file = SqliteFile(path, schema=_SCHEMA, error=TaskStoreError, what="task store")

    async def put(self, record: TaskRecord) -> None:
        expires = None if record.ttl_s is None else record.created_at + record.ttl_s
        row = (record.task_id, record.model_dump_json(), expires)

        def write(conn: sqlite3.Connection) -> None:
            from chorus_mcp.strategies.storage.sqlite_file import transaction

            with transaction(conn) as tx:
                tx.execute("INSERT OR REPLACE INTO tasks (task_id, record, expires_at) VALUES (?, ?, ?)", row)
                # Expired tasks go as new ones come: the table never grows past what is live.
                tx.execute(
                    "DELETE FROM tasks WHERE expires_at IS NOT NULL AND expires_at < ?", (time.time(),)
                )

        await self._file.run(write)

    async def get(self, task_id: str) -> TaskRecord | None:
        def read(conn: sqlite3.Connection) -> str | None:
            found = conn.execute("SELECT record FROM tasks WHERE task_id = ?", (task_id,)).fetchone()
            return None if found is None else str(found[0])

        text = await self._file.run(read)
        record = None if text is None else TaskRecord.model_validate_json(text)
        return None if record is None or record.expired() else record

    async def aclose(self) -> None:
        await self._file.aclose()


class RedisTaskStore:
    """One key per task under the sessions' prefix, expiring with the task."""

    def __init__(self, url: str, *, prefix: str) -> None:
        import redis.asyncio as aioredis

        self._redis: Any = aioredis.Redis.from_url(url, decode_responses=True)
        self._prefix = f"{prefix}task:"

    async def put(self, record: TaskRecord) -> None:
        from chorus_mcp.strategies.sessions.stores.redis import redis_errors_as

        left = None if record.ttl_s is None else max(1, int(record.created_at + record.ttl_s - time.time()))
        async with redis_errors_as(TaskStoreError, "task store"):
            await self._redis.set(self._prefix + record.task_id, record.model_dump_json(), ex=left)

    async def get(self, task_id: str) -> TaskRecord | None:
        from chorus_mcp.strategies.sessions.stores.redis import redis_errors_as

        async with redis_errors_as(TaskStoreError, "task store"):
            text = await self._redis.get(self._prefix + task_id)
        record = None if text is None else TaskRecord.model_validate(json.loads(text))
        return None if record is None or record.expired() else record

    async def aclose(self) -> None:
        await self._redis.aclose()


def open_task_store(settings: SessionSettings) -> TaskStore:
    """The task store beside the session store `settings` describe (nothing is opened yet)."""
    from chorus_mcp.strategies.sessions.stores import default_sqlite_path, redis_url

    if settings.store == "memory":
        return MemoryTaskStore()
    if settings.store == "sqlite":
        path = Path(settings.sqlite_path).expanduser() if settings.sqlite_path else default_sqlite_path()
        return SqliteTaskStore(path)
    return RedisTaskStore(redis_url(settings), prefix=settings.key_prefix)
