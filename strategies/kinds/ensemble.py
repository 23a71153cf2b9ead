"""The `ensemble` strategy: ask every member in parallel, read each answer, aggregate.

Members are any `Step` (a model with its fallback chain, or a whole sub-strategy), each run as
`{stage}/member-{n}` (1-based). Answers are read with `strategies.core.extract` and counted with
`strategies.core.voting`:

- `majority` — one vote per member; `weighted` — a member's vote weighs `spec.weights[model]`, else the
  model's configured weight (the model that actually answered, for a member with fallbacks; the
  strategy's name or kind for a sub-strategy member, default 1);
- `ranking` (anonymised peer ranking) — each member ranks the others' answers shown without names, and
  the Borda count (then the `judge` as chair, if set) decides (`strategies.kinds.ranking`); the votes
  are still counted and reported, and stand when the ranking cannot decide;
- `debate` (bounded debate) — after answering, members see each other's answers without names for up to
  `debate_rounds` rounds and may revise their own, then vote over their final answers, which the vote
  says are not independent (`strategies.kinds.debate`); a `judge` moderates (writes the answer);
- `synthesis` (Mixture-of-Agents) — the judge model reads the question and every member's answer and
  writes the final answer; the members' votes are still counted and reported. If the judge fails,
  the members' majority answers, and a note says so.

A tie goes to the lowest-numbered member's answer (a note says so). For `choice`, `number` and
`yes_no` the answer is the winning key (`"B"`, `"42"`, `"yes"`); for `text` and `json_field` it is
the winning member's own text (the key is normalised, casefolded text or a field value, which the
caller did not ask for).

Early stop (not for synthesis, ranking or debate: every answer is meant to be read): once quorum is met
and the vote is decided (`voting.is_decided`), the members still running are cancelled and recorded as
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

import hashlib
from dataclasses import dataclass, field, replace

import anyio
from anyio.abc import TaskGroup

from chorus_mcp.strategies.cache.scope import bypassed, bypassing, sample
from chorus_mcp.strategies.core.answers import AnswerKey, group_keys, read_answer
from chorus_mcp.strategies.core.completion import CompletionRequest, Message
from chorus_mcp.strategies.core.errors import ChorusError, redact
from chorus_mcp.strategies.core.result import (
    FallbackDecision,
    NoteDecision,
    StrategyResult,
    VoteDecision,
)
from chorus_mcp.strategies.core.spec import EnsembleSpec, ModelStep, Step
from chorus_mcp.strategies.core.templates import latest_user_text
from chorus_mcp.strategies.core.voting import Ballot, count, is_decided, tie_of, vote_decision
from chorus_mcp.strategies.engine.calling import chain_of, run_model
from chorus_mcp.strategies.engine.children import (
    CallTracker,
    child_context,
    cut_off_calls,
    mark_answer,
    step_label,
    within_deadline,
)
from chorus_mcp.strategies.engine.context import RunContext
from chorus_mcp.strategies.kinds.debate import Debater, moderate, rounds_run, run_debate
from chorus_mcp.strategies.kinds.ranking import Ranked, asking, rank_answers
from chorus_mcp.strategies.models.meaning import group_by_meaning

JUDGE_SHARE = 0.25
"""For synthesis, the share of the time left that is kept for the judge after the members (and, with
`degrade_to`, for the step that answers when the quorum is missed)."""
COMPACT_KINDS = ("choice", "number", "yes_no")
"""Kinds of answer whose key is itself a good final answer ("B", "391", "12 km", "no")."""
SAMPLING_TEMPERATURE = 0.7
"""The temperature a repeated model's copies are sampled at when the step sets none (or 0)."""

