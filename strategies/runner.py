"""The one runner: dispatches any `Step` to its strategy, and wraps a whole run with deadline and totals."""

from __future__ import annotations

from typing import cast

import anyio

from strategies.calling import run_model
from strategies.completion import CompletionRequest
from strategies.context import RunContext
from strategies.errors import UserInputError
from strategies.result import StrategyResult, compute_totals
from strategies.spec import (
    CascadeSpec,
    EnsembleSpec,
    LearnedRouteSpec,
    ModelStep,
    PipelineSpec,
    RouteSpec,
    Step,
    StrategyRef,
)

MAX_REFERENCE_DEPTH = 8
DEADLINE_GRACE_S = 0.5
"""How long past the deadline the safety net waits for a strategy to wrap up its partial result."""


async def run_step(step: Step, request: CompletionRequest, ctx: RunContext, stage: str) -> StrategyResult:
    """Run any step. Strategies call this for their children, which is how they compose."""
    # Imported here: each strategy module imports this one to run its children.
    from strategies.cascade import run_cascade
    from strategies.ensemble import run_ensemble
    from strategies.pipeline import run_pipeline
    from strategies.routing import run_route

    match step:
        case ModelStep():
            return (await run_model(step, request, ctx, stage)).result
        case EnsembleSpec():
            return await run_ensemble(step, request, ctx, stage)
        case CascadeSpec():
            return await run_cascade(step, request, ctx, stage)
        case RouteSpec():
            return await run_route(step, request, ctx, stage)
        case PipelineSpec():
            return await run_pipeline(step, request, ctx, stage)
        case StrategyRef():
            return await run_step(resolve_reference(step, ctx), request, _deeper(ctx), f"{stage}/{step.name}")
        case LearnedRouteSpec():
            from strategies.evaluation.learned_route import run_learned_route

            return await run_learned_route(step, request, ctx, stage)


def resolve_reference(ref: StrategyRef, ctx: RunContext) -> Step:
    if ctx.depth >= MAX_REFERENCE_DEPTH:
        raise UserInputError(f"strategy {ref.name!r}: references nest deeper than {MAX_REFERENCE_DEPTH} (a cycle?)")
    found = ctx.strategies.get(ref.name)
    if found is None:
        known = ", ".join(sorted(ctx.strategies)) or "none configured"
        raise UserInputError(f"unknown strategy {ref.name!r}; configured strategies: {known}")
    return cast(Step, found)


def _deeper(ctx: RunContext) -> RunContext:
    from dataclasses import replace

    return replace(ctx, depth=ctx.depth + 1)


def strategy_name(step: Step) -> str:
    return step.name if isinstance(step, StrategyRef) else step.kind


async def run_strategy(step: Step, request: CompletionRequest, ctx: RunContext) -> StrategyResult:
    """Run a whole strategy: the deadline is enforced, totals are computed, nothing but bugs escapes.

    Strategies watch the deadline themselves and return their best partial answer; the outer scope here
    is a safety net for a strategy that overruns it.
    """
    started = anyio.current_time()
    result: StrategyResult | None = None
    with anyio.move_on_after(ctx.time_left() + DEADLINE_GRACE_S):
        result = await run_step(step, request, ctx, strategy_name(step))
    if result is None:
        result = StrategyResult(
            strategy=strategy_name(step),
            answer=None,
            ok=False,
            partial=True,
            partial_reason="deadline reached",
            error="deadline reached before any answer was produced",
        )
    result.totals = compute_totals(result.calls, anyio.current_time() - started)
    return result
