"""Calling one model step: the model, then its fallback chain, each call recorded."""

from __future__ import annotations

from dataclasses import dataclass

import anyio

from strategies.completion import Completion, CompletionRequest, Message
from strategies.context import RunContext
from strategies.errors import ChorusError, ModelError, ModelTimeout, UserInputError
from strategies.result import CallRecord, Decision, FallbackDecision, StrategyResult
from strategies.spec import ModelStep


@dataclass
class ModelOutcome:
    """A model step's result, plus the raw completion (for estimators that read logprobs)."""

    result: StrategyResult
    completion: Completion | None


def prepare(step: ModelStep, request: CompletionRequest) -> CompletionRequest:
    """Apply the step's own system prompt and sampling settings to the request."""
    updates: dict[str, object] = {}
    if step.system is not None:
        rest = tuple(m for m in request.messages if m.role != "system")
        updates["messages"] = (Message(role="system", content=step.system), *rest)
    if step.max_tokens is not None:
        updates["max_tokens"] = step.max_tokens
    if step.temperature is not None:
        updates["temperature"] = step.temperature
    return request.model_copy(update=updates) if updates else request


def chain_of(step: ModelStep, ctx: RunContext) -> list[str]:
    """The models to try, in order, without repeats: the model, its configured fallbacks, the step's."""
    chain: list[str] = []
    for name in [step.model, *ctx.catalog.fallbacks(step.model), *step.fallbacks]:
        if name not in chain:
            chain.append(name)
    return chain


async def call_once(ctx: RunContext, model: str, request: CompletionRequest, stage: str) -> Completion:
    """One call to one model within what is left of the deadline. Raises `ModelError` on failure."""
    client = ctx.catalog.client(model)
    timeout = ctx.catalog.entry(model).timeout_s
    if request.timeout_s is not None:
        timeout = min(timeout, request.timeout_s)
    timeout = min(timeout, ctx.time_left())
    if timeout <= 0:
        raise ModelTimeout(model, "not started: the run's deadline had passed")
    try:
        with anyio.fail_after(timeout):
            return await client.complete(request.model_copy(update={"timeout_s": timeout}))
    except TimeoutError as exc:
        raise ModelTimeout(model, f"no answer within {timeout:.1f}s") from exc


def record_ok(model: str, stage: str, completion: Completion) -> CallRecord:
    return CallRecord(
        model=model,
        stage=stage,
        status="ok",
        answer=completion.text,
        prompt_tokens=completion.prompt_tokens,
        completion_tokens=completion.completion_tokens,
        cost_usd=completion.cost_usd,
        latency_s=round(completion.latency_s, 4),
    )


def record_error(model: str, stage: str, error: ChorusError, latency_s: float | None) -> CallRecord:
    status = error.status if isinstance(error, ModelError) else "error"
    return CallRecord(
        model=model,
        stage=stage,
        status=status,  # type: ignore[arg-type]
        error=error.message,
        latency_s=None if latency_s is None else round(latency_s, 4),
    )


async def run_model(step: ModelStep, request: CompletionRequest, ctx: RunContext, stage: str) -> ModelOutcome:
    """Ask the step's model; on failure walk its fallback chain. Failures are recorded, never raised."""
    request = prepare(step, request)
    calls: list[CallRecord] = []
    decisions: list[Decision] = []
    chain = chain_of(step, ctx)
    for index, model in enumerate(chain):
        started = anyio.current_time()
        try:
            if not ctx.budget.allows():
                raise UserInputError("skipped: the cost budget is spent")
            completion = await call_once(ctx, model, request, stage)
        except UserInputError as exc:
            # An unknown model or a spent budget is not worth a fallback; report it and stop.
            record = CallRecord(model=model, stage=stage, status="skipped", error=exc.message)
            calls.append(record)
            await ctx.report(record)
            break
        except ModelError as exc:
            record = record_error(model, stage, exc, anyio.current_time() - started)
            calls.append(record)
            await ctx.report(record)
            following = chain[index + 1] if index + 1 < len(chain) else None
            if following is not None:
                decisions.append(
                    FallbackDecision(stage=stage, from_model=model, to_model=following, reason=exc.message)
                )
            continue
        ctx.budget.charge(completion.cost_usd)
        record = record_ok(model, stage, completion)
        calls.append(record)
        await ctx.report(record)
        result = StrategyResult(strategy="model", answer=completion.text, ok=True, calls=calls, decisions=decisions)
        return ModelOutcome(result=result, completion=completion)
    reasons = "; ".join(f"{c.model} ({c.status}): {c.error}" for c in calls)
    result = StrategyResult(
        strategy="model", answer=None, ok=False, error=f"no model answered: {reasons}", calls=calls,
        decisions=decisions,
    )
    return ModelOutcome(result=result, completion=None)
