"""One contract for every cache store: memory, SQLite and Redis behave the same (Redis needs
CHORUS_TEST_REDIS_URL and is skipped without it)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from chorus_mcp.strategies.cache.store import CacheEntry, StoreLimits
from chorus_mcp.strategies.core.completion import Completion
from tests.strategies.cache.conftest import StoreFactory

pytestmark = pytest.mark.anyio


def _entry(
    key: str, *, bucket: str = "b1", model: str = "openai/m", at: float, embedded: bool = True
) -> CacheEntry:
    completion = Completion(
        text=f"answer {key}", model=model, prompt_tokens=3, completion_tokens=2, cost_usd=Decimal("0.0002")
    )
    return CacheEntry(
        key=key,
        bucket=bucket,
        model=model,
        prompt=f"prompt {key}",
        completion=completion,
        created_at=at,
        embedding=[1.0, 0.0] if embedded else None,
    )


async def test_a_stored_entry_is_found_by_its_key_and_a_missing_key_is_not(make_store: StoreFactory) -> None:
    store = make_store()
    entry = _entry("k1", at=make_store.clock.now)
    await store.put(entry)
    assert await store.get("k1") == entry
    assert await store.get("k2") is None


async def test_an_entry_is_shared_with_another_store_on_the_same_backend(make_store: StoreFactory) -> None:
    await make_store().put(_entry("k1", at=make_store.clock.now))
    found = await make_store().get("k1")
    assert found is not None and found.completion.text == "answer k1"


async def test_an_entry_older_than_the_ttl_is_not_served(make_store: StoreFactory) -> None:
    store = make_store(StoreLimits(ttl_s=60))
    await store.put(_entry("k1", at=make_store.clock.now))
    make_store.clock.now += 59
    assert await store.get("k1") is not None
    make_store.clock.now += 2
    assert await store.get("k1") is None
    assert await store.candidates("b1", 10) == []
    assert (await store.stats()).totals.entries == 0


async def test_beyond_max_entries_the_least_recently_used_is_evicted(make_store: StoreFactory) -> None:
    store = make_store(StoreLimits(max_entries=2))
    now = make_store.clock.now
    await store.put(_entry("old", at=now, bucket="x"))
    await store.put(_entry("mid", at=now, bucket="y"))
    await store.touch("old")  # served just now: "mid" is now the least recently used
    await store.put(_entry("new", at=now, bucket="z"))
    assert await store.get("mid") is None
    assert await store.get("old") is not None and await store.get("new") is not None


async def test_candidates_are_the_bucket_s_embedded_entries_most_recent_first_and_capped(
    make_store: StoreFactory,
) -> None:
    store = make_store(StoreLimits(max_bucket=3))
    now = make_store.clock.now
    for key in ("a", "b", "c", "d"):
        await store.put(_entry(key, at=now))
    await store.put(_entry("plain", at=now, embedded=False))
    await store.put(_entry("elsewhere", at=now, bucket="b2"))
    found = [e.key for e in await store.candidates("b1", 10)]
    assert found == ["d", "c", "b"]  # "a" fell out of the bucket's cap; "plain" has no embedding
    assert [e.key for e in await store.candidates("b1", 2)] == ["d", "c"]


async def test_hits_misses_and_saved_cost_are_counted_per_model_and_shared_once_written(
    make_store: StoreFactory,
) -> None:
    store = make_store()
    await store.put(_entry("k1", at=make_store.clock.now, model="openai/a"))
    await store.put(_entry("k2", at=make_store.clock.now, model="openai/b"))
    await store.count("openai/a", "miss")
    await store.count("openai/a", "hit", Decimal("0.0002"))
    await store.count("openai/a", "hit", Decimal("0.0001"))
    await store.count("openai/b", "hit", None)
    await store.stats()  # counts may wait for the store's next write or `stats`; then all can see them
    stats = await make_store().stats()
    a, b = stats.models["openai/a"], stats.models["openai/b"]
    assert (a.entries, a.hits, a.misses, a.saved_cost_usd) == (1, 2, 1, Decimal("0.0003"))
    assert (b.entries, b.hits, b.misses, b.saved_cost_usd) == (1, 1, 0, Decimal(0))
    assert a.bytes > 0
    assert stats.totals.hits == 3 and stats.totals.entries == 2 and stats.totals.bytes == a.bytes + b.bytes


async def test_clear_by_model_leaves_the_other_models(make_store: StoreFactory) -> None:
    store = make_store()
    await store.put(_entry("k1", at=make_store.clock.now, model="openai/a"))
    await store.put(_entry("k2", at=make_store.clock.now, model="openai/b"))
    await store.count("openai/a", "miss")
    assert await store.clear("openai/a") == 1
    assert await store.get("k1") is None and await store.get("k2") is not None
    stats = await store.stats()
    assert list(stats.models) == ["openai/b"]
    assert await store.clear() == 1
    assert (await store.stats()).totals.entries == 0


async def test_putting_the_same_key_again_replaces_the_entry(make_store: StoreFactory) -> None:
    store = make_store()
    await store.put(_entry("k1", at=make_store.clock.now))
    newer = _entry("k1", at=make_store.clock.now + 1).model_copy(
        update={"completion": Completion(text="newer", model="openai/m")}
    )
    await store.put(newer)
    found = await store.get("k1")
    assert found is not None and found.completion.text == "newer"
    assert (await store.stats()).totals.entries == 1


async def test_a_hit_s_count_is_written_with_its_touch_so_other_processes_see_it(
    make_store: StoreFactory,
) -> None:
    store = make_store()
    await store.put(_entry("k1", at=make_store.clock.now, model="openai/a"))
    await store.count("openai/a", "hit", Decimal("0.0002"))
    await store.touch("k1")
    assert (await make_store().stats()).models["openai/a"].hits == 1


async def test_the_size_cap_holds_after_many_writes(make_store: StoreFactory) -> None:
    store = make_store(StoreLimits(max_entries=300))
    for n in range(320):
        await store.put(_entry(f"k{n}", at=make_store.clock.now, bucket=f"b{n}"))
    await store.put(_entry("last", at=make_store.clock.now, bucket="z"))
    entries = (await store.stats()).totals.entries
    assert 300 <= entries <= 303  # trimmed every 1% of the cap: at most that many over, never under
    assert await store.get("last") is not None and await store.get("k0") is None
