from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

import pytest

from chorus_mcp.strategies.cache.store import CacheStore, StoreLimits
from chorus_mcp.strategies.cache.stores.memory import MemoryCacheStore
from chorus_mcp.strategies.cache.stores.sqlite import SqliteCacheStore
from tests.strategies.sessions.stores.backends import delete_prefix, fresh_prefix, redis_url_or_skip


class Clock:
    """A settable wall clock (epoch seconds) the stores read for TTLs."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class StoreFactory(Protocol):
    backend: str
    clock: Clock

    def __call__(self, limits: StoreLimits | None = None) -> CacheStore: ...


class _Factory:
    """Makes stores on one backend; every store it makes shares the same data (file, Redis prefix, or the
    same memory instance), as two processes or replicas would."""

    def __init__(self, backend: str, tmp_path: Path) -> None:
        self.backend = backend
        self.clock = Clock()
        self.path = tmp_path / "cache.sqlite3"
        self.url = redis_url_or_skip() if backend == "redis" else ""
        self.prefix = fresh_prefix()
        self.made: list[CacheStore] = []
        self._memory: MemoryCacheStore | None = None

    def __call__(self, limits: StoreLimits | None = None) -> CacheStore:
        store: CacheStore
        if self.backend == "memory":
            if self._memory is None:
                self._memory = MemoryCacheStore(limits, clock=self.clock)
            store = self._memory
        elif self.backend == "sqlite":
            store = SqliteCacheStore(self.path, limits, clock=self.clock)
        else:
            from chorus_mcp.strategies.cache.stores.redis import RedisCacheStore

            store = RedisCacheStore(self.url, limits, prefix=self.prefix, clock=self.clock)
        self.made.append(store)
        return store

    async def close(self) -> None:
        for store in self.made:
            await store.aclose()
        if self.backend == "redis":
            delete_prefix(self.url, self.prefix)


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreFactory]:
    factory = _Factory(request.param, tmp_path)
    try:
        yield factory
    finally:
        await factory.close()
