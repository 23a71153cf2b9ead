"""Routing by objective: the fastest measured, the cheapest estimated or the best scored candidate, within
the cost cap, with every candidate's figure in the decision. Latencies come from the run's own
`LatencyStats` (recorded as the engine records them: tests/strategies/engine/test_latency.py); prices from
real provider clients over HTTP against the fake OpenAI server. Over MCP: tests/server/mcp/test_objective.py.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from chorus_mcp.strategies.core.completion import CompletionRequest
from chorus_mcp.strategies.core.errors import ProviderServerError
from chorus_mcp.strategies.core.result import Candidate, RouteDecision, StrategyResult
from chorus_mcp.strategies.core.spec import RouteSpec
from chorus_mcp.strategies.engine.context import Budget, RunContext
from chorus_mcp.strategies.engine.reliability import (
    BreakerSettings,
    CallGuard,
    ReliabilitySettings,
    RetrySettings,
)
from chorus_mcp.strategies.engine.runner import run_step
from chorus_mcp.strategies.engine.testing import context_of
from chorus_mcp.strategies.kinds.routing import run_route
from chorus_mcp.strategies.models.availability import provider_client
from chorus_mcp.strategies.models.catalog import ModelCatalog, ModelEntry
from chorus_mcp.strategies.models.testing import ScriptedClient
from tests.fake_openai import FakeOpenAI

pytestmark = pytest.mark.anyio

ASK = CompletionRequest.of("Name a prime number between 10 and 20.")


def _spec(objective: str, **fields: Any) -> RouteSpec:
    """Three routes, one per model (a keyword each; `general` the default)."""
    raw: dict[str, Any] = {
        "routes": [
            {"name": "code", "keywords": ["python"], "target": "a"},
            {"name": "math", "keywords": ["prime"], "target": "b"},
            {"name": "general", "target": "c"},
        ],
        "default": "general",
        "objective": objective,
        **fields,
    }
    return RouteSpec.model_validate(raw)


def _scripted(**delays: float) -> RunContext:
    return context_of(*(ScriptedClient(name, f"{name} answers", delay_s=d) for name, d in delays.items()))


def _measured(ctx: RunContext, **samples: list[float]) -> RunContext:
    for model, values in samples.items():
        for value in values:
            ctx.latency.record(model, value)
    return ctx


def _priced(fake: FakeOpenAI, prices: dict[str, tuple[int, int] | None], **context: Any) -> RunContext:
    """Real OpenAI-compatible clients over HTTP; each model priced (USD per Mtok in, out) or not at all."""
    entries = {}
    for name, price in prices.items():
        fake.script(name, f"{name} answers")
        priced = {} if price is None else {"input_cost_per_mtok": price[0], "output_cost_per_mtok": price[1]}
        entries[name] = ModelEntry(
            model=f"openai/{name}", api_base=fake.base_url, max_output_tokens=100, **priced
        )
    catalog = ModelCatalog(entries, provider_client, allow_unlisted=False)
    return RunContext.starting_now(catalog, 30, step_runner=run_step, **context)


def _decision(result: StrategyResult) -> RouteDecision:
    found = [d for d in result.decisions if isinstance(d, RouteDecision)]
    assert len(found) == 1, found
    return found[0]


def _figures(candidates: list[Candidate] | None) -> list[tuple[str, float | None, int | None]]:
    return [(c.model, c.figure, c.samples) for c in candidates or []]


# -- latency ------------------------------------------------------------------------------------------


async def test_latency_routing_sends_the_request_to_the_candidate_with_the_lowest_median() -> None:
    ctx = _measured(
        _scripted(a=0, b=0, c=0),
        a=[0.30, 0.32, 0.31],
        b=[0.05, 0.9, 0.06],  # one slow outlier: the median is what is compared
        c=[0.20, 0.21, 0.22],
    )

    result = await run_route(_spec("latency"), ASK, ctx, "route")

    assert result.ok and result.answer == "b answers"
    decision = _decision(result)
    assert (decision.route, decision.method) == ("math", "latency")
    assert _figures(decision.candidates) == [("b", 0.06, 3), ("c", 0.21, 3), ("a", 0.31, 3)]
    assert decision.reason.startswith("lowest p50 latency: b 0.060s over 3 calls (then c 0.210s")
    assert [(call.model, call.stage) for call in result.calls] == [("b", "route/math")]


async def test_the_percentile_compared_is_the_configured_one() -> None:
    ctx = _measured(_scripted(a=0, b=0), a=[0.1, 0.1, 0.1, 0.1], b=[0.05, 0.05, 0.05, 2.0])

    median = await run_route(_spec("latency", candidates=["a", "b"]), ASK, ctx, "route")
    tail = await run_route(_spec("latency", candidates=["a", "b"], latency_percentile=90), ASK, ctx, "route")

    assert _decision(median).route == "b"
    assert _decision(tail).route == "a"
    assert _decision(tail).reason.startswith("lowest p90 latency: a")


async def test_a_candidate_measured_fewer_than_min_samples_times_is_explored_first() -> None:
    ctx = _measured(_scripted(a=0, b=0, c=0), a=[0.1, 0.1, 0.1], b=[0.5], c=[0.9, 0.9])

    result = await run_route(_spec("latency"), ASK, ctx, "route")

    decision = _decision(result)
    assert decision.route == "math" and result.answer == "b answers"  # b: 1 sample, the fewest
    assert decision.reason.startswith("exploring b: 1 of 3 measured calls")
    assert [c.model for c in decision.candidates or []] == ["b", "a", "c"]


async def test_latency_routing_learns_from_the_calls_it_routes() -> None:
    ctx = _scripted(a=0.05, b=0.0, c=0.1)
    spec = _spec("latency", min_samples=1)

    routed = [_decision(await run_route(spec, ASK, ctx, "route")).route for _ in range(5)]

    # Each candidate is tried once (in listed order), then the fastest measured one is kept.
    assert routed == ["code", "math", "general", "math", "math"]


async def test_a_short_latency_window_leaves_a_model_that_just_slowed_down_sooner() -> None:
    ctx = _measured(_scripted(a=0, b=0), a=[0.05] * 20 + [0.9] * 5, b=[0.2] * 25)  # a: 5 slow calls just now

    whole = _decision(await run_route(_spec("latency", candidates=["a", "b"]), ASK, ctx, "route"))
    short = _decision(
        await run_route(_spec("latency", candidates=["a", "b"], latency_window=8), ASK, ctx, "route")
    )

    assert whole.route == "a"  # the median of its 25 calls is still fast
    assert short.route == "b" and short.reason.startswith("lowest p50 latency: b 0.200s over 8 calls")


async def test_a_candidate_left_after_a_slow_spell_is_explored_again_once_its_figure_ages_out() -> None:
    now = [1_000.0]
    ctx = _scripted(a=0, b=0)
    ctx.latency.clock = lambda: now[0]
    _measured(ctx, a=[0.2, 0.2, 0.2], b=[5.0, 5.0, 5.0])  # b's slow spell: it loses, so is no longer measured
    spec = _spec("latency", candidates=["a", "b"], latency_max_age_s=600)

    before = _decision(await run_route(spec, ASK, ctx, "route"))
    now[0] = 1_000.0 + 601  # ten minutes on: only a, still routed to, has recent samples
    _measured(ctx, a=[0.2, 0.2, 0.2])
    after = _decision(await run_route(spec, ASK, ctx, "route"))

    assert before.route == "a"
    assert after.route == "b"
    assert after.reason.startswith("exploring b: 0 of 3 measured calls in the last 600s; 3 older no longer")


async def test_a_tie_on_latency_goes_to_the_candidate_listed_first_and_is_said() -> None:
    ctx = _measured(_scripted(a=0, b=0), a=[0.2, 0.2, 0.2], b=[0.2, 0.2, 0.2])

    result = await run_route(_spec("latency", candidates=["b", "a"]), ASK, ctx, "route")

    decision = _decision(result)
    assert decision.route == "b" and result.answer == "b answers"
    assert decision.reason.endswith("tied with a: the one listed first wins")


async def test_an_open_circuit_skips_its_candidate_without_calling_it() -> None:
    guard = CallGuard(ReliabilitySettings(breaker=BreakerSettings(failure_threshold=1, cooldown_s=60)))
    clients = [ScriptedClient("a", "a answers"), ScriptedClient("b", "b answers")]
    ctx = _measured(context_of(*clients, guard=guard), a=[0.01] * 3, b=[0.5] * 3)
    guard.breaker("a").failure()

    result = await run_route(_spec("latency", candidates=["a", "b"]), ASK, ctx, "route")

    decision = _decision(result)
    assert decision.route == "b" and clients[0].requests == []
    skipped = [c for c in decision.candidates or [] if c.skipped]
    assert [c.model for c in skipped] == ["a"] and (skipped[0].skipped or "").startswith("circuit open")


async def test_the_winners_fallbacks_answer_when_it_fails() -> None:
    spec = RouteSpec.model_validate(
        {
            "routes": [{"name": "quick", "target": {"kind": "model", "model": "a", "fallbacks": ["b"]}}],
            "default": "quick",
            "objective": "latency",
            "min_samples": 1,
        }
    )
    broken = ScriptedClient("a", ProviderServerError("a", "provider error (HTTP 500)", 500))
    guard = CallGuard(ReliabilitySettings(retry=RetrySettings(max_attempts=1)))
    ctx = _measured(context_of(broken, ScriptedClient("b", "b answers"), guard=guard), a=[0.01])

    result = await run_route(spec, ASK, ctx, "route")

    assert result.ok and result.answer == "b answers"
    assert [(c.model, c.status) for c in result.calls] == [("a", "error"), ("b", "ok")]


# -- cost and the cost cap ----------------------------------------------------------------------------


async def test_cost_routing_picks_the_cheapest_estimate_for_this_prompt(fake_openai: FakeOpenAI) -> None:
    ctx = _priced(fake_openai, {"a": (10, 40), "b": (1, 2), "c": None})

    result = await run_route(_spec("cost"), ASK, ctx, "route")

    decision = _decision(result)
    assert (decision.route, decision.method, result.answer) == ("math", "cost", "b answers")
    estimates = {c.model: c.cost_usd for c in decision.candidates or []}
    assert estimates["b"] is not None and estimates["a"] is not None and estimates["b"] < estimates["a"]
    assert [c.model for c in decision.candidates or []] == ["b", "a", "c"]  # the unknown price last
    assert decision.candidates is not None and decision.candidates[0].figure == float(estimates["b"])
    assert decision.reason.endswith("c price unknown)")
    assert [r.model for r in fake_openai.requests] == ["b"]


async def test_a_candidate_whose_estimate_exceeds_what_is_left_of_the_cap_is_skipped_and_said(
    fake_openai: FakeOpenAI,
) -> None:
    # a is the fastest, but its estimate ($0.004 for 100 output tokens at $40/Mtok) exceeds the cap.
    ctx = _priced(fake_openai, {"a": (10, 40), "b": (1, 2)}, budget=Budget(max_cost_usd=Decimal("0.001")))
    _measured(ctx, a=[0.01] * 3, b=[0.4] * 3)

    result = await run_route(_spec("latency", candidates=["a", "b"]), ASK, ctx, "route")

    decision = _decision(result)
    assert decision.route == "b" and result.answer == "b answers"
    skipped = {c.model: c.skipped for c in decision.candidates or [] if c.skipped}
    assert list(skipped) == ["a"]
    assert "exceeds the $0.001000 left of the cost cap" in (skipped["a"] or "")
    assert [r.model for r in fake_openai.requests] == ["b"]


async def test_when_no_candidate_is_eligible_the_rules_route_and_the_decision_says_why(
    fake_openai: FakeOpenAI,
) -> None:
    ctx = _priced(fake_openai, {"a": (10, 40), "b": (10, 40), "c": (1, 2)}, budget=Budget(Decimal("0.001")))

    result = await run_route(_spec("cost", candidates=["a", "b"]), CompletionRequest.of("python?"), ctx, "r")

    objective, rules = [d for d in result.decisions if isinstance(d, RouteDecision)]
    assert objective.method == "cost" and objective.reason.startswith(
        "objective cost: no candidate is eligible"
    )
    assert objective.reason.endswith("routed by the rules instead")
    assert (rules.route, rules.method) == ("code", "rule")


# -- quality ------------------------------------------------------------------------------------------


async def test_quality_routing_takes_the_best_score_and_a_tie_goes_to_the_cheaper(
    fake_openai: FakeOpenAI,
) -> None:
    ctx = _priced(fake_openai, {"a": (10, 40), "b": (1, 2), "c": (1, 2)})
    spec = _spec("quality", quality={"a": 0.9, "b": 0.9, "c": 0.5})

    result = await run_route(spec, ASK, ctx, "route")

    decision = _decision(result)
    assert (decision.route, decision.method) == ("math", "quality")
    assert _figures(decision.candidates) == [("b", 0.9, None), ("a", 0.9, None), ("c", 0.5, None)]
    assert "best quality score: b 0.900 (configured)" in decision.reason
    assert "tied with a: the lower estimated cost ($0.000" in decision.reason


async def test_an_unscored_candidate_is_ranked_after_every_scored_one() -> None:
    ctx = _scripted(a=0, b=0)

    result = await run_route(_spec("quality", candidates=["a", "b"], quality={"b": 0.2}), ASK, ctx, "route")

    assert _figures(_decision(result).candidates) == [("b", 0.2, None), ("a", None, None)]
    assert _decision(result).reason.endswith("(then a no score)")


# -- configuration ------------------------------------------------------------------------------------


def test_an_objective_needs_models_to_choose_among() -> None:
    with pytest.raises(ValidationError, match="objective 'latency' chooses among models"):
        RouteSpec.model_validate(
            {
                "routes": [{"name": "x", "target": {"kind": "strategy", "name": "ensemble"}}],
                "default": "x",
                "objective": "latency",
            }
        )


def test_quality_routing_needs_scores_and_a_score_is_between_0_and_1() -> None:
    with pytest.raises(ValidationError, match="objective 'quality' needs scores"):
        _spec("quality")
    with pytest.raises(ValidationError, match=r"quality of 'a' is 1\.5; a score is between 0 and 1"):
        _spec("rules", quality={"a": 1.5})


async def test_listed_candidates_run_as_model_steps_under_their_own_stage() -> None:
    ctx = _measured(_scripted(a=0, b=0, d=0), d=[0.01] * 3, a=[0.2] * 3)

    result = await run_route(_spec("latency", candidates=["d", "a"]), ASK, ctx, "route")

    decision = _decision(result)
    assert decision.route == "d" and [c.route for c in decision.candidates or []] == [None, None]
    assert [(call.model, call.stage) for call in result.calls] == [("d", "route/d")]
