"""`SqliteCacheStore`: the cache in one SQLite file (the default), kept across restarts.

WAL mode, so `chorus-mcp cache stats` and several server processes can read while one writes; writes
are short `BEGIN IMMEDIATE` transactions. `synchronous=NORMAL`: losing the last answers on a power cut
costs a provider call later, nothing more (sessions, which must not lose a turn, use FULL). Recency for
eviction is a counter (`used_seq`), not a clock, so "least recently used" is exact even within one tick.

sqlite3 is blocking; every operation runs in a worker thread, one at a time per store (`SqliteFile`).

Kept cheap per model call, since an ensemble does a lookup and a store per member:
- The size cap is enforced exactly but not on every write: every `_trim_every` writes of this process
  (1% of `max_entries`), the least recently used rows beyond the cap are deleted, walking the recency
  index from the old end. So the file holds at most 1% (per writing process) more than the cap for a
  moment. Trimming on each write walked the index past all `max_entries` kept rows: 17 ms per write at
  20,000 entries.
- Hit and miss counters are added up in memory and written with the next write transaction (a store,
  a served hit) or before `stats`; a process killed in between loses those counts, never an answer.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

from chorus_mcp.strategies.cache.store import (
    PICO,
    CacheEntry,
    CacheStats,
    CacheStoreError,
    ModelStats,
    Outcome,
    StoreLimits,
    pico,
    stats_of,
)
from chorus_mcp.strategies.storage.sqlite_file import SqliteFile, transaction

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS entries (
        key TEXT PRIMARY KEY,
        bucket TEXT NOT NULL,
        model TEXT NOT NULL,
        created_at REAL NOT NULL,
        used_seq INTEGER NOT NULL,
        size INTEGER NOT NULL,
        has_embedding INTEGER NOT NULL,
        data TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS entries_by_use ON entries (used_seq)",
    # One bucket holds every single-turn question to a model with the same parameters, so the semantic
    # scan and the per-bucket cap must not walk the bucket's plain (not embedded) entries.
    "CREATE INDEX IF NOT EXISTS entries_by_embedded_bucket ON entries (bucket, has_embedding, used_seq)",
    "CREATE INDEX IF NOT EXISTS entries_by_age ON entries (created_at)",
    """CREATE TABLE IF NOT EXISTS counters (
        model TEXT PRIMARY KEY,
        hits INTEGER NOT NULL DEFAULT 0,
        misses INTEGER NOT NULL DEFAULT 0,
        saved_pico INTEGER NOT NULL DEFAULT 0
    )""",
)
_NEXT_SEQ = "SELECT COALESCE(MAX(used_seq), 0) + 1 FROM entries"

T = TypeVar("T")


class SqliteCacheStore:
    def __init__(
        self, path: str | Path, limits: StoreLimits | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.path = Path(path)
        self._limits = limits or StoreLimits()
        self._clock = clock
        self._db = SqliteFile(
            self.path, schema=_SCHEMA, error=CacheStoreError, what="cache store", setting="cache.sqlite_path"
        )
        self._trim_every = max(1, self._limits.max_entries // 100)
        self._writes_since_trim = 0
        self._pending: dict[str, tuple[int, int, int]] = {}
        """Counts not yet written: model → (hits, misses, saved in pico-dollars)."""
        self._pending_lock = threading.Lock()
        """Guards `_pending` only: counting on the event loop never waits for a database operation."""

    def _cutoff(self) -> float:
        return float("-inf") if self._limits.ttl_s is None else self._clock() - self._limits.ttl_s

    async def get(self, key: str) -> CacheEntry | None:
        def get(conn: sqlite3.Connection) -> str | None:
            row = conn.execute(
                "SELECT data FROM entries WHERE key = ? AND created_at > ?", (key, self._cutoff())
            ).fetchone()
            return None if row is None else str(row[0])

        data = await self._db.run(get)
        return None if data is None else CacheEntry.model_validate_json(data)

    async def put(self, entry: CacheEntry) -> None:
        data = entry.model_dump_json()
        limits = self._limits

        def put(conn: sqlite3.Connection) -> None:
            with transaction(conn):
                seq = conn.execute(_NEXT_SEQ).fetchone()[0]
                conn.execute(
                    "INSERT OR REPLACE INTO entries "
                    "(key, bucket, model, created_at, used_seq, size, has_embedding, data) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        entry.key,
                        entry.bucket,
                        entry.model,
                        entry.created_at,
                        seq,
                        len(data.encode()),
                        entry.embedding is not None,
                        data,
                    ),
                )
                conn.execute("DELETE FROM entries WHERE created_at <= ?", (self._cutoff(),))
                self._writes_since_trim += 1
                if self._writes_since_trim >= self._trim_every:
                    self._writes_since_trim = 0
                    self._trim(conn)
                self._flush_counts(conn)
                if entry.embedding is not None:
                    # Only embedded entries are scanned semantically, so only they are capped per bucket.
                    conn.execute(
                        "DELETE FROM entries WHERE key IN (SELECT key FROM entries WHERE bucket = ? "
                        "AND has_embedding ORDER BY used_seq DESC LIMIT -1 OFFSET ?)",
                        (entry.bucket, limits.max_bucket),
                    )

        await self._db.run(put)

    async def touch(self, key: str) -> None:
        def touch(conn: sqlite3.Connection) -> None:
            with transaction(conn):
                conn.execute(f"UPDATE entries SET used_seq = ({_NEXT_SEQ}) WHERE key = ?", (key,))
                self._flush_counts(conn)

        await self._db.run(touch)

    async def candidates(self, bucket: str, limit: int) -> list[CacheEntry]:
        def candidates(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute(
                "SELECT data FROM entries WHERE bucket = ? AND has_embedding AND created_at > ? "
                "ORDER BY used_seq DESC LIMIT ?",
                (bucket, self._cutoff(), max(0, limit)),
            ).fetchall()
            return [str(row[0]) for row in rows]

        return [CacheEntry.model_validate_json(data) for data in await self._db.run(candidates)]

    async def count(self, model: str, outcome: Outcome, saved_cost_usd: Decimal | None = None) -> None:
        hit = outcome == "hit"
        with self._pending_lock:
            hits, misses, saved = self._pending.get(model, (0, 0, 0))
            self._pending[model] = (
                hits + int(hit),
                misses + int(not hit),
                saved + (pico(saved_cost_usd) if hit else 0),
            )

    def _flush_counts(self, conn: sqlite3.Connection) -> None:
        """Write the pending counts (called inside a write transaction)."""
        with self._pending_lock:
            pending, self._pending = self._pending, {}
        for model, (hits, misses, saved) in pending.items():
            conn.execute(
                "INSERT INTO counters (model, hits, misses, saved_pico) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (model) DO UPDATE SET hits = hits + excluded.hits, "
                "misses = misses + excluded.misses, saved_pico = saved_pico + excluded.saved_pico",
                (model, hits, misses, saved),
            )

    def _trim(self, conn: sqlite3.Connection) -> None:
        """Delete the least recently used entries beyond `max_entries` (inside a write transaction)."""
        excess = conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0] - self._limits.max_entries
        if excess > 0:
            conn.execute(
                "DELETE FROM entries WHERE key IN (SELECT key FROM entries ORDER BY used_seq ASC LIMIT ?)",
                (excess,),
            )

    async def stats(self) -> CacheStats:
        def stats(conn: sqlite3.Connection) -> dict[str, ModelStats]:
            with transaction(conn):
                self._flush_counts(conn)
            models: dict[str, ModelStats] = {}
            for model, hits, misses, saved in conn.execute(
                "SELECT model, hits, misses, saved_pico FROM counters"
            ):
                models[model] = ModelStats(hits=hits, misses=misses, saved_cost_usd=Decimal(saved) / PICO)
            for model, entries, size in conn.execute(
                "SELECT model, COUNT(*), SUM(size) FROM entries WHERE created_at > ? GROUP BY model",
                (self._cutoff(),),
            ):
                found = models.setdefault(model, ModelStats())
                found.entries, found.bytes = entries, size
            return models

        return stats_of(await self._db.run(stats))

    async def clear(self, model: str | None = None) -> int:
        def clear(conn: sqlite3.Connection) -> int:
            with self._pending_lock:
                if model is None:
                    self._pending.clear()
                else:
                    self._pending.pop(model, None)
            with transaction(conn):
                if model is None:
                    conn.execute("DELETE FROM counters")
                    return conn.execute("DELETE FROM entries").rowcount
                conn.execute("DELETE FROM counters WHERE model = ?", (model,))
                return conn.execute("DELETE FROM entries WHERE model = ?", (model,)).rowcount

        return await self._db.run(clear)

    def open_now(self) -> None:
        """Open the file at start-up: a read-only or corrupt one stops the server with the fix."""
        self._db.open_now()

    async def aclose(self) -> None:
        def flush(conn: sqlite3.Connection) -> None:
            with transaction(conn):
                self._flush_counts(conn)

        await self._db.aclose(flush)
