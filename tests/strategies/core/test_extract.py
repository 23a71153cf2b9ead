from __future__ import annotations

import pytest

from chorus_mcp.strategies.core.extract import (
    extract_choice,
    extract_json_field,
    extract_number,
    extract_yes_no,
    normalise_text,
    resolve_format,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("B", "B"),
        ("b", "B"),
        ("(C)", "C"),
        ("**B**", "B"),
        ("The answer is (B).", "B"),
        ("The answer is B", "B"),
        ("B) Paris is the capital", "B"),
        ("D. 42", "D"),
        ("B, Jupiter", "B"),
        ("Answer: **C**", "C"),
        ("Option A looks tempting, but (A) ignores friction.\n\nFinal answer: D", "D"),
        ("Let me think. A cat is not a dog, so the correct option is E.", "E"),
        ("B\nConfidence: 90%", "B"),
        ("C  \r\nConfidence: 0.7", "C"),
        ("A cat is an animal.", None),
        ("A\ncat is an animal.", "A"),
        ("I cannot tell.", None),
    ],
)
def test_choice_letters_are_read_from_common_phrasings(text: str, expected: str | None) -> None:
    assert extract_choice(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("42", "42"),
        ("42.0", "42"),
        ("The answer is 1,200.", "1200"),
        ("answer: -3.50", "-3.5"),
        ("First 6, then 7, so 6*7 = 42", "42"),
        ("The answer is 42 (found in 3 steps)", "42"),
        ("**Final answer:** $1,234,567", "1234567"),
        ("Between 3-5 apples", "5"),
        ("no digits here", None),
    ],
)
def test_numbers_are_normalised_so_equal_values_agree(text: str, expected: str | None) -> None:
    assert extract_number(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Yes.", "yes"),
        ("**No**, it is not.", "no"),
        ("True", "yes"),
        ("After some thought, the answer is no.", "no"),
        ("I would say yes, on balance", "yes"),
        ("Yes and no.", "yes"),
        ("It depends: yes in summer, no in winter.", None),
        ("Perhaps.", None),
    ],
)
def test_yes_no_is_read_from_leading_explicit_or_sole_words(text: str, expected: str | None) -> None:
    assert extract_yes_no(text) == expected


@pytest.mark.parametrize(
    ("text", "field", "expected"),
    [
        ('{"label": "Positive", "score": 0.9}', "label", "positive"),
        ('Here you go:\n```json\n{"label": "neg"}\n```\nHope it helps {x}', "label", "neg"),
        ('Result {"a": {"b": 3.0}} and more', "a.b", "3"),
        ('{"ok": true}', "ok", "true"),
        ('{"tags": ["b", "a"]}', "tags", '["b","a"]'),
        ('{"label": "x"}', "missing", None),
        ("no json at all", "label", None),
        ('{not json} then {"label": "late"}', "label", "late"),
    ],
)
def test_a_json_field_is_read_from_the_first_object_even_inside_a_fence(
    text: str, field: str, expected: str | None
) -> None:
    assert extract_json_field(text, field) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Paris", "paris"),
        ("**Paris.**", "paris"),
        ("  The   U.S.A.\n", "the usa"),
        ("# Heading\n- item", "heading item"),
        ("...", None),
    ],
)
def test_text_is_casefolded_without_markdown_punctuation_or_extra_space(
    text: str, expected: str | None
) -> None:
    assert normalise_text(text) == expected


@pytest.mark.parametrize(
    ("prompt", "answers", "expected"),
    [
        ("Which is largest?\nA) 3\nB) 7\nC) 5", ["The answer is B, since 7 > 5"], "choice"),
        ("Pick one: (A) red (B) blue", ["blue"], "choice"),
        ("What is 6*7?", ["42", "**42.0**", "The answer is 42"], "number"),
        ("What is 6*7?", ["42", "forty-two"], "text"),
        ("How big is Paris?", ["Paris has 2 million people"], "text"),
        ("Is water wet?", ["Yes, it is.", "No."], "yes_no"),
        ("Capital of France?", ["Paris", "paris."], "text"),
    ],
)
def test_auto_picks_the_format_from_the_prompt_and_the_answers(
    prompt: str, answers: list[str], expected: str
) -> None:
    assert resolve_format("auto", prompt, answers) == expected


def test_an_explicit_format_is_kept() -> None:
    assert resolve_format("number", "A) 1 B) 2", ["B"]) == "number"
