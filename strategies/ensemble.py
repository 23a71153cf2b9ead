"""The `ensemble` strategy: ask every member in parallel, read each answer, aggregate.

Members are any `Step` (a model with its fallback chain, or a whole sub-strategy), each run as
`{stage}/member-{n}` (1-based). Answers are read with `strategies.extract` and counted with
`strategies.voting`:

- `majority` — one vote per member; `weighted` — a member's vote weighs `spec.weights[model]`, else the
  model's configured weight (the model that actually answered, for a member with fallbacks; the
  strategy's name or kind for a sub-strategy member, default 1);
- `synthesis` (Mixture-of-Agents) — the judge model reads the question and every member's answer and
  writes the final answer; the members' votes are still counted and reported. If the judge fails,
  the members' majority answers, and a note says so.

A tie goes to the lowest-numbered member's answer (a note says so). For `choice`, `number` and
`yes_no` the answer is the winning key (`"B"`, `"42"`, `"yes"`); for `text` and `json_field` it is
the winning member's own text (the key is normalised, casefolded text or a field value, which the
caller did not ask for).

Early stop (not for synthesis: the judge is meant to read every answer): once quorum is met and the
vote is decided (`voting.is_decided`), the members still running are cancelled and recorded as
`cancelled`; their cost is never incurred. The deadline: members run within the time left (for
synthesis, within the first 75% of it, so the judge has time too); members still running then are
cancelled with "deadline reached" and the vote is taken over the answers that arrived, marked partial.
With `extract: auto`, the format is resolved again from the answers received at each point, so an
early stop is decided under the format those answers imply.

Sub-strategy members get a deadline slightly before the ensemble's (`child_context`), so a nested
cascade or ensemble returns its own partial answer rather than being cut off with nothing.

Graceful degradation: the ensemble answers with fewer members as long as `quorum` of them answer. Once
so many have failed that the quorum is out of reach, the members still running are cancelled (with
`early_stop`). When the quorum is missed and `degrade_to` is set, that step (typically the single best
model) answers instead, within the last 25% of the time (kept for it as for a judge), and a `fallback`
decision says so; the members' failures stay in the calls.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Generic, TypeVar

import anyio
from anyio.abc import TaskGroup

from strategies.cache.scope import sample
from strategies.calling import chain_of, run_model
from strategies.completion import CompletionRequest, Message
from strategies.context import RunContext
from strategies.errors import ChorusError
from strategies.extract import ConcreteFormat, extract, resolve_format
from strategies.result import CallRecord, FallbackDecision, NoteDecision, StrategyResult, VoteDecision
from strategies.runner import run_step
from strategies.spec import EnsembleSpec, ModelStep, Step, StrategyRef
from strategies.templates import latest_user_text
from strategies.voting import Ballot, is_decided, tie_note, vote_decision

JUDGE_SHARE = 0.25
"""For synthesis, the share of the time left that is kept for the judge after the members (and, with
`degrade_to`, for the step that answers when the quorum is missed)."""
COMPACT_FORMATS = ("choice", "number", "yes_no")
"""Formats whose key is itself a good final answer."""
NESTED_MARGIN_S = 0.25
"""A nested strategy must finish this much (at most 10% of its time) before its parent's deadline, so
it returns its own partial answer instead of being cut off with nothing."""

_JUDGE_INSTRUCTION = (
    "You have been given answers from several models to the user's latest question. Synthesise them "
    "into a single answer that is as accurate and complete as possible. Weigh them critically, since "
    "some may be wrong; do not copy them blindly or mention that there were several. Answer in the "
    "form the question asks for.\n\nAnswers:"
)

T = TypeVar("T")


# --- Children: running a step so that, if it is cut off, its evidence survives ----------------------


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


# --- The ensemble -----------------------------------------------------------------------------------


@dataclass
class _Member:
    index: int
    step: Step
    stage: str
    tracker: CallTracker
    started: float | None = None
    result: StrategyResult | None = None
    """None while running, and for a member that was cancelled."""

    @property
    def answer(self) -> str | None:
        """The member's answer; None unless it answered."""
        return self.result.answer if self.result is not None and self.result.ok else None


