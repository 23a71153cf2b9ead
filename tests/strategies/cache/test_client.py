"""The caching client in the strategy core: hits, misses, bypass, TTL, errors, temperature rules,
repeated ensemble members, traces and usage."""

from __future__ import annotations

import sys
import textwrap
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import anyio
import pytest

from chorus_mcp.strategies.cache.client import with_cache
from chorus_mcp.strategies.cache.response_cache import ResponseCache
from chorus_mcp.strategies.cache.scope import bypassing
from chorus_mcp.strategies.cache.settings import CacheSettings
from chorus_mcp.strategies.cache.store import CacheStoreError, StoreLimits
from chorus_mcp.strategies.cache.stores.memory import MemoryCacheStore
from chorus_mcp.strategies.cache.stores.sqlite import SqliteCacheStore
from chorus_mcp.strategies.core.completion import CompletionRequest
from chorus_mcp.strategies.core.errors import ProviderServerError
from chorus_mcp.strategies.core.result import compute_totals
from chorus_mcp.strategies.core.spec import EnsembleSpec, ModelStep
from chorus_mcp.strategies.engine.calling import run_model
from chorus_mcp.strategies.engine.context import Budget, RunContext
from chorus_mcp.strategies.engine.reliability import CallGuard, ReliabilitySettings, RetrySettings
from chorus_mcp.strategies.engine.runner import run_step
from chorus_mcp.strategies.kinds.ensemble import run_ensemble, sample_seed
from chorus_mcp.strategies.models.catalog import ModelCatalog, ModelEntry
from chorus_mcp.strategies.models.testing import ScriptedClient
from chorus_mcp.strategies.tracing import UsageLedger, instrument
from tests.strategies.cache.conftest import Clock
from tests.tracing_support import captured_spans

pytestmark = pytest.mark.anyio

REPO = Path(__file__).resolve().parents[3]
PROMPT = CompletionRequest.of("What is the capital of France?")


def _setup(
    *clients: ScriptedClient,
    settings: CacheSettings | None = None,
    store: MemoryCacheStore | SqliteCacheStore | None = None,
    models: dict[str, str] | None = None,
    usage: UsageLedger | None = None,
) -> tuple[RunContext, ResponseCache]:
    """A run context whose catalog's clients sit behind a response cache (inside the instrumentation)."""
    by_name = {client.name: client for client in clients}
    entries = {name: ModelEntry(model=(models or {}).get(name, f"fake/{name}")) for name in by_name}
    cache = ResponseCache(settings or CacheSettings(), store or MemoryCacheStore())
    factory = with_cache(lambda name, _entry: by_name[name], cache, usage)
    catalog = ModelCatalog(entries, instrument(factory, usage), allow_unlisted=False)
    return RunContext.starting_now(catalog, 10.0, step_runner=run_step), cache


async def _ask(ctx: RunContext, model: str, request: CompletionRequest = PROMPT) -> object:
    return await run_model(ModelStep(model=model), request, ctx, "ask")


async def test_a_repeated_call_is_answered_from_the_cache_at_no_cost_with_the_saving_kept() -> None:
    client = ScriptedClient("a", "Paris", cost_usd=Decimal("0.0025"))
    ctx, _ = _setup(client)
    first = await run_model(ModelStep(model="a"), PROMPT, ctx, "ask")
    second = await run_model(ModelStep(model="a"), PROMPT, ctx, "ask")

    assert len(client.requests) == 1
    assert first.completion is not None and not first.completion.cached
    hit = second.completion
    assert hit is not None and hit.cached and hit.text == "Paris"
    assert hit.cost_usd == Decimal(0) and hit.saved_cost_usd == Decimal("0.0025")
    record = second.result.calls[0]
    assert record.cached is True and record.cost_usd == 0 and record.saved_cost_usd == Decimal("0.0025")
    totals = compute_totals([*first.result.calls, *second.result.calls], 1.0)
    assert totals.calls == 1 and totals.cached_calls == 1
    assert totals.cost_usd == Decimal("0.0025") and totals.saved_cost_usd == Decimal("0.0025")


async def test_a_miss_is_recorded_without_any_cache_fields() -> None:
    ctx, _ = _setup(ScriptedClient("a", "Paris"))
    outcome = await run_model(ModelStep(model="a"), PROMPT, ctx, "ask")
    dumped = outcome.result.calls[0].model_dump(exclude_none=True)
    assert not {"cached", "similarity", "saved_cost_usd"} & dumped.keys()
    totals = compute_totals(outcome.result.calls, 1.0).model_dump(exclude_none=True)
    assert not {"cached_calls", "saved_cost_usd"} & totals.keys()


