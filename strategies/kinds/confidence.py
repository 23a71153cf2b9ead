"""Confidence estimators for the cascade: run one tier and say how sure its answer is (0-1, or None).

- `self_report` — the tier is asked to end with `Confidence: <0-100>%`; the line is parsed (percent,
  0-1 fraction, `8/10`, or words such as `high`) and stripped from the answer. No readable confidence
  → None, which the cascade treats as "not confident enough".
- `logprob` — from the answer's token log-probabilities (`logprob_confidence`), or, when the completion
  carries a multiple-choice answer's per-option probabilities (`choice_probs`), the margin between the
  two likeliest options (`option_margin`). A provider that
  returns none (or a tier that is not a single model) falls back to `self_report`: the tier is asked
  again with the instruction, and the decision says so. That second call costs money, but an estimate
  that silently became "unknown, escalate" would cost the stronger tier's price every time. The last
  tier is not asked again: it is accepted whatever its confidence, so a second call to the strongest
  model would buy a figure nobody acts on (its answer stands, its confidence reads unknown).
- `agreement` — a single-model (or sub-strategy) tier is sampled `samples` times in parallel (at
  temperature 0.7 when the step sets none, or identical samples would agree trivially); confidence is
  the share of samples agreeing with the most common answer, read with `strategies.core.extract`.

An ensemble tier's confidence is always its members' agreement, whatever the estimator: its members
already are independent samples, and several self-reports or logprob streams do not combine into one
meaningful number.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from chorus_mcp.strategies.core.completion import CompletionRequest, TokenLogprob
from chorus_mcp.strategies.core.result import StrategyResult
from chorus_mcp.strategies.core.spec import AnswerFormat, CascadeSpec, EnsembleSpec, ModelStep, Step
from chorus_mcp.strategies.core.templates import latest_user_text, with_prompt
from chorus_mcp.strategies.engine.calling import run_model
from chorus_mcp.strategies.engine.children import mark_answer, step_label
from chorus_mcp.strategies.engine.context import RunContext
from chorus_mcp.strategies.kinds.ensemble import ensemble_vote

SELF_REPORT_INSTRUCTION = (
    "\n\nAfter your answer, on a final line of its own, state how confident you are that your answer is "
    "correct, in the form 'Confidence: <0-100>%'."
)
SAMPLING_TEMPERATURE = 0.7
"""Used for `agreement` samples of a model step that sets no temperature."""

_WORDS = (
    ("very high", 0.95),
    ("very low", 0.1),
    ("high", 0.85),
    ("medium", 0.6),
    ("moderate", 0.6),
    ("low", 0.3),
)
"""Confidence words mapped to numbers; longer phrases first so "very low" is not read as "low"."""
_LABEL = r"confidence(?:[ \t]+(?:level|score))?"
_LINE_RE = re.compile(
    rf"^[ \t>*_#\-(\[]*{_LABEL}[ \t*_]*[:=\-–—][ \t*_]*(?P<value>[^\n]*?)[ \t*_.)\]]*$",
    re.IGNORECASE | re.MULTILINE,
)
# "... so the answer is B (confidence: 80%)" — a confidence stated at the very end of the last line.
_INLINE_RE = re.compile(
    rf"[(\[]?[ \t]*\b{_LABEL}[ \t]*[:=][ \t]*(?P<value>[^\n()\[\]]*?)[ \t]*[)\]]?[\s.]*\Z", re.IGNORECASE
)


@dataclass
class TierAnswer:
    """What one tier gave: its result (answer stripped of any confidence line) and how sure it is."""

    result: StrategyResult
    confidence: float | None
    estimator: str
    """The estimator actually used (`self_report` when `logprob` had to fall back)."""
    model: str
    """Who answered: the model (the fallback that did, if one had to), or the sub-strategy's name."""
    note: str | None = None
    """Why the estimator differs from the one asked for, if it does."""


def confidence_value(text: str) -> float | None:
    """`"85%"` → 0.85, `"0.85"` → 0.85, `"85"` → 0.85, `"8/10"` → 0.8, `"high"` → 0.85; else None."""
    text = text.strip().lower()
    if found := re.match(r"(\d+(?:\.\d+)?)\s*%", text):
        return min(1.0, float(found.group(1)) / 100)
    if found := re.match(r"(\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)", text):
        total = float(found.group(2))
        return min(1.0, float(found.group(1)) / total) if total > 0 else None
    if found := re.match(r"\d*\.\d+|\d+", text):
        number = float(found.group(0))
        # A bare number is a fraction up to 1 and a percentage above it ("Confidence: 85").
        return number if number <= 1 else number / 100 if number <= 100 else None
    return next((value for word, value in _WORDS if text.startswith(word)), None)


def parse_self_report(text: str) -> tuple[str, float | None]:
    """The answer without its confidence line(s), and the stated confidence (None when unreadable)."""
    lines = list(_LINE_RE.finditer(text))
    if lines:
        stripped = _LINE_RE.sub("", text).strip()
        return stripped or text.strip(), confidence_value(lines[-1].group("value"))
    inline = _INLINE_RE.search(text)
    if inline:
        stripped = text[: inline.start()].rstrip()
        return stripped or text.strip(), confidence_value(inline.group("value"))
    return text.strip(), None


def logprob_confidence(logprobs: list[TokenLogprob] | None) -> float | None:
    """exp(mean token log-probability): the geometric mean of the answer's token probabilities.

    Why this formula: the joint probability exp(sum) shrinks with every token, so a long correct
    answer would look less sure than a short wrong one; the mean normalises for length. The first
    token alone is often formatting ("The", "**") with probability ≈ 1 and says nothing about the
    answer. The geometric mean still falls sharply when any token was a coin toss.
    """
    if not logprobs:
        return None
    mean = sum(t.logprob for t in logprobs) / len(logprobs)
    return max(0.0, min(1.0, math.exp(mean)))


