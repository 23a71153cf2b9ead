"""The semantic layer: reuse the answer to a cached prompt that means the same as the new one.

A prompt is embedded with `strategies.models.embeddings` and compared (cosine) with the cached prompts of its
bucket only — same model, endpoint, parameters, system prompt and history (`strategies.cache.keys`) —
the most recently used `max_candidates` of them. A hit needs the similarity to reach the threshold AND
the two prompts to carry the same *literals*.

Why the literal guard: embeddings place "Is 91 prime?" and "Is 97 prime?" almost on top of each other
(they differ in one token of many), yet their answers differ. Whatever decides the answer precisely —
numbers, quoted strings, names, code identifiers, units of measure, a negation (`not`, `unsafe`) — must
be identical and in the same order; only the wording around them may change. A paraphrase keeps those
("What's the capital of France?" / "Tell me France's capital"); a near-miss changes one ("...of
Spain?"). The guard cannot see a change of an ordinary word ("boiling point" / "melting point",
"decorator" / "generator"): that is left to the threshold, and is why the layer is off by default.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from chorus_mcp.strategies.cache.settings import SemanticSettings
from chorus_mcp.strategies.cache.store import CacheEntry
from chorus_mcp.strategies.models.embeddings import aembed

_NUMBER = re.compile(r"\d+(?:[.,:/]\d+)*")
_QUOTED = re.compile(r"\"([^\"]+)\"|“([^”]+)”|`([^`]+)`|(?<![A-Za-z])'([^']+)'(?![A-Za-z])")
_WORD = re.compile(r"[A-Za-z][\w'’-]*")
_IDENTIFIER = re.compile(r"\b(?:\w*[_.]\w+|[a-z]+[A-Z]\w*)")
_NEGATIONS = frozenset({"not", "no", "never", "none", "nothing", "without", "except", "cannot"})
_NUMBER_WORDS = {
    word: str(n)
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
            "twenty",
        ]
    )
}
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
_UNITS = {
    unit: canonical
    for canonical, spellings in {
        "mile": "mile miles mi",
        "km": "km kilometre kilometres kilometer kilometers",
        "m": "metre metres meter meters",
        "cm": "cm centimetre centimetres centimeter centimeters",
        "mm": "mm millimetre millimetres millimeter millimeters",
        "inch": "inch inches",
        "foot": "foot feet ft",
        "yard": "yard yards yd",
        "kg": "kg kilogram kilograms kilo kilos",
        "g": "g gram grams",
        "lb": "lb lbs pound pounds",
        "oz": "oz ounce ounces",
        "celsius": "celsius centigrade",
        "fahrenheit": "fahrenheit",
        "kelvin": "kelvin",
        "l": "litre litres liter liters",
        "ml": "ml millilitre millilitres milliliter milliliters",
        "gallon": "gallon gallons",
        "cup": "cup cups",
        "second": "second seconds sec secs",
        "minute": "minute minutes min mins",
        "hour": "hour hours hr hrs",
        "byte": "byte bytes",
        "bit": "bit bits",
        "kb": "kb kilobyte kilobytes",
        "mb": "mb megabyte megabytes",
        "gb": "gb gigabyte gigabytes",
        "tb": "tb terabyte terabytes",
        "usd": "usd dollar dollars",
        "eur": "eur euro euros",
        "gbp": "gbp sterling",
        "jpy": "jpy yen",
        "percent": "percent per cent",
    }.items()
    for unit in spellings.split()
}
"""Units of measure: which one is converted into which decides the answer ("30 miles to km")."""
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


@dataclass(frozen=True)
class Match:
    entry: CacheEntry
    similarity: float


class SemanticMatcher:
    def __init__(self, settings: SemanticSettings) -> None:
        self.settings = settings

    async def embed(self, prompt: str) -> list[float]:
        """The prompt's unit-length embedding."""
        embedded = await aembed(self.settings.embedder, [prompt])
        return [float(x) for x in embedded.vectors[0]]

    def best(self, prompt: str, vector: list[float], candidates: list[CacheEntry]) -> Match | None:
        """The most similar candidate at or above the threshold whose literals equal the prompt's."""
        wanted = literals(prompt)
        best: Match | None = None
        for entry in candidates:
            if entry.embedding is None or len(entry.embedding) != len(vector):
                continue  # written by another embedder
            similarity = sum(a * b for a, b in zip(vector, entry.embedding, strict=True))
            if similarity < self.settings.threshold or (best is not None and similarity <= best.similarity):
                continue
            if literals(entry.prompt) == wanted:
                best = Match(entry, min(1.0, similarity))
        return best
