from __future__ import annotations

import pytest

from chorus_mcp.strategies.evaluation.datasets import Question
from chorus_mcp.strategies.evaluation.grading import Grade, choice_letter, gold_of, grade
from chorus_mcp.strategies.models.replay import RecordedOutcome

ABCD = ("A", "B", "C", "D")


def mc(outcomes: dict[str, tuple[str, bool | None]], gold: str | None = None) -> Question:
    recorded = {m: RecordedOutcome(text, correct=ok) for m, (text, ok) in outcomes.items()}
    return Question("q", "Q?\nA) a\nB) b\nC) c\nD) d", recorded, gold=gold, choices=ABCD)


@pytest.mark.parametrize(
    ("text", "letter"),
    [
        ("B", "B"),
        ("B\n", "B"),
        ("(C) because", "C"),
        ("**D**", "D"),
        ("D) last", "D"),
        ("I think the answer is (C).", "C"),
        ("Answer: b", None),
        ("I do", None),
        ("E", None),
        ("", None),
    ],
)
def test_choice_letter(text: str, letter: str | None) -> None:
    assert choice_letter(text, ABCD) == letter


def test_gold_is_the_letter_of_a_model_recorded_correct() -> None:
    question = mc({"m1": ("B\n", True), "m2": ("C", False), "m3": ("B", True)})
    assert gold_of(question) == "B"
    assert grade(question, "B") == Grade(correct=True)
    assert grade(question, "the answer is C") == Grade(correct=False)
    assert grade(question, None) == Grade(correct=False)


def test_no_correct_model_or_conflicting_marks_mean_no_gold_and_ungraded() -> None:
    nobody = mc({"m1": ("A", False), "m2": ("C", None)})
    assert gold_of(nobody) is None
    assert grade(nobody, "A") == Grade(correct=False, graded=False)
    conflict = mc({"m1": ("A", True), "m2": ("C", True)})
    assert gold_of(conflict) is None


def test_a_stated_gold_wins() -> None:
    question = mc({"m1": ("A", True)}, gold="(C)")
    assert gold_of(question) == "C"
    assert grade(question, "C").correct


def test_free_text_is_graded_by_matching_a_recorded_answer() -> None:
    recorded = {
        "m1": RecordedOutcome("def f():\n    return 1", correct=True),
        "m2": RecordedOutcome("def f(): return 2", correct=False),
    }
    question = Question("q", "write f", recorded)
    assert grade(question, "def f():  \n    return 1\n") == Grade(correct=True)
    assert grade(question, "def f(): return 2") == Grade(correct=False)
    assert grade(question, "something new") == Grade(correct=False, graded=False)