@dataclass
class EnsembleOutcome:
    """An ensemble's result plus its vote (the cascade reads the agreement from it)."""

    result: StrategyResult
    vote: VoteDecision | None = None


@dataclass
class _Tally:
    fmt: ConcreteFormat
    ballots: list[Ballot] = field(default_factory=list)
    keys: dict[int, str | None] = field(default_factory=dict)


async def run_ensemble(
    spec: EnsembleSpec, request: CompletionRequest, ctx: RunContext, stage: str
) -> StrategyResult:
    """Ask the members in parallel and aggregate; member failures are reported, never raised."""
    return (await ensemble_vote(spec, request, ctx, stage)).result


async def ensemble_vote(
    spec: EnsembleSpec, request: CompletionRequest, ctx: RunContext, stage: str, *, label: str = "member"
) -> EnsembleOutcome:
    """`run_ensemble`, also returning the vote. `label` names the members' stages (`{stage}/{label}-{n}`)."""
    prompt = latest_user_text(request)
    members = [
        _Member(index, step, f"{stage}/{label}-{index + 1}", CallTracker(ctx))
        for index, step in enumerate(spec.members)
    ]
    synthesis = spec.aggregation == "synthesis"
    keep_time = synthesis or spec.degrade_to is not None
    window = ctx.time_left() * (1 - JUDGE_SHARE) if keep_time else ctx.time_left()
    window_end = anyio.current_time() + window
    stopped_early = False
    quorum_lost = False

    async def attempt(member: _Member, group: TaskGroup) -> None:
        nonlocal stopped_early, quorum_lost
        member.started = anyio.current_time()
        child = child_context(member.step, ctx, window_end, member.tracker)
        try:
            with sample(_repeat_of(member, members)):
                member.result = await run_step(member.step, request, child, member.stage)
        except ChorusError as exc:  # e.g. an unknown named strategy: this member fails, the rest go on
            name = step_label(member.step)
            calls = list(member.tracker.calls)
            member.result = StrategyResult(strategy=name, ok=False, error=exc.message, calls=calls)
        if spec.early_stop and _quorum_out_of_reach(spec, members):
            # Waiting for the rest cannot produce a vote any more: stop paying for them (and leave the
            # time to `degrade_to`, if any).
            quorum_lost = True
            group.cancel_scope.cancel()
        elif spec.early_stop and not synthesis and _decided(spec, members, prompt, ctx):
            stopped_early = True
            group.cancel_scope.cancel()

    with anyio.CancelScope(deadline=window_end) as deadline_scope:  # see `within_deadline`
        async with anyio.create_task_group() as group:
            for member in members:
                group.start_soon(attempt, member, group)
    if deadline_scope.cancelled_caught:
        cut_reason = "deadline reached"
    elif quorum_lost:
        cut_reason = "the quorum could no longer be reached"
    else:
        cut_reason = "the vote was already decided"
    return await _conclude(spec, request, ctx, stage, members, prompt, stopped_early, cut_reason)


def _repeat_of(member: _Member, members: list[_Member]) -> int:
    """How many earlier members are the same step: the second copy of a model is its sample 1, so the
    response cache keeps one answer per copy instead of handing every copy the first one's."""
    return sum(1 for other in members[: member.index] if other.step == member.step)


def _weight(spec: EnsembleSpec, member: _Member, ctx: RunContext) -> float:
    """The member's vote weight; for a member still running, the most it could weigh."""
    if spec.aggregation != "weighted":
        return 1.0
    if not isinstance(member.step, ModelStep):
        return spec.weights.get(step_label(member.step), 1.0)
    calls = member.result.calls if member.result is not None else []
    answered_by = [c.model for c in calls if c.status == "ok"][-1:]
    candidates = answered_by or chain_of(member.step, ctx)
    return max(spec.weights.get(name, ctx.catalog.weight(name)) for name in candidates)