@pytest.mark.parametrize(
    "other",
    [
        CompletionRequest.of("What is the capital of Spain?"),
        CompletionRequest.of("What is the capital of France?", system="Answer in French."),
        CompletionRequest.of("What is the capital of France?", max_tokens=5),
        CompletionRequest.of("What is the capital of France?", temperature=0.0),
        CompletionRequest.of("What is the capital of France?", logprobs=True),
    ],
    ids=["prompt", "system", "max_tokens", "temperature", "logprobs"],
)
async def test_anything_that_changes_the_answer_is_a_different_entry(other: CompletionRequest) -> None:
    client = ScriptedClient("a", "Paris")
    ctx, _ = _setup(client)
    await run_model(ModelStep(model="a"), PROMPT, ctx, "ask")
    outcome = await run_model(ModelStep(model="a"), other, ctx, "ask")
    assert outcome.completion is not None and not outcome.completion.cached
    assert len(client.requests) == 2


async def test_a_different_time_out_still_hits_it_bounds_the_wait_not_the_answer() -> None:
    client = ScriptedClient("a", "Paris")
    ctx, _ = _setup(client)
    await run_model(ModelStep(model="a"), PROMPT.model_copy(update={"timeout_s": 5}), ctx, "ask")
    outcome = await run_model(ModelStep(model="a"), PROMPT.model_copy(update={"timeout_s": 9}), ctx, "ask")
    assert outcome.completion is not None and outcome.completion.cached


async def test_the_key_is_the_provider_model_not_the_alias() -> None:
    store = MemoryCacheStore()
    same = ScriptedClient("old", "Paris")
    ctx, _ = _setup(same, store=store, models={"old": "openai/m1"})
    await run_model(ModelStep(model="old"), PROMPT, ctx, "ask")
    # Another alias for the same model id shares the answer; the same alias for another model does not.
    renamed = ScriptedClient("new", "Paris!")
    ctx, _ = _setup(renamed, store=store, models={"new": "openai/m1"})
    assert (await run_model(ModelStep(model="new"), PROMPT, ctx, "ask")).completion.cached  # type: ignore[union-attr]
    moved = ScriptedClient("old", "Lyon")
    ctx, _ = _setup(moved, store=store, models={"old": "openai/m2"})
    outcome = await run_model(ModelStep(model="old"), PROMPT, ctx, "ask")
    assert (
        outcome.completion is not None and outcome.completion.text == "Lyon" and not outcome.completion.cached
    )


async def test_bypass_neither_reads_nor_writes_the_cache() -> None:
    client = ScriptedClient("a", "Paris")
    ctx, cache = _setup(client)
    with bypassing():
        await run_model(ModelStep(model="a"), PROMPT, ctx, "ask")
    assert (await cache.store.stats()).totals.entries == 0
    await run_model(ModelStep(model="a"), PROMPT, ctx, "ask")
    with bypassing():
        outcome = await run_model(ModelStep(model="a"), PROMPT, ctx, "ask")
    assert outcome.completion is not None and not outcome.completion.cached
    assert len(client.requests) == 3


async def test_an_answer_past_its_ttl_is_asked_for_again() -> None:
    clock = Clock()
    client = ScriptedClient("a", "Paris")
    store = MemoryCacheStore(StoreLimits(ttl_s=3600), clock=clock)
    ctx, cache = _setup(client, store=store)
    cache._clock = clock
    await run_model(ModelStep(model="a"), PROMPT, ctx, "ask")
    clock.now += 3599
    assert (await run_model(ModelStep(model="a"), PROMPT, ctx, "ask")).completion.cached  # type: ignore[union-attr]
    clock.now += 2
    outcome = await run_model(ModelStep(model="a"), PROMPT, ctx, "ask")
    assert outcome.completion is not None and not outcome.completion.cached
    assert len(client.requests) == 2


async def test_errors_are_never_cached() -> None:
    client = ScriptedClient("a", [ProviderServerError("a", "boom"), "Paris"])
    ctx, cache = _setup(client)
    ctx.guard = CallGuard(ReliabilitySettings(retry=RetrySettings(max_attempts=1)))  # no retry
    failed = await run_model(ModelStep(model="a"), PROMPT, ctx, "ask")
    assert not failed.result.ok
    assert (await cache.store.stats()).totals.entries == 0
    answered = await run_model(ModelStep(model="a"), PROMPT, ctx, "ask")
    assert answered.completion is not None and answered.completion.text == "Paris"
    assert not answered.completion.cached and len(client.requests) == 2


