"""The latency store replicas share: one contract over the in-process store and Redis (real Redis at
CHORUS_TEST_REDIS_URL), plus what only Redis does (expiry)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis

from chorus_mcp.strategies.engine.latency import LatencyStats, LatencyStore, MemoryLatencyStore, Sample
from chorus_mcp.strategies.sessions.stores.redis_latency import RedisLatencyStore
from tests.strategies.sessions.stores.backends import delete_prefix, fresh_prefix, redis_url_or_skip

pytestmark = pytest.mark.anyio


def _at(t: float, *seconds: float) -> list[Sample]:
    return [Sample(t + n, value) for n, value in enumerate(seconds)]


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

    await one.add({"a": _at(100.5, 0.1, 0.2), "b": _at(100.0, 1.0)})
    await two.add({"a": _at(102.5, 0.3)})

    expected_a = [Sample(100.5, 0.1), Sample(101.5, 0.2), Sample(102.5, 0.3)]
    assert await two.windows(["a", "b", "never"]) == {"a": expected_a, "b": [Sample(100.0, 1.0)], "never": []}
    assert await one.windows(["a"]) == {"a": expected_a}


async def test_each_models_window_keeps_its_latest_samples(replicas: Replicas) -> None:
    store = replicas()

    await store.add({"a": _at(1.0, 1.0, 2.0, 3.0)})
    await store.add({"a": _at(4.0, 4.0, 5.0, 6.0), "b": []})

    assert await store.windows(["a", "b"]) == {"a": _at(3.0, 3.0, 4.0, 5.0, 6.0), "b": []}


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
        await RedisLatencyStore(client, prefix=prefix).add({"a": _at(1.0, 0.5)})
        ttl = await client.ttl(f"{prefix}latency:a")
    finally:
        await client.aclose()
        delete_prefix(url, prefix)

    assert 0 < ttl <= RedisLatencyStore.KEEP_S


async def test_an_entry_written_without_its_time_reads_as_too_old_to_count() -> None:
    url, prefix = redis_url_or_skip(), fresh_prefix()
    client = aioredis.Redis.from_url(url, decode_responses=True)
    try:
        await client.rpush(f"{prefix}latency:a", "0.25")  # the format before samples had a time
        stats = LatencyStats(shared=RedisLatencyStore(client, prefix=prefix))
        stats.record("a", 0.5)
        figures, note = await stats.figures(["a"], 50, max_age_s=600)
        window = await RedisLatencyStore(client, prefix=prefix).windows(["a"])
    finally:
        await client.aclose()
        delete_prefix(url, prefix)

    assert note is None
    assert window["a"][0] == Sample(0.0, 0.25)
    assert (figures["a"].seconds, figures["a"].samples, figures["a"].aged_out) == (0.5, 1, 1)
