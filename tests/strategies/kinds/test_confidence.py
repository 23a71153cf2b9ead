from __future__ import annotations

import math
from decimal import Decimal

import pytest

from chorus_mcp.strategies.core.completion import CompletionRequest, TokenLogprob
from chorus_mcp.strategies.core.result import ConfidenceDecision
from chorus_mcp.strategies.core.spec import CascadeSpec
from chorus_mcp.strategies.engine.context import RunContext
from chorus_mcp.strategies.engine.runner import run_step, run_strategy
from chorus_mcp.strategies.kinds.confidence import (
    SELF_REPORT_INSTRUCTION,
    confidence_value,
    logprob_confidence,
    option_margin,
    parse_self_report,
    with_self_report,
)
from chorus_mcp.strategies.models.availability import provider_client
from chorus_mcp.strategies.models.catalog import ModelCatalog, ModelEntry
from tests.fake_openai import FakeOpenAI


@pytest.mark.parametrize(
    ("text", "answer", "confidence"),
    [
        ("B\nConfidence: 85%", "B", 0.85),
        ("B\n\nconfidence: 0.4", "B", 0.4),
        ("The answer is 42.\n**Confidence:** 90 %", "The answer is 42.", 0.9),
        ("Paris\nConfidence level: high", "Paris", 0.85),
        ("Paris\nConfidence - very low.", "Paris", 0.1),
        ("Paris\nConfidence: 7/10", "Paris", 0.7),
        ("Paris\nConfidence: 85", "Paris", 0.85),
        ("Confidence: 20%\nParis\nConfidence: 60%", "Paris", 0.6),
        ("It is Paris (confidence: 75%)", "It is Paris", 0.75),
        ("Paris\nConfidence: unsure", "Paris", None),
        ("Paris", "Paris", None),
        ("My confidence in Paris is total.", "My confidence in Paris is total.", None),
    ],
)
def test_a_self_reported_confidence_is_parsed_and_stripped_from_the_answer(
    text: str, answer: str, confidence: float | None
) -> None:
    assert parse_self_report(text) == (answer, confidence)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("100%", 1.0), ("150%", 1.0), ("1", 1.0), ("0.05", 0.05), ("500", None), ("medium", 0.6), ("low", 0.3)],
)
def test_confidence_values_are_read_as_fractions(value: str, expected: float | None) -> None:
    assert confidence_value(value) == expected


def test_logprob_confidence_is_the_geometric_mean_token_probability() -> None:
    tokens = [TokenLogprob(token="B", logprob=math.log(0.9)), TokenLogprob(token=".", logprob=math.log(0.4))]

    assert logprob_confidence(tokens) == pytest.approx(0.6)
    assert logprob_confidence([]) is None and logprob_confidence(None) is None


def test_option_margin_is_the_lead_of_the_likeliest_option_over_the_runner_up() -> None:
    assert option_margin({"A": 0.55, "B": 0.40, "C": 0.05}) == pytest.approx(0.15)
    assert option_margin({"A": 0.0, "B": 1.0}) == 1.0
    assert option_margin({"A": 0.5, "B": 0.5}) == 0.0


def test_the_self_report_instruction_is_appended_to_the_latest_user_message() -> None:
    request = CompletionRequest.of("Which is it?", system="Be brief.")

    asked = with_self_report(request)

    assert asked.messages[0].content == "Be brief."
    assert asked.messages[-1].content == "Which is it?" + SELF_REPORT_INSTRUCTION
    assert "Confidence: <0-100>%" in SELF_REPORT_INSTRUCTION


# -- what the estimators cost, through the core over real HTTP ----------------------------------------

PRICES = {"small": (1, 4), "big": (10, 40)}
"""USD per million tokens (input, output)."""
USAGE = (100, 10)
"""Tokens every scripted answer reports (prompt, completion), so each real call's cost is known here."""


def _no_logprobs_context(fake: FakeOpenAI, replies: dict[str, list[str]]) -> RunContext:
    """Real OpenAI-compatible clients over HTTP whose provider sends no logprobs, each model priced."""
    entries = {}
    for name, answers in replies.items():
        fake.script(name, answers, logprobs=[], prompt_tokens=USAGE[0], completion_tokens=USAGE[1])
        price_in, price_out = PRICES[name]
        entries[name] = ModelEntry(
            model=f"openai/{name}",
            api_base=fake.base_url,
            input_cost_per_mtok=price_in,
            output_cost_per_mtok=price_out,
        )
    catalog = ModelCatalog(entries, provider_client, allow_unlisted=False)
    return RunContext.starting_now(catalog, 30, step_runner=run_step)


def _cost_of_requests_received(fake: FakeOpenAI) -> Decimal:
    """What the provider billed: every request it received at its model's price."""
    total = Decimal(0)
    for request in fake.requests:
        price_in, price_out = PRICES[request.model]
        total += (Decimal(price_in) * USAGE[0] + Decimal(price_out) * USAGE[1]) / 1_000_000
    return total


@pytest.mark.anyio
async def test_a_logprob_tier_that_falls_back_to_self_report_is_charged_once_per_call_it_made(
    fake_openai: FakeOpenAI,
) -> None:
    ctx = _no_logprobs_context(fake_openai, {"small": ["B", "B\nConfidence: 50%"], "big": ["B"]})
    spec = CascadeSpec(tiers=["small", "big"], estimator="logprob")

    result = await run_strategy(spec, CompletionRequest.of("Which planet is largest?"), ctx)

    assert [r.model for r in fake_openai.requests] == ["small", "small", "big"]
    assert [c.stage for c in result.calls] == [
        "cascade/tier-1",
        "cascade/tier-1/self_report",
        "cascade/tier-2",
    ]
    assert result.totals.calls == 3
    assert result.totals.cost_usd == _cost_of_requests_received(fake_openai) == ctx.budget.spent_usd


@pytest.mark.anyio
async def test_the_last_tier_without_logprobs_is_asked_once_not_again_for_a_confidence_nobody_acts_on(
    fake_openai: FakeOpenAI,
) -> None:
    ctx = _no_logprobs_context(fake_openai, {"small": ["C", "C\nConfidence: 40%"], "big": ["B"]})
    spec = CascadeSpec(tiers=["small", "big"], estimator="logprob")

    result = await run_strategy(spec, CompletionRequest.of("Which planet is largest?"), ctx)

    assert result.ok and result.answer == "B"
    assert [r.model for r in fake_openai.requests_for("big")] == ["big"]
    assert fake_openai.requests_for("big")[0].body.get("logprobs") is True
    last = [d for d in result.decisions if isinstance(d, ConfidenceDecision)][-1]
    assert (last.model, last.estimator, last.confidence, last.escalate) == ("big", "logprob", None, False)
    assert last.reason == (
        "no logprobs from big; last tier: accepted without asking again for a self_report; "
        "last tier, accepted"
    )
    assert result.totals.cost_usd == _cost_of_requests_received(fake_openai)