async def test_a_cancelled_call_is_not_cached() -> None:
    client = ScriptedClient("a", "Paris", delay_s=5)
    ctx, cache = _setup(client)
    with anyio.move_on_after(0.05):
        await run_model(ModelStep(model="a"), PROMPT, ctx, "ask")
    assert client.cancelled == 1
    assert (await cache.store.stats()).totals.entries == 0


@pytest.mark.parametrize(
    ("temperature", "sampled_calls", "cached"),
    [(None, False, True), (0.0, False, True), (0.7, False, False), (0.7, True, True)],
)
async def test_sampled_calls_are_cached_only_when_config_says_so(
    temperature: float | None, sampled_calls: bool, cached: bool
) -> None:
    client = ScriptedClient("a", "Paris")
    ctx, _ = _setup(client, settings=CacheSettings(sampled_calls=sampled_calls))
    request = PROMPT.model_copy(update={"temperature": temperature})
    await run_model(ModelStep(model="a"), request, ctx, "ask")
    outcome = await run_model(ModelStep(model="a"), request, ctx, "ask")
    assert outcome.completion is not None and outcome.completion.cached is cached
    assert len(client.requests) == (1 if cached else 2)


async def test_the_repeated_copies_of_a_model_are_seeded_samples_never_served_from_the_cache() -> None:
    client = ScriptedClient("a", ["X", "Y", "Z", "W", "V"])  # one reply per request, in turn
    ctx, _ = _setup(client)
    spec = EnsembleSpec(members=["a", "a", "a"], extract="text", early_stop=False)
    await run_ensemble(spec, PROMPT, ctx, "ensemble")
    second = await run_ensemble(spec, PROMPT, ctx, "ensemble")
    # The first copy is the plain call (cached the second time); the others are fresh samples.
    assert len(client.requests) == 5
    asked = [(r.seed, r.temperature) for r in client.requests[:3]]
    assert asked[0] == (None, None)
    assert sorted(asked[1:]) == sorted((sample_seed(n, PROMPT), 0.7) for n in (1, 2))
    assert [c.cached for c in second.calls] == [True, None, None]


async def test_without_diversity_each_copy_of_a_model_keeps_its_own_cached_answer() -> None:
    client = ScriptedClient("a", ["X", "Y", "Z"])
    ctx, _ = _setup(client)
    spec = EnsembleSpec(members=["a", "a", "a"], extract="text", early_stop=False, diversify_repeats=False)
    first = await run_ensemble(spec, PROMPT, ctx, "ensemble")
    second = await run_ensemble(spec, PROMPT, ctx, "ensemble")
    assert len(client.requests) == 3  # a provider call per copy the first time, none the second
    assert sorted(c.answer or "" for c in first.calls) == ["x", "y", "z"]  # text votes are casefolded
    assert sorted(c.answer or "" for c in second.calls) == ["x", "y", "z"]
    assert all(c.cached for c in second.calls)


async def test_a_single_member_shares_its_answer_with_a_plain_call_of_the_same_model() -> None:
    client = ScriptedClient("a", "Paris")
    ctx, _ = _setup(client, ScriptedClient("b", "Paris"))
    await run_model(ModelStep(model="a"), PROMPT, ctx, "ask")
    result = await run_ensemble(EnsembleSpec(members=["a", "b"], extract="text"), PROMPT, ctx, "ensemble")
    assert [c.cached for c in result.calls if c.model == "a"] == [True]


class _BrokenStore(MemoryCacheStore):
    async def get(self, key: str) -> None:
        raise CacheStoreError("cache store: disk I/O error")


async def test_a_failing_store_never_fails_the_call() -> None:
    client = ScriptedClient("a", "Paris")
    ctx, _ = _setup(client, store=_BrokenStore())
    outcome = await run_model(ModelStep(model="a"), PROMPT, ctx, "ask")
    assert outcome.result.ok and outcome.completion is not None and not outcome.completion.cached


async def test_hits_and_misses_reach_the_usage_ledger_and_a_hit_costs_nothing() -> None:
    usage = UsageLedger()
    ctx, _ = _setup(ScriptedClient("a", "Paris", cost_usd=Decimal("0.002")), usage=usage)
    for _ in range(3):
        await run_model(ModelStep(model="a"), PROMPT, ctx, "ask")
    summary = usage.summary()
    model = summary.models["a"]
    assert (model.calls, model.cache_hits, model.cache_misses) == (1, 2, 1)
    assert model.cost_usd == Decimal("0.002") and model.saved_cost_usd == Decimal("0.004")
    assert (summary.totals.cache_hits, summary.totals.saved_cost_usd) == (2, Decimal("0.004"))


