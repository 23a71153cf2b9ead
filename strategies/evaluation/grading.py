"""Grading a strategy's answer against the recorded correctness of a question.

- Multiple choice (the question has option letters): the answer's letter is read (an explicit
  "answer is (B)" / "Answer: B", else a letter opening the text: `B`, `(B)`, `B) ...`, `**B**`). The gold
  letter is the question's stated `gold`, else the letter of any model whose answer is recorded as
  correct. Questions where those letters disagree, or where no model is recorded correct, have no
  gold: every answer to them is graded wrong and counted as *ungraded*.
- Free-form answers (code, text): the answer is correct when, whitespace aside, it is the answer of a
  model recorded as correct (or the stated `gold`), and wrong when it is the answer of a model recorded
  as wrong. Anything else — e.g. a text a judge synthesised — cannot be graded from the recording; it
  counts as wrong and as *ungraded*, so a report can say how much of its accuracy is unverifiable.

The grader reads letters on its own, independently of the strategies' answer extraction: the thing
measured does not grade itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from chorus_mcp.strategies.evaluation.datasets import Question

_EXPLICIT_RE = re.compile(r"(?i)\banswer\s*(?:is|:)?\s*[:\s]*[(\[*]*\s*([A-J])\b")
_LEADING_RE = re.compile(r"^[\s*_(\[]*([A-J])(?:[)\].:*_\s]|$)")


@dataclass(frozen=True)
class Grade:
    correct: bool
    graded: bool = True
    """False when the recording holds nothing to compare this answer with (it then counts as wrong)."""


def choice_letter(text: str, choices: tuple[str, ...]) -> str | None:
    """The option letter the text answers with, if it is one of `choices`."""
    for match in reversed(_EXPLICIT_RE.findall(text)):
        if match in choices:
            return str(match)
    leading = _LEADING_RE.match(text)
    if leading and leading.group(1) in choices:
        return leading.group(1)
    return None


def _normal(text: str) -> str:
    return " ".join(text.split())


def gold_of(question: Question) -> str | None:
    """The reference answer: the stated gold, else (multiple choice) the letter the correct models gave."""
    if question.gold is not None:
        if question.choices:
            return choice_letter(question.gold, question.choices) or question.gold.strip()
        return question.gold
    if not question.choices:
        return None
    letters = {
        choice_letter(outcome.response, question.choices)
        for outcome in question.outcomes.values()
        if outcome.correct
    }
    if len(letters) != 1 or None in letters:
        return None
    return letters.pop()


def grade(question: Question, answer: str | None, gold: str | None = None) -> Grade:
    """Grade `answer` (None: the strategy produced none, which is wrong). `gold` may be precomputed."""
    if answer is None:
        return Grade(correct=False)
    if question.choices:
        gold = gold if gold is not None else gold_of(question)
        if gold is None:
            return Grade(correct=False, graded=False)
        return Grade(correct=choice_letter(answer, question.choices) == gold)
    normal = _normal(answer)
    if question.gold is not None:
        return Grade(correct=normal == _normal(question.gold))
    verdicts = {
        outcome.correct
        for outcome in question.outcomes.values()
        if outcome.correct is not None and _normal(outcome.response) == normal
    }
    if True in verdicts:
        return Grade(correct=True)
    if False in verdicts:
        return Grade(correct=False)
    return Grade(correct=False, graded=False)
