"""Bounded debate (`aggregation: debate`): members see each other's answers and may revise their own.

After the members answer independently (round 0, the ensemble's usual fan-out), each round r = 1..N
(`spec.debate_rounds`) shows every member that answered as a model its own latest answer and the other
members' latest answers without names, labelled `Response A`, `Response B`, ... in an order shuffled per
member and round with a seeded shuffle (`spec.ranking_seed`), and asks for its final answer: changed only
if the others show it wrong. A member given a stance (`spec.stances`: `for` / `against` the question's
claim, PAL's consensus stances) is asked to argue it. Debaters of a round run in parallel as
`{stage}/debate-{r}-{n}` (n: the member's number) under the run's deadline and budget; one that fails
keeps its previous answer, and the failure is recorded, never raised.

The rounds stop early, and the decision says why: before round 1 when the members already agree (no
debate is needed, and the vote stays one of independent voters), and after a round in which every
answer agrees or no member changed its answer (another round would show them the same answers).
Answers are compared as the vote reads them (`read_keys`: the ensemble's extraction and grouping of
equivalent answers), so "12 km" and "12 kilometres" are no change.

The vote is then over the final answers, and says it came after debate: members that have seen each
other's answers are not independent voters, so their agreement is never reported as consensus. With a
`judge`, the judge moderates: it writes the final answer from the last round's answers (required when
a member argued a stance, since an argued position is not a sincere vote); if it fails, the vote over
the final answers stands and a note says so.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable
from dataclasses import dataclass, replace

import anyio

from chorus_mcp.strategies.core.completion import CompletionRequest
from chorus_mcp.strategies.core.result import (
    DebateDecision,
    DebateRound,
    DebateTurn,
    NoteDecision,
    StrategyResult,
)
from chorus_mcp.strategies.core.spec import EnsembleSpec, ModelStep
from chorus_mcp.strategies.engine.calling import run_model
from chorus_mcp.strategies.engine.children import within_deadline
from chorus_mcp.strategies.engine.context import RunContext
from chorus_mcp.strategies.kinds.ranking import asking

ReadKeys = Callable[[list[str]], list[str | None]]
"""Vote keys of answers read together (equivalent answers share a key; None: unreadable)."""

_DEBATE_INSTRUCTION = (
    "You are one of several participants who each answered the user's latest question independently. "
    "Your previous answer and the other participants' latest answers (anonymous) follow. Weigh their "
    "reasoning critically: change your answer only if they show that it is wrong, not because others "
    "disagree. Then give your final answer in full, in the form the question asks for."
)
_STANCE = {
    "for": (
        "In this debate you argue FOR the claim or proposal in the question: make the strongest honest "
        "case for it, and concede only what is plainly wrong."
    ),
    "against": (
        "In this debate you argue AGAINST the claim or proposal in the question: make the strongest honest "
        "case against it, and concede only what is plainly right."
    ),
}
_MODERATOR_INSTRUCTION = (
    "Several models debated the user's latest question: each answered, read the others' answers and "
    "revised its own, some arguing an assigned side. Their final answers follow. Write the single best "
    "final answer, weighing the arguments on their merits rather than by how many made them; do not "
    "mention the debate. Answer in the form the question asks for.\n\nFinal answers:"
)
TURN_EXCERPT = 200
"""Characters of a free-text answer kept in the decision when it has no short vote key."""


@dataclass(frozen=True)
class Debater:
    """A member as the debate sees it: its latest answer, and the model that revises it (if any)."""

    member: int
    """Its index among the ensemble's members."""
    seat: str
    """E.g. `member-2`."""
    model: str | None
    """The model that answered it; None for a sub-strategy member (shown to the others, not debating)."""
    answer: str
    temperature: float | None = None
    seed: int | None = None
    """The seat's sampling seed (a repeated model's copy): kept, so that two copies shown the same answers
    are still two samples, not one answer and its cache replay."""
    stance: str = "neutral"


@dataclass
class _Turn:
    answer: str | None = None
    error: str | None = None


def shown_order(debater: Debater, others: list[Debater], seed: int, round_number: int) -> list[Debater]:
    """The others' answers in the order `debater` sees them in a round: a shuffle of its own."""
    order = list(others)
    random.Random(f"{seed}:debate:{round_number}:{debater.member}").shuffle(order)
    return order


def debate_request(request: CompletionRequest, debater: Debater, others: list[Debater]) -> CompletionRequest:
    """The original conversation with the debate's instruction, the member's own latest answer and the
    others' (labelled, never named) in its system prompt."""
    labels = string.ascii_uppercase
    listed = "\n\n".join(f"Response {labels[n]}:\n{other.answer}" for n, other in enumerate(others))
    parts = [_DEBATE_INSTRUCTION]
    if debater.stance in _STANCE:
        parts.append(_STANCE[debater.stance])
    body = f"Your previous answer:\n{debater.answer}\n\nThe other participants' answers:\n\n{listed}"
    asked = asking(request, " ".join(parts), body)
    return asked if debater.seed is None else asked.model_copy(update={"seed": debater.seed})