_JUDGE_INSTRUCTION = (
    "You have been given answers from several models to the user's latest question. Synthesise them "
    "into a single answer that is as accurate and complete as possible. Weigh them critically, since "
    "some may be wrong; do not copy them blindly or mention that there were several. Answer in the "
    "form the question asks for.\n\nAnswers:"
)


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
    seed: int | None = None
    """The seed this seat was sampled with, when it is a diversified copy of a repeated model."""
    temperature: float | None = None
    """The temperature the seat's step asked for (None: the provider's default)."""

    @property
    def answer(self) -> str | None:
        """The member's answer; None unless it answered."""
        return self.result.answer if self.result is not None and self.result.ok else None

    @property
    def answered_by(self) -> str | None:
        """The model whose call gave the member's answer (a fallback's, when one answered); None before."""
        calls = self.result.calls if self.result is not None else []
        return next((c.model for c in reversed(calls) if c.status == "ok"), None)


@dataclass
class EnsembleOutcome:
    """An ensemble's result plus its vote (the cascade reads the agreement from it)."""

    result: StrategyResult
    vote: VoteDecision | None = None


@dataclass
class _Tally:
    ballots: list[Ballot] = field(default_factory=list)
    keys: dict[int, str | None] = field(default_factory=dict)
    """Member index → vote key."""
    read: dict[int, AnswerKey] = field(default_factory=dict)
    """Member index → how its answer was read."""
    notes: list[str] = field(default_factory=list)


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
    synthesis = spec.aggregation in ("synthesis", "ranking", "debate")  # read every answer, keep time after
    keep_time = synthesis or spec.degrade_to is not None
    window = ctx.time_left() * _members_share(spec) if keep_time else ctx.time_left()
    window_end = anyio.current_time() + window
    stopped_early = False
    quorum_lost = False

    async def attempt(member: _Member, group: TaskGroup) -> None:
        nonlocal stopped_early, quorum_lost
        member.started = anyio.current_time()
        child = child_context(member.step, ctx, window_end, member.tracker)
        repeat = _repeat_of(member, members)
        step, asked = _diversified(spec, member.step, repeat, request)
        member.seed = asked.seed
        member.temperature = step.temperature if isinstance(step, ModelStep) else None
        try:
            with sample(repeat), bypassing(bypassed() or asked.seed is not None):
                member.result = await child.run_child(step, asked, member.stage)
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


def _members_share(spec: EnsembleSpec) -> float:
    """The share of the time left that the members' own answers may take when more calls follow them: a
    debate's rounds (and its moderator) each get as long again; a judge, ranking or `degrade_to` the rest."""
    if spec.aggregation == "debate":
        return 1 / (1 + spec.debate_rounds + (1 if spec.judge else 0))
    return 1 - JUDGE_SHARE


def _repeat_of(member: _Member, members: list[_Member]) -> int:
    """How many earlier members are the same step: the second copy of a model is its sample 1, so the
    response cache keeps one answer per copy instead of handing every copy the first one's."""
    return sum(1 for other in members[: member.index] if other.step == member.step)


def _diversified(
    spec: EnsembleSpec, step: Step, repeat: int, request: CompletionRequest
) -> tuple[Step, CompletionRequest]:
    """The step and request a member runs with. A model listed again (its copy n ≥ 1) is a real second
    opinion only if it is sampled differently: with `diversify_repeats`, it runs at a temperature above
    0 (the step's, else `SAMPLING_TEMPERATURE`) with a seed of its own (`sample_seed`), never from the
    cache (self-consistency)."""
    if not spec.diversify_repeats or repeat == 0 or not isinstance(step, ModelStep):
        return step, request
    if not step.temperature:
        step = step.model_copy(update={"temperature": SAMPLING_TEMPERATURE})
    return step, request.model_copy(update={"seed": sample_seed(repeat, request)})


