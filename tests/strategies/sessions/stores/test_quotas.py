"""Both quota stores (this process, Redis): leases, a rate per minute and spending per day, counted the
same way; two Redis stores on one prefix (two replicas) count against the same figures."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from decimal import Decimal

import pytest

from chorus_mcp.strategies.sessions.stores.quotas import MemoryQuotaStore, QuotaStore
from tests.strategies.sessions.stores.backends import delete_prefix, fresh_prefix, redis_url_or_skip

pytestmark = pytest.mark.anyio

DAY0 = 1_767_225_600.0  # 2026-01-01 00:00 UTC


class Clock:
    def __init__(self) -> None:
        self.now = DAY0 + 10

    def __call__(self) -> float:
        return self.now


MakeStore = Callable[[Clock], QuotaStore]


@pytest.fixture(params=["memory", "redis"])
async def make(request: pytest.FixtureRequest) -> AsyncIterator[MakeStore]:
    made: list[QuotaStore] = []
    shared: dict[str, MemoryQuotaStore] = {}
    url = redis_url_or_skip() if request.param == "redis" else ""
    prefix = fresh_prefix()

    def build(clock: Clock) -> QuotaStore:
        store: QuotaStore
        if request.param == "memory":
            store = shared.setdefault("one", MemoryQuotaStore(clock=clock))
        else:
            from chorus_mcp.strategies.sessions.stores.redis_quotas import RedisQuotaStore

            store = RedisQuotaStore(url, prefix=prefix, clock=clock)
        made.append(store)
        return store

    yield build
    for store in made:
        await store.aclose()
    if url:
        delete_prefix(url, prefix)


async def test_leases_are_held_up_to_the_limit_across_stores_and_given_back(make: MakeStore) -> None:
    clock = Clock()
    one, two = make(clock), make(clock)

    assert await one.take_lease("calls:a", "x", 2, 60)
    assert await two.take_lease("calls:a", "y", 2, 60)
    assert not await one.take_lease("calls:a", "z", 2, 60)
    assert await two.take_lease("calls:b", "z", 2, 60)  # another client's bucket is its own
    await two.release_lease("calls:a", "x")
    assert await one.take_lease("calls:a", "z", 2, 60)


async def test_a_lease_nobody_gives_back_expires_and_a_renewed_one_does_not(make: MakeStore) -> None:
    clock = Clock()
    store = make(clock)
    await store.take_lease("s:a", "old", 2, 10)
    await store.take_lease("s:a", "kept", 2, 10)
    clock.now += 8
    await store.renew_lease("s:a", "kept", 10)
    clock.now += 5

    assert await store.take_lease("s:a", "new", 2, 10)
    assert not await store.take_lease("s:a", "more", 2, 10)


async def test_requests_past_the_rate_wait_for_the_next_minute(make: MakeStore) -> None:
    clock = Clock()
    one, two = make(clock), make(clock)

    waits = [await (one if i % 2 else two).take_rate("rate:a", 3) for i in range(4)]

    assert waits[:3] == [None, None, None]
    assert waits[3] == pytest.approx(50)
    assert await one.take_rate("rate:b", 3) is None
    clock.now += 50
    assert await two.take_rate("rate:a", 3) is None


async def test_spending_adds_up_per_day_and_starts_again_the_next(make: MakeStore) -> None:
    clock = Clock()
    one, two = make(clock), make(clock)

    await one.spend_today("usd:a", Decimal("0.25"))
    await two.spend_today("usd:a", Decimal("0.000001"))

    assert await one.spent_today("usd:a") == Decimal("0.250001")
    assert await two.spent_today("usd:b") == 0
    clock.now += 24 * 3600
    assert await one.spent_today("usd:a") == 0


async def test_holds_on_a_day_are_shared_by_every_store_and_refused_past_its_cap(make: MakeStore) -> None:
    clock = Clock()
    one, two = make(clock), make(clock)
    cap = Decimal("1.00")
    await one.spend_today("usd:a", Decimal("0.20"))

    assert await one.hold_today("usd:a", "h1", Decimal("0.40"), cap, 60)
    assert await two.hold_today("usd:a", "h2", Decimal("0.40"), cap, 60)  # 0.20 + 0.80: exactly the cap
    assert not await one.hold_today("usd:a", "h3", Decimal("0.000001"), cap, 60)
    assert await two.hold_today("usd:b", "h3", Decimal("1.00"), cap, 60)  # another client's day is its own
    assert await one.held_today("usd:a") == Decimal("0.80")

    await two.settle_today("usd:a", "h1", Decimal("0.05"))  # what the call really cost
    assert await one.spent_today("usd:a") == Decimal("0.25")
    assert await two.held_today("usd:a") == Decimal("0.40")
    assert await one.hold_today("usd:a", "h4", Decimal("0.35"), cap, 60)
    assert not await one.hold_today("usd:a", "h5", Decimal("0.01"), cap, 60)


async def test_a_hold_nobody_settles_expires(make: MakeStore) -> None:
    clock = Clock()
    store = make(clock)
    assert await store.hold_today("usd:a", "crashed", Decimal("1.00"), Decimal("1.00"), 30)
    assert not await store.hold_today("usd:a", "next", Decimal("0.50"), Decimal("1.00"), 30)
    clock.now += 31

    assert await store.held_today("usd:a") == 0
    assert await store.hold_today("usd:a", "next", Decimal("0.50"), Decimal("1.00"), 30)
