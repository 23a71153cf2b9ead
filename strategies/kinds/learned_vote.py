"""The `learned_vote` strategy: a tier answers, a trained correctness predictor judges its answers.

1. The predictor's tier runs as an ensemble (`{stage}/tier`, every member to the end: the predictor
   reads who agrees with whom, so no member is cancelled early);
2. each member's answer is read as the ensemble reads answers, and every distinct answer gets the
   predictor's P(right) (`strategies.learned.predictor`, answer head);
3. the likeliest answer is taken when its P reaches `threshold` (always, without `escalate`);
   otherwise `escalate` runs (`{stage}/escalate`) and its answer is the result.

A `ConfidenceDecision` (estimator `learned`) records the P of the best answer, the threshold and
every candidate's P. A tier member that fails counts as having given no answer; when no member
answers, the strategy escalates (or fails without `escalate`). Scoring is local CPU work.
"""

from __future__ import annotations

from chorus_mcp.strategies.core.completion import CompletionRequest
from chorus_mcp.strategies.core.errors import UserInputError
from chorus_mcp.strategies.core.result import ConfidenceDecision, StrategyResult
from chorus_mcp.strategies.core.spec import EnsembleSpec, LearnedVoteSpec, ModelStep
from chorus_mcp.strategies.engine.context import RunContext
from chorus_mcp.strategies.learned.predictor import Predictor, load_predictor, read_answers
from chorus_mcp.strategies.models.replay import original_prompt

STRATEGY = "learned_vote"


def _member_texts(
    result: StrategyResult, predictor: Predictor, aliases: dict[str, str]
) -> dict[str, str | None]:
    """Each tier model's answer text from the tier's calls (the last successful call of its alias)."""
    by_alias = {alias: name for name, alias in aliases.items()}
    texts: dict[str, str | None] = dict.fromkeys(predictor.tier)
    for call in result.calls:
        name = by_alias.get(call.model)
        if name is not None and call.status == "ok":
            texts[name] = call.text if call.text is not None else call.answer
    return texts


async def run_learned_vote(
    spec: LearnedVoteSpec, request: CompletionRequest, ctx: RunContext, stage: str
) -> StrategyResult:
    try:
        predictor = load_predictor(spec.predictor)
        prompt = original_prompt(request)
    except UserInputError as exc:
        return StrategyResult(strategy=STRATEGY, answer=None, ok=False, error=exc.message)
    if not predictor.tier:
        return StrategyResult(
            strategy=STRATEGY,
            ok=False,
            error=f"predictor {spec.predictor!r} has no tier (train it with --tier) and cannot judge answers",
        )
    aliases = {name: spec.models.get(name, name) for name in predictor.tier}
    tier = EnsembleSpec(members=[ModelStep(model=a) for a in aliases.values()], early_stop=False)
    result = StrategyResult(strategy=STRATEGY, ok=False)
    answered = await ctx.run_child(tier, request, f"{stage}/tier")
    result.include(answered)
    texts = _member_texts(answered, predictor, aliases)
    keys = read_answers(prompt, texts)
    # Synchronous on purpose, as in learned_route: scoring takes well under a millisecond.
    try:
        scores = predictor.score_answers(prompt, keys)
    except UserInputError as exc:
        result.error = exc.message
        return result
    best = max(sorted(scores), key=scores.__getitem__) if scores else None  # ties: the first key
    probability = scores[best] if best is not None else None
    accepted = best is not None and (spec.escalate is None or (probability or 0.0) >= spec.threshold)
    shown = ", ".join(f"{key} {p:.2f}" for key, p in sorted(scores.items(), key=lambda i: -i[1]))
    if best is None:
        reason = "no tier member gave a readable answer"
    elif spec.escalate is None:
        reason = f"likeliest answer taken (no escalation step); answers: {shown}"
    elif accepted:
        reason = f"P(right) {probability:.2f} >= {spec.threshold:.2f}, accepted; answers: {shown}"
    else:
        reason = f"P(right) {probability:.2f} < {spec.threshold:.2f}, escalating; answers: {shown}"
    result.decisions.append(
        ConfidenceDecision(
            stage=f"{stage}/tier",
            model="+".join(aliases.values()),
            estimator="learned",
            confidence=probability,
            threshold=spec.threshold,
            escalate=not accepted and spec.escalate is not None,
            reason=reason,
        )
    )
    if accepted and best is not None:
        giver = next(name for name in predictor.tier if keys.get(name) == best)
        result.ok, result.answer = True, texts[giver]
        return result
    if spec.escalate is None:
        result.error = "no tier member answered: " + (answered.error or "no readable answer")
        return result
    escalated = await ctx.run_child(spec.escalate, request, f"{stage}/escalate")
    result.include(escalated)
    result.ok, result.answer = escalated.ok, escalated.answer
    result.partial, result.partial_reason = escalated.partial, escalated.partial_reason
    result.error = escalated.error
    return result
