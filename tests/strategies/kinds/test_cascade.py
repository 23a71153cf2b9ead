from __future__ import annotations

import math
from decimal import Decimal

import pytest

from chorus_mcp.strategies.core.completion import CompletionRequest
from chorus_mcp.strategies.core.errors import AuthenticationFailed, BadRequest
from chorus_mcp.strategies.core.result import ConfidenceDecision, NoteDecision, StrategyResult, VoteDecision
from chorus_mcp.strategies.core.spec import CascadeSpec, EnsembleSpec
from chorus_mcp.strategies.engine.runner import run_strategy
from chorus_mcp.strategies.engine.testing import context_of
from chorus_mcp.strategies.kinds.cascade import run_cascade
from chorus_mcp.strategies.models.testing import ScriptedClient

pytestmark = pytest.mark.anyio

QUESTION = CompletionRequest.of("Which planet is largest?\nA) Mars\nB) Jupiter\nC) Venus")


def confidences(result: StrategyResult) -> list[ConfidenceDecision]:
    return [d for d in result.decisions if isinstance(d, ConfidenceDecision)]


def reasons(result: StrategyResult) -> list[str]:
    return [d.reason for d in confidences(result)]


def lp(*probabilities: float) -> list[float]:
    return [math.log(p) for p in probabilities]


async def test_self_report_above_threshold_is_accepted_without_asking_the_next_tier() -> None:
    small = ScriptedClient("small", "B\nConfidence: 90%")
    big = ScriptedClient("big", "B\nConfidence: 99%")

    result = await run_cascade(
        CascadeSpec(tiers=["small", "big"]), QUESTION, context_of(small, big), "cascade"
    )

    assert result.ok and result.answer == "B" and not result.partial
    assert big.requests == []
    assert "Confidence: <0-100>%" in small.requests[0].messages[-1].content
    [decision] = confidences(result)
    assert (
        decision.model == "small"
        and decision.estimator == "self_report"
        and decision.stage == "cascade/tier-1"
    )
    assert (decision.confidence, decision.threshold, decision.escalate) == (0.9, 0.7, False)
    assert decision.reason == "confidence 0.90 >= 0.70, accepted"
    assert result.calls[0].answer == "B" and result.calls[0].text == "B\nConfidence: 90%"


async def test_self_report_below_threshold_escalates_to_the_next_tier() -> None:
    small = ScriptedClient("small", "C\nConfidence: 55%")
    big = ScriptedClient("big", "B\nConfidence: 95%")

    result = await run_cascade(
        CascadeSpec(tiers=["small", "big"]), QUESTION, context_of(small, big), "cascade"
    )

    assert result.answer == "B"
    assert reasons(result) == ["confidence 0.55 < 0.70, escalating", "last tier, accepted (confidence 0.95)"]
    assert [d.escalate for d in confidences(result)] == [True, False]
    assert [c.stage for c in result.calls] == ["cascade/tier-1", "cascade/tier-2"]


async def test_an_unreadable_self_report_escalates() -> None:
    small = ScriptedClient("small", "B, I think.")
    middle = ScriptedClient("middle", "B\nConfidence: 80%")
    big = ScriptedClient("big", "B")

    spec = CascadeSpec(tiers=["small", "middle", "big"])
    result = await run_cascade(spec, QUESTION, context_of(small, middle, big), "cascade")

    assert result.answer == "B" and big.requests == []
    assert confidences(result)[0].confidence is None
    assert reasons(result) == ["no confidence could be read, escalating", "confidence 0.80 >= 0.70, accepted"]


async def test_logprob_confidence_accepts_a_sure_answer_and_escalates_an_unsure_one() -> None:
    sure = ScriptedClient("sure", "B", logprobs=lp(0.95, 0.9))
    unsure = ScriptedClient("unsure", "C", logprobs=lp(0.5, 0.4))
    big = ScriptedClient("big", "B", logprobs=lp(0.99))
    spec = CascadeSpec(tiers=["unsure", "sure", "big"], estimator="logprob")

    result = await run_cascade(spec, QUESTION, context_of(sure, unsure, big), "cascade")

    assert result.answer == "B" and big.requests == []
    assert unsure.requests[0].logprobs and "Confidence" not in unsure.requests[0].messages[-1].content
    first, second = confidences(result)
    assert first.estimator == second.estimator == "logprob"
    assert first.confidence == pytest.approx(math.sqrt(0.2)) and first.escalate
    assert second.confidence == pytest.approx(math.sqrt(0.95 * 0.9)) and not second.escalate