def _tally(spec: EnsembleSpec, members: list[_Member], prompt: str, ctx: RunContext) -> _Tally:
    answered = [m for m in members if m.answer is not None]
    fmt = resolve_format(spec.extract, prompt, [m.answer for m in answered if m.answer is not None])
    tally = _Tally(fmt)
    for member in answered:
        key = extract(member.answer or "", fmt, spec.json_field)
        tally.keys[member.index] = key
        tally.ballots.append(Ballot(member.index, key, _weight(spec, member, ctx)))
    return tally


def _quorum_out_of_reach(spec: EnsembleSpec, members: list[_Member]) -> bool:
    """Some members are still running, but too many have failed for the quorum to be met."""
    running = sum(1 for m in members if m.result is None)
    failed = sum(1 for m in members if m.result is not None and m.answer is None)
    return running > 0 and len(members) - failed < spec.quorum


def _decided(spec: EnsembleSpec, members: list[_Member], prompt: str, ctx: RunContext) -> bool:
    running = [m for m in members if m.result is None]
    answered = [m for m in members if m.answer is not None]
    if not running or len(answered) < spec.quorum:
        return False
    pending = sum(_weight(spec, m, ctx) for m in running)
    return is_decided(_tally(spec, members, prompt, ctx).ballots, pending)


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


def _reasons(members: list[_Member], cut_reason: str) -> str:
    """Every member and what became of it, for an error message."""
    parts: list[str] = []
    for member in members:
        name = f"{member.stage.rsplit('/', 1)[-1]} ({step_label(member.step)})"
        if member.result is None:
            parts.append(f"{name}: cancelled, {cut_reason}")
        elif member.answer is not None:
            parts.append(f"{name}: answered")
        else:
            parts.append(f"{name}: {member.result.error}")
    return "; ".join(parts)


def _final_answer(winner: str, tally: _Tally, answered: list[_Member]) -> str:
    if tally.fmt in COMPACT_FORMATS:
        return winner
    first = min((m for m in answered if tally.keys.get(m.index) == winner), key=lambda m: m.index)
    return first.answer or winner


async def _conclude(
    spec: EnsembleSpec,
    request: CompletionRequest,
    ctx: RunContext,
    stage: str,
    members: list[_Member],
    prompt: str,
    stopped_early: bool,
    cut_reason: str,
) -> EnsembleOutcome:
    result = StrategyResult(strategy="ensemble", ok=False)
    tally = _tally(spec, members, prompt, ctx)
    cut = [m for m in members if m.result is None]
    for member in members:
        if member.result is None:
            calls = await cut_off_calls(
                member.step, ctx, member.stage, member.tracker, member.started, cut_reason
            )
            result.calls.extend(calls)
            continue
        key = tally.keys.get(member.index)
        if key is not None:
            mark_answer(member.result, key)
        result.include(member.result)
    answered = [m for m in members if m.answer is not None]
    if cut and cut_reason == "deadline reached":
        result.partial = True
        result.partial_reason = f"deadline reached: {len(answered)} of {len(members)} members answered"
    for member in answered:
        if member.result is not None and member.result.partial and not result.partial:
            result.partial = True
            result.partial_reason = f"{member.stage}: {member.result.partial_reason}"

    if len(answered) < spec.quorum:
        missed = (
            f"quorum not reached: {len(answered)} of {len(members)} members answered, {spec.quorum} needed"
        )
        result.error = f"{missed}; " + _reasons(members, cut_reason)
        if spec.degrade_to is not None:
            await _degrade(spec.degrade_to, request, ctx, stage, missed, result)
        return EnsembleOutcome(result)

    vote = vote_decision(stage, spec.aggregation, tally.ballots, early_stop=stopped_early and bool(cut))
    result.decisions.append(vote)
    abstained = [m for m in answered if tally.keys.get(m.index) is None]
    if abstained:
        names = ", ".join(f"{m.stage.rsplit('/', 1)[-1]} ({step_label(m.step)})" for m in abstained)
        message = f"no {tally.fmt} answer could be read from {names}: not counted"
        result.decisions.append(NoteDecision(stage=stage, message=message))
    if (tie := tie_note(tally.ballots)) is not None:
        result.decisions.append(NoteDecision(stage=stage, message=tie))
    if vote.winner is not None:
        result.ok = True
        result.answer = _final_answer(vote.winner, tally, answered)
    if spec.aggregation == "synthesis":
        await _synthesise(spec, request, ctx, stage, answered, tally, vote, result)
    if not result.ok:
        result.error = f"no member's answer could be read as {tally.fmt}; " + _reasons(members, cut_reason)
    return EnsembleOutcome(result, vote)


