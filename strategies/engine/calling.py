"""Calling one model step: the model, then its fallback chain, with retries, breakers and budget checks.

For each model of the chain (`chain_of`), in order, until one answers:

1. its circuit breaker is asked first: an open circuit skips the model at once (`skipped`, no call);
2. the client is warmed up (a first import is not the provider's fault, so it is outside the time-out);
3. the budget is checked (`reservations`): the call's worst-case cost (`CostEstimator`) is reserved
   against the cap and its `max_tokens` set to match (lowered to fit what is left, and enforced: the
   answer is cut off there as it streams), or the model is skipped (`skipped`, "budget: ...") and the
   next one — maybe cheaper — is tried; a call that fails or is cancelled mid-answer is charged for what
   had arrived (`models.metering`);
4. a slot of the provider's concurrency cap is taken (waiting is bounded by the run's deadline only);
5. the call runs within the model's time-out, cut to what is left of the run's deadline;
6. a failure worth retrying (time-out, 429, 5xx, connection, unusable response) is retried after a
   back-off with full jitter, or after the provider's `Retry-After` (on a 429 or a 503); one longer than
   `max_retry_after_s`, or longer than the time left, moves on to the next model instead;
7. a prompt too long for the model goes to its configured `context_fallback` next, before any other.

Every attempt is recorded — a retried failure (`attempt`, `retry_in_s`), a circuit-open skip, a budget
skip — so a result always says which model actually answered and why each earlier one did not. Every
answer's latency (and a time-out's wait) also goes to the run's `LatencyStats` (`engine.latency`), which
routing by latency reads.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from decimal import Decimal
from typing import cast

import anyio

from chorus_mcp.strategies.core.completion import Completion, CompletionRequest, Message
from chorus_mcp.strategies.core.errors import (
    BudgetExceeded,
    ChorusError,
    CircuitOpen,
    ContextWindowExceeded,
    ModelError,
    ModelTimeout,
    UserInputError,
)
from chorus_mcp.strategies.core.image_size import image_family
from chorus_mcp.strategies.core.inputs import UNKNOWN_WINDOW, InputNotSent, fit, rough_tokens
from chorus_mcp.strategies.core.result import (
    CallRecord,
    Decision,
    FallbackDecision,
    NoteDecision,
    StrategyResult,
)
from chorus_mcp.strategies.core.spec import ModelStep
from chorus_mcp.strategies.engine.context import RunContext
from chorus_mcp.strategies.engine.reasoning import effort_for
from chorus_mcp.strategies.engine.reliability import counts_against_breaker, provider_key
from chorus_mcp.strategies.engine.reservations import (
    Reservation,
    charged_usd,
    full_request,
    hold_shared,
    reserve,
    settle,
    settle_shared,
)
from chorus_mcp.strategies.models.client import AnswersFromCache, WarmsUp
from chorus_mcp.strategies.models.metering import SpendMeter, metering


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


async def warm_up(ctx: RunContext, model: str) -> None:
    """Let the model's client finish its one-off set-up, bounded by the run's deadline only."""
    client = ctx.catalog.client(model)
    if _warms_up(type(client)):
        try:
            with anyio.fail_after(ctx.time_left()):
                await cast(WarmsUp, client).ready()
        except TimeoutError as exc:
            raise ModelTimeout(model, "the run's deadline passed while the client was starting up") from exc


@functools.cache
def _warms_up(client_type: type) -> bool:
    # Asked once per model call: `isinstance` against a runtime-checkable Protocol walks the protocol's
    # members every time (it showed in profiles), while whether a client class has `ready` never changes.
    return callable(getattr(client_type, "ready", None))


async def call_once(ctx: RunContext, model: str, request: CompletionRequest, stage: str) -> Completion:
    """One call to one model within what is left of the deadline. Raises `ModelError` on failure.

    Waiting for a slot of the provider's concurrency cap does not count against the model's time-out
    (a queue of our own making is not the provider's slowness); it is bounded by the deadline.
    """
    client = ctx.catalog.client(model)
    entry = ctx.catalog.entry(model)
    await warm_up(ctx, model)
    limiter = ctx.guard.limiter(entry)
    try:
        with anyio.fail_after(ctx.time_left()):
            await limiter.acquire()
    except TimeoutError as exc:
        raise ModelTimeout(
            model, f"not started: no free slot for provider {provider_key(entry)!r} before the run's deadline"
        ) from exc
    try:
        timeout = entry.timeout_s
        if request.timeout_s is not None:
            timeout = min(timeout, request.timeout_s)
        left = ctx.time_left()
        cut_by_deadline = left < timeout
        timeout = min(timeout, left)
        if timeout <= 0:
            raise ModelTimeout(model, "not started: the run's deadline had passed")
        try:
            with anyio.fail_after(timeout):
                return await client.complete(request.model_copy(update={"timeout_s": timeout}))
        except TimeoutError as exc:
            if cut_by_deadline:
                raise ModelTimeout(model, f"no answer before the run's deadline ({timeout:.1f}s)") from exc
            raise ModelTimeout(model, f"no answer within {timeout:.1f}s") from exc
    finally:
        limiter.release()


def _counts_against(error: ModelError, ctx: RunContext) -> bool:
    """Whether `error` says the model is unhealthy. A time-out forced by the run's deadline does not."""
    if isinstance(error, ModelTimeout) and ctx.time_left() <= 0:
        return False
    return counts_against_breaker(error)


async def _attempt_model(
    ctx: RunContext,
    model: str,
    request: CompletionRequest,
    stage: str,
    calls: list[CallRecord],
    decisions: list[Decision],
) -> Completion | ChorusError:
    """Call `model`, retrying what is worth retrying. Every attempt — retried, final, skipped or ok — is
    appended to `calls` and reported as it happens; what the budget did beyond the usual (a lowered
    `max_tokens`, an overshoot) goes to `decisions`. Returns the completion, or the error that ended it."""
    try:
        request = with_inputs(ctx, model, request, stage, decisions)
    except InputNotSent as exc:
        await _keep(ctx, calls, record_error(model, stage, exc, None))
        return exc
    breaker = ctx.guard.breaker(model)
    effort = effort_for(ctx.catalog, model, request)
    request = effort.request
    attempt = 0
    while True:
        if not breaker.allow():
            skipped = CircuitOpen(
                model, f"circuit open after repeated failures; next probe in {breaker.retry_in():.0f}s"
            )
            await _keep(ctx, calls, record_error(model, stage, skipped, None))
            return skipped
        reservation: Reservation | None = None
        hold: str | None = None
        started = anyio.current_time()
        try:
            await warm_up(ctx, model)  # the estimate may need the client's tokenizer
            reservation = reserve(ctx, model, request)
            hold = await hold_shared(ctx, model, reservation)
            started = anyio.current_time()
            # Redacted again here, whatever the client (the provider paths already did): a result, a
            # session and a span are made from this completion only.
            with ctx.in_flight.call(model, stage), metering() as meter:
                try:
                    completion = (await call_once(ctx, model, reservation.request, stage)).redacted()
                except BaseException:
                    # A stream that broke off or was cancelled mid-answer has still cost what arrived.
                    arrived = _charge_what_arrived(ctx, model, stage, meter, decisions)
                    await settle_shared(ctx, hold, arrived)
                    raise
        except BudgetExceeded as exc:
            breaker.abandon()
            # The budget cannot pay for a provider call, but a cached answer costs nothing.
            cached = await _cached_answer(ctx, model, request)
            if cached is not None:
                await _keep(ctx, calls, effort.mark(record_ok(model, stage, cached)))
                return cached
            await _keep(ctx, calls, record_error(model, stage, exc, None))
            return exc
        except ModelError as exc:
            ctx.budget.release(reservation.amount_usd if reservation else None)
            if _counts_against(exc, ctx):
                breaker.failure()
                if isinstance(exc, ModelTimeout):  # it took at least this long: a lower bound, kept
                    ctx.latency.record(model, anyio.current_time() - started)
            else:
                breaker.abandon()
            delay = ctx.guard.retry.delay_before(attempt, exc)
            if delay is not None and (delay >= ctx.time_left() or not breaker.is_closed):
                delay = None  # no time for another try, or this failure just opened the circuit
            record = effort.mark(record_error(model, stage, exc, anyio.current_time() - started))
            if attempt > 0 or delay is not None:
                record.attempt = attempt + 1
            if delay is not None:
                record.retry_in_s = round(delay, 3)
                record.error = f"{record.error} (attempt {attempt + 1}, retrying in {delay:.2f}s)"
            await _keep(ctx, calls, record)
            if delay is None:
                return exc
            await anyio.sleep(delay)
            attempt += 1
            continue
        except BaseException:
            # Cancelled (early stop, deadline) or a bug: the probe slot and the reservation must be freed.
            breaker.abandon()
            ctx.budget.release(reservation.amount_usd if reservation else None)
            raise
        for note in (reservation.note, settle(ctx, model, reservation, completion)):
            if note is not None:
                decisions.append(NoteDecision(stage=stage, message=note))
        await settle_shared(ctx, hold, charged_usd(reservation, completion))
        breaker.success()
        if not completion.cached:  # a cache hit says nothing about how fast the provider answers
            ctx.latency.record(model, completion.latency_s)
        record = effort.mark(record_ok(model, stage, completion))
        if attempt > 0:
            record.attempt = attempt + 1
        await _keep(ctx, calls, record)
        return completion


def _charge_what_arrived(
    ctx: RunContext, model: str, stage: str, meter: SpendMeter, decisions: list[Decision]
) -> Decimal | None:
    """Charge what a call that did not finish had received (its meter); returns the amount."""
    if meter.spent_usd is None or meter.spent_usd <= 0:
        return None
    ctx.budget.charge(meter.spent_usd)
    message = (
        f"budget: {model} stopped after sending {meter.output_tokens} output tokens: "
        f"charged ${meter.spent_usd:.6f} for what arrived"
    )
    decisions.append(NoteDecision(stage=stage, message=message))
    return meter.spent_usd


def with_inputs(
    ctx: RunContext, model: str, request: CompletionRequest, stage: str, decisions: list[Decision]
) -> CompletionRequest:
    """`request` with `model`'s share of its attached files and images in its latest user message (see
    `core.inputs`); what was cut goes to `decisions`. Raises `InputNotSent` if the model cannot take them."""
    if request.inputs is None:
        return request
    facts = ctx.catalog.capabilities(model)
    window = facts.context_window or UNKNOWN_WINDOW
    answer = request.max_tokens or facts.max_output or ctx.catalog.entry(model).max_output_tokens
    # Counted generously (the messages are short beside the files), as history trimming counts them.
    used = rough_tokens(m.content for m in request.messages)
    fitted = fit(
        request.inputs,
        model=model,
        window=window,
        room=window - answer - used,
        vision=facts.vision,
        vision_source=facts.sources.get("vision", "the model map does not list it"),
        family=image_family(facts.model),
    )
    decisions.extend(NoteDecision(stage=stage, message=note) for note in fitted.notes)
    messages = list(request.messages)
    last = max((i for i, m in enumerate(messages) if m.role == "user"), default=None)
    if last is None:
        messages.append(Message(role="user", content=fitted.text, images=fitted.images))
    else:
        text = "\n\n".join(t for t in (messages[last].content, fitted.text) if t)
        messages[last] = Message(role="user", content=text, images=fitted.images)
    return request.model_copy(update={"messages": tuple(messages), "inputs": None})


async def _cached_answer(ctx: RunContext, model: str, request: CompletionRequest) -> Completion | None:
    """The cached answer to the call, asked as a capped call sends it (with the model's `max_tokens`) and
    as an uncapped one does (without): either costs nothing now."""
    client = ctx.catalog.client(model)
    if not isinstance(client, AnswersFromCache):
        return None
    full = full_request(ctx, model, request)
    cached = await client.answer_from_cache(full)
    if cached is None and full is not request:
        cached = await client.answer_from_cache(request)
    return None if cached is None else cached.redacted()


async def _keep(ctx: RunContext, calls: list[CallRecord], record: CallRecord) -> None:
    calls.append(record)
    await ctx.report(record)


def record_ok(model: str, stage: str, completion: Completion) -> CallRecord:
    return CallRecord(
        model=model,
        stage=stage,
        status="ok",
        answer=completion.text,
        prompt_tokens=completion.prompt_tokens,
        completion_tokens=completion.completion_tokens,
        reasoning_tokens=completion.reasoning_tokens,
        cost_usd=completion.cost_usd,
        latency_s=round(completion.latency_s, 4),
        cached=completion.cached or None,
        similarity=completion.similarity,
        saved_cost_usd=completion.saved_cost_usd if completion.cached else None,
        truncated=completion.truncated,
    )


def record_error(model: str, stage: str, error: ChorusError, latency_s: float | None) -> CallRecord:
    status = error.status if isinstance(error, ModelError) else "skipped"
    return CallRecord(
        model=model,
        stage=stage,
        status=status,
        error=error.message,
        latency_s=None if latency_s is None or status == "skipped" else round(latency_s, 4),
    )


def _why_each_failed(calls: list[CallRecord]) -> str:
    """Each model tried and its final reason, in the order tried (a retried model once, with its attempts)."""
    last: dict[str, CallRecord] = {}
    for call in calls:
        last.pop(call.model, None)
        last[call.model] = call
    parts = []
    for call in last.values():
        tries = f" (after {call.attempt} attempts)" if call.attempt and call.attempt > 1 else ""
        parts.append(f"{call.model} ({call.status}): {call.error}{tries}")
    return "; ".join(parts)


async def run_model(step: ModelStep, request: CompletionRequest, ctx: RunContext, stage: str) -> ModelOutcome:
    """Ask the step's model; on failure walk its fallback chain. Failures are recorded, never raised."""
    request = prepare(step, request)
    calls: list[CallRecord] = []
    decisions: list[Decision] = []
    chain = chain_of(step, ctx)
    index = 0
    while index < len(chain):
        model = chain[index]
        try:
            outcome = await _attempt_model(ctx, model, request, stage, calls, decisions)
        except UserInputError as exc:
            # An unknown model is the caller's mistake: a fallback would hide it.
            await _keep(ctx, calls, CallRecord(model=model, stage=stage, status="skipped", error=exc.message))
            break
        if isinstance(outcome, ChorusError):
            reason = outcome.message
            too_long = isinstance(outcome, ContextWindowExceeded)
            bigger = ctx.catalog.context_fallback(model) if too_long else None
            if bigger is not None and bigger not in chain:
                chain.insert(index + 1, bigger)
                reason = f"{reason}; trying its larger-context fallback {bigger}"
            following = chain[index + 1] if index + 1 < len(chain) else None
            if following is not None:
                decisions.append(
                    FallbackDecision(stage=stage, from_model=model, to_model=following, reason=reason)
                )
            index += 1
            continue
        if model != step.model:
            decisions.append(NoteDecision(stage=stage, message=f"{model} answered for {step.model}"))
        result = StrategyResult(
            strategy="model", answer=outcome.text, ok=True, calls=calls, decisions=decisions
        )
        if outcome.truncated is not None:
            # An answer, but not all of it: say so wherever the result goes (strategies above pass it on).
            result.partial, result.partial_reason = True, f"{model}'s answer was cut off at its reservation"
        return ModelOutcome(result=result, completion=outcome)
    error = f"no model answered: {_why_each_failed(calls)}"
    result = StrategyResult(
        strategy="model", answer=None, ok=False, error=error, calls=calls, decisions=decisions
    )
    # Cut short rather than failed outright: say so, so that every strategy above can report it.
    if ctx.time_left() <= 0:
        result.partial, result.partial_reason = True, "deadline reached"
    elif calls and calls[-1].status == "skipped" and (calls[-1].error or "").startswith("budget"):
        result.partial, result.partial_reason = True, "cost budget spent"
    return ModelOutcome(result=result, completion=None)