async def test_the_llm_span_says_whether_the_cache_answered() -> None:
    ctx, _ = _setup(ScriptedClient("a", "Paris", cost_usd=Decimal("0.002")))
    with captured_spans() as spans:
        await run_model(ModelStep(model="a"), PROMPT, ctx, "ask")
        await run_model(ModelStep(model="a"), PROMPT, ctx, "ask")
        with bypassing():
            await run_model(ModelStep(model="a"), PROMPT, ctx, "ask")
    # A hit's span is "llm a (cached)".
    llm = [dict(s.attributes or {}) for s in spans.get_finished_spans() if s.name.startswith("llm a")]
    assert [a.get("chorus.cache") for a in llm] == ["miss", "hit", "bypass"]
    hit = llm[1]
    assert hit["chorus.cost_usd"] == 0.0 and hit["chorus.cache.saved_cost_usd"] == 0.002
    assert "llm.token_count.prompt" not in hit  # Phoenix must not price a call that was not made
    assert "llm.token_count.prompt" in llm[0]


_WRITER = """
import anyio
from chorus_mcp.strategies.cache.client import with_cache
from chorus_mcp.strategies.cache.response_cache import ResponseCache
from chorus_mcp.strategies.cache.settings import CacheSettings
from chorus_mcp.strategies.cache.stores.sqlite import SqliteCacheStore
from chorus_mcp.strategies.models.catalog import ModelEntry
from chorus_mcp.strategies.core.completion import CompletionRequest
from chorus_mcp.strategies.models.testing import ScriptedClient

async def main():
    cache = ResponseCache(CacheSettings(), SqliteCacheStore({path!r}))
    factory = with_cache(lambda name, entry: ScriptedClient(name, "Paris"), cache)
    client = factory("a", ModelEntry(model="fake/a"))
    await client.complete(CompletionRequest.of("What is the capital of France?"))
    await cache.aclose()

anyio.run(main)
"""


async def test_the_sqlite_cache_survives_a_process_restart(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite3"
    code = textwrap.dedent(_WRITER.format(path=str(path)))
    done = await anyio.run_process([sys.executable, "-c", code], cwd=REPO, check=False)
    assert done.returncode == 0, done.stderr.decode()
    client = ScriptedClient("a", "not asked")
    ctx, cache = _setup(client, store=SqliteCacheStore(path))
    outcome = await run_model(ModelStep(model="a"), PROMPT, ctx, "ask")
    await cache.aclose()
    assert outcome.completion is not None and outcome.completion.cached and outcome.completion.text == "Paris"
    assert client.requests == []


async def test_a_hit_on_an_answer_of_unknown_price_costs_nothing_and_claims_no_saving() -> None:
    ctx, _ = _setup(ScriptedClient("a", "Paris", cost_usd=None))
    await run_model(ModelStep(model="a"), PROMPT, ctx, "ask")
    second = await run_model(ModelStep(model="a"), PROMPT, ctx, "ask")
    assert second.completion is not None and second.completion.cached
    assert second.completion.cost_usd == 0 and second.completion.saved_cost_usd is None
    totals = compute_totals(second.result.calls, 1.0)
    assert totals.cost_usd == 0 and totals.cached_calls == 1 and totals.saved_cost_usd is None


def _spent() -> Budget:
    """A cap already overrun (a charge after the fact can do that): the budget refuses any call."""
    return Budget(max_cost_usd=Decimal("0.001"), spent_usd=Decimal("0.002"))


async def test_a_call_the_budget_cannot_pay_for_is_still_answered_from_the_cache() -> None:
    client = ScriptedClient("a", "Paris", cost_usd=Decimal("0.0025"))
    ctx, _ = _setup(client)
    await _ask(ctx, "a")  # no cap: asked and stored
    capped = replace(ctx, budget=_spent())

    hit = await run_model(ModelStep(model="a"), PROMPT, capped, "ask")
    other = await run_model(ModelStep(model="a"), CompletionRequest.of("And of Spain?"), capped, "ask")

    assert len(client.requests) == 1
    assert hit.completion is not None and hit.completion.cached and hit.completion.text == "Paris"
    assert hit.result.calls[0].status == "ok" and hit.result.calls[0].cost_usd == 0
    assert other.completion is None  # not cached: the budget's refusal stands
    assert other.result.calls[0].status == "skipped" and "budget" in (other.result.calls[0].error or "")


async def test_cache_false_also_keeps_a_budget_refusal_from_reading_the_cache() -> None:
    client = ScriptedClient("a", "Paris", cost_usd=Decimal("0.0025"))
    ctx, _ = _setup(client)
    await _ask(ctx, "a")
    capped = replace(ctx, budget=_spent())

    with bypassing(True):
        refused = await run_model(ModelStep(model="a"), PROMPT, capped, "ask")

    assert refused.completion is None and refused.result.calls[0].status == "skipped"
