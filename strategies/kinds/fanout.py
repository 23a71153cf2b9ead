"""Dynamic fan-out: one step run once per item of a list, concurrently, within the run's deadline and budget.

A pipeline stage with `for_each` (`strategies.core.spec.ForEach`) comes here with its items and one
request per item. Every item is a child step of its own, staged `{stage}[{n}]` (1-based), so its calls,
its span and its decisions say which item they belong to. At most `concurrency` items run at once
(an `anyio.CapacityLimiter`; the providers' own caps in `RunContext.guard` still apply below it). All
items share the run's context: one deadline, one budget (each call reserves against it as it starts, so
parallel items together respect the cap), one progress sink.

Items fail on their own: a failed item is named, with its reason, in the stage's `FanOutDecision` (which
the tool result's text shows), and the others go on. An item still waiting for a slot when the deadline
passes is not started (a `skipped` record says so); one cut off by the deadline keeps its finished calls
and a `cancelled` record (`within_deadline`).
The combined result has every item's calls in item order, `answer` the answered items' results joined
under their items' headings (`joined`), and `ok=False` with every item's reason when none answered.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import anyio

from chorus_mcp.strategies.core.completion import CompletionRequest
from chorus_mcp.strategies.core.result import CallRecord, FanOutDecision, ItemFailure, StrategyResult
from chorus_mcp.strategies.core.spec import Step
from chorus_mcp.strategies.engine.children import step_label, within_deadline
from chorus_mcp.strategies.engine.context import RunContext
from chorus_mcp.strategies.tracing.spans import step_span

HEADING_CHARS = 200
"""An item is cut to this many characters in the heading of its result."""
NOT_STARTED = "deadline reached before the item started"


@dataclass
class ItemOutcome:
    """What became of one item."""

    number: int
    """1-based, as in its stage label."""
    item: str
    stage: str
    answer: str | None = None
    error: str | None = None
    cut_off: bool = False
    """True when the deadline stopped the item (before it started, or while it ran)."""
    result: StrategyResult | None = None
    calls: list[CallRecord] = field(default_factory=list)


@dataclass
class FanOut:
    """The combined result of every item, and the answers in item order (what a later fan-out maps over)."""

    result: StrategyResult
    answers: list[str]


async def run_items(
    step: Step,
    items: list[str],
    requests: list[CompletionRequest],
    ctx: RunContext,
    stage: str,
    *,
    concurrency: int,
    source: str,
) -> FanOut:
    """Run `step` on each request (the prompt made from its item) and combine what the items gave.

    `stage` is the fan-out stage's label (`pipeline/research`, `pipeline/research#2` after a
    refinement); `source` names where the items came from, for the decision note.
    """
    outcomes = [ItemOutcome(n, item, f"{stage}[{n}]") for n, item in enumerate(items, start=1)]
    limiter = anyio.CapacityLimiter(concurrency)

    async def attempt(outcome: ItemOutcome, request: CompletionRequest) -> None:
        started = False
        with anyio.CancelScope(deadline=ctx.deadline):
            await limiter.acquire()
            started = True
        if not started:
            _not_started(outcome, step)
            return
        try:
            guarded = await within_deadline(
                step, ctx, outcome.stage, lambda child: child.run_child(step, request, outcome.stage)
            )
        finally:
            limiter.release()
        if guarded.value is not None:
            outcome.result = guarded.value
            outcome.calls = list(guarded.value.calls)
            if guarded.value.ok and guarded.value.answer is not None:
                outcome.answer = guarded.value.answer
            else:
                outcome.error = guarded.value.error or "no answer"
                outcome.cut_off = guarded.value.partial
        else:
            outcome.calls, outcome.error, outcome.cut_off = guarded.calls, guarded.error, guarded.cut_off

    with step_span("for_each", stage) as frame:
        async with anyio.create_task_group() as group:
            for outcome, request in zip(outcomes, requests, strict=True):
                group.start_soon(attempt, outcome, request)
        combined = _combine(outcomes, stage, source)
        if frame is not None:
            frame.finish(combined)
    return FanOut(combined, [o.answer for o in outcomes if o.answer is not None])


def _not_started(outcome: ItemOutcome, step: Step) -> None:
    outcome.error, outcome.cut_off = NOT_STARTED, True
    outcome.calls = [
        CallRecord(model=step_label(step), stage=outcome.stage, status="skipped", error=NOT_STARTED)
    ]


def _combine(outcomes: list[ItemOutcome], stage: str, source: str) -> StrategyResult:
    result = StrategyResult(strategy="for_each", ok=False)
    for outcome in outcomes:
        if outcome.result is not None:
            result.include(outcome.result)
        else:
            result.calls.extend(outcome.calls)
    answered = [o for o in outcomes if o.answer is not None]
    failed = [o for o in outcomes if o.answer is None]
    # One decision for the stage, every failed item in it with its reason: the text the agent reads
    # names them from it (`server.mcp.rendering`), not only the call records.
    result.decisions.append(
        FanOutDecision(
            stage=stage,
            items=len(outcomes),
            answered=len(answered),
            source=source,
            failed=[
                ItemFailure(number=o.number, item=heading(o.item), stage=o.stage, error=_reason(o))
                for o in failed
            ],
        )
    )
    cut = [o for o in outcomes if o.cut_off]
    if cut:
        result.partial = True
        result.partial_reason = "deadline reached for item(s) " + ", ".join(f"[{o.number}]" for o in cut)
    if not answered:
        result.error = f"every one of the {len(outcomes)} item(s) failed: " + "; ".join(
            f"{_named(o)}: {o.error}" for o in failed
        )
        return result
    result.ok = True
    result.answer = joined(answered)
    return result


def _reason(outcome: ItemOutcome) -> str:
    """Why an item failed, shortest first: an item that made one call and lost it fails for that call's
    reason (`researcher: no answer within 2.0s`), which the step's own error wraps in `no model answered:
    researcher (timeout): ...`; a summary cuts reasons short, so the wrapping would hide the cause."""
    calls = outcome.calls
    if len(calls) == 1 and calls[0].status != "ok" and calls[0].error:
        return calls[0].error
    return outcome.error or "no answer"


def _named(outcome: ItemOutcome) -> str:
    return f"[{outcome.number}] {heading(outcome.item)!r}"


def heading(item: str) -> str:
    """An item on one line, cut to `HEADING_CHARS`."""
    line = " ".join(item.split())
    return line if len(line) <= HEADING_CHARS else line[: HEADING_CHARS - 3] + "..."


def joined(answered: list[ItemOutcome]) -> str:
    """The answered items' results, each under a heading with its number and item, in item order.

    The numbers are the items' own (a failed item leaves a gap), so a later stage's answer can be traced
    back to the calls staged with the same number."""
    return "\n\n".join(f"## {o.number}. {heading(o.item)}\n\n{o.answer}" for o in answered)
