"""`MemoryCacheStore`: the cache in this process only (lost on exit); for tests and `cache.store: memory`."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from decimal import Decimal

from strategies.cache.store import CacheEntry, CacheStats, ModelStats, Outcome, StoreLimits, stats_of


class MemoryCacheStore:
    def __init__(self, limits: StoreLimits | None = None, *, clock: Callable[[], float] = time.time) -> None:
        self._limits = limits or StoreLimits()
        self._clock = clock
        self._entries: OrderedDict[str, CacheEntry] = OrderedDict()
        """Least recently used first."""
        self._counters: dict[str, ModelStats] = {}

    def _live(self, entry: CacheEntry) -> bool:
        ttl = self._limits.ttl_s
        return ttl is None or entry.created_at + ttl > self._clock()

    async def get(self, key: str) -> CacheEntry | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if not self._live(entry):
            del self._entries[key]
            return None
        return entry

    async def put(self, entry: CacheEntry) -> None:
        self._entries.pop(entry.key, None)
        self._entries[entry.key] = entry
        for key in [k for k, e in self._entries.items() if not self._live(e)]:
            del self._entries[key]
        while len(self._entries) > self._limits.max_entries:
            self._entries.popitem(last=False)
        in_bucket = [
            k
            for k, e in reversed(self._entries.items())
            if e.bucket == entry.bucket and e.embedding is not None
        ]
        for key in in_bucket[self._limits.max_bucket :]:
            del self._entries[key]

    async def touch(self, key: str) -> None:
        if key in self._entries:
            self._entries.move_to_end(key)

    async def candidates(self, bucket: str, limit: int) -> list[CacheEntry]:
        found = []
        for entry in reversed(self._entries.values()):
            if entry.bucket == bucket and entry.embedding is not None and self._live(entry):
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
            del self._entries[key]
        if model is None:
            self._counters.clear()
        else:
            self._counters.pop(model, None)
        return len(doomed)

    async def aclose(self) -> None:
        return None
