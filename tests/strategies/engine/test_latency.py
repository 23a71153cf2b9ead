"""Latency figures: what the engine records for each call, the rolling window, percentiles, and sharing
through a store (the Redis store itself: tests/strategies/sessions/stores/test_redis_latency.py)."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from chorus_mcp.strategies.core.completion import CompletionRequest
from chorus_mcp.strategies.core.errors import BadRequest, ModelTimeout
from chorus_mcp.strategies.core.spec import ModelStep, RouteSpec
from chorus_mcp.strategies.engine.calling import run_model
from chorus_mcp.strategies.engine.latency import WINDOW, LatencyStats, MemoryLatencyStore, Sample, percentile
from chorus_mcp.strategies.engine.reliability import CallGuard, ReliabilitySettings, RetrySettings
from chorus_mcp.strategies.engine.testing import context_of
from chorus_mcp.strategies.models.testing import ScriptedClient
from chorus_mcp.strategies.sessions.stores.redis_latency import RedisLatencyStore
from tests.support.servers import free_port

pytestmark = pytest.mark.anyio

ASK = CompletionRequest.of("What is 2 + 2?")


def _one_attempt() -> CallGuard:
    return CallGuard(ReliabilitySettings(retry=RetrySettings(max_attempts=1)))


def test_a_percentile_interpolates_between_the_closest_ranks() -> None:
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 50) == 3.0
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 100) == 5.0
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 90) == pytest.approx(4.6)
    assert percentile([7.0], 10) == 7.0


async def test_the_window_keeps_only_the_latest_samples_of_each_model() -> None:
    stats = LatencyStats(window=3)
    for value in (9.0, 9.0, 1.0, 2.0, 3.0):
        stats.record("a", value)
    stats.record("b", 5.0)

    figures, note = await stats.figures(["a", "b", "never"])

    assert note is None
    assert (figures["a"].seconds, figures["a"].samples) == (2.0, 3)
    assert (figures["b"].seconds, figures["b"].samples) == (5.0, 1)
    assert (figures["never"].seconds, figures["never"].samples) == (None, 0)


async def test_every_answer_is_recorded_at_the_latency_its_client_measured() -> None:
    ctx = context_of(ScriptedClient("quick", "4", delay_s=0.01), ScriptedClient("slow", "4", delay_s=0.2))

    for _ in range(2):
        await run_model(ModelStep(model="quick"), ASK, ctx, "model")
    await run_model(ModelStep(model="slow"), ASK, ctx, "model")

    figures, _ = await ctx.latency.figures(["quick", "slow"])
    assert (figures["quick"].seconds, figures["quick"].samples) == (0.01, 2)
    assert (figures["slow"].seconds, figures["slow"].samples) == (0.2, 1)


async def test_a_time_out_is_recorded_at_its_wait_and_an_instant_refusal_is_not_recorded() -> None:
    hanging = ScriptedClient("hanging", ModelTimeout("hanging", "no answer within 0.1s"), delay_s=0.1)
    refusing = ScriptedClient("refusing", BadRequest("refusing", "bad request (HTTP 400)"))
    ctx = context_of(hanging, refusing, guard=_one_attempt())

    await run_model(ModelStep(model="hanging"), ASK, ctx, "model")
    await run_model(ModelStep(model="refusing"), ASK, ctx, "model")

    figures, _ = await ctx.latency.figures(["hanging", "refusing"])
    assert figures["hanging"].samples == 1 and (figures["hanging"].seconds or 0) >= 0.1
    assert figures["refusing"].samples == 0


async def test_two_servers_sharing_a_store_see_each_others_samples_as_soon_as_they_read() -> None:
    store = MemoryLatencyStore()
    one, two = LatencyStats(shared=store), LatencyStats(shared=store)
    one.record("a", 1.0)
    two.record("a", 3.0)

    # Reading pushes the reader's own samples first; one's were pushed by its own sync loop (`push`).
    await one.push()
    figures, note = await two.figures(["a"])

    assert note is None
    assert (figures["a"].seconds, figures["a"].samples) == (2.0, 2)


async def test_an_unreachable_shared_store_gives_this_replicas_own_figures_and_says_so() -> None:
    unreachable = aioredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5)
    stats = LatencyStats(shared=RedisLatencyStore(unreachable, prefix="chorus-test:nobody:"))
    stats.record("a", 0.5)
    try:
        figures, note = await stats.figures(["a"])
    finally:
        await unreachable.aclose()

    assert (figures["a"].seconds, figures["a"].samples) == (0.5, 1)
    assert note is not None and note.startswith("shared latency figures unavailable")
    assert "this replica's own samples used" in note


async def test_samples_a_failed_push_could_not_send_are_sent_by_the_next_one() -> None:
    unreachable = aioredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5)
    stats = LatencyStats(shared=RedisLatencyStore(unreachable, prefix="chorus-test:nobody:"))
    stats.record("a", 0.5)
    try:
        with pytest.raises(Exception, match="latency figures"):
            await stats.push()
    finally:
        await unreachable.aclose()
    store = MemoryLatencyStore()
    stats.shared = store
    stats.record("a", 0.7)

    await stats.push()

    assert [sample.seconds for sample in (await store.windows(["a"]))["a"]] == [0.5, 0.7]


class _Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_samples_older_than_the_readers_limit_do_not_count_and_are_reported_aged_out() -> None:
    clock = _Clock(1_000.0)
    stats = LatencyStats(clock=clock)
    stats.record("a", 9.0)  # a slow spell, long ago
    stats.record("a", 9.0)
    clock.now = 1_500.0
    stats.record("a", 1.0)
    clock.now = 1_700.0

    figures, _ = await stats.figures(["a"], 50, max_age_s=600)
    everything, _ = await stats.figures(["a"], 50)

    assert (figures["a"].seconds, figures["a"].samples, figures["a"].aged_out) == (1.0, 1, 2)
    assert (everything["a"].seconds, everything["a"].samples, everything["a"].aged_out) == (9.0, 3, 0)


async def test_a_model_whose_every_sample_aged_out_reads_as_unmeasured() -> None:
    clock = _Clock(1_000.0)
    stats = LatencyStats(clock=clock)
    for _ in range(3):
        stats.record("a", 4.0)
    clock.now = 1_601.0

    figures, _ = await stats.figures(["a"], 50, max_age_s=600)

    assert (figures["a"].seconds, figures["a"].samples, figures["a"].aged_out) == (None, 0, 3)


async def test_shared_samples_carry_the_time_they_were_taken_not_the_time_they_were_pushed() -> None:
    clock = _Clock(1_000.0)
    store = MemoryLatencyStore()
    one, two = LatencyStats(shared=store, clock=clock), LatencyStats(shared=store, clock=clock)
    one.record("a", 2.0)
    clock.now = 1_700.0  # pushed late (a replica cut off from the store for a while)
    await one.push()

    figures, _ = await two.figures(["a"], 50, max_age_s=600)

    assert (await store.windows(["a"]))["a"] == [Sample(1_000.0, 2.0)]
    assert (figures["a"].samples, figures["a"].aged_out) == (0, 1)


async def test_a_reader_may_take_the_percentile_over_only_the_latest_samples() -> None:
    stats = LatencyStats()
    for value in [0.1] * 20 + [0.9] * 6:  # a model that has just slowed down
        stats.record("a", value)

    whole, _ = await stats.figures(["a"], 50)
    latest, _ = await stats.figures(["a"], 50, last=10)

    assert (whole["a"].seconds, whole["a"].samples) == (0.1, 26)
    assert (latest["a"].seconds, latest["a"].samples) == (0.9, 10)


def test_a_route_may_not_ask_for_a_longer_window_than_the_store_keeps() -> None:
    bound = RouteSpec.model_fields["latency_window"].metadata
    assert any(getattr(m, "le", None) == WINDOW for m in bound)
