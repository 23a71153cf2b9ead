"""Per-option probabilities read from an answer's token alternatives."""

from __future__ import annotations

import math

import pytest

from chorus_mcp.strategies.core.completion import TokenLogprob
from chorus_mcp.strategies.evaluation.datasets import options_in, unlist
from chorus_mcp.strategies.evaluation.options import choice_probs, option_of


def _token(text: str, top: dict[str, float] | None) -> TokenLogprob:
    return TokenLogprob(token=text, logprob=(top or {}).get(text, -1.0), top=top)


def test_spaced_and_bracketed_variants_count_toward_their_option() -> None:
    read = [option_of(t, "AB") for t in ("A", " B", "(A", "**B", "The", "C")]
    assert read == ["A", "B", "A", "B", None, None]
    top = {"A": math.log(0.3), " A": math.log(0.1), "B": math.log(0.2), "The": math.log(0.4)}
    probs = choice_probs([_token("A", top)], ("A", "B"))
    assert probs == pytest.approx({"A": 0.4 / 0.6, "B": 0.2 / 0.6}, abs=1e-6)


def test_options_missing_from_the_alternatives_get_nothing() -> None:
    probs = choice_probs([_token("B", {"B": -0.1, "C": -3.0})], ("A", "B", "C", "D"))
    assert probs is not None and probs["A"] == probs["D"] == 0 and probs["B"] > probs["C"] > 0


def test_the_answers_position_is_its_first_token_that_reads_as_an_option() -> None:
    formatting = _token("**", {"**": -0.01, "The": -5.0})
    letter = _token("C", {"C": -0.5, "D": -1.0})
    probs = choice_probs([formatting, letter, _token("**", None)], ("A", "B", "C", "D"))
    assert probs is not None and max(probs, key=lambda o: probs[o]) == "C"


def test_no_options_no_alternatives_or_no_option_token_give_none() -> None:
    assert choice_probs([_token("A", {"A": -0.1})], ()) is None
    assert choice_probs([_token("A", None)], ("A", "B")) is None
    assert choice_probs([_token("Yes", {"Yes": -0.1})], ("A", "B")) is None
    assert choice_probs(None, ("A", "B")) is None


def test_a_winogrande_prompt_offers_two_letters_and_the_other_letters_mass_is_left_out() -> None:
    # RouterBench's Winogrande cell as stored (a list-like string, newlines escaped): few-shot examples
    # with their answers, then the question with its two options as "A) name" lines.
    cell = (
        "['Please answer with the letter of the correct answer.\\n\\nHe never comes to my home, but I "
        "always go to his house because the _ is smaller.\\nA) home\\nB) house\\nPrint only a single "
        'choice  from "A" or "B" without explanation. Answer:\\nA\\n\\nThe drink was rich in caffeine '
        "and low in sugar because the _ was not enough to keep the drinker awake.\\nA) caffeine\\n"
        'B) sugar\\nPrint only a single choice  from "A" or "B" without explanation. Answer:\']'
    )
    options = options_in(unlist(cell))
    assert options == ("A", "B")
    # The embedded 1.5B model's recorded alternatives for that question: it puts mass on C and D too,
    # which are no options here and must not dilute A's and B's shares.
    top = {"A": -0.715605, "B": -0.863269, "C": -2.763407, "D": -3.900406, "Answer": -6.883633}
    probs = choice_probs([_token("A", top)], options)
    a, b = math.exp(-0.715605), math.exp(-0.863269)
    assert probs == pytest.approx({"A": a / (a + b), "B": b / (a + b)}, abs=1e-6)
