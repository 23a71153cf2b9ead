from __future__ import annotations

import math

import pytest

from chorus_mcp.strategies.core.completion import CompletionRequest, TokenLogprob
from chorus_mcp.strategies.kinds.confidence import (
    SELF_REPORT_INSTRUCTION,
    confidence_value,
    logprob_confidence,
    option_margin,
    parse_self_report,
    with_self_report,
)


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
