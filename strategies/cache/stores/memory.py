"""`MemoryCacheStore`: the cache in this process only (lost on exit); for tests and `cache.store: memory`.

Every operation is O(1) but `candidates` (O(limit)), `stats` and `clear`: it runs on the event loop, once
or twice per model call. Expired entries are dropped when read and evicted by the size cap like any other.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from decimal import Decimal

from chorus_mcp.strategies.cache.store import (
    CacheEntry,
    CacheStats,
    ModelStats,
    Outcome,
    StoreLimits,
    stats_of,
)


class MemoryCacheStore:
    def __init__(self, limits: StoreLimits | None = None, *, clock: Callable[[], float] = time.time) -> None:
        self._limits = limits or StoreLimits()
        self._clock = clock
        self._entries: OrderedDict[str, CacheEntry] = OrderedDict()
        """Least recently used first."""
        self._embedded: dict[str, OrderedDict[str, None]] = {}
        """Bucket → the keys of its entries with an embedding, least recently used first."""
        self._counters: dict[str, ModelStats] = {}

    def _live(self, entry: CacheEntry) -> bool:
        ttl = self._limits.ttl_s
        return ttl is None or entry.created_at + ttl > self._clock()

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key)
        if entry.embedding is not None:
            keys = self._embedded[entry.bucket]
            del keys[key]
            if not keys:
                del self._embedded[entry.bucket]

    async def get(self, key: str) -> CacheEntry | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if not self._live(entry):
            self._drop(key)
            return None
        return entry

    async def put(self, entry: CacheEntry) -> None:
        if entry.key in self._entries:
            self._drop(entry.key)
        self._entries[entry.key] = entry
        if entry.embedding is not None:
            keys = self._embedded.setdefault(entry.bucket, OrderedDict())
            keys[entry.key] = None
            while len(keys) > self._limits.max_bucket:
                self._drop(next(iter(keys)))
        while len(self._entries) > self._limits.max_entries:
            self._drop(next(iter(self._entries)))

    async def touch(self, key: str) -> None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            if entry.embedding is not None:
                self._embedded[entry.bucket].move_to_end(key)

    async def candidates(self, bucket: str, limit: int) -> list[CacheEntry]:
        found: list[CacheEntry] = []
        for key in reversed(self._embedded.get(bucket, {})):
            entry = self._entries[key]
            if self._live(entry):
                found.append(entry)
                if len(found) >= limit:
                    break
        return found

    async def count(self, model: str, outcome: Outcome, saved_cost_usd: Decimal | None = None) -> None:
        stats = self._counters.setdefault(model, ModelStats())
        if outcome == "hit":
            stats.hits += 1
            stats.saved_cost_usd += saved_cost_usd or Decimal(0)
        else:
            stats.misses += 1

    async def stats(self) -> CacheStats:
        models = {model: counted.model_copy() for model, counted in self._counters.items()}
        for entry in self._entries.values():
            if self._live(entry):
                stats = models.setdefault(entry.model, ModelStats())
                stats.entries += 1
                stats.bytes += entry.size()
        return stats_of(models)

    async def clear(self, model: str | None = None) -> int:
        doomed = [k for k, e in self._entries.items() if model is None or e.model == model]
        for key in doomed:
            self._drop(key)
        if model is None:
            self._counters.clear()
        else:
            self._counters.pop(model, None)
        return len(doomed)

    def open_now(self) -> None:
        return None

    async def aclose(self) -> None:
        return None