async def test_without_logprobs_the_logprob_estimator_falls_back_to_self_report_and_says_so() -> None:
    small = ScriptedClient("small", ["B", "B\nConfidence: 85%"])  # no logprobs from this provider
    big = ScriptedClient("big", "B")
    spec = CascadeSpec(tiers=["small", "big"], estimator="logprob")

    result = await run_cascade(spec, QUESTION, context_of(small, big), "cascade")

    assert result.answer == "B" and big.requests == []
    [decision] = confidences(result)
    assert decision.estimator == "self_report" and decision.confidence == 0.85
    assert (
        decision.reason
        == "no logprobs from small; fell back to self_report; confidence 0.85 >= 0.70, accepted"
    )
    assert [c.stage for c in result.calls] == ["cascade/tier-1", "cascade/tier-1/self_report"]
    assert "Confidence" in small.requests[1].messages[-1].content


async def test_agreement_samples_a_model_tier_in_parallel_and_escalates_on_disagreement() -> None:
    small = ScriptedClient("small", ["B", "C", "B"])
    big = ScriptedClient("big", ["B", "B", "B"])
    spec = CascadeSpec(tiers=["small", "big"], estimator="agreement", samples=3, threshold=0.7)

    result = await run_cascade(spec, QUESTION, context_of(small, big), "cascade")

    assert result.answer == "B"
    assert len(small.requests) == 3 and all(r.temperature == 0.7 for r in small.requests)
    first, last = confidences(result)
    assert first.confidence == pytest.approx(0.6667) and first.reason == "confidence 0.67 < 0.70, escalating"
    # The last tier is accepted anyway: asked once, never sampled (that would triple the strong model's cost).
    assert last.confidence is None and last.reason.startswith("last tier: asked once")
    assert len(big.requests) == 1
    assert result.calls[0].stage == "cascade/tier-1/sample-1"
    votes = [d for d in result.decisions if isinstance(d, VoteDecision)]
    assert [v.counts for v in votes] == [{"B": 2.0, "C": 1.0}]


async def test_agreement_accepts_when_every_sample_agrees() -> None:
    small = ScriptedClient("small", "42")
    big = ScriptedClient("big", "42")
    spec = CascadeSpec(tiers=["small", "big"], estimator="agreement", samples=4)

    result = await run_cascade(spec, CompletionRequest.of("6*7?"), context_of(small, big), "cascade")

    assert result.answer == "42" and len(small.requests) == 4 and big.requests == []
    assert reasons(result) == ["confidence 1.00 >= 0.70, accepted"]


async def test_an_ensemble_tier_uses_its_members_agreement() -> None:
    clients = [ScriptedClient("a", "B"), ScriptedClient("b", "B"), ScriptedClient("c", "C")]
    big = ScriptedClient("big", "B")
    tier = EnsembleSpec(members=["a", "b", "c"], early_stop=False)
    spec = CascadeSpec(tiers=[tier, "big"], threshold=0.6)

    result = await run_cascade(spec, QUESTION, context_of(*clients, big), "cascade")

    assert result.answer == "B" and big.requests == []
    [decision] = confidences(result)
    assert decision.estimator == "agreement" and decision.model == "ensemble"
    assert decision.confidence == pytest.approx(0.6667)
    assert decision.reason.startswith("an ensemble tier's confidence is its members' agreement")


async def test_a_failing_tier_escalates_with_its_reason() -> None:
    small = ScriptedClient("small", AuthenticationFailed("small", "HTTP 401: invalid key"))
    big = ScriptedClient("big", "B\nConfidence: 20%")

    result = await run_cascade(
        CascadeSpec(tiers=["small", "big"]), QUESTION, context_of(small, big), "cascade"
    )

    assert result.ok and result.answer == "B"
    first, last = confidences(result)
    assert first.escalate and first.confidence is None
    assert (
        first.reason.startswith("tier failed: ")
        and "401" in first.reason
        and first.reason.endswith("escalating")
    )
    assert last.reason == "last tier, accepted (confidence 0.20)"