async def _degrade(
    step: Step, request: CompletionRequest, ctx: RunContext, stage: str, missed: str, result: StrategyResult
) -> None:
    """The quorum was missed: let `step` (the configured single best model) answer instead, and say so."""
    degraded_stage = f"{stage}/degraded"
    label = step_label(step)
    ran = await within_deadline(
        step, ctx, degraded_stage, lambda child: run_step(step, request, child, degraded_stage)
    )
    if ran.value is None:
        result.calls.extend(ran.calls)
        failure = ran.error
    else:
        result.include(ran.value)
        if ran.value.ok and ran.value.answer is not None:
            result.ok, result.answer, result.error = True, ran.value.answer, None
            reason = f"{missed}; degraded to {label}"
            result.decisions.append(
                FallbackDecision(stage=stage, from_model="ensemble", to_model=label, reason=reason)
            )
            if ran.value.partial and not result.partial:
                result.partial, result.partial_reason = True, f"{degraded_stage}: {ran.value.partial_reason}"
            return
        failure = ran.value.error
    result.error = f"{result.error}; degraded to {label}, which failed too: {failure}"


def _judge_request(request: CompletionRequest, answers: list[str]) -> CompletionRequest:
    """The original conversation, with the members' answers and the judge's task in the system prompt."""
    listed = "\n\n".join(f"{n}. {answer}" for n, answer in enumerate(answers, 1))
    system = [m.content for m in request.messages if m.role == "system"]
    content = "\n\n".join([*system, f"{_JUDGE_INSTRUCTION}\n\n{listed}"])
    rest = tuple(m for m in request.messages if m.role != "system")
    return request.model_copy(update={"messages": (Message(role="system", content=content), *rest)})


async def _synthesise(
    spec: EnsembleSpec,
    request: CompletionRequest,
    ctx: RunContext,
    stage: str,
    answered: list[_Member],
    tally: _Tally,
    vote: VoteDecision,
    result: StrategyResult,
) -> None:
    """Let the judge write the answer; if it cannot, keep the members' majority answer (if any)."""
    judge = ModelStep(model=spec.judge or "")
    judge_stage = f"{stage}/judge"
    judge_request = _judge_request(request, [m.answer or "" for m in answered])
    judged = await within_deadline(
        judge, ctx, judge_stage, lambda child: run_model(judge, judge_request, child, judge_stage)
    )
    if judged.value is not None:
        result.include(judged.value.result)
        if judged.value.result.ok and judged.value.result.answer is not None:
            result.ok = True
            result.answer = judged.value.result.answer
            judge_key = extract(result.answer, tally.fmt, spec.json_field)
            if tally.fmt in COMPACT_FORMATS and judge_key not in (None, vote.winner):
                message = f"the judge answered {judge_key!r}; the members' majority was {vote.winner!r}"
                result.decisions.append(NoteDecision(stage=stage, message=message))
            return
        failure = judged.value.result.error
    else:
        result.calls.extend(judged.calls)
        failure = judged.error
    if judged.cut_off:
        result.partial = True
        result.partial_reason = "deadline reached before the judge answered"
    fallback = "answering with the members' majority" if result.ok else "and no member's answer could be read"
    message = f"judge {judge.model} failed ({failure}); {fallback}"
    result.decisions.append(NoteDecision(stage=stage, message=message))
