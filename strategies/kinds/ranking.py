"""Anonymised peer ranking (`aggregation: ranking`): each member ranks the others' answers, a chair combines.

After the members answer, every member that answered as a model is shown the *other* members' answers
without names, labelled `Response A`, `Response B`, ... in an order shuffled per ranker with a seeded
shuffle (`spec.ranking_seed`), so that no answer is always shown first (position bias) and a run can be
repeated. A member never ranks its own answer. Each ranker runs as `{stage}/rank-{n}` (n: its member
number), in parallel, under the run's deadline and budget; a failed ranker is recorded, not raised.

A ranking is read from the last `FINAL RANKING:` line on: the labels in order, which must name every
response shown exactly once. Anything else is *unparsable*: counted as such in the decision, never as a
vote. Parsed rankings are combined by Borda count (first of k gets k-1 points, last 0). The answer is
the top-scored member's; with a chair (`judge`), the chair writes the final answer from the answers
ordered by score (`{stage}/chair`), and the top-ranked answer stands if the chair fails. A tie for the
top score, or no parsed ranking at all, keeps the members' vote and a note says so.
"""

from __future__ import annotations

import random
import re
import string
from dataclasses import dataclass

import anyio

from chorus_mcp.strategies.core.completion import CompletionRequest, Message
from chorus_mcp.strategies.core.result import NoteDecision, RankingDecision, RankingEntry, StrategyResult
from chorus_mcp.strategies.core.spec import EnsembleSpec, ModelStep
from chorus_mcp.strategies.engine.calling import run_model
from chorus_mcp.strategies.engine.children import within_deadline
from chorus_mcp.strategies.engine.context import RunContext

_RANK_INSTRUCTION = (
    "Below are anonymous responses to the user's latest question. Judge each on accuracy and helpfulness, "
    "briefly, then end your reply with a line 'FINAL RANKING:' followed by every response's label from "
    "best to worst, one per line (for example '1. Response B')."
)
_CHAIR_INSTRUCTION = (
    "Several models answered the user's latest question and then ranked each other's answers without "
    "knowing who wrote them. The answers follow, best-ranked first. Write the single best final answer, "
    "drawing mainly on the top-ranked ones and correcting them where they are wrong; do not mention the "
    "ranking. Answer in the form the question asks for.\n\nAnswers:"
)
_LABEL = re.compile(r"\bResponse\s+([A-Z])\b")
_FINAL = re.compile(r"FINAL\s+RANKING\s*:", re.IGNORECASE)


@dataclass(frozen=True)
class Ranked:
    """A member whose answer is ranked (and who, answering as a model, ranks the others)."""

    member: str
    """Its seat, e.g. `member-2`."""
    model: str | None
    """The model that answered it; None for a sub-strategy member (its answer is ranked, it ranks none)."""
    answer: str
    source: object = None
    """The provider model behind it (as `voting.Ballot.source`), to tell samples of one model."""


def shown_order(ranker: int, others: list[Ranked], seed: int) -> list[Ranked]:
    """The others' answers in the order `ranker` sees them: shuffled by a seed of its own."""
    order = list(others)
    random.Random(f"{seed}:{ranker}").shuffle(order)
    return order


def parse_ranking(text: str, labels: list[str]) -> tuple[list[str] | None, str | None]:
    """The labels ranked best first, or None and why the ranking cannot be read."""
    finals = list(_FINAL.finditer(text))
    if not finals:
        return None, "no 'FINAL RANKING:' line"
    named: list[str] = []
    for match in _LABEL.finditer(text[finals[-1].end() :]):
        if match.group(1) not in named:
            named.append(match.group(1))
    if sorted(named) != sorted(labels):
        return None, f"ranked {', '.join(named) or 'nothing'}; shown {', '.join(labels)}"
    return named, None


def borda(orders: list[list[str]], members: list[str]) -> dict[str, float]:
    """Member → Borda points over the parsed rankings (first of k: k-1 points), best first."""
    points = dict.fromkeys(members, 0.0)
    for order in orders:
        for place, member in enumerate(order):
            points[member] += len(order) - 1 - place
    return dict(sorted(points.items(), key=lambda item: -item[1]))


def asking(request: CompletionRequest, instruction: str, listed: str) -> CompletionRequest:
    """The original conversation with `instruction` and the `listed` answers added to its system prompt
    (the judge, the rankers and the chair are all asked this way)."""
    system = [m.content for m in request.messages if m.role == "system"]
    content = "\n\n".join([*system, f"{instruction}\n\n{listed}"])
    rest = tuple(m for m in request.messages if m.role != "system")
    return request.model_copy(update={"messages": (Message(role="system", content=content), *rest)})