async def test_the_last_tier_is_accepted_even_without_a_confidence() -> None:
    small = ScriptedClient("small", "C\nConfidence: 10%")
    big = ScriptedClient("big", "B")

    result = await run_cascade(
        CascadeSpec(tiers=["small", "big"]), QUESTION, context_of(small, big), "cascade"
    )

    assert result.ok and result.answer == "B" and reasons(result)[-1] == "last tier, accepted"


async def test_when_no_tier_answers_the_error_names_each_tier_and_reason() -> None:
    small = ScriptedClient("small", AuthenticationFailed("small", "HTTP 401: invalid key"))
    big = ScriptedClient("big", BadRequest("big", "HTTP 400: too long"))

    result = await run_cascade(
        CascadeSpec(tiers=["small", "big"]), QUESTION, context_of(small, big), "cascade"
    )

    assert not result.ok and result.answer is None and result.error is not None
    assert result.error.startswith("no tier answered: tier-1 (small)")
    assert "401" in result.error and "tier-2 (big)" in result.error and "400" in result.error
    assert reasons(result)[-1].startswith("last tier failed: ")


async def test_when_the_last_tier_fails_the_latest_answer_is_kept_and_a_note_says_it_was_not_confident() -> (
    None
):
    small = ScriptedClient("small", "C\nConfidence: 40%")
    big = ScriptedClient("big", BadRequest("big", "HTTP 400: too long"))

    result = await run_cascade(
        CascadeSpec(tiers=["small", "big"]), QUESTION, context_of(small, big), "cascade"
    )

    assert result.ok and result.answer == "C" and not result.partial
    notes = [d.message for d in result.decisions if isinstance(d, NoteDecision)]
    assert notes == ["no tier was confident enough; the answer is tier-1's (confidence 0.40)"]


async def test_at_the_deadline_the_answer_of_the_tier_that_answered_is_returned_as_partial() -> None:
    small = ScriptedClient("small", "C\nConfidence: 40%")
    big = ScriptedClient("big", "B\nConfidence: 99%", delay_s=5)
    ctx = context_of(small, big, deadline_s=0.2)

    result = await run_strategy(CascadeSpec(tiers=["small", "big"]), QUESTION, ctx)

    assert result.ok and result.answer == "C" and result.partial
    assert result.partial_reason == "deadline reached at tier-2; the answer is tier-1's (confidence 0.40)"
    assert big.cancelled == 1
    cut = result.calls[-1]
    assert (cut.model, cut.status, cut.error, cut.cost_usd) == ("big", "cancelled", "deadline reached", None)
    assert reasons(result)[-1] == "deadline reached before the tier answered"
    assert result.totals.cost_usd == Decimal("0.001")


async def test_a_sub_strategy_tier_gets_to_return_its_own_partial_answer_before_the_deadline() -> None:
    clients = [ScriptedClient("a", "B"), ScriptedClient("b", "B"), ScriptedClient("slow", "C", delay_s=5)]
    big = ScriptedClient("big", "B")
    tier = EnsembleSpec(members=["a", "b", "slow"], early_stop=False)
    ctx = context_of(*clients, big, deadline_s=0.3)

    result = await run_cascade(CascadeSpec(tiers=[tier, "big"]), QUESTION, ctx, "cascade")

    # The ensemble's deadline comes a little before the cascade's, so its 2-of-3 vote is not lost.
    assert result.ok and result.answer == "B" and result.partial
    assert confidences(result)[0].confidence == 1.0 and big.requests == []
    assert result.partial_reason == "tier-1: deadline reached: 2 of 3 members answered"


async def test_an_ensemble_tier_measures_agreement_over_every_member_not_just_the_early_majority() -> None:
    a, b = ScriptedClient("a", "B"), ScriptedClient("b", "B")
    c = ScriptedClient("c", "C", delay_s=0.05)
    big = ScriptedClient("big", "B")
    tier = {"kind": "ensemble", "members": ["a", "b", "c"], "extract": "choice", "early_stop": True}
    spec = CascadeSpec.model_validate({"tiers": [tier, "big"], "threshold": 0.9})

    result = await run_cascade(spec, QUESTION, context_of(a, b, c, big), "cascade")

    first = confidences(result)[0]
    assert first.confidence == pytest.approx(0.6667) and first.escalate
    assert len(c.requests) == 1 and c.cancelled == 0
