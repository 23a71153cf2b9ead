"""Circuit breakers shared by replicas: one suite over the in-process and the Redis breaker store."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from chorus_mcp.strategies.engine.reliability import BreakerSettings, ReliabilitySettings
from chorus_mcp.strategies.sessions.stores.breakers import BreakerStore, MemoryBreakerStore, SharedCallGuard
from tests.strategies.sessions.stores.backends import delete_prefix, fresh_prefix, redis_url_or_skip

pytestmark = pytest.mark.anyio

SETTINGS = ReliabilitySettings(breaker=BreakerSettings(failure_threshold=3, window_s=60, cooldown_s=30))


class Clocks:
    """One wall clock for every replica, and a monotonic clock per replica with its own origin."""

    def __init__(self) -> None:
        self.wall = 1_700_000_000.0
        self.offsets: list[float] = []

    def advance(self, seconds: float) -> None:
        self.wall += seconds

    def guard(self) -> SharedCallGuard:
        offset = 1000.0 * (len(self.offsets) + 1)  # monotonic clocks start anywhere
        self.offsets.append(offset)
        guard = SharedCallGuard(
            SETTINGS, clock=lambda: self.wall - 1_700_000_000.0 + offset, wall_clock=lambda: self.wall
        )
        for model in ("m", "sick", "well"):
            guard.breaker(model)  # as the server does for every configured model
        return guard


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[BreakerStore]:
    if request.param == "memory":
        yield MemoryBreakerStore()
        return
    import redis.asyncio as aioredis

    from chorus_mcp.strategies.sessions.stores.redis import RedisBreakerStore

    url, prefix = redis_url_or_skip(), fresh_prefix()
    client = aioredis.Redis.from_url(url, decode_responses=True)
    try:
        yield RedisBreakerStore(client, prefix=prefix)
    finally:
        await client.aclose()
        delete_prefix(url, prefix)


async def test_failures_on_two_replicas_add_up_and_open_the_circuit_for_both(store: BreakerStore) -> None:
    clocks = Clocks()
    a, b = clocks.guard(), clocks.guard()
    a.breaker("m").failure()
    b.breaker("m").failure()
    await a.sync(store)
    await b.sync(store)
    assert a.breaker("m").allow() and b.breaker("m").allow()  # 2 of 3: still closed

    clocks.advance(1)
    a.breaker("m").failure()
    await a.sync(store)
    await b.sync(store)

    assert a.breaker("m").state == b.breaker("m").state == "open"
    assert not b.breaker("m").allow()
    assert b.breaker("m").retry_in() == pytest.approx(30, abs=0.01)


async def test_a_successful_probe_on_one_replica_closes_the_circuit_everywhere(store: BreakerStore) -> None:
    clocks = Clocks()
    a, b = clocks.guard(), clocks.guard()
    for _ in range(3):
        a.breaker("m").failure()
    await a.sync(store)
    await b.sync(store)
    clocks.advance(31)  # cool-down over: half-open

    assert b.breaker("m").allow()  # b takes the probe...
    b.breaker("m").success()  # ...and it succeeds
    await b.sync(store)
    await a.sync(store)

    assert a.breaker("m").state == "closed" and a.breaker("m").allow()


async def test_a_failed_probe_reopens_the_circuit_for_every_replica(store: BreakerStore) -> None:
    clocks = Clocks()
    a, b = clocks.guard(), clocks.guard()
    for _ in range(3):
        a.breaker("m").failure()
    await a.sync(store)
    await b.sync(store)
    clocks.advance(31)

    assert b.breaker("m").allow()
    b.breaker("m").failure()
    await b.sync(store)
    await a.sync(store)

    assert a.breaker("m").state == "open" and a.breaker("m").retry_in() == pytest.approx(30, abs=0.01)


async def test_models_are_independent_and_healthy_calls_cost_no_round_trip(store: BreakerStore) -> None:
    clocks = Clocks()
    a, b = clocks.guard(), clocks.guard()
    for _ in range(3):
        a.breaker("sick").failure()
    a.breaker("well").success()

    assert [e.model for e in a._outbox] == ["sick"] * 3
    await a.sync(store)
    await b.sync(store)

    assert b.breaker("sick").state == "open" and b.breaker("well").state == "closed"
