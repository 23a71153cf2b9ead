"""`run_model`: fallback chains, retries, Retry-After, circuit breakers, budget pre-checks, context-window
fallbacks and per-provider concurrency caps, on scripted clients (and litellm against the fake server)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

import anyio
import pytest

from chorus_mcp.strategies.core.completion import Completion, CompletionRequest
from chorus_mcp.strategies.core.errors import (
    AuthenticationFailed,
    BadRequest,
    ContextWindowExceeded,
    ModelError,
    ModelTimeout,
    ProviderServerError,
    ProviderUnavailable,
    RateLimited,
)
from chorus_mcp.strategies.core.result import CallRecord, FallbackDecision
from chorus_mcp.strategies.core.spec import EnsembleSpec, ModelStep
from chorus_mcp.strategies.engine.calling import run_model
from chorus_mcp.strategies.engine.context import Budget, RunContext
from chorus_mcp.strategies.engine.reliability import (
    BreakerSettings,
    CallGuard,
    ReliabilitySettings,
    RetrySettings,
)
from chorus_mcp.strategies.engine.testing import context_of
from chorus_mcp.strategies.kinds.ensemble import run_ensemble
from chorus_mcp.strategies.models.catalog import ModelCatalog, ModelEntry
from chorus_mcp.strategies.models.client import CostEstimator, ModelClient
from chorus_mcp.strategies.models.providers import LiteLLMClient, OpenAICompatClient
from chorus_mcp.strategies.models.testing import ScriptedClient
from tests.fake_openai import FakeOpenAI, Fault

pytestmark = pytest.mark.anyio

ASK = CompletionRequest.of("6*7?")


Entries = Mapping[str, Mapping[str, object]]
"""Per-model settings for a test catalog: alias → `ModelEntry` fields."""


def guard(
    *,
    attempts: int = 3,
    threshold: int = 5,
    cooldown_s: float = 30,
    concurrency: int = 32,
    clock: Callable[[], float] = time.monotonic,
) -> CallGuard:
    """Tiny back-offs (so the suite stays fast), and the breaker and cap the test needs."""
    retry = RetrySettings(max_attempts=attempts, base_delay_s=0.001, max_delay_s=0.002, max_retry_after_s=1)
    settings = ReliabilitySettings(
        retry=retry,
        breaker=BreakerSettings(failure_threshold=threshold, cooldown_s=cooldown_s),
        provider_concurrency=concurrency,
    )
    return CallGuard(settings, clock=clock)


def catalog_for(clients: Mapping[str, ModelClient], entries: Entries) -> ModelCatalog:
    """A catalog with an entry per client (`fake/<name>`, so all on one provider) plus `entries[name]`."""
    settings = {name: {"model": f"fake/{name}", **entries.get(name, {})} for name in clients}
    return ModelCatalog(
        {name: ModelEntry.model_validate(fields) for name, fields in settings.items()},
        lambda name, _entry: clients[name],
        allow_unlisted=False,
    )


def context(*clients: ScriptedClient, entries: Entries) -> RunContext:
    catalog = catalog_for({client.name: client for client in clients}, entries)
    return RunContext.starting_now(catalog, 10, guard=guard())


def trail(calls: list[CallRecord]) -> list[tuple[str, str]]:
    return [(c.model, c.status) for c in calls]


# -- fallback chains ----------------------------------------------------------------------------------


async def test_a_failing_model_falls_back_to_the_next_in_its_chain_and_says_why() -> None:
    broken = ScriptedClient("primary", ProviderServerError("primary", "HTTP 500 from provider", 500))
    healthy = ScriptedClient("backup", "42")
    ctx = context_of(broken, healthy, fallbacks={"primary": ["backup"]}, guard=guard())

    outcome = await run_model(ModelStep(model="primary"), ASK, ctx, "model")

    assert outcome.result.ok and outcome.result.answer == "42"
    assert trail(outcome.result.calls) == [
        ("primary", "error"),
        ("primary", "error"),
        ("primary", "error"),
        ("backup", "ok"),
    ]
    assert [c.attempt for c in outcome.result.calls] == [1, 2, 3, None]
    assert [c.retry_in_s is not None for c in outcome.result.calls] == [True, True, False, False]
    assert "attempt 1, retrying in" in (outcome.result.calls[0].error or "")
    fallback = outcome.result.decisions[0]
    assert isinstance(fallback, FallbackDecision)
    assert fallback.to_model == "backup" and "500" in fallback.reason
    assert [d.kind for d in outcome.result.decisions] == ["fallback", "note"]  # "backup answered for primary"


async def test_when_every_model_fails_the_error_names_each_model_and_reason() -> None:
    a = ScriptedClient("a", ProviderServerError("a", "HTTP 503", 503))
    b = ScriptedClient("b", "late", delay_s=5)
    ctx = context_of(a, b, deadline_s=0.2, guard=guard())

    outcome = await run_model(ModelStep(model="a", fallbacks=["b"]), ASK, ctx, "model")

    assert not outcome.result.ok and outcome.result.answer is None
    assert outcome.result.error == (
        "no model answered: a (error): a: HTTP 503 (after 3 attempts); "
        "b (timeout): b: no answer before the run's deadline (0.2s)"
    )


async def test_an_unknown_model_in_the_chain_stops_it_rather_than_hiding_the_mistake() -> None:
    a = ScriptedClient("a", BadRequest("a", "HTTP 400"))
    ctx = context_of(a, guard=guard())

    outcome = await run_model(ModelStep(model="a", fallbacks=["nope"]), ASK, ctx, "model")

    assert trail(outcome.result.calls) == [("a", "error"), ("nope", "skipped")]
    assert "unknown model 'nope'" in (outcome.result.error or "")


# -- retries ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        ModelTimeout("m", "no answer within 1s"),
        RateLimited("m", "HTTP 429"),
        ProviderServerError("m", "HTTP 502", 502),
        ProviderUnavailable("m", "connection reset"),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_a_transient_failure_is_retried_on_the_same_model(error: ModelError) -> None:
    flaky = ScriptedClient("m", [error, "42"])
    ctx = context_of(flaky, guard=guard())

    outcome = await run_model(ModelStep(model="m"), ASK, ctx, "model")

    assert outcome.result.ok and outcome.result.answer == "42"
    assert trail(outcome.result.calls) == [("m", outcome.result.calls[0].status), ("m", "ok")]
    assert [c.attempt for c in outcome.result.calls] == [1, 2]


@pytest.mark.parametrize(
    "error",
    [
        BadRequest("m", "HTTP 400"),
        AuthenticationFailed("m", "HTTP 401"),
        AuthenticationFailed("m", "HTTP 403"),
        ContextWindowExceeded("m", "prompt does not fit"),
    ],
    ids=lambda e: f"{type(e).__name__}-{e}",
)
async def test_a_failure_retrying_cannot_fix_moves_on_after_one_attempt(error: ModelError) -> None:
    broken = ScriptedClient("m", error)
    backup = ScriptedClient("backup", "42")
    ctx = context_of(broken, backup, guard=guard(attempts=5))

    outcome = await run_model(ModelStep(model="m", fallbacks=["backup"]), ASK, ctx, "model")

    assert len(broken.requests) == 1
    assert trail(outcome.result.calls) == [("m", "error"), ("backup", "ok")]
    assert outcome.result.calls[0].attempt is None and outcome.result.calls[0].retry_in_s is None


async def test_retry_after_is_waited_for_before_trying_the_same_model_again() -> None:
    limited = ScriptedClient("m", [RateLimited("m", "HTTP 429", retry_after=0.15), "42"])
    ctx = context_of(limited, guard=guard())
    started = anyio.current_time()

    outcome = await run_model(ModelStep(model="m"), ASK, ctx, "model")

    assert anyio.current_time() - started >= 0.15
    assert outcome.result.ok and outcome.result.calls[0].retry_in_s == 0.15


async def test_a_503s_retry_after_from_the_provider_is_waited_for_then_the_retry_answers(
    fake_openai: FakeOpenAI,
) -> None:
    overloaded = Fault.http(503, "overloaded", type="server_error", headers={"retry-after-ms": "200"})
    fake_openai.script("gpt-a", [overloaded, "42"])
    entry = ModelEntry(model="openai/gpt-a", api_base=fake_openai.base_url)
    ctx = context_of(OpenAICompatClient("m", entry), guard=guard())

    outcome = await run_model(ModelStep(model="m"), ASK, ctx, "model")

    assert outcome.result.ok and outcome.result.answer == "42"
    failed = outcome.result.calls[0]
    assert failed.status == "error" and "HTTP 503" in (failed.error or "")
    assert failed.retry_in_s == 0.2
    assert len(fake_openai.requests) == 2


async def test_a_retry_after_longer_than_allowed_moves_to_the_next_model_at_once() -> None:
    limited = ScriptedClient("m", RateLimited("m", "HTTP 429", retry_after=120))
    backup = ScriptedClient("backup", "42")
    ctx = context_of(limited, backup, guard=guard())  # max_retry_after_s=1
    started = anyio.current_time()

    outcome = await run_model(ModelStep(model="m", fallbacks=["backup"]), ASK, ctx, "model")

    assert anyio.current_time() - started < 5  # far below the 120 s asked for
    assert len(limited.requests) == 1 and trail(outcome.result.calls) == [("m", "error"), ("backup", "ok")]


async def test_a_retry_that_would_outlast_the_deadline_is_not_started() -> None:
    limited = ScriptedClient("m", RateLimited("m", "HTTP 429", retry_after=0.9))
    ctx = context_of(limited, deadline_s=0.3, guard=guard())
    started = anyio.current_time()

    outcome = await run_model(ModelStep(model="m"), ASK, ctx, "model")

    assert anyio.current_time() - started < 0.8 and len(limited.requests) == 1  # 0.9 s were not waited
    assert not outcome.result.ok


# -- circuit breaker ----------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_a_dead_model_opens_its_circuit_and_is_then_skipped_without_a_call() -> None:
    clock = Clock()
    dead = ScriptedClient("dead", ProviderServerError("dead", "HTTP 500", 500))
    backup = ScriptedClient("backup", "42")
    ctx = context_of(dead, backup, fallbacks={"dead": ["backup"]})
    ctx.guard = guard(attempts=3, threshold=2, cooldown_s=30, clock=clock)
    step = ModelStep(model="dead")

    first = await run_model(step, ASK, ctx, "model")
    second = await run_model(step, ASK, ctx, "model")

    # The second failure opened the circuit: no third attempt, straight to the fallback.
    assert trail(first.result.calls) == [("dead", "error"), ("dead", "error"), ("backup", "ok")]
    assert len(dead.requests) == 2
    assert trail(second.result.calls) == [("dead", "skipped"), ("backup", "ok")]
    skipped = second.result.calls[0]
    assert skipped.error is not None and skipped.error.startswith("dead: circuit open")
    assert skipped.latency_s is None

    # After the cool-down one probe goes through; the model has recovered, so the circuit closes.
    dead.replies = "back"
    clock.now += 30
    third = await run_model(step, ASK, ctx, "model")
    assert trail(third.result.calls) == [("dead", "ok")] and ctx.guard.breaker("dead").state == "closed"


async def test_a_failed_probe_reopens_the_circuit_without_retrying() -> None:
    clock = Clock()
    dead = ScriptedClient("dead", ProviderServerError("dead", "HTTP 503", 503))
    ctx = context_of(dead)
    ctx.guard = guard(attempts=3, threshold=1, cooldown_s=30, clock=clock)
    await run_model(ModelStep(model="dead"), ASK, ctx, "model")
    clock.now += 30

    probe = await run_model(ModelStep(model="dead"), ASK, ctx, "model")

    assert trail(probe.result.calls) == [("dead", "error")] and len(dead.requests) == 2
    assert ctx.guard.breaker("dead").state == "open"


async def test_a_time_out_forced_by_the_runs_deadline_does_not_count_against_the_model() -> None:
    slow = ScriptedClient("slow", "42", delay_s=5)
    ctx = context_of(slow, deadline_s=0.1)
    ctx.guard = guard(threshold=1)

    outcome = await run_model(ModelStep(model="slow"), ASK, ctx, "model")

    assert trail(outcome.result.calls) == [("slow", "timeout")]
    assert ctx.guard.breaker("slow").state == "closed"


async def test_a_model_time_out_does_count_against_the_model() -> None:
    slow = ScriptedClient("slow", "42", delay_s=5)
    ctx = context(slow, entries={"slow": {"timeout_s": 0.1}})
    ctx.guard = guard(attempts=1, threshold=1)

    outcome = await run_model(ModelStep(model="slow"), ASK, ctx, "model")

    assert outcome.result.calls[0].error == "slow: no answer within 0.1s"
    assert ctx.guard.breaker("slow").state == "open"


# -- budget pre-check ---------------------------------------------------------------------------------


@dataclass
class PricedClient(ScriptedClient):
    """A scripted client that can estimate its worst-case cost before a call."""

    estimate: Decimal | None = Decimal("0.004")
    estimated: list[CompletionRequest] = field(default_factory=lambda: [])

    def estimate_cost_usd(self, request: CompletionRequest) -> Decimal | None:
        self.estimated.append(request)
        return self.estimate


def test_a_priced_client_is_a_cost_estimator() -> None:
    assert isinstance(PricedClient("m", "ok"), CostEstimator)
    assert not isinstance(ScriptedClient("m", "ok"), CostEstimator)


async def test_a_call_that_could_break_the_cap_is_not_started_and_the_result_says_so() -> None:
    pricey = PricedClient("m", "42", cost_usd=Decimal("0.004"), estimate=Decimal("0.004"))
    ctx = context_of(pricey, budget=Budget(max_cost_usd=Decimal("0.006")), guard=guard())

    first = await run_model(ModelStep(model="m"), ASK, ctx, "model")
    second = await run_model(ModelStep(model="m"), ASK, ctx, "model")

    assert first.result.ok and len(pricey.requests) == 1
    assert not second.result.ok and trail(second.result.calls) == [("m", "skipped")]
    assert second.result.calls[0].error == (
        "budget: the call could cost up to $0.004000, $0.002000 is left; even 64 output tokens would cost "
        "up to $0.004000 (the prompt alone up to $0.004000), so it was not started"
    )
    assert ctx.budget.spent_usd == Decimal("0.004") and ctx.budget.reserved_usd == 0


async def test_under_a_cap_the_call_asks_for_the_output_it_reserved_the_models_max_output_tokens() -> None:
    pricey = PricedClient("m", "42")
    ctx = context(pricey, entries={"m": {"max_output_tokens": 321}})
    ctx.budget = Budget(max_cost_usd=Decimal(1))

    await run_model(ModelStep(model="m"), ASK, ctx, "model")
    await run_model(ModelStep(model="m", max_tokens=7), ASK, ctx, "model")

    assert [r.max_tokens for r in pricey.estimated] == [321, 7]
    assert [r.max_tokens for r in pricey.requests] == [321, 7]  # what was reserved is what is asked for


async def test_without_a_cap_the_call_is_sent_as_asked() -> None:
    pricey = PricedClient("m", "42")
    ctx = context(pricey, entries={"m": {"max_output_tokens": 321}})

    await run_model(ModelStep(model="m"), ASK, ctx, "model")

    assert pricey.requests[0].max_tokens is None and pricey.estimated == []


async def test_a_model_over_budget_falls_back_to_a_cheaper_one() -> None:
    pricey = PricedClient("big", "big answer", estimate=Decimal("0.05"))
    cheap = PricedClient("small", "small answer", estimate=Decimal("0.001"))
    ctx = context_of(pricey, cheap, budget=Budget(max_cost_usd=Decimal("0.01")), guard=guard())

    outcome = await run_model(ModelStep(model="big", fallbacks=["small"]), ASK, ctx, "model")

    assert outcome.result.answer == "small answer" and pricey.requests == []
    fallback = outcome.result.decisions[0]
    assert isinstance(fallback, FallbackDecision)
    assert fallback.reason.startswith("budget: the call could cost")


async def test_parallel_members_cannot_together_break_the_cap() -> None:
    members = [PricedClient(name, "B", delay_s=0.05, cost_usd=Decimal("0.004")) for name in ("a", "b", "c")]
    ctx = context_of(*members, budget=Budget(max_cost_usd=Decimal("0.010")), guard=guard())
    spec = EnsembleSpec(members=["a", "b", "c"], early_stop=False)

    result = await run_ensemble(spec, CompletionRequest.of("A) or B)?"), ctx, "ensemble")

    # Each alone fits, but the third to start would make 0.012 > 0.010: it is refused before starting.
    assert result.ok and result.answer == "B"
    assert sorted(c.status for c in result.calls) == ["ok", "ok", "skipped"]
    assert sum(len(m.requests) for m in members) == 2
    assert ctx.budget.spent_usd == Decimal("0.008") <= Decimal("0.010")


async def test_a_failed_call_gives_its_reservation_back() -> None:
    flaky = PricedClient("m", [ProviderServerError("m", "HTTP 500", 500), "42"], estimate=Decimal("0.006"))
    ctx = context_of(flaky, budget=Budget(max_cost_usd=Decimal("0.010")), guard=guard())

    outcome = await run_model(ModelStep(model="m"), ASK, ctx, "model")

    assert outcome.result.ok and ctx.budget.reserved_usd == 0


def test_litellm_estimates_at_least_the_prompt_at_input_price_plus_max_tokens_at_output_price() -> None:
    entry = ModelEntry(
        model="openai/house-model", input_cost_per_mtok=Decimal(2), output_cost_per_mtok=Decimal(8)
    )
    client = LiteLLMClient("house", entry)
    prompt = "hello world " * 40  # 80 words: at least 80 tokens

    with_output = client.estimate_cost_usd(CompletionRequest.of(prompt, max_tokens=500))
    without_output = client.estimate_cost_usd(CompletionRequest.of(prompt, max_tokens=0))

    assert with_output is not None and without_output is not None
    assert with_output - without_output == 500 * Decimal(8) / 1_000_000
    assert without_output >= 80 * Decimal(2) / 1_000_000  # an estimate for a cap errs high, never low
    unpriced = LiteLLMClient("unpriced", ModelEntry(model="openai/house-model"))
    assert unpriced.estimate_cost_usd(CompletionRequest.of(prompt)) is None


async def test_a_call_over_budget_never_reaches_the_provider(
    fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHORUS_TEST_BUDGET_KEY", "dummy-budget-credential-42")
    fake_openai.script("gpt-a", "fine")
    entry = ModelEntry(
        model="openai/gpt-a",
        api_base=fake_openai.base_url,
        api_key_env="CHORUS_TEST_BUDGET_KEY",
        input_cost_per_mtok=Decimal(10),
        output_cost_per_mtok=Decimal(30),
        max_output_tokens=1000,
    )
    catalog = ModelCatalog({"a": entry}, lambda name, e: LiteLLMClient(name, e), allow_unlisted=False)
    # 64 output tokens (the fewest a call starts with) at $30/M alone is $0.00192: a $0.0015 cap refuses
    # the call before it is sent.
    ctx = RunContext.starting_now(catalog, 60, budget=Budget(max_cost_usd=Decimal("0.0015")), guard=guard())

    refused = await run_model(ModelStep(model="a"), ASK, ctx, "model")
    ctx.budget = Budget(max_cost_usd=Decimal("0.05"))
    allowed = await run_model(ModelStep(model="a"), ASK, ctx, "model")

    assert trail(refused.result.calls) == [("a", "skipped")] and "budget" in (refused.result.error or "")
    assert allowed.result.ok and len(fake_openai.requests) == 1
    assert fake_openai.last_request.body["max_tokens"] == 1000  # the reservation, told to the provider
    assert os.environ["CHORUS_TEST_BUDGET_KEY"] not in (refused.result.error or "")


# -- context window -----------------------------------------------------------------------------------


async def test_a_prompt_too_long_goes_to_the_context_fallback_before_any_other() -> None:
    small = ScriptedClient("small", ContextWindowExceeded("small", "prompt does not fit (8192 tokens)"))
    other = ScriptedClient("other", "other answer")
    big = ScriptedClient("big", "big answer")
    ctx = context(small, other, big, entries={"small": {"context_fallback": "big", "fallbacks": ["other"]}})

    outcome = await run_model(ModelStep(model="small"), ASK, ctx, "model")

    assert outcome.result.answer == "big answer" and other.requests == []
    assert trail(outcome.result.calls) == [("small", "error"), ("big", "ok")]
    fallback = outcome.result.decisions[0]
    assert isinstance(fallback, FallbackDecision) and fallback.to_model == "big"
    assert "larger-context fallback big" in fallback.reason


async def test_context_fallbacks_that_point_at_each_other_do_not_loop() -> None:
    a = ScriptedClient("a", ContextWindowExceeded("a", "too long"))
    b = ScriptedClient("b", ContextWindowExceeded("b", "too long"))
    ctx = context(a, b, entries={"a": {"context_fallback": "b"}, "b": {"context_fallback": "a"}})

    outcome = await run_model(ModelStep(model="a"), ASK, ctx, "model")

    assert trail(outcome.result.calls) == [("a", "error"), ("b", "error")]
    assert not outcome.result.ok


# -- concurrency caps per provider --------------------------------------------------------------------


@dataclass
class CountingClient:
    """Counts the calls in flight at once (shared by every client of the test)."""

    name: str
    gauge: dict[str, int]
    delay_s: float = 0.02

    async def complete(self, request: CompletionRequest) -> Completion:
        self.gauge["now"] += 1
        self.gauge["peak"] = max(self.gauge["peak"], self.gauge["now"])
        try:
            await anyio.sleep(self.delay_s)
        finally:
            self.gauge["now"] -= 1
        return Completion(text="ok", model=self.name)


def counting_context(gauge: dict[str, int], cap: int, entries: Entries | None = None) -> RunContext:
    clients = {name: CountingClient(name, gauge) for name in ("a", "b", "c")}
    return RunContext.starting_now(catalog_for(clients, entries or {}), 10, guard=guard(concurrency=cap))


async def test_a_burst_never_exceeds_the_providers_concurrency_cap() -> None:
    gauge = {"now": 0, "peak": 0}
    ctx = counting_context(gauge, cap=3)
    outcomes: list[bool] = []

    async def one(model: str) -> None:
        outcome = await run_model(ModelStep(model=model), ASK, ctx, "burst")
        outcomes.append(outcome.result.ok)

    async with anyio.create_task_group() as group:
        for n in range(30):
            group.start_soon(one, "abc"[n % 3])

    assert outcomes == [True] * 30
    assert gauge["peak"] == 3


async def test_waiting_for_a_slot_does_not_count_against_the_models_time_out() -> None:
    gauge = {"now": 0, "peak": 0}
    # Each call takes 0.02 s of a 0.05 s time-out; queued behind 9 others it waits far longer than that.
    ctx = counting_context(gauge, cap=1, entries={"a": {"timeout_s": 0.05}})
    outcomes: list[bool] = []

    async def one() -> None:
        outcomes.append((await run_model(ModelStep(model="a"), ASK, ctx, "burst")).result.ok)

    async with anyio.create_task_group() as group:
        for _ in range(10):
            group.start_soon(one)

    assert outcomes == [True] * 10 and gauge["peak"] == 1


async def test_models_on_different_endpoints_do_not_share_a_cap() -> None:
    gauge = {"now": 0, "peak": 0}
    ctx = counting_context(gauge, cap=1, entries={"b": {"api_base": "http://127.0.0.1:9/v1"}})

    async with anyio.create_task_group() as group:
        group.start_soon(run_model, ModelStep(model="a"), ASK, ctx, "x")
        group.start_soon(run_model, ModelStep(model="b"), ASK, ctx, "x")

    assert gauge["peak"] == 2
