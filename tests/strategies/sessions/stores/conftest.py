from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Protocol

import pytest

from chorus_mcp.strategies.sessions.session import SessionStore, StoreLimits, utc_now
from chorus_mcp.strategies.sessions.stores.memory import MemorySessionStore
from chorus_mcp.strategies.sessions.stores.sqlite import SqliteSessionStore
from tests.strategies.sessions.stores.backends import delete_prefix, fresh_prefix, redis_url_or_skip


class StoreFactory(Protocol):
    backend: str

    def __call__(
        self, limits: StoreLimits | None = None, *, clock: Callable[[], datetime] = utc_now
    ) -> SessionStore: ...


class _Factory:
    """Makes stores on one backend; every store it makes shares the same data (file, Redis prefix,
    or — for memory — the same instance), like two replicas would."""

    def __init__(self, backend: str, tmp_path: Path) -> None:
        self.backend = backend
        self.path = tmp_path / "sessions.sqlite3"
        self.url = redis_url_or_skip() if backend == "redis" else ""
        self.prefix = fresh_prefix()
        self.made: list[SessionStore] = []
        self._memory: MemorySessionStore | None = None

    def __call__(
        self, limits: StoreLimits | None = None, *, clock: Callable[[], datetime] = utc_now
    ) -> SessionStore:
        store: SessionStore
        if self.backend == "memory":
            if self._memory is None:
                self._memory = MemorySessionStore(limits, clock=clock)
            store = self._memory
        elif self.backend == "sqlite":
            store = SqliteSessionStore(self.path, limits, clock=clock)
        else:
            from chorus_mcp.strategies.sessions.stores.redis import RedisSessionStore

            store = RedisSessionStore(self.url, limits, prefix=self.prefix, clock=clock)
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