async def _rank_one(
    index: int,
    ranker: Ranked,
    ranked: list[Ranked],
    spec: EnsembleSpec,
    request: CompletionRequest,
    ctx: RunContext,
    stage: str,
    result: StrategyResult,
    entries: dict[int, RankingEntry],
) -> None:
    others = shown_order(index, [r for r in ranked if r.member != ranker.member], spec.ranking_seed)
    labels = list(string.ascii_uppercase[: len(others)])
    listed = "\n\n".join(f"Response {label}:\n{r.answer}" for label, r in zip(labels, others, strict=True))
    step = ModelStep(model=ranker.model or "")
    rank_stage = f"{stage}/rank-{index + 1}"
    asked = asking(request, _RANK_INSTRUCTION, listed)
    ran = await within_deadline(
        step, ctx, rank_stage, lambda child: run_model(step, asked, child, rank_stage)
    )
    entry = RankingEntry(ranker=ranker.member, model=step.model, shown=[r.member for r in others])
    if ran.value is None:
        result.calls.extend(ran.calls)
        entry.error = ran.error or "deadline reached"
    else:
        result.include(ran.value.result)
        if not ran.value.result.ok or ran.value.result.answer is None:
            entry.error = ran.value.result.error or "no answer"
        else:
            order, why = parse_ranking(ran.value.result.answer, labels)
            if order is None:
                entry.error = f"unparsable: {why}"
            else:
                entry.order = [others[labels.index(label)].member for label in order]
    entries[index] = entry


async def rank_answers(
    spec: EnsembleSpec,
    request: CompletionRequest,
    ctx: RunContext,
    stage: str,
    ranked: list[tuple[int, Ranked]],
    result: StrategyResult,
) -> None:
    """Let every model member rank the others, combine by Borda, and set the answer (see the module)."""
    entries: dict[int, RankingEntry] = {}
    members = [r for _, r in ranked]
    async with anyio.create_task_group() as group:
        for index, ranker in ranked:
            if ranker.model is not None:
                group.start_soon(
                    _rank_one, index, ranker, members, spec, request, ctx, stage, result, entries
                )
    rankings = [entries[i] for i in sorted(entries)]
    orders = [e.order for e in rankings if e.order is not None]
    scores = borda(orders, [r.member for r in members])
    top = [m for m, points in scores.items() if orders and points == next(iter(scores.values()))]
    sources = {r.source for r in members if r.member in {e.ranker for e in rankings if e.order}}
    decision = RankingDecision(
        stage=stage,
        scores=scores,
        winner=top[0] if len(top) == 1 else None,
        rankings=rankings,
        counted=len(orders),
        unparsable=sum(1 for e in rankings if (e.error or "").startswith("unparsable")),
        one_model=len(orders) >= 2 and None not in sources and len(sources) == 1,
        chair=spec.judge,
    )
    result.decisions.append(decision)
    if decision.winner is None:
        why = "no ranking could be read" if not orders else f"the ranking tied between {', '.join(top)}"
        kept = "keeping the members' vote" if result.ok else "and the members' vote gave no answer"
        result.decisions.append(NoteDecision(stage=stage, message=f"{why}; {kept}"))
        return
    best = {r.member: r for r in members}
    result.ok, result.answer, result.error = True, best[decision.winner].answer, None
    if spec.judge:
        await _chair(spec.judge, request, ctx, stage, [best[m].answer for m in scores], result)


async def _chair(
    chair: str,
    request: CompletionRequest,
    ctx: RunContext,
    stage: str,
    answers: list[str],
    result: StrategyResult,
) -> None:
    """The chair writes the final answer from the answers, best-ranked first; if it fails, the top stands."""
    step = ModelStep(model=chair)
    chair_stage = f"{stage}/chair"
    listed = "\n\n".join(f"{n}. {answer}" for n, answer in enumerate(answers, 1))
    asked = asking(request, _CHAIR_INSTRUCTION, listed)
    ran = await within_deadline(
        step, ctx, chair_stage, lambda child: run_model(step, asked, child, chair_stage)
    )
    if ran.value is not None:
        result.include(ran.value.result)
        if ran.value.result.ok and ran.value.result.answer is not None:
            result.answer = ran.value.result.answer
            return
        failure = ran.value.result.error
    else:
        result.calls.extend(ran.calls)
        failure = ran.error
    message = f"chair {chair} failed ({failure}); answering with the top-ranked answer"
    result.decisions.append(NoteDecision(stage=stage, message=message))
