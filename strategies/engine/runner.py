"""The one runner: dispatches any `Step` to its strategy, and wraps a whole run with deadline and totals.

Every step of every strategy passes through `run_step`, and every run through `run_strategy`; this is
where the trace of a run is made (`strategies.tracing.spans`): the run's root span, a span per step,
and the decisions each step made.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import cast

import anyio

from chorus_mcp.strategies.core.completion import CompletionRequest
from chorus_mcp.strategies.core.errors import UserInputError
from chorus_mcp.strategies.core.result import StrategyResult, compute_totals
from chorus_mcp.strategies.core.spec import (
    CascadeSpec,
    EnsembleSpec,
    LearnedRouteSpec,
    LearnedVoteSpec,
    ModelStep,
    PipelineSpec,
    RouteSpec,
    Step,
    StrategyRef,
)
from chorus_mcp.strategies.core.templates import latest_user_text
from chorus_mcp.strategies.engine.calling import run_model
from chorus_mcp.strategies.engine.context import RunContext
from chorus_mcp.strategies.kinds.cascade import run_cascade
from chorus_mcp.strategies.kinds.ensemble import run_ensemble
from chorus_mcp.strategies.kinds.learned_route import run_learned_route
from chorus_mcp.strategies.kinds.learned_vote import run_learned_vote
from chorus_mcp.strategies.kinds.pipeline import run_pipeline
from chorus_mcp.strategies.kinds.routing import run_route
from chorus_mcp.strategies.tracing.attributes import totals as totals_attributes
from chorus_mcp.strategies.tracing.spans import run_span, step_span

MAX_REFERENCE_DEPTH = 8
DEADLINE_GRACE_S = 0.5
"""How long past the deadline the safety net waits for a strategy to wrap up its partial result."""

log = logging.getLogger("chorus.runner")


async def run_step(step: Step, request: CompletionRequest, ctx: RunContext, stage: str) -> StrategyResult:
    """Run any step; strategies reach it for their children as `RunContext.run_child`, and so compose."""
    model = step.model if isinstance(step, ModelStep) else None
    named = step.name if isinstance(step, StrategyRef) else None
    with step_span(
        step.kind, stage, model=model, strategy=named, input_text=latest_user_text(request)
    ) as frame:
        result = await _dispatch(step, request, ctx, stage)
        if frame is not None:
            frame.finish(result)
    return result


async def _dispatch(step: Step, request: CompletionRequest, ctx: RunContext, stage: str) -> StrategyResult:
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
            return await run_learned_route(step, request, ctx, stage)
        case LearnedVoteSpec():
            return await run_learned_vote(step, request, ctx, stage)


def resolve_reference(ref: StrategyRef, ctx: RunContext) -> Step:
    if ctx.depth >= MAX_REFERENCE_DEPTH:
        raise UserInputError(
            f"strategy {ref.name!r}: references nest deeper than {MAX_REFERENCE_DEPTH} (a cycle?)"
        )
    found = ctx.strategies.get(ref.name)
    if found is None:
        known = ", ".join(sorted(ctx.strategies)) or "none configured"
        raise UserInputError(f"unknown strategy {ref.name!r}; configured strategies: {known}")
    return cast(Step, found)


def _deeper(ctx: RunContext) -> RunContext:
    return replace(ctx, depth=ctx.depth + 1)


def strategy_name(step: Step) -> str:
    return step.name if isinstance(step, StrategyRef) else step.kind


async def run_strategy(
    step: Step, request: CompletionRequest, ctx: RunContext, *, session_id: str | None = None
) -> StrategyResult:
    """Run a whole strategy: the deadline is enforced, totals are computed, nothing but bugs escapes.

    Strategies watch the deadline themselves and return their best partial answer; the outer scope here
    is a safety net for a strategy that overruns it. `session_id` (the session the run belongs to) goes
    on the trace and on the result.
    """
    started = anyio.current_time()
    if ctx.step_runner is None:
        ctx = replace(ctx, step_runner=run_step)
    name = strategy_name(step)
    with run_span(name, step.kind, name, session_id, latest_user_text(request)) as frame:
        result: StrategyResult | None = None
        with anyio.move_on_after(ctx.time_left() + DEADLINE_GRACE_S):
            # The top step shares the run's span (a named strategy gets its own span below it).
            result = await _dispatch(step, request, ctx, name)
        if result is None:
            result = StrategyResult(
                strategy=name,
                answer=None,
                ok=False,
                partial=True,
                partial_reason="deadline reached",
                error="deadline reached before any answer was produced",
            )
        result.totals = compute_totals(result.calls, anyio.current_time() - started)
        if session_id is not None and result.session_id is None:
            result.session_id = session_id
        if frame is not None:
            frame.finish(result)
            frame.span.set_attributes(totals_attributes(result.totals))
    _log_run(name, result)
    return result


def _log_run(name: str, result: StrategyResult) -> None:
    totals = result.totals
    log.info(
        "run finished",
        extra={
            "strategy": name,
            "ok": result.ok,
            "partial": result.partial,
            "calls": totals.calls,
            "prompt_tokens": totals.prompt_tokens,
            "completion_tokens": totals.completion_tokens,
            "cost_usd": None if totals.cost_usd is None else str(totals.cost_usd),
            "cost_complete": totals.cost_complete,
            "latency_s": round(totals.latency_s, 3),
            "session_id": result.session_id,
        },
    )
