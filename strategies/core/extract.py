"""Reading the answer out of a model's text, so that answers worded differently can be compared.

Every extractor returns a canonical *key* (`"B"`, `"42"`, `"yes"`, `"paris"`) or None when the text
does not contain an answer of that kind. Two answers agree when their keys are equal.

`auto` picks a format from the prompt and the answers (`resolve_format`): options `A)`..`D)` in the
prompt → choice; every answer *is* a number → number; every answer starts with yes/no → yes_no;
otherwise normalised text. The auto checks are stricter than the extractors themselves: "the city has
2 million people" contains a number but is not a numeric answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from chorus_mcp.strategies.core.spec import AnswerFormat

ConcreteFormat = str
"""An `AnswerFormat` other than `auto`: `choice`, `number`, `yes_no`, `json_field` or `text`."""

_LETTERS = "A-E"
_NUMBER = r"(?<![\w.])[-−]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?|(?<![\w.])[-−]?\.\d+"
_NUMBER_RE = re.compile(_NUMBER)
# "answer is 42", "Answer: $1,200", "result = -3.5", "**Final answer:** 7"
_EXPLICIT_NUMBER_RE = re.compile(
    rf"(?i:answer|result|total)[\s*_]*(?i:is|was|equals|:|=)[\s*_:=]*\$?\s*({_NUMBER})"
)
# "The answer is (B)", "Answer: **C**", "the correct option is D", "choice: [A]"
_EXPLICIT_CHOICE_RE = re.compile(
    rf"(?i:answer|option|choice)[\s*_]*(?i:is|:|=)?[\s*_:]*(?i:option\s+|choice\s+)?[(\[*_\s]*([{_LETTERS}])\b"
)
# The text opens with the letter: "B) ...", "B. ...", "B: ...", "B, ...", "**B**", "(B) ...", "B - ...", or
# the letter alone on the first line ("B\nConfidence: 90%", as the self-report estimator asks for).
_LEADING_CHOICE_RE = re.compile(rf"^[\s*_(\[]*([{_LETTERS}])(?:[).:,\]*_]|\s+[-–—]|[ \t]*(?:\r?\n|$))")
# A letter set off on its own: "(B)" or "**B**" anywhere.
_MARKED_CHOICE_RE = re.compile(rf"\(([{_LETTERS}])\)|\*\*([{_LETTERS}])\*\*")
# Options listed in a prompt: "A) ...", "(B) ...", "C. ...", "D: ..." at a line start or after a space.
_PROMPT_OPTION_RE = re.compile(rf"(?:^|\s)\(?([{_LETTERS}])[).:]\s", re.MULTILINE)
_YES_NO_WORDS = {"yes": "yes", "no": "no", "true": "yes", "false": "no"}
_EXPLICIT_YES_NO_RE = re.compile(r"(?i)answer[\s*_]*(?:is|:|=)[\s*_:]*(yes|no|true|false)\b")
_LEADING_WORD_RE = re.compile(r"^[\W_]*([A-Za-z]+)")
_ANY_YES_NO_RE = re.compile(r"(?i)\b(yes|no)\b")
_FENCE_RE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)
_MARKDOWN_RE = re.compile(r"^\s*(?:#+|>|[-*+]\s)\s*", re.MULTILINE)
_PUNCTUATION_RE = re.compile(r"[^\w\s]|_")


def normalise_text(text: str) -> str | None:
    """Casefolded words without markdown, punctuation or extra whitespace; None when nothing is left."""
    text = _MARKDOWN_RE.sub("", text)
    # Punctuation is deleted rather than spaced out, so "U.S.A." and "USA" agree.
    words = _PUNCTUATION_RE.sub("", text.casefold()).split()
    return " ".join(words) or None


def canonical_number(raw: str) -> str | None:
    """`"1,200.0"` → `"1200"`, `"0.50"` → `"0.5"`, `"-0"` → `"0"`: equal numbers get equal keys."""
    try:
        value = Decimal(raw.replace(",", "").replace("−", "-"))
    except InvalidOperation:
        return None
    if not value.is_finite():
        return None
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def extract_number(text: str) -> str | None:
    """The number given as the answer ("answer: 42"), else the last number in the text."""
    explicit = _EXPLICIT_NUMBER_RE.findall(text)
    if explicit:
        return canonical_number(explicit[-1])
    found = _NUMBER_RE.findall(text)
    return canonical_number(found[-1]) if found else None


def extract_choice(text: str) -> str | None:
    """The option letter A-E: "The answer is (B)", "B) because...", "**B**", or a bare "b"."""
    bare = _PUNCTUATION_RE.sub("", text).strip()
    if len(bare) == 1 and bare.upper() in "ABCDE":
        return bare.upper()
    # A model that reasons first usually states its final answer last, so the last explicit one wins.
    explicit = _EXPLICIT_CHOICE_RE.findall(text)
    if explicit:
        return str(explicit[-1])
    leading = _LEADING_CHOICE_RE.match(text)
    if leading:
        return leading.group(1)
    marked = _MARKED_CHOICE_RE.findall(text)
    if marked:
        paren, bold = marked[-1]
        return str(paren or bold)
    return None


def extract_yes_no(text: str) -> str | None:
    """`yes` or `no`: an explicit "answer: no", a leading "Yes, ...", or the only one of the two used."""
    explicit = _EXPLICIT_YES_NO_RE.findall(text)
    if explicit:
        return _YES_NO_WORDS[explicit[-1].lower()]
    leading = _LEADING_WORD_RE.match(text)
    if leading and leading.group(1).lower() in _YES_NO_WORDS:
        return _YES_NO_WORDS[leading.group(1).lower()]
    used = {word.lower() for word in _ANY_YES_NO_RE.findall(text)}
    return used.pop() if len(used) == 1 else None


_MAX_OBJECT_STARTS = 200


def last_json_object(text: str) -> dict[str, Any] | None:
    """The last complete JSON object in the text: inside the last ```json fence that holds one, else
    anywhere. The last, because a model that reasons or quotes first states its own answer last: an
    object it quoted (or was shown) earlier must not stand for its answer."""
    decoder = json.JSONDecoder()
    for candidate in [*reversed(_FENCE_RE.findall(text)), text]:
        found: dict[str, Any] | None = None
        position, tries = 0, 0
        # Bounded: a long answer full of braces must not make reading it quadratic.
        while (start := candidate.find("{", position)) != -1 and tries < _MAX_OBJECT_STARTS:
            tries += 1
            try:
                value, end = decoder.raw_decode(candidate, start)
            except json.JSONDecodeError:
                position = start + 1
                continue
            if isinstance(value, dict):
                found = value
            position = end
        if found is not None:
            return found
    return None


def extract_json_field(text: str, field: str) -> str | None:
    """The value of `field` (a dotted path such as `result.label`) in the last JSON object of the text."""
    value: Any = last_json_object(text)
    for part in field.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return canonical_number(repr(value))
    if isinstance(value, str):
        return normalise_text(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def extract(text: str, fmt: ConcreteFormat, json_field: str | None = None) -> str | None:
    """The key of `text` under a concrete format; None when the text holds no answer of that kind."""
    if fmt == "choice":
        return extract_choice(text)
    if fmt == "number":
        return extract_number(text)
    if fmt == "yes_no":
        return extract_yes_no(text)
    if fmt == "json_field":
        return extract_json_field(text, json_field or "")
    return normalise_text(text)


def offers_options(prompt: str) -> bool:
    """True when the prompt lists lettered options, at least `A` and `B`."""
    return {"A", "B"} <= set(_PROMPT_OPTION_RE.findall(prompt))


def _is_numeric_answer(text: str) -> bool:
    if _EXPLICIT_NUMBER_RE.search(text):
        return True
    lines = [line for line in text.strip().splitlines() if line.strip()]
    # The (last line of the) answer *is* a number ("42", "**42**", "$1,200.") rather than a sentence
    # with a number in it.
    stripped = re.sub(r"^[\s*_$]+|[\s*_.%]+$", "", lines[-1]) if lines else ""
    return bool(_NUMBER_RE.fullmatch(stripped))


def _is_choice_answer(text: str) -> bool:
    bare = _PUNCTUATION_RE.sub("", text).strip()
    return len(bare) == 1 and bare.upper() in "ABCDE"


def _is_yes_no_answer(text: str) -> bool:
    if _EXPLICIT_YES_NO_RE.search(text):
        return True
    leading = _LEADING_WORD_RE.match(text)
    return bool(leading and leading.group(1).lower() in _YES_NO_WORDS)


def resolve_format(fmt: AnswerFormat, prompt: str, answers: Sequence[str]) -> ConcreteFormat:
    """The concrete format to read answers with: `fmt` itself unless it is `auto`."""
    if fmt != "auto":
        return fmt
    if offers_options(prompt) or (answers and all(_is_choice_answer(a) for a in answers)):
        return "choice"
    if answers and all(_is_numeric_answer(a) for a in answers):
        return "number"
    if answers and all(_is_yes_no_answer(a) for a in answers):
        return "yes_no"
    return "text"
