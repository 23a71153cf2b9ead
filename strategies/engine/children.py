"""Running a child step so that, if it is cut off, its evidence survives.

The step machinery every kind that runs children shares (the ensemble, the cascade, the confidence
estimators): tracking a child's finished calls, the context it runs in (its deadline a little before
its parent's when it is a nested strategy), the `cancelled` record of the call a cut-off child was
waiting on, and `within_deadline`, which runs one child under all of that.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Generic, TypeVar

import anyio

from chorus_mcp.strategies.core.errors import ChorusError
from chorus_mcp.strategies.core.result import CallRecord, StrategyResult
from chorus_mcp.strategies.core.spec import ModelStep, Step, StrategyRef
from chorus_mcp.strategies.engine.calling import chain_of
from chorus_mcp.strategies.engine.context import RunContext

NESTED_MARGIN_S = 0.25
"""A nested strategy must finish this much (at most 10% of its time) before its parent's deadline, so
it returns its own partial answer instead of being cut off with nothing."""

T = TypeVar("T")


class CallTracker:
    """Keeps the calls a child step has finished and passes them on as progress.

    A child that is cancelled mid-run returns no result; these are then all that is left of it.
    """

    def __init__(self, parent: RunContext) -> None:
        self.calls: list[CallRecord] = []
        self._parent = parent

    async def __call__(self, record: CallRecord) -> None:
        self.calls.append(record)
        await self._parent.report(record)


def step_label(step: Step) -> str:
    """How a step is named in reasons: its model, its strategy name, or its kind."""
    if isinstance(step, ModelStep):
        return step.model
    if isinstance(step, StrategyRef):
        return step.name
    return step.kind


def child_context(
    step: Step, ctx: RunContext, deadline: float, tracker: CallTracker, *, nested: bool | None = None
) -> RunContext:
    """The context a child runs in: its calls tracked, its deadline no later than `deadline`.

    A nested strategy (any step but a single model, unless `nested` says otherwise) gets a deadline a
    little earlier, so that it returns its own partial answer before its parent cuts it off.
    """
    deadline = min(deadline, ctx.deadline)
    if nested if nested is not None else not isinstance(step, ModelStep):
        deadline -= min(NESTED_MARGIN_S, 0.1 * max(0.0, deadline - anyio.current_time()))
    return replace(ctx, deadline=deadline, progress=tracker)


def cancelled_call(
    step: Step, ctx: RunContext, stage: str, tracker: CallTracker, started: float | None, reason: str
) -> CallRecord | None:
    """The `cancelled` record for the call a cut-off child was waiting on (None if it waited on none).

    For a model step that is the current model of its chain; it was sent, so it has a latency (and
    counts as a call) but no cost. A sub-strategy's in-flight call is unknown: its record names the
    strategy and has no latency, so it is not counted as a call.
    """
    latency: float | None = None
    if isinstance(step, ModelStep):
        model = _in_flight(chain_of(step, ctx), tracker.calls)
        if model is None:
            return None
        if started is not None:
            latency = round(anyio.current_time() - started, 4)
    else:
        model = step_label(step)
    return CallRecord(model=model, stage=stage, status="cancelled", error=reason, latency_s=latency)


async def cut_off_calls(
    step: Step, ctx: RunContext, stage: str, tracker: CallTracker, started: float | None, reason: str
) -> list[CallRecord]:
    """A cut-off child's finished calls plus its `cancelled` one, which is reported as progress too
    (a cancelled call has finished as well, and progress should reach its total)."""
    cancelled = cancelled_call(step, ctx, stage, tracker, started, reason)
    if cancelled is None:
        return list(tracker.calls)
    await ctx.report(cancelled)
    return [*tracker.calls, cancelled]


def _in_flight(chain: list[str], calls: list[CallRecord]) -> str | None:
    """The model a cut-off model step was waiting on, from the calls it had finished.

    Nothing finished: the first of the chain. After a retried attempt (its record has `retry_in_s`):
    the same model. After a failure: the next in the chain. After an answer (cut off while reporting
    it) or the end of the chain: None, nothing was in flight.
    """
    if not calls:
        return chain[0]
    last = calls[-1]
    if last.status == "ok":
        return None
    if last.retry_in_s is not None:
        return last.model
    position = chain.index(last.model) + 1 if last.model in chain else len(chain)
    return chain[position] if position < len(chain) else None


@dataclass
class Guarded(Generic[T]):
    """What running a child within the deadline gave: its value, or why there is none."""

    value: T | None = None
    calls: list[CallRecord] = field(default_factory=list)
    """When there is no value: the calls the child made (for a cut-off child, see `cut_off_calls`)."""
    error: str | None = None
    cut_off: bool = False
    """True when the deadline cancelled the child."""


async def within_deadline(
    step: Step,
    ctx: RunContext,
    stage: str,
    work: Callable[[RunContext], Awaitable[T]],
    *,
    nested: bool | None = None,
) -> Guarded[T]:
    """Run `work` (which runs `step` in the context it is given) until the deadline at the latest."""
    tracker = CallTracker(ctx)
    child = child_context(step, ctx, ctx.deadline, tracker, nested=nested)
    started = anyio.current_time()
    # The same absolute deadline as the child's own call time-outs, never later: a call cut off at the
    # deadline is then reported as cancelled by it rather than as the model's time-out.
    with anyio.CancelScope(deadline=ctx.deadline):
        try:
            return Guarded(value=await work(child))
        except ChorusError as exc:  # e.g. an unknown named strategy
            return Guarded(calls=list(tracker.calls), error=exc.message)
    calls = await cut_off_calls(step, ctx, stage, tracker, started, "deadline reached")
    return Guarded(calls=calls, error="deadline reached", cut_off=True)


def mark_answer(result: StrategyResult, answer: str) -> None:
    """Put `answer` (extracted, or stripped of a confidence line) in the record of the call that gave
    `result.answer`, keeping the raw text beside it. `result.answer` itself is left to the caller."""
    raw = result.answer
    for position in range(len(result.calls) - 1, -1, -1):
        call = result.calls[position]
        if call.status == "ok" and call.answer == raw:
            if answer != raw:
                result.calls[position] = call.model_copy(update={"answer": answer, "text": call.text or raw})
            return