def sample_seed(repeat: int, request: CompletionRequest) -> int:
    """Copy `repeat`'s seed: derived from the copy number *and the prompt*, reproducible for one prompt.

    Why not just `repeat`: a seeded sampler draws the same random number for the same seed, so seed 1
    picked the same quantile of every question's answer distribution. On ARC the embedded 1.5B model,
    nearly flat over four letters, answered its least likely letter at seed 1 on 31 of 33 questions
    and its likeliest at seed 2 on 29 of 33: samples that could never be unanimous, whatever the
    question (bench/eval_live_signal.py measured it). Mixing in the prompt makes each question's draws
    independent of the other questions'."""
    text = "\0".join(f"{m.role}:{m.content}" for m in request.messages)
    digest = hashlib.sha256(f"{repeat}\0{text}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def _source(member: _Member, ctx: RunContext) -> tuple[object, ...] | None:
    """The provider model that answered a seat (its id and endpoint, whatever alias named it), whatever
    it was sampled with; None for a sub-strategy member or a seat that did not answer."""
    alias = member.answered_by
    if not isinstance(member.step, ModelStep) or alias is None:
        return None
    try:
        entry = ctx.catalog.entry(alias)
        return (entry.model, entry.api_base)
    except ChorusError:  # an unlisted provider model id named directly
        return (alias, None)


def _voter(member: _Member, ctx: RunContext) -> tuple[object, ...] | None:
    """Who really answered a seat, as far as independence goes: its provider model (`_source`) and the
    temperature and seed it was sampled with. A sub-strategy member is a voter of its own (None)."""
    provider = _source(member, ctx)
    return None if provider is None else (*provider, member.temperature, member.seed)


def _weight(spec: EnsembleSpec, member: _Member, ctx: RunContext) -> float:
    """The member's vote weight; for a member still running, the most it could weigh."""
    if spec.aggregation != "weighted":
        return 1.0
    if not isinstance(member.step, ModelStep):
        return spec.weights.get(step_label(member.step), 1.0)
    candidates = [member.answered_by] if member.answered_by is not None else chain_of(member.step, ctx)
    return max(spec.weights.get(name, ctx.catalog.weight(name)) for name in candidates)


def _tally(spec: EnsembleSpec, members: list[_Member], prompt: str, ctx: RunContext) -> _Tally:
    """Every answer read on its own (`strategies.core.answers`), grouped, and turned into ballots."""
    answered = [m for m in members if m.answer is not None]
    # An answer is untrusted text: a key made from it must not carry a secret it echoed in a new shape
    # (normalising "sk-live-..." to "sklive..." would slip past redaction further on).
    read = [read_answer(redact(m.answer or ""), prompt, spec.extract, spec.json_field) for m in answered]
    keys = group_keys(read)
    return _ballots(spec, answered, read, keys, ctx)


def _ballots(
    spec: EnsembleSpec,
    answered: list[_Member],
    read: list[AnswerKey],
    keys: list[str | None],
    ctx: RunContext,
    notes: list[str] | None = None,
) -> _Tally:
    tally = _Tally(notes=list(notes or []))
    for member, answer, key in zip(answered, read, keys, strict=True):
        tally.keys[member.index] = key
        tally.read[member.index] = answer
        tally.ballots.append(
            Ballot(
                member.index,
                key,
                _weight(spec, member, ctx),
                voter=_voter(member, ctx),
                source=_source(member, ctx),
                model=member.answered_by or step_label(member.step),
                how=f"{answer.kind}: {answer.how}" if key is not None else None,
                stage=member.stage.rsplit("/", 1)[-1],
            )
        )
    return tally


async def _final_tally(spec: EnsembleSpec, members: list[_Member], prompt: str, ctx: RunContext) -> _Tally:
    """`_tally`, with free-text answers grouped by meaning when the spec asks for it."""
    tally = _tally(spec, members, prompt, ctx)
    if spec.meaning_embedder is None:
        return tally
    answered = [m for m in members if m.answer is not None]
    read = [tally.read[m.index] for m in answered]
    grouped = await group_by_meaning(
        [m.answer or "" for m in answered],
        read,
        [tally.keys[m.index] for m in answered],
        embedder=spec.meaning_embedder,
        threshold=spec.meaning_threshold,
    )
    notes = [grouped.note] if grouped.note else []
    return _ballots(spec, answered, read, grouped.keys, ctx, notes)


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
    """The winning key when it is itself an answer ("391", "B", "no"), else the first such member's text."""
    first = min((m for m in answered if tally.keys.get(m.index) == winner), key=lambda m: m.index)
    if tally.read[first.index].kind in COMPACT_KINDS:
        return winner
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
    tally = await _final_tally(spec, members, prompt, ctx)
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

    rounds = 0
    if spec.aggregation == "debate":
        answered, tally, rounds = await _debated(spec, request, ctx, stage, answered, prompt, tally, result)
    moderated = spec.aggregation == "debate" and spec.judge is not None
    tied = tie_of(tally.ballots) if spec.aggregation not in ("synthesis", "ranking") and not moderated else []
    winner, broken_by = (None, None)
    if tied:
        winner, broken_by = await _break_tie(spec, request, ctx, stage, tied, tally, answered, result)
    vote = vote_decision(
        stage,
        spec.aggregation,
        tally.ballots,
        early_stop=stopped_early and bool(cut),
        winner=winner,
        tie_break=broken_by,
    )
    if rounds:  # voters who have read each other's answers agree as a group, not independently
        vote = vote.model_copy(update={"after_debate": rounds, "consensus": False})
    result.decisions.append(vote)
    for note in tally.notes:
        result.decisions.append(NoteDecision(stage=stage, message=note))
    abstained = [m for m in answered if tally.keys.get(m.index) is None]
    if abstained:
        names = ", ".join(f"{m.stage.rsplit('/', 1)[-1]} ({step_label(m.step)})" for m in abstained)
        message = f"no answer could be read from {names} ({spec.extract}): not counted"
        result.decisions.append(NoteDecision(stage=stage, message=message))
    if vote.winner is not None:
        result.ok = True
        result.answer = _final_answer(vote.winner, tally, answered)
    if spec.aggregation == "synthesis":
        await _synthesise(spec, request, ctx, stage, answered, tally, vote, result)
    if spec.aggregation == "ranking":
        await rank_answers(spec, _for_readers(request), ctx, stage, _ranked(answered, ctx), result)
    if moderated and spec.judge is not None:
        await moderate(
            spec.judge, _for_readers(request), ctx, stage, [m.answer or "" for m in answered], result
        )
    if not result.ok and tied:
        listed = " vs ".join(f"{key!r} ({', '.join(_models_of(key, tally))})" for key in tied)
        result.error = f"tie: {listed}; no tie-break rule resolved it (tie_break: {spec.tie_break})"
    elif not result.ok:
        result.error = f"no member's answer could be read ({spec.extract}); " + _reasons(members, cut_reason)
    return EnsembleOutcome(result, vote)


async def _debated(
    spec: EnsembleSpec,
    request: CompletionRequest,
    ctx: RunContext,
    stage: str,
    answered: list[_Member],
    prompt: str,
    tally: _Tally,
    result: StrategyResult,
) -> tuple[list[_Member], _Tally, int]:
    """Run the debate over the answered members: the members with their final answers, the tally of
    those, and the rounds run (0: they already agreed, so the vote is still one of independent voters)."""
    debaters = [
        Debater(
            member=m.index,
            seat=m.stage.rsplit("/", 1)[-1],
            model=m.answered_by if isinstance(m.step, ModelStep) else None,
            answer=m.answer or "",
            temperature=m.temperature,
            seed=m.seed,
            stance=spec.stances[m.index] if m.index < len(spec.stances) else "neutral",
        )
        for m in answered
    ]

    def read_keys(answers: list[str]) -> list[str | None]:
        return group_keys([read_answer(redact(a), prompt, spec.extract, spec.json_field) for a in answers])

    final, decision = await run_debate(spec, _for_readers(request), ctx, stage, debaters, read_keys, result)
    result.decisions.append(decision)
    rounds = rounds_run(decision)
    if not rounds:
        return answered, tally, 0
    revised = [
        replace(m, result=m.result.model_copy(update={"answer": final[m.index]})) if m.result else m
        for m in answered
    ]
    return revised, await _final_tally(spec, revised, prompt, ctx), rounds


def _ranked(answered: list[_Member], ctx: RunContext) -> list[tuple[int, Ranked]]:
    """The answered members as the ranking sees them: a model member ranks (as the model that answered)."""
    return [
        (
            m.index,
            Ranked(
                member=m.stage.rsplit("/", 1)[-1],
                model=m.answered_by if isinstance(m.step, ModelStep) else None,
                answer=m.answer or "",
                source=_source(m, ctx),
            ),
        )
        for m in answered
    ]


def _models_of(key: str, tally: _Tally) -> list[str]:
    return [b.model for b in tally.ballots if b.key == key]


_TIE_INSTRUCTION = (
    "Several models answered the user's latest question and split evenly between the candidate answers "
    "below. Decide which candidate is correct. Reply with the candidate's number only."
)


async def _break_tie(
    spec: EnsembleSpec,
    request: CompletionRequest,
    ctx: RunContext,
    stage: str,
    tied: list[str],
    tally: _Tally,
    answered: list[_Member],
    result: StrategyResult,
) -> tuple[str | None, str]:
    """Resolve a tie for first place by the spec's rule: the voters' configured model weights, then (or
    only, for `judge`) the judge model picking one candidate. Never member order: unresolved is a result."""
    rule = spec.tie_break
    if rule in ("auto", "weights"):
        counted = count(tally.ballots).counted  # an echo adds no weight to a tie-break either
        weights = {
            key: sum(spec.weights.get(b.model, ctx.catalog.weight(b.model)) for b in counted if b.key == key)
            for key in tied
        }
        best = max(weights.values())
        leaders = [key for key, weight in weights.items() if weight == best]
        if len(leaders) == 1:
            return leaders[0], "weights"
    if rule in ("auto", "judge") and spec.judge:
        picked = await _judge_tie(spec.judge, request, ctx, stage, tied, tally, answered, result)
        if picked is not None:
            return picked, "judge"
    return None, "unresolved"


async def _judge_tie(
    judge_model: str,
    request: CompletionRequest,
    ctx: RunContext,
    stage: str,
    tied: list[str],
    tally: _Tally,
    answered: list[_Member],
    result: StrategyResult,
) -> str | None:
    candidates = []
    for key in tied:
        first = min((m for m in answered if tally.keys.get(m.index) == key), key=lambda m: m.index)
        candidates.append(first.answer or key)
    listed = "\n\n".join(f"Candidate {n}:\n{text}" for n, text in enumerate(candidates, 1))
    system = [m.content for m in request.messages if m.role == "system"]
    content = "\n\n".join([*system, f"{_TIE_INSTRUCTION}\n\n{listed}"])
    rest = tuple(m for m in request.messages if m.role != "system")
    asked = _for_readers(request).model_copy(
        update={"messages": (Message(role="system", content=content), *rest)}
    )
    judge = ModelStep(model=judge_model)
    judge_stage = f"{stage}/tie-break"
    judged = await within_deadline(
        judge, ctx, judge_stage, lambda child: run_model(judge, asked, child, judge_stage)
    )
    if judged.value is None:
        result.calls.extend(judged.calls)
        return None
    result.include(judged.value.result)
    picked = read_answer(judged.value.result.answer or "", "", "number")
    if picked.value is None or picked.value != picked.value.to_integral_value():
        return None
    number = int(picked.value)
    return tied[number - 1] if 1 <= number <= len(tied) else None


async def _degrade(
    step: Step, request: CompletionRequest, ctx: RunContext, stage: str, missed: str, result: StrategyResult
) -> None:
    """The quorum was missed: let `step` (the configured single best model) answer instead, and say so."""
    degraded_stage = f"{stage}/degraded"
    label = step_label(step)
    ran = await within_deadline(
        step, ctx, degraded_stage, lambda child: child.run_child(step, request, degraded_stage)
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
    return asking(_for_readers(request), _JUDGE_INSTRUCTION, listed)


def _for_readers(request: CompletionRequest) -> CompletionRequest:
    """What a judge, chair or ranker is sent: it reads the members' answers, so one that cannot see the
    attached images gets the rest with a note that the members saw them (`core.inputs.fit`), not a skip."""
    if request.inputs is None:
        return request
    return request.model_copy(update={"inputs": request.inputs.seen_by("the members")})


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
            judged_key = read_answer(result.answer, latest_user_text(request), spec.extract, spec.json_field)
            judge_key = judged_key.key
            if judged_key.kind in COMPACT_KINDS and judge_key not in (None, vote.winner):
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
