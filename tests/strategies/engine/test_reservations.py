"""Reservations: under a cap a call asks for the output it reserved (fewer tokens to fit what is left, or
no call when not even a short answer fits), and what it really cost is charged — in full when the provider
answers with more than it was asked for, which then refuses the next call. Over scripted clients priced
by the real price rules (`pricing`); over real HTTP in tests/server/test_fault_matrix.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import anyio
import pytest

from chorus_mcp.strategies.core.completion import Completion, CompletionRequest
from chorus_mcp.strategies.core.errors import ProviderServerError
from chorus_mcp.strategies.core.result import NoteDecision
from chorus_mcp.strategies.core.spec import EnsembleSpec, ModelStep
from chorus_mcp.strategies.engine.calling import run_model
from chorus_mcp.strategies.engine.context import Budget, RunContext
from chorus_mcp.strategies.engine.reservations import MIN_OUTPUT_TOKENS
from chorus_mcp.strategies.engine.runner import run_step
from chorus_mcp.strategies.kinds.ensemble import run_ensemble
from chorus_mcp.strategies.models.catalog import ModelCatalog, ModelEntry
from chorus_mcp.strategies.models.providers.pricing import cost_of, estimate_cost_usd, estimate_prompt_tokens

pytestmark = pytest.mark.anyio

ASK = CompletionRequest.of("Which is larger, A) 3 or B) 4?")
PRICED = {
    "input_cost_per_mtok": Decimal(1000),
    "output_cost_per_mtok": Decimal(10_000),
    "max_output_tokens": 500,
}
"""$0.001 a prompt token, $0.01 an output token: 500 output tokens reserve $5."""


@dataclass
class PricedModel:
    """A provider client priced like a real one: it estimates with `pricing`, and answers with
    `answer_tokens` output tokens — at most `max_tokens` when `honest`, whatever it was asked otherwise."""

    name: str
    entry: ModelEntry
    answer_tokens: int = 200
    honest: bool = True
    report_usage: bool = True
    fail_first: bool = False
    delay_s: float = 0.0
    requests: list[CompletionRequest] = field(default_factory=lambda: [])

    def estimate_cost_usd(self, request: CompletionRequest) -> Decimal | None:
        return estimate_cost_usd(self.entry, request)

    async def complete(self, request: CompletionRequest) -> Completion:
        self.requests.append(request)
        await anyio.sleep(self.delay_s)
        if self.fail_first and len(self.requests) == 1:
            raise ProviderServerError(self.name, "provider error (HTTP 500)", 500)
        tokens = self.answer_tokens
        if self.honest and request.max_tokens is not None:
            tokens = min(tokens, request.max_tokens)
        # The prompt costs what real tokenizers count: well under the pre-call bound.
        prompt = estimate_prompt_tokens(request) // 2 if self.report_usage else None
        completion = tokens if self.report_usage else None
        return Completion(
            text="B " * tokens,
            model=self.entry.model,
            prompt_tokens=prompt,
            completion_tokens=completion,
            cost_usd=cost_of(self.entry, prompt, completion),
        )


def context_with(*models: PricedModel, cap: str | None, parent: Budget | None = None) -> RunContext:
    catalog = ModelCatalog(
        {m.name: m.entry for m in models},
        lambda name, _entry: {m.name: m for m in models}[name],
        allow_unlisted=False,
    )
    budget = Budget(max_cost_usd=None if cap is None else Decimal(cap), parent=parent)
    return RunContext.starting_now(catalog, 10, budget=budget, step_runner=run_step)


def priced(name: str, **options: object) -> PricedModel:
    return PricedModel(name, ModelEntry(model=f"fake/{name}", **PRICED), **options)  # type: ignore[arg-type]


def notes(decisions: list[object]) -> list[str]:
    return [d.message for d in decisions if isinstance(d, NoteDecision)]


async def test_a_call_asks_for_the_output_it_reserved_and_an_honest_provider_stays_within_the_cap() -> None:
    model = priced("m", answer_tokens=10_000)
    ctx = context_with(model, cap="20")

    outcome = await run_model(ModelStep(model="m"), ASK, ctx, "model")

    assert outcome.result.ok and model.requests[0].max_tokens == 500
    assert ctx.budget.spent_usd <= Decimal(20) and ctx.budget.reserved_usd == 0


async def test_what_is_left_of_the_cap_lowers_max_tokens_and_the_result_says_so() -> None:
    model = priced("m", answer_tokens=10_000)
    ctx = context_with(model, cap="3")

    outcome = await run_model(ModelStep(model="m"), ASK, ctx, "model")

    sent = model.requests[0]
    assert sent.max_tokens is not None and MIN_OUTPUT_TOKENS <= sent.max_tokens < 500
    assert estimate_cost_usd(model.entry, sent) <= Decimal(3)  # type: ignore[operator]
    # One more token would not have fitted: the call asks for all the cap can pay for.
    bigger = sent.model_copy(update={"max_tokens": sent.max_tokens + 1})
    assert estimate_cost_usd(model.entry, bigger) > Decimal(3)  # type: ignore[operator]
    assert notes(outcome.result.decisions) == [
        f"budget: m asked for at most {sent.max_tokens} output tokens (not 500) to fit the $3.000000 left"
    ]
    assert ctx.budget.spent_usd <= Decimal(3)


async def test_a_call_that_cannot_fit_a_short_answer_is_not_started_and_the_error_says_why() -> None:
    model = priced("m")
    ctx = context_with(model, cap="0.5")  # 64 output tokens alone are $0.64

    outcome = await run_model(ModelStep(model="m"), ASK, ctx, "model")

    assert model.requests == [] and not outcome.result.ok
    assert outcome.result.partial and outcome.result.partial_reason == "cost budget spent"
    error = outcome.result.calls[0].error or ""
    assert error.startswith("budget: the call could cost up to $5.")
    assert ", $0.500000 is left; even 64 output tokens would cost up to $0.6" in error
    assert error.endswith("), so it was not started") and "the prompt alone up to $0.0" in error


async def test_a_step_asking_for_fewer_tokens_than_the_minimum_is_refused_at_its_own_size() -> None:
    model = priced("m")
    ctx = context_with(model, cap="0.05")

    outcome = await run_model(ModelStep(model="m", max_tokens=5), ASK, ctx, "model")

    assert model.requests == []
    assert "even 5 output tokens would cost up to $0.0" in (outcome.result.calls[0].error or "")


async def test_a_provider_that_ignores_max_tokens_is_charged_in_full_noted_and_trips_the_cap() -> None:
    model = priced("m", answer_tokens=200, honest=False)
    ctx = context_with(model, cap="1.5")  # room for ~140 output tokens; the provider sends 200

    first = await run_model(ModelStep(model="m"), ASK, ctx, "model")
    second = await run_model(ModelStep(model="m"), ASK, ctx, "model")

    asked = model.requests[0].max_tokens
    call = first.result.calls[0]
    assert asked is not None and asked < 200
    assert first.result.ok and call.completion_tokens == 200
    assert call.cost_usd == cost_of(model.entry, call.prompt_tokens, 200)  # as reported, in full
    assert ctx.budget.spent_usd == call.cost_usd and call.cost_usd > Decimal("1.5")
    overshoot = notes(first.result.decisions)[-1]
    assert overshoot.startswith(
        f"budget: m sent 200 output tokens, {asked} asked for: charged ${call.cost_usd:.6f}, $"
    )
    reserved = estimate_cost_usd(model.entry, model.requests[0])
    assert reserved is not None and overshoot.endswith(
        f"${call.cost_usd - reserved:.6f} over its reservation of ${reserved:.6f}"
    )
    # The cap is spent: no second call started.
    assert len(model.requests) == 1 and not second.result.ok


async def test_with_the_cap_overspent_nothing_more_starts() -> None:
    model = priced("m", answer_tokens=500, honest=False)
    ctx = context_with(model, cap="1")

    await run_model(ModelStep(model="m", max_tokens=64), ASK, ctx, "model")  # asks 64, gets 500: $5.02
    again = await run_model(ModelStep(model="m", max_tokens=1), ASK, ctx, "model")

    assert ctx.budget.spent_usd > Decimal(1) and ctx.budget.left_usd() == 0
    assert len(model.requests) == 1 and again.result.calls[0].status == "skipped"


async def test_a_priced_call_whose_provider_reports_no_usage_counts_its_whole_reservation() -> None:
    model = priced("m", report_usage=False)
    ctx = context_with(model, cap="20")

    outcome = await run_model(ModelStep(model="m"), ASK, ctx, "model")

    reserved = estimate_cost_usd(model.entry, model.requests[0])
    assert ctx.budget.spent_usd == reserved and outcome.result.calls[0].cost_usd is None
    assert notes(outcome.result.decisions) == [
        f"budget: m reported no usage; its reservation of ${reserved:.6f} is counted as spent"
    ]


async def test_an_unpriced_model_under_a_cap_is_sent_as_asked_and_said_to_be_unbounded() -> None:
    model = PricedModel("m", ModelEntry(model="fake/unpriced-m"))
    ctx = context_with(model, cap="1")

    outcome = await run_model(ModelStep(model="m"), ASK, ctx, "model")

    assert outcome.result.ok and model.requests[0].max_tokens is None
    assert notes(outcome.result.decisions) == [
        "budget: m's price is unknown, so the cost cap could not bound this call"
    ]


async def test_a_failed_attempt_gives_back_its_reservation_before_the_retry_reserves_again() -> None:
    model = priced("m", fail_first=True)
    ctx = context_with(model, cap="6")  # room for one reservation of ~$5, not two

    outcome = await run_model(ModelStep(model="m"), ASK, ctx, "model")

    assert outcome.result.ok and len(model.requests) == 2
    assert [r.max_tokens for r in model.requests] == [500, 500] and ctx.budget.reserved_usd == 0


async def test_a_cancelled_call_gives_back_its_reservation() -> None:
    model = priced("m", delay_s=5)
    ctx = context_with(model, cap="20")

    with anyio.move_on_after(0.05):
        await run_model(ModelStep(model="m"), ASK, ctx, "model")

    assert len(model.requests) == 1 and ctx.budget.reserved_usd == 0 and ctx.budget.spent_usd == 0


async def test_parallel_members_share_the_cap_and_the_last_to_start_gets_what_is_left() -> None:
    members = [priced(name, answer_tokens=10_000, delay_s=0.05) for name in ("a", "b", "c")]
    ctx = context_with(*members, cap="12")
    spec = EnsembleSpec(members=["a", "b", "c"], early_stop=False)

    result = await run_ensemble(spec, CompletionRequest.of("A) or B)?"), ctx, "ensemble")

    sizes = sorted(m.requests[0].max_tokens or 0 for m in members if m.requests)
    assert sizes[-2:] == [500, 500] and len(sizes) == 3 and MIN_OUTPUT_TOKENS <= sizes[0] < 500
    assert result.ok and ctx.budget.spent_usd <= Decimal(12) and ctx.budget.reserved_usd == 0


async def test_a_session_budget_shared_by_two_runs_bounds_them_together() -> None:
    session = Budget(max_cost_usd=Decimal(6))
    first_model, second_model = priced("m", delay_s=0.05), priced("m", delay_s=0.05)
    first = context_with(first_model, cap="6", parent=session)
    second = context_with(second_model, cap="6", parent=session)

    async with anyio.create_task_group() as group:
        group.start_soon(run_model, ModelStep(model="m"), ASK, first, "model")
        group.start_soon(run_model, ModelStep(model="m"), ASK, second, "model")

    # Each run alone could pay for one full call; together only one full call and one short one fit.
    sizes = sorted((r.max_tokens or 0) for r in [*first_model.requests, *second_model.requests])
    assert sizes[-1] == 500 and (sizes == [500] or sizes[0] < 500)
    assert session.spent_usd <= Decimal(6) and session.reserved_usd == 0
