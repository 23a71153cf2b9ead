"""Calling one model step: the model, then its fallback chain, with retries, breakers and budget checks.

Every attempt is recorded — a retried failure, a circuit-open skip, a budget skip — so a result always
says which model actually answered and why each earlier one did not.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol, runtime_checkable

import anyio

from strategies.completion import Completion, CompletionRequest, Message
from strategies.context import RunContext
from strategies.errors import (
    BudgetExceeded,
    ChorusError,
    CircuitOpen,
    ContextWindowExceeded,
    ModelError,
    ModelTimeout,
    UserInputError,
)
from strategies.reliability import counts_against_breaker
from strategies.result import CallRecord, Decision, FallbackDecision, NoteDecision, StrategyResult
from strategies.spec import ModelStep


@runtime_checkable
class CostEstimator(Protocol):
    """A client that can say, before a call, what it may cost at most (None when the price is unknown)."""

    def estimate_cost_usd(self, request: CompletionRequest) -> Decimal | None: ...


@runtime_checkable
class WarmsUp(Protocol):
    """A client with one-off set-up (an import, a model load) that must not count against a call's time-out."""

    async def ready(self) -> None: ...


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
    entry = ctx.catalog.entry(model)
    if isinstance(client, WarmsUp):
        # Set-up is bounded by the run's deadline only: a slow first import is not the provider's fault.
        try:
            with anyio.fail_after(ctx.time_left()):
                await client.ready()
        except TimeoutError as exc:
            raise ModelTimeout(model, "the run's deadline passed while the client was starting up") from exc
    timeout = entry.timeout_s
    if request.timeout_s is not None:
        timeout = min(timeout, request.timeout_s)
    timeout = min(timeout, ctx.time_left())
    if timeout <= 0:
        raise ModelTimeout(model, "not started: the run's deadline had passed")
    try:
        with anyio.fail_after(timeout):
            async with ctx.guard.limiter(entry):
                return await client.complete(request.model_copy(update={"timeout_s": timeout}))
    except TimeoutError as exc:
        raise ModelTimeout(model, f"no answer within {timeout:.1f}s") from exc


def check_budget(ctx: RunContext, model: str, request: CompletionRequest) -> None:
    """Refuse to start a call whose worst-case cost would break the cap."""
    if ctx.budget.max_cost_usd is None:
        return
    client = ctx.catalog.client(model)
    estimate: Decimal | None = None
    if isinstance(client, CostEstimator):
        if request.max_tokens is None:
            request = request.model_copy(update={"max_tokens": ctx.catalog.entry(model).max_output_tokens})
        estimate = client.estimate_cost_usd(request)
    if not ctx.budget.allows(estimate):
        left = ctx.budget.max_cost_usd - ctx.budget.spent_usd
        shown = "an unknown amount" if estimate is None else f"up to ${estimate:.6f}"
        raise BudgetExceeded(f"budget: the call could cost {shown}, ${max(left, Decimal(0)):.6f} is left")


async def call_with_retries(
    ctx: RunContext, model: str, request: CompletionRequest, stage: str, calls: list[CallRecord]
) -> Completion:
    """Call `model`, retrying what is worth retrying. Failed attempts are appended to `calls` as they go."""
    breaker = ctx.guard.breaker(model)
    attempt = 0
    while True:
        if not breaker.allow():
            raise CircuitOpen(model, f"circuit open after repeated failures; next probe in {breaker.retry_in():.0f}s")
        check_budget(ctx, model, request)
        started = anyio.current_time()
        try:
            completion = await call_once(ctx, model, request, stage)
        except ModelError as exc:
            if counts_against_breaker(exc):
                breaker.failure()
            else:
                breaker.probing = False
            delay = ctx.guard.retry.delay_before(attempt, exc)
            if delay is None or delay >= ctx.time_left():
                raise
            record = record_error(model, stage, exc, anyio.current_time() - started)
            record.error = f"{record.error} (attempt {attempt + 1}, retrying in {delay:.2f}s)"
            calls.append(record)
            await ctx.report(record)
            await anyio.sleep(delay)
            attempt += 1
            continue
        except BaseException:
            # Cancelled (early stop, deadline) or a bug: a half-open probe slot must not stay taken.
            breaker.probing = False
            raise
        breaker.success()
        return completion


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
    status = error.status if isinstance(error, ModelError) else "skipped"
    return CallRecord(
        model=model,
        stage=stage,
        status=status,  # type: ignore[arg-type]
        error=error.message,
        latency_s=None if latency_s is None or status == "skipped" else round(latency_s, 4),
    )


async def run_model(step: ModelStep, request: CompletionRequest, ctx: RunContext, stage: str) -> ModelOutcome:
    """Ask the step's model; on failure walk its fallback chain. Failures are recorded, never raised."""
    request = prepare(step, request)
    calls: list[CallRecord] = []
    decisions: list[Decision] = []
    chain = chain_of(step, ctx)
    index = 0
    while index < len(chain):
        model = chain[index]
        started = anyio.current_time()
        try:
            completion = await call_with_retries(ctx, model, request, stage, calls)
        except UserInputError as exc:
            # An unknown model is the caller's mistake: a fallback would hide it.
            record = CallRecord(model=model, stage=stage, status="skipped", error=exc.message)
            calls.append(record)
            await ctx.report(record)
            break
        except (ModelError, BudgetExceeded) as exc:
            record = record_error(model, stage, exc, anyio.current_time() - started)
            calls.append(record)
            await ctx.report(record)
            bigger = ctx.catalog.context_fallback(model) if isinstance(exc, ContextWindowExceeded) else None
            if bigger is not None and bigger not in chain[index + 1 :]:
                chain.insert(index + 1, bigger)
            following = chain[index + 1] if index + 1 < len(chain) else None
            if following is not None:
                decisions.append(
                    FallbackDecision(stage=stage, from_model=model, to_model=following, reason=exc.message)
                )
            index += 1
            continue
        ctx.budget.charge(completion.cost_usd)
        record = record_ok(model, stage, completion)
        calls.append(record)
        await ctx.report(record)
        if model != step.model:
            decisions.append(NoteDecision(stage=stage, message=f"{model} answered for {step.model}"))
        result = StrategyResult(strategy="model", answer=completion.text, ok=True, calls=calls, decisions=decisions)
        return ModelOutcome(result=result, completion=completion)
    reasons = "; ".join(f"{c.model} ({c.status}): {c.error}" for c in calls)
    result = StrategyResult(
        strategy="model", answer=None, ok=False, error=f"no model answered: {reasons}", calls=calls,
        decisions=decisions,
    )
    return ModelOutcome(result=result, completion=None)
