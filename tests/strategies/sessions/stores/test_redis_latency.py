"""The latency store replicas share: one contract over the in-process store and Redis (real Redis at
CHORUS_TEST_REDIS_URL), plus what only Redis does (expiry)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis

from chorus_mcp.strategies.engine.latency import LatencyStats, LatencyStore, MemoryLatencyStore
from chorus_mcp.strategies.sessions.stores.redis_latency import RedisLatencyStore
from tests.strategies.sessions.stores.backends import delete_prefix, fresh_prefix, redis_url_or_skip

pytestmark = pytest.mark.anyio

Replicas = Callable[[], LatencyStore]
"""Makes the store as another replica sees it (same data; for Redis its own connection)."""


@pytest.fixture(params=["memory", "redis"])
async def replicas(request: pytest.FixtureRequest) -> AsyncIterator[Replicas]:
    if request.param == "memory":
        shared = MemoryLatencyStore(window=4)
        yield lambda: shared
        return
    url, prefix = redis_url_or_skip(), fresh_prefix()
    clients: list[aioredis.Redis] = []

    def replica() -> LatencyStore:
        client = aioredis.Redis.from_url(url, decode_responses=True)
        clients.append(client)
        return RedisLatencyStore(client, prefix=prefix, window=4)

    try:
        yield replica
    finally:
        for client in clients:
            await client.aclose()
        delete_prefix(url, prefix)


async def test_a_replica_reads_the_samples_another_appended_oldest_first(replicas: Replicas) -> None:
    one, two = replicas(), replicas()

    await one.add({"a": [0.1, 0.2], "b": [1.0]})
    await two.add({"a": [0.3]})

    assert await two.windows(["a", "b", "never"]) == {"a": [0.1, 0.2, 0.3], "b": [1.0], "never": []}
    assert await one.windows(["a"]) == {"a": [0.1, 0.2, 0.3]}


async def test_each_models_window_keeps_its_latest_samples(replicas: Replicas) -> None:
    store = replicas()

    await store.add({"a": [1.0, 2.0, 3.0]})
    await store.add({"a": [4.0, 5.0, 6.0], "b": []})

    assert await store.windows(["a", "b"]) == {"a": [3.0, 4.0, 5.0, 6.0], "b": []}


async def test_two_servers_stats_agree_on_a_models_median_through_the_store(replicas: Replicas) -> None:
    one, two = LatencyStats(shared=replicas(), window=4), LatencyStats(shared=replicas(), window=4)
    for value in (0.1, 0.3):
        one.record("a", value)
    two.record("a", 0.2)

    await one.push()
    seen_by_two, _ = await two.figures(["a"])
    seen_by_one, _ = await one.figures(["a"])

    assert seen_by_two == seen_by_one
    assert (seen_by_two["a"].seconds, seen_by_two["a"].samples) == (0.2, 3)


async def test_a_models_samples_in_redis_expire_when_nobody_appends_to_them() -> None:
    url, prefix = redis_url_or_skip(), fresh_prefix()
    client = aioredis.Redis.from_url(url, decode_responses=True)
    try:
        await RedisLatencyStore(client, prefix=prefix).add({"a": [0.5]})
        ttl = await client.ttl(f"{prefix}latency:a")
    finally:
        await client.aclose()
        delete_prefix(url, prefix)

    assert 0 < ttl <= RedisLatencyStore.KEEP_S