async def _turn(
    debater: Debater,
    debaters: list[Debater],
    spec: EnsembleSpec,
    request: CompletionRequest,
    ctx: RunContext,
    stage: str,
    round_number: int,
    result: StrategyResult,
    turns: dict[int, _Turn],
) -> None:
    others = shown_order(
        debater, [d for d in debaters if d.member != debater.member], spec.ranking_seed, round_number
    )
    step = ModelStep(model=debater.model or "", temperature=debater.temperature)
    turn_stage = f"{stage}/debate-{round_number}-{debater.member + 1}"
    asked = debate_request(request, debater, others)
    ran = await within_deadline(
        step, ctx, turn_stage, lambda child: run_model(step, asked, child, turn_stage)
    )
    turn = turns[debater.member] = _Turn()
    if ran.value is None:
        result.calls.extend(ran.calls)
        turn.error = ran.error or "deadline reached"
        return
    result.include(ran.value.result)
    if ran.value.result.ok and ran.value.result.answer:
        turn.answer = ran.value.result.answer
    else:
        turn.error = ran.value.result.error or "no answer"


def _shown(key: str | None, answer: str) -> str:
    if key is not None and len(key) <= TURN_EXCERPT:
        return key
    return answer if len(answer) <= TURN_EXCERPT else answer[: TURN_EXCERPT - 1] + "…"


def _round_record(number: int, debaters: list[Debater], keys: list[str | None]) -> DebateRound:
    turns = [
        DebateTurn(seat=d.seat, model=d.model, answer=_shown(key, d.answer))
        for d, key in zip(debaters, keys, strict=True)
    ]
    return DebateRound(number=number, turns=turns)


def _agreed(keys: list[str | None]) -> bool:
    return len(keys) >= 2 and None not in keys and len(set(keys)) == 1


async def run_debate(
    spec: EnsembleSpec,
    request: CompletionRequest,
    ctx: RunContext,
    stage: str,
    debaters: list[Debater],
    read_keys: ReadKeys,
    result: StrategyResult,
) -> tuple[dict[int, str], DebateDecision]:
    """Run the rounds (see the module): each member's final answer by member index, and the decision."""
    current = list(debaters)
    first_keys = read_keys([d.answer for d in current])
    decision = DebateDecision(
        stage=stage,
        rounds=[_round_record(0, current, first_keys)],
        max_rounds=spec.debate_rounds,
        stopped="",
        stances={d.seat: d.stance for d in current if d.stance != "neutral"},
        moderator=spec.judge,
    )
    if _agreed(first_keys):
        decision.stopped = "the members already agreed: no debate was needed"
        return {d.member: d.answer for d in current}, decision
    for number in range(1, spec.debate_rounds + 1):
        turns: dict[int, _Turn] = {}
        async with anyio.create_task_group() as group:
            for debater in current:
                if debater.model is not None:
                    group.start_soon(
                        _turn, debater, current, spec, request, ctx, stage, number, result, turns
                    )
        revised = [
            replace(d, answer=turns[d.member].answer or d.answer) if d.member in turns else d for d in current
        ]
        # Read old and new together, so that an equivalent rewording groups with what it rewords.
        keys = read_keys([d.answer for d in current] + [d.answer for d in revised])
        before, after = keys[: len(current)], keys[len(current) :]
        record = _round_record(number, revised, after)
        changed = False
        for turn, old, new, key_before, key_after in zip(
            record.turns, current, revised, before, after, strict=True
        ):
            outcome = turns.get(old.member)
            if outcome is not None and outcome.error is not None:
                turn.error = outcome.error
            elif key_before != key_after or (key_before is None and old.answer != new.answer):
                turn.changed_from = _shown(key_before, old.answer)
                changed = True
        decision.rounds.append(record)
        current = revised
        if not turns or all(t.answer is None for t in turns.values()):
            decision.stopped = f"no debater answered in round {number}"
            break
        if _agreed(after):
            decision.stopped = f"every member agrees after round {number}"
            break
        if not changed:
            decision.stopped = f"no member changed its answer in round {number}"
            break
    else:
        decision.stopped = f"the round limit ({spec.debate_rounds}) was reached"
    final_keys = read_keys([d.answer for d in debaters] + [d.answer for d in current])
    decision.changed = [
        d.seat
        for d, first, last in zip(
            current, final_keys[: len(debaters)], final_keys[len(debaters) :], strict=True
        )
        if first != last
    ]
    return {d.member: d.answer for d in current}, decision


def rounds_run(decision: DebateDecision) -> int:
    """The rounds in which members saw each other's answers (round 0 is independent)."""
    return len(decision.rounds) - 1


async def moderate(
    moderator: str,
    request: CompletionRequest,
    ctx: RunContext,
    stage: str,
    answers: list[str],
    result: StrategyResult,
) -> None:
    """The moderator writes the final answer from the debate's last answers; if it fails, the vote stands."""
    step = ModelStep(model=moderator)
    moderator_stage = f"{stage}/moderator"
    listed = "\n\n".join(f"{n}. {answer}" for n, answer in enumerate(answers, 1))
    asked = asking(request, _MODERATOR_INSTRUCTION, listed)
    ran = await within_deadline(
        step, ctx, moderator_stage, lambda child: run_model(step, asked, child, moderator_stage)
    )
    if ran.value is not None:
        result.include(ran.value.result)
        if ran.value.result.ok and ran.value.result.answer is not None:
            result.ok, result.answer, result.error = True, ran.value.result.answer, None
            return
        failure = ran.value.result.error
    else:
        result.calls.extend(ran.calls)
        failure = ran.error
    kept = "the vote over the final answers stands" if result.ok else "and the vote gave no answer"
    result.decisions.append(
        NoteDecision(stage=stage, message=f"moderator {moderator} failed ({failure}); {kept}")
    )