def option_margin(probs: dict[str, float]) -> float:
    """A multiple-choice answer's confidence when the options' probabilities are known
    (`Completion.choice_probs`): the likeliest option's share minus the runner-up's. The chosen token's
    own probability cannot tell 0.4 against 0.39 from 0.4 against mass spread over non-answers."""
    ranked = sorted(probs.values(), reverse=True)
    return max(0.0, min(1.0, ranked[0] - (ranked[1] if len(ranked) > 1 else 0.0)))


def with_self_report(request: CompletionRequest) -> CompletionRequest:
    """The request with the confidence instruction appended to the latest user message."""
    return with_prompt(request, latest_user_text(request) + SELF_REPORT_INSTRUCTION)


def _answered_by(tier: Step, result: StrategyResult) -> str:
    if isinstance(tier, ModelStep):
        return next((c.model for c in reversed(result.calls) if c.status == "ok"), tier.model)
    return step_label(tier)


async def _self_report(tier: Step, request: CompletionRequest, ctx: RunContext, stage: str) -> TierAnswer:
    result = await ctx.run_child(tier, with_self_report(request), stage)
    confidence = None
    if result.ok and result.answer is not None:
        answer, confidence = parse_self_report(result.answer)
        mark_answer(result, answer)
        result.answer = answer
    return TierAnswer(result, confidence, "self_report", _answered_by(tier, result))


async def _logprob(
    tier: Step, request: CompletionRequest, ctx: RunContext, stage: str, *, last: bool = False
) -> TierAnswer:
    if not isinstance(tier, ModelStep):
        answer = await _self_report(tier, request, ctx, stage)
        answer.note = "logprob needs a single-model tier; fell back to self_report"
        return answer
    outcome = await run_model(tier, request.model_copy(update={"logprobs": True}), ctx, stage)
    model = _answered_by(tier, outcome.result)
    if outcome.completion is None:
        return TierAnswer(outcome.result, None, "logprob", model)
    completion = outcome.completion
    if completion.choice_probs:
        confidence: float | None = option_margin(completion.choice_probs)
    else:
        confidence = logprob_confidence(completion.logprobs)
    if confidence is not None:
        return TierAnswer(outcome.result, confidence, "logprob", model)
    if last:
        note = f"no logprobs from {model}; last tier: accepted without asking again for a self_report"
        return TierAnswer(outcome.result, None, "logprob", model, note=note)
    fallback = await _self_report(tier, request, ctx, f"{stage}/self_report")
    fallback.result.calls[:0] = outcome.result.calls  # the first call happened (and cost) too
    fallback.result.decisions[:0] = outcome.result.decisions
    fallback.note = f"no logprobs from {model}; fell back to self_report"
    return fallback


def _sampled(tier: Step, samples: int, extract: AnswerFormat) -> EnsembleSpec:
    """An ensemble of `samples` copies of the tier, for the agreement estimator."""
    if isinstance(tier, ModelStep) and tier.temperature is None:
        tier = tier.model_copy(update={"temperature": SAMPLING_TEMPERATURE})
    # Every sample must be heard: stopping early would count only the agreeing ones.
    return EnsembleSpec(members=[tier] * samples, extract=extract, early_stop=False)


async def _agreement(
    tier: Step, request: CompletionRequest, ctx: RunContext, stage: str, spec: CascadeSpec
) -> TierAnswer:
    # CascadeSpec has no field naming the JSON field to compare, so JSON answers compare as text.
    extract: AnswerFormat = "text" if spec.extract == "json_field" else spec.extract
    if isinstance(tier, EnsembleSpec):
        # Agreement is only honest over every member: an early stop would count just the agreeing ones.
        outcome = await ensemble_vote(tier.model_copy(update={"early_stop": False}), request, ctx, stage)
    else:
        sampled = _sampled(tier, spec.samples, extract)
        outcome = await ensemble_vote(sampled, request, ctx, stage, label="sample")
    confidence = outcome.vote.agreement if outcome.vote is not None and outcome.result.ok else None
    return TierAnswer(outcome.result, confidence, "agreement", _answered_by(tier, outcome.result))


async def estimate(
    tier: Step,
    request: CompletionRequest,
    ctx: RunContext,
    stage: str,
    spec: CascadeSpec,
    *,
    last: bool = False,
) -> TierAnswer:
    """Run one tier with the cascade's estimator and return its answer and confidence.

    The last tier is accepted whatever its confidence, so it is never sampled several times for
    agreement, nor asked again for a self-report when it sent no logprobs: either would multiply the
    cost of the most expensive model for a figure nobody acts on.
    """
    if last and spec.estimator == "agreement" and not isinstance(tier, EnsembleSpec):
        result = await ctx.run_child(tier, request, stage)
        note = "last tier: asked once, not sampled for agreement"
        return TierAnswer(result, None, "agreement", _answered_by(tier, result), note=note)
    if isinstance(tier, EnsembleSpec) or spec.estimator == "agreement":
        answer = await _agreement(tier, request, ctx, stage, spec)
        if spec.estimator != "agreement":
            answer.note = f"an ensemble tier's confidence is its members' agreement, not {spec.estimator}"
        return answer
    if spec.estimator == "logprob":
        return await _logprob(tier, request, ctx, stage, last=last)
    return await _self_report(tier, request, ctx, stage)


def is_nested(tier: Step, spec: CascadeSpec, *, last: bool = False) -> bool:
    """Whether running the tier is itself a strategy (which should end a little before the deadline)."""
    return not isinstance(tier, ModelStep) or (spec.estimator == "agreement" and not last)
