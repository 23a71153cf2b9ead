"""The `cascade` strategy: tiers from cheap to strong, stopping at the first answer confident enough.

Each tier runs as `{stage}/tier-{n}` (1-based) and is scored by the spec's estimator
(`strategies.kinds.confidence`); the cascade escalates while the confidence is below the threshold (an
unreadable confidence counts as below). The last tier is accepted whatever its confidence. A tier
that fails entirely escalates with its reason. Every tier tried leaves a `ConfidenceDecision`.

Outcomes:

- a tier accepted: `ok=True`, its answer;
- the last tier failed after an earlier one answered below the threshold: `ok=True` with the latest
  tier answer there is (stronger tiers come later), and a note saying no tier was confident enough;
- the deadline reached after a tier answered: that (latest) answer, `partial=True`;
- no tier answered: `ok=False`, the error naming each tier and its reason.
"""

from __future__ import annotations

from chorus_mcp.strategies.core.completion import CompletionRequest
from chorus_mcp.strategies.core.result import ConfidenceDecision, NoteDecision, StrategyResult
from chorus_mcp.strategies.core.spec import CascadeSpec, Step
from chorus_mcp.strategies.engine.children import Guarded, step_label, within_deadline
from chorus_mcp.strategies.engine.context import RunContext
from chorus_mcp.strategies.kinds.confidence import TierAnswer, estimate, is_nested


async def _try_tier(
    tier: Step, request: CompletionRequest, ctx: RunContext, stage: str, spec: CascadeSpec, last: bool
) -> Guarded[TierAnswer]:
    async def work(child: RunContext) -> TierAnswer:
        return await estimate(tier, request, child, stage, spec, last=last)

    return await within_deadline(tier, ctx, stage, work, nested=is_nested(tier, spec, last=last))


def _verdict(confidence: float | None, threshold: float, last: bool) -> tuple[bool, str]:
    """(accepted, reason) for a tier that answered."""
    if last:
        shown = "" if confidence is None else f" (confidence {confidence:.2f})"
        return True, f"last tier, accepted{shown}"
    if confidence is None:
        return False, "no confidence could be read, escalating"
    if confidence >= threshold:
        return True, f"confidence {confidence:.2f} >= {threshold:.2f}, accepted"
    return False, f"confidence {confidence:.2f} < {threshold:.2f}, escalating"


def _failure_reason(error: str | None, last: bool, cut_off: bool) -> tuple[str, bool]:
    """(reason, escalate) for a tier that gave no answer."""
    if cut_off:
        return "deadline reached before the tier answered", False
    if last:
        return f"last tier failed: {error}", False
    return f"tier failed: {error}, escalating", True


async def run_cascade(
    spec: CascadeSpec, request: CompletionRequest, ctx: RunContext, stage: str
) -> StrategyResult:
    """Try the tiers in order until one is confident enough; failures are reported, never raised."""
    result = StrategyResult(strategy="cascade", ok=False)
    latest: tuple[int, TierAnswer] | None = None  # the latest tier that answered, with its number
    accepted = False
    failures: list[str] = []
    cut_at: int | None = None  # the tier the deadline cut off (or kept from starting)

    for number, tier in enumerate(spec.tiers, 1):
        tier_stage = f"{stage}/tier-{number}"
        last = number == len(spec.tiers)
        name = step_label(tier)
        if ctx.time_left() <= 0:
            failures.append(f"tier-{number} ({name}): not started, deadline reached")
            cut_at = number
            break
        tried = await _try_tier(tier, request, ctx, tier_stage, spec, last)
        answer = tried.value
        if answer is None:
            result.calls.extend(tried.calls)
        else:
            result.include(answer.result)
        note = f"{answer.note}; " if answer is not None and answer.note else ""
        if answer is None or not answer.result.ok or answer.result.answer is None:
            error = tried.error if answer is None else answer.result.error
            model = name if answer is None else answer.model
            estimator = spec.estimator if answer is None else answer.estimator
            failures.append(f"tier-{number} ({model}): {error}")
            reason, escalate = _failure_reason(error, last, tried.cut_off)
            result.decisions.append(
                ConfidenceDecision(
                    stage=tier_stage,
                    model=model,
                    estimator=estimator,
                    confidence=None,
                    threshold=spec.threshold,
                    escalate=escalate,
                    reason=note + reason,
                )
            )
            if tried.cut_off:
                cut_at = number
                break
            continue

        latest = (number, answer)
        accepted, reason = _verdict(answer.confidence, spec.threshold, last)
        result.decisions.append(
            ConfidenceDecision(
                stage=tier_stage,
                model=answer.model,
                estimator=answer.estimator,
                confidence=answer.confidence,
                threshold=spec.threshold,
                escalate=not accepted,
                reason=note + reason,
            )
        )
        if accepted:
            break

    return _finish(result, stage, latest, accepted, failures, cut_at)


def _finish(
    result: StrategyResult,
    stage: str,
    latest: tuple[int, TierAnswer] | None,
    accepted: bool,
    failures: list[str],
    cut_at: int | None,
) -> StrategyResult:
    if latest is None:
        result.error = "no tier answered: " + "; ".join(failures)
        if cut_at is not None:
            result.partial, result.partial_reason = True, f"deadline reached at tier-{cut_at}"
        return result
    number, answer = latest
    result.ok, result.answer = True, answer.result.answer
    confidence = "unknown" if answer.confidence is None else f"{answer.confidence:.2f}"
    if cut_at is not None:
        result.partial = True
        result.partial_reason = (
            f"deadline reached at tier-{cut_at}; the answer is tier-{number}'s (confidence {confidence})"
        )
    elif not accepted:
        message = f"no tier was confident enough; the answer is tier-{number}'s (confidence {confidence})"
        result.decisions.append(NoteDecision(stage=stage, message=message))
    if answer.result.partial and not result.partial:
        result.partial = True
        result.partial_reason = f"tier-{number}: {answer.result.partial_reason}"
    return result
