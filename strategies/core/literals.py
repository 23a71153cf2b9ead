"""The literals of a text: what must be identical for two texts to mean the same, whatever the wording.

Embeddings place "Is 91 prime?" and "Is 97 prime?" almost on top of each other (they differ in one token
of many), yet their answers differ. Whatever decides meaning precisely — numbers, quoted strings, names,
code identifiers, units of measure, a negation (`not`, `unsafe`) — must be identical and in the same
order; only the wording around them may change. The semantic cache holds prompts to this, and the
ensemble's grouping of free-text answers by meaning holds answers to it.
"""

from __future__ import annotations

import re

from chorus_mcp.strategies.core.units import UNITS as _UNITS

_NUMBER = re.compile(r"\d+(?:[.,:/]\d+)*")
_QUOTED = re.compile(r"\"([^\"]+)\"|“([^”]+)”|`([^`]+)`|(?<![A-Za-z])'([^']+)'(?![A-Za-z])")
_WORD = re.compile(r"[A-Za-z][\w'’-]*")
_IDENTIFIER = re.compile(r"\b(?:\w*[_.]\w+|[a-z]+[A-Z]\w*)")
_NEGATIONS = frozenset({"not", "no", "never", "none", "nothing", "without", "except", "cannot"})
SMALL_NUMBER_WORDS = {
    word: n
    for n, word in enumerate(
        [
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
            "thirteen",
            "fourteen",
            "fifteen",
            "sixteen",
            "seventeen",
            "eighteen",
            "nineteen",
        ]
    )
}
"""Number words below twenty and their values (answers spell numbers too: "negative seven")."""
_NUMBER_WORDS = {**{word: str(n) for word, n in SMALL_NUMBER_WORDS.items()}, "twenty": "20"}
_ORDINALS = {
    word: str(n)
    for n, word in enumerate(
        [
            "zeroth",
            "first",
            "second",
            "third",
            "fourth",
            "fifth",
            "sixth",
            "seventh",
            "eighth",
            "ninth",
            "tenth",
        ]
    )
}
_NOT_NEGATIONS = ("under", "uni", "until", "unless")
"""Words starting with "un" that do not negate what follows."""
_SENTENCE_END = re.compile(r"[.!?:;\n]\s*$")


def literals(text: str) -> tuple[str, ...]:
    """What must be identical for two prompts to share an answer (see the module docstring), in order.

    In order, because the order of literals carries meaning ("convert 30 miles to km" is not "convert 30
    km to miles"); number words count as their digits ("three" = "3"), units by one spelling.
    """
    found: list[tuple[int, str]] = []
    unquoted = text
    for match in _QUOTED.finditer(text):
        found.append((match.start(), "q:" + next(group for group in match.groups() if group is not None)))
        unquoted = unquoted[: match.start()] + " " * len(match.group(0)) + unquoted[match.end() :]
    for match in _NUMBER.finditer(unquoted):
        found.append((match.start(), "n:" + match.group(0).replace(",", "")))
    for match in _IDENTIFIER.finditer(unquoted):
        if not match.group(0).replace(".", "").isdigit():
            found.append((match.start(), "i:" + match.group(0).strip(".")))
    for match in _WORD.finditer(unquoted):
        word = re.sub(r"['’]s$", "", match.group(0))
        lower = word.lower()
        if lower in _NEGATIONS or lower.endswith("n't") or _negated(lower):
            found.append((match.start(), "not"))
        elif lower in _UNITS:
            found.append((match.start(), "unit:" + _UNITS[lower]))
        elif lower in _NUMBER_WORDS:
            found.append((match.start(), "n:" + _NUMBER_WORDS[lower]))
        elif lower in _ORDINALS:
            found.append((match.start(), "ord:" + _ORDINALS[lower]))
        elif word[0].isupper() and not _starts_sentence(unquoted, match.start()) and word != "I":
            found.append((match.start(), "name:" + word))
    return tuple(value for _, value in sorted(found))


def _negated(word: str) -> bool:
    """`unsafe`, `nonfatal`: a negating prefix. (Over-eager on rare words such as `uncle`: that can only cost
    a hit, never cause a wrong one.)"""
    return (word.startswith("non") and len(word) > 5) or (
        word.startswith("un") and len(word) > 4 and not word.startswith(_NOT_NEGATIONS)
    )


def _starts_sentence(text: str, position: int) -> bool:
    before = text[:position]
    return not before.strip() or bool(_SENTENCE_END.search(before))
