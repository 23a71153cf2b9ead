"""Reading each answer on its own, so that answers worded differently but meaning the same are one vote.

`read_answer(text, prompt)` decides per answer — never per ensemble, so one worded answer cannot change
how the others are read — and returns an `AnswerKey`: a canonical key, the kind of answer, and how the
key was read (which the decision trail shows). Under `auto`:

- the prompt lists lettered options → a **choice**: an explicit "answer is (B)" / "option B" (the last
  one; "not B" is not a choice of B), a leading letter ("B) ...", "c)", "D (", "B\\n"), else the text of
  exactly one option ("Mars", "Carbon dioxide", a cut-off "Cra" for "Craig"); letters that are not
  options never count;
- the prompt is a yes/no question (it opens with is/are/does/can/...) → **yes/no**: an explicit
  "answer: yes", a leading yes/no word ("Nope", "Correct.", "Absolutely not"; hedges such as "not sure"
  and "no doubt" are skipped), the last "but/so/therefore yes|no", the only one of yes/no used, else a
  restatement of the question (negated → no: "It is not sorted.");
- an answer that gives a number → a **number**: `\\boxed{}`, "answer/result is N", a bold number, the
  number after the last "=" (a chain of working ends in its result), a number leading the answer, else
  the first number of the answer's first clause ("It ended in 1945, six years after 1939"); the year
  for "what year" questions. Compared by value ("1,000" = "1000", "1/2" = "0.5" = "50%" = "one half",
  "3,91" is 3.91), units kept and spelled one way ("12 km" ≠ "12 miles"; "12" joins "12 km");
- otherwise **text**: the short answer — markdown, parentheses, "not X" asides and the words that
  restate the question dropped ("The capital of France is Paris." → "paris"); the clause that restates
  the question when there are several ("Saturn is second; the largest is Jupiter." → "jupiter").

`group_keys` then groups keys that are the same answer but not the same string: a unitless number with
the one unit the same value carries elsewhere, a short text answer inside a longer one ("Austen" in
"jane austen"). Free text that says the same thing in other words is grouped by meaning by
`strategies.models.meaning`, which needs an embedder.

The concrete formats (`choice`, `number`, `yes_no`, `text`, `json_field`) read every answer that way.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from chorus_mcp.strategies.core.extract import extract_json_field, normalise_text
from chorus_mcp.strategies.core.literals import SMALL_NUMBER_WORDS
from chorus_mcp.strategies.core.spec import AnswerFormat
from chorus_mcp.strategies.core.units import UNITS

LETTERS = "ABCDE"


@dataclass(frozen=True)
class AnswerKey:
    """What one answer says, in a form that compares."""

    key: str | None
    """The canonical answer (`"B"`, `"391"`, `"12 km"`, `"no"`, `"paris"`); None when none could be read."""
    kind: str
    """`choice`, `number`, `yes_no`, `text`, `json_field`, or `none` when nothing could be read."""
    how: str
    """How the key was read, for the decision trail."""
    value: Decimal | None = None
    unit: str | None = None
    tokens: frozenset[str] = field(default_factory=frozenset)
    """For text: the words of the short answer, to find a short answer inside a longer one."""


NOTHING = AnswerKey(None, "none", "no answer could be read")

# --- numbers ---------------------------------------------------------------------------------------------

_DIGITS = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+"
_NUM = rf"[-−]?(?:{_DIGITS})"
_NUMBER_RE = re.compile(
    rf"(?<![\w.^/]){_NUM}(?:\s*/\s*\d+(?![\d.]))?(?:\s*[×x*]\s*10\^[-−]?\d+|\^[-−]?\d+)?"
    r"(?:\s*(?:%|percent\b|per\s+cent\b))?(?:\s+(?:thousand|million|billion|trillion)\b)?(?![\w.]\d|\w)"
)
_CURRENCY = {"$": "usd", "€": "eur", "£": "gbp", "¥": "jpy"}
_SCALE_WORDS = {"thousand": 3, "million": 6, "billion": 9, "trillion": 12}
_DECIMAL_COMMA_RE = re.compile(r"(?<![\w.,])(\d+),(\d{1,2})(?![\d,])")
_MIXED_RE = re.compile(r"(?<![\w.])(\d+)\s+(\d+)\s*/\s*(\d+)(?![\w.])")
_BOXED_RE = re.compile(r"\\boxed\{([^{}]*)\}")
_EXPLICIT_RE = re.compile(
    r"(?i)\b(?:final\s+answer|answer|result|total)\b[\s*_]*(?:is|was|equals|:|=)[\s*_:=]*\$?"
)
_BOLD_RE = re.compile(r"\*\*([^*]+)\*\*")
_PAREN_RE = re.compile(r"\([^()]*\)|\[[^\[\]]*\]")
_ASIDE_PAREN_RE = re.compile(r"(?<=\s)\([^()]*\)|(?<=\s)\[[^\[\]]*\]")
"""A parenthesis set off by a space is an aside ("H (hydrogen)"); one attached to a word is part of it
("O(n log n)", "range(10)")."""
_YEAR_QUESTION_RE = re.compile(
    r"(?i)\b(?:what|which|in what)\s+year\b|\bwhen\b.*\b(?:end|begin|start|born|die)"
)
_YEAR_RE = re.compile(r"(?<!\d)(1\d{3}|20\d{2})(?!\d)")
_UNIT_AFTER_RE = re.compile(
    r"^\s*(square\s+[a-z]+|sq\.?\s*[a-z]+|[°º]\s*[CFcf]\b|[A-Za-zµ]+(?:[²³]|\^[23])?)"
)

_SMALL = SMALL_NUMBER_WORDS
_TENS = {
    w: 10 * n
    for n, w in enumerate(
        ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
    )
    if n > 1
}
_FRACTION_WORDS = {"half": Decimal("0.5"), "third": Decimal(1) / 3, "quarter": Decimal("0.25")}
_NUMBER_WORD_RE = re.compile(
    r"(?i)\b(?:(negative|minus)\s+)?((?:(?:a|one)\s+(?:half|third|quarter))|"
    rf"(?:(?:{'|'.join(_TENS)})(?:[\s-](?:{'|'.join(w for w in _SMALL if _SMALL[w] < 10)}))?)|"
    rf"(?:{'|'.join(sorted(_SMALL, key=len, reverse=True))})(?:\s+(hundred|thousand|million|billion))?)\b"
)


def _word_value(words: str) -> Decimal | None:
    parts = re.split(r"[\s-]+", words.lower())
    if parts[-1] in _FRACTION_WORDS:
        return _FRACTION_WORDS[parts[-1]]
    total = 0
    for part in parts:
        if part in _SMALL:
            total += _SMALL[part]
        elif part in _TENS:
            total += _TENS[part]
        elif part == "hundred":
            total *= 100
        elif part in _SCALE_WORDS:
            total *= 10 ** _SCALE_WORDS[part]
    return Decimal(total)


def _spelled_out(text: str) -> str:
    """Number words as digits ("negative seven" → "-7", "one half" → "0.5"); other words unchanged."""

    def digits(match: re.Match[str]) -> str:
        value = _word_value(match.group(2))
        if value is None:
            return match.group(0)
        if match.group(1):
            value = -value
        return _format(value)

    return _NUMBER_WORD_RE.sub(digits, text)


def _format(value: Decimal) -> str:
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.quantize(Decimal("1e-9")).normalize(), "f")


def _value_of(raw: str) -> Decimal | None:
    """The value of one number as written: `1,200`, `1/2`, `12 1/2`, `50%`, `1.024 × 10^3`, `−7`."""
    text = raw.replace("−", "-").lower()
    scale = Decimal(1)
    for word, exponent in _SCALE_WORDS.items():
        if text.endswith(word):
            scale, text = Decimal(10) ** exponent, text[: -len(word)]
    text = re.sub(r"\s+", "", text).replace("percent", "%")
    percent = text.endswith("%")
    text = text.rstrip("%")
    if (power := re.search(r"[×x*]10\^(-?\d+)$", text)) is not None:
        scale *= Decimal(10) ** int(power.group(1))
        text = text[: power.start()]
    elif (power := re.fullmatch(r"(-?\d+)\^(-?\d+)", text)) is not None:
        if abs(int(power.group(2))) > 30:
            return None
        return Decimal(int(power.group(1))) ** int(power.group(2)) * scale
    try:
        if "/" in text:
            top, bottom = text.split("/", 1)
            value = Decimal(top.replace(",", "")) / Decimal(bottom)
        else:
            value = Decimal(text.replace(",", ""))
    except (InvalidOperation, ZeroDivisionError):
        return None
    value *= scale
    return value / 100 if percent else value


def _unit_after(text: str) -> str | None:
    match = _UNIT_AFTER_RE.match(text)
    if match is None:
        return None
    word = re.sub(r"\s+", " ", match.group(1).lower().replace("º", "°"))
    if word.startswith(("square ", "sq")):
        base = UNITS.get(word.split()[-1].rstrip("."), None) if " " in word else None
        return f"{base}2" if base in ("km", "m", "cm", "mm") else None
    word = word.replace("^2", "²").replace("^3", "³").replace("° ", "°")
    return UNITS.get(word)


@dataclass(frozen=True)
class _Found:
    value: Decimal
    unit: str | None
    how: str


def _numbers(text: str) -> list[tuple[re.Match[str], Decimal]]:
    found = []
    for match in _NUMBER_RE.finditer(text):
        value = _value_of(match.group(0))
        if value is not None:
            found.append((match, value))
    return found


def _number_in(text: str, how: str, *, first: bool = True) -> _Found | None:
    found = _numbers(text)
    if not found:
        return None
    match, value = found[0] if first else found[-1]
    unit = _unit_after(text[match.end() :])
    before = text[: match.start()].rstrip()
    if unit is None and before and before[-1] in _CURRENCY:
        unit = _CURRENCY[before[-1]]
    return _Found(value, unit, how)


def _prepared(text: str) -> str:
    text = _MIXED_RE.sub(
        lambda m: _format(Decimal(m.group(1)) + Decimal(m.group(2)) / Decimal(m.group(3))), text
    )
    text = _DECIMAL_COMMA_RE.sub(r"\1.\2", text)
    return _spelled_out(text)


def read_number(text: str, question: str = "") -> _Found | None:
    """The number an answer gives, or None; see the module docstring for the order of the rules."""
    text = _prepared(text)
    if (boxed := _BOXED_RE.findall(text)) and (found := _number_in(boxed[-1], "boxed")) is not None:
        return found
    explicit = list(_EXPLICIT_RE.finditer(text))
    if explicit and (found := _number_in(text[explicit[-1].end() :], "after 'answer'")) is not None:
        return found
    if _YEAR_QUESTION_RE.search(question) and (year := _YEAR_RE.search(text)) is not None:
        return _Found(Decimal(year.group(1)), None, "the year")
    bold = [b for b in _BOLD_RE.findall(text) if _numbers(b)]
    if bold and (found := _number_in(bold[-1], "bold")) is not None:
        return found
    if "=" in text and (found := _number_in(text[text.rindex("=") + 1 :], "after the last '='")) is not None:
        return found
    plain = _PAREN_RE.sub(" ", text)
    if re.match(rf"^[\s*_$~]*{_NUM}", plain) and (found := _number_in(plain, "leading number")):
        return found
    first_clause = re.split(r"(?<=[^\d\s])[.;!?](?:\s|$)|,\s+(?=[a-z])", plain.strip(), maxsplit=1)[0]
    return _number_in(first_clause, "first number of the first clause")


def _number_key(found: _Found) -> AnswerKey:
    shown = _format(found.value)
    key = f"{shown} {found.unit}" if found.unit else shown
    return AnswerKey(key, "number", found.how, value=found.value, unit=found.unit)


# --- yes / no --------------------------------------------------------------------------------------------

_YES_NO_QUESTION_RE = re.compile(
    r"(?i)^\W*(?:(?:so|and|but|then|now|ok|okay|tell me|quick question)[,:]?\s+)*"
    r"(?:is|are|was|were|am|do|does|did|can|could|will|would|should|shall|has|have|had|may|might|must)\b"
)
_YES_WORDS = {"yes", "yeah", "yep", "yup", "correct", "true", "right", "indeed", "sure", "affirmative", "y"}
_NO_WORDS = {"no", "nope", "nah", "false", "incorrect", "wrong", "never", "negative", "n"}
_HEDGE_RE = re.compile(
    r"(?i)^\W*(?:(?:i'?m\s+|i am\s+)?not\s+(?:sure|certain|entirely sure)|no\s+doubt(?:\s+about\s+it)?|"
    r"(?:i\s+)?(?:think|believe|guess)|well|hmm+|honestly|to be honest|short answer|in short|"
    r"that'?s\s+(?=right|correct)|it'?s\s+(?=true|false|correct)|absolutely(?=\s*[.!,]|\s*$))[\s,:;.!-]*"
)
_EXPLICIT_YES_NO_RE = re.compile(r"(?i)\banswer[\s*_]*(?:is|:|=)[\s*_:]*(yes|no|true|false)\b")
_STANDING_YES_NO_RE = re.compile(r"(?i)\b(yes|no)\b(?=\s*(?:[,.;:!?—–]|-\s|$))")
_LEADING_WORD_RE = re.compile(r"^[\W_]*([A-Za-z]+)")
_NEGATION_RE = re.compile(r"(?i)\b(?:not|never|neither|nor|no|none|cannot)\b|n't\b|n’t\b")
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "am",
        "do",
        "does",
        "did",
        "can",
        "could",
        "will",
        "would",
        "should",
        "shall",
        "has",
        "have",
        "had",
        "may",
        "might",
        "must",
        "of",
        "in",
        "on",
        "at",
        "to",
        "for",
        "from",
        "by",
        "with",
        "as",
        "and",
        "or",
        "but",
        "if",
        "then",
        "so",
        "that",
        "this",
        "these",
        "those",
        "it",
        "its",
        "it's",
        "there",
        "their",
        "they",
        "them",
        "he",
        "she",
        "his",
        "her",
        "we",
        "you",
        "your",
        "i",
        "me",
        "my",
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "when",
        "where",
        "why",
        "how",
        "than",
        "too",
        "very",
        "also",
        "just",
        "about",
        "into",
        "over",
        "under",
        "up",
        "down",
        "out",
        "off",
        "again",
        "further",
        "once",
        "here",
        "all",
        "any",
        "both",
        "each",
        "few",
        "more",
        "most",
        "other",
        "some",
        "such",
        "only",
        "own",
        "same",
        "s",
        "t",
        "not",
        "never",
        "cannot",
    ]
)


def _content_words(text: str) -> set[str]:
    words = set(re.findall(r"[a-z][a-z'’-]*", text.lower()))
    return {w for w in words if w not in _STOPWORDS and len(w) > 1}


def is_yes_no_question(prompt: str) -> bool:
    return bool(_YES_NO_QUESTION_RE.match(_question_line(prompt)))


def read_yes_no(text: str, question: str = "") -> tuple[str, str] | None:
    """(`yes`|`no`, how) for an answer to a yes/no question, or None."""
    if explicit := _EXPLICIT_YES_NO_RE.findall(text):
        return _yes_or_no(explicit[-1]), "after 'answer'"
    rest = text
    while (hedge := _HEDGE_RE.match(rest)) is not None and hedge.end() > 0:
        rest = rest[hedge.end() :]
    leading = _LEADING_WORD_RE.match(rest)
    if leading is not None:
        word = leading.group(1).lower()
        after = rest[leading.end() :]
        if word == "absolutely" and re.match(r"(?i)\s+not\b", after):
            return "no", "leading 'absolutely not'"
        if word == "not" and not re.match(r"(?i)\s+(?:sure|certain|only)\b", after):
            return "no", "leading 'not'"
        if word in _YES_WORDS:
            return "yes", "leading yes/no"
        if word in _NO_WORDS:
            return "no", "leading yes/no"
    # "but no: 91 = 7 × 13", "so yes, it is prime", "...: yes, it is": the last yes/no that stands as an
    # answer (followed by punctuation or the end); "no exception", "no doubt" are not answers.
    standing = _STANDING_YES_NO_RE.findall(rest)
    if standing:
        return standing[-1].lower(), "the last yes/no standing as an answer"
    clauses = [c for c in re.split(r"[.;!?,:\n]|\b(?:so|but|therefore|thus|hence)\b", rest) if c.strip()]
    restating = [c for c in clauses if _content_words(c) & _content_words(question)]
    if restating:
        negated = bool(_NEGATION_RE.search(restating[-1]))
        return ("no" if negated else "yes"), "restates the question" + (" negated" if negated else "")
    if (
        clauses
        and not _content_words(clauses[0])
        and re.search(r"(?i)\b(?:it|they|he|she|that)\b", clauses[0])
    ):
        # "It is not.", "They can't.", "It is."
        negated = bool(_NEGATION_RE.search(clauses[0]))
        return ("no" if negated else "yes"), "a bare " + ("negated " if negated else "") + "'it is'"
    return None


def _yes_or_no(word: str) -> str:
    return "yes" if word.lower() in ("yes", "true") else "no"


# --- choices ---------------------------------------------------------------------------------------------

_OPTION_RE = re.compile(rf"(?:^|\n|\s)\(?([{LETTERS}])[).:]\s*([^\n]*?)(?=\s+\(?[{LETTERS}][).:]\s|\n|$)")
_EXPLICIT_CHOICE_RE = re.compile(
    r"(?i)\b(not\s+)?(?:(?:the\s+)?(?:correct\s+|right\s+|best\s+)?(?:answer|option|choice)\b"
    r"[\s*_]*(?:is|:|=|would be)?"
    rf"[\s*_:]*(?:option\s+|choice\s+)?)[(\[*_\s]*([{LETTERS}])\b(?![')’]\w)"
)
_LEADING_CHOICE_RE = re.compile(
    rf"(?i)^[\s*_(\[]*([{LETTERS}])(?:[).:,\]*_]|\s+[-–—(]|\s*\(|[ \t]*(?:\r?\n|$))"
)
_NEGATED_LETTER_RE = re.compile(rf"(?i)\b(?:not|isn't|is not)\s+(?:option\s+)?\(?([{LETTERS}])\b")


def options_in(prompt: str) -> dict[str, str]:
    """Lettered options listed in the prompt (`{"A": "Venus", ...}`), when there are at least A and B."""
    found: dict[str, str] = {}
    for letter, text in _OPTION_RE.findall(prompt):
        found.setdefault(letter.upper(), text.strip())
    return found if {"A", "B"} <= set(found) else {}


def read_choice(text: str, options: dict[str, str]) -> tuple[str, str] | None:
    """(letter, how) for an answer to a multiple-choice question, or None."""
    letters = set(options) or set(LETTERS)
    bare = re.sub(r"[^\w]", "", text)
    if len(bare) == 1 and bare.upper() in letters:
        return bare.upper(), "the letter alone"
    explicit = [
        (negated, letter.upper())
        for negated, letter in _EXPLICIT_CHOICE_RE.findall(text)
        if letter.upper() in letters
    ]
    chosen = [letter for negated, letter in explicit if not negated]
    if chosen:
        return chosen[-1], "after 'answer'/'option'"
    leading = _LEADING_CHOICE_RE.match(text)
    if leading is not None and leading.group(1).upper() in letters:
        letter = leading.group(1).upper()
        if not re.search(rf"(?i)\b(?:not|isn't)\s+\(?{letter}\b", text[:40]):
            return letter, "leading letter"
    # "A first" for "A) first-aid kit": the letter, then the start of that option's text.
    if (lead := re.match(rf"^\s*([{LETTERS}])\s+(\w.*)$", text.strip(), re.S)) is not None:
        letter, rest = lead.group(1).upper(), normalise_text(lead.group(2)) or ""
        option = normalise_text(options.get(letter, "")) or ""
        if len(rest) >= 3 and option.startswith(rest):
            return letter, "leading letter and its option's text"
    by_text = _option_by_text(text, options)
    if by_text is not None:
        return by_text, "the text of an option"
    return None


def _option_by_text(text: str, options: dict[str, str]) -> str | None:
    answer = normalise_text(_PAREN_RE.sub(" ", text)) or ""
    if not answer:
        return None
    texts = {letter: normalise_text(option) or "" for letter, option in options.items()}
    exact = [letter for letter, option in texts.items() if option and option == answer]
    if len(exact) == 1:
        return exact[0]
    # A cut-off answer ("Cra" for "Craig") or an answer that opens with the option ("Mars, the red one").
    prefix = [
        letter
        for letter, option in texts.items()
        if option and len(answer) >= 3 and (option.startswith(answer) or answer.startswith(option + " "))
    ]
    if len(prefix) == 1:
        return prefix[0]
    # Negations ("not oxygen") never select the option they name.
    return None


# --- text ------------------------------------------------------------------------------------------------

_LEAD_IN_RE = re.compile(
    r"(?i)^\s*(?:(?:i\s+think|i\s+believe|probably|definitely|clearly|well|so|ok|okay|sure)[,:]?\s+)*"
    r"(?:(?:it'?s|it\s+is|that'?s|that\s+is|this\s+is|they'?re|they\s+are|the\s+answer\s+is|answer:)\s+)?"
)
_ASIDE_RE = re.compile(r"(?i)[,;]?\s*\b(?:not|rather than|instead of)\s+[^,.;]+")
_ARTICLES = frozenset({"a", "an", "the"})


def _question_line(prompt: str) -> str:
    """The question itself: the last line of the prompt that ends with '?', else its first line."""
    lines = [line.strip() for line in prompt.strip().splitlines() if line.strip()]
    asked = [line for line in lines if line.endswith("?")]
    return asked[-1] if asked else (lines[0] if lines else "")


def _clauses(text: str) -> list[str]:
    # Sentence ends, but not after an abbreviation such as "Gen." or "D.C.".
    parts = re.split(
        r"(?<!\b[A-Z][a-z])(?<!\b[A-Z][a-z]{2})(?<!\b[A-Z])(?<=[a-z0-9)\]])[.;!?](?:\s+|$)|\n+", text
    )
    return [p.strip() for p in parts if p and p.strip()]


FREE_TEXT_WORDS = 8
"""An answer longer than this (in words) is free text: compared as a whole, and by meaning."""


def read_text(text: str, question: str = "") -> AnswerKey:
    """The short answer inside a sentence, or the whole of a free-text answer: see the module docstring."""
    whole = normalise_text(text) or ""
    if len(whole.split()) > FREE_TEXT_WORDS:
        return AnswerKey(whole, "text", "free text", tokens=frozenset(_content_words(whole)))
    asides = " ".join(_ASIDE_PAREN_RE.findall(text))
    plain = _ASIDE_PAREN_RE.sub(" ", text)
    question_words = _content_words(question)
    clauses = _clauses(plain) or [plain]
    chosen = clauses[0]
    how = "normalised text"
    if len(clauses) > 1 and not (_content_words(chosen) & question_words):
        restating = [c for c in clauses[1:] if _content_words(c) & question_words]
        if restating:
            chosen, how = restating[0], "the clause that restates the question"
    head, _, tail = chosen.partition(", ")
    if tail and len(head.split()) <= 3 and len(tail.split()) >= 3:
        chosen = head  # "Einstein, building on Riemann's geometry"
    chosen = _ASIDE_RE.sub(" ", _LEAD_IN_RE.sub("", chosen))
    words = (normalise_text(chosen) or "").split()
    short = [w for w in words if w not in question_words and w not in _STOPWORDS]
    if short and len(short) < len(words):
        if how == "normalised text":
            how = "short answer, the question's words dropped"
        words = short
    else:
        words = [w for w in words if w not in _ARTICLES] or words
    if not words:
        return NOTHING
    extra = (normalise_text(asides) or "").split()
    return AnswerKey(" ".join(words), "text", how, tokens=frozenset([*words, *extra]))


def is_short(key: AnswerKey) -> bool:
    """A text key short enough to be compared word by word (longer ones are free text)."""
    return key.kind == "text" and key.how != "free text"


# --- reading one answer ------------------------------------------------------------------------------------


def read_answer(
    text: str, prompt: str, fmt: AnswerFormat = "auto", json_field: str | None = None
) -> AnswerKey:
    """The key of one answer to `prompt`, read under `fmt` (see the module docstring)."""
    question = _question_line(prompt)
    if fmt == "json_field":
        key = extract_json_field(text, json_field or "")
        return (
            AnswerKey(key, "json_field", f"field {json_field!r} of the last JSON object") if key else NOTHING
        )
    if fmt == "choice" or (fmt == "auto" and (options := options_in(prompt))):
        options = options_in(prompt)
        choice = read_choice(text, options)
        return AnswerKey(choice[0], "choice", choice[1]) if choice else NOTHING
    if fmt == "auto" and len(bare := re.sub(r"[^\w]", "", text)) == 1 and bare.upper() in LETTERS:
        return AnswerKey(bare.upper(), "choice", "a letter alone")
    if fmt == "yes_no" or (fmt == "auto" and is_yes_no_question(prompt)):
        said = read_yes_no(text, question)
        if said is not None:
            return AnswerKey(said[0], "yes_no", said[1])
        if fmt == "yes_no":
            return NOTHING
    if fmt in ("number", "auto"):
        number = read_number(text, question)
        if number is not None and (fmt == "number" or _answers_with_number(text)):
            return _number_key(number)
        if fmt == "number":
            return NOTHING
    return read_text(text, question)


def _answers_with_number(text: str) -> bool:
    """Whether a number is what the answer gives, not a detail of a worded answer: a short answer, or
    one that states its result ("= 391", "answer: 42", "**42**", "\\boxed{42}")."""
    if _BOXED_RE.search(text) or _EXPLICIT_RE.search(text) or "=" in text:
        return True
    if any(_numbers(b) for b in _BOLD_RE.findall(text)):
        return True
    words = _PAREN_RE.sub(" ", text).split()
    return len(words) <= 14


# --- grouping ---------------------------------------------------------------------------------------------


def same_answer(a: AnswerKey, b: AnswerKey) -> bool:
    """Whether two keys are one answer (see `group_keys`)."""
    if a.key is None or b.key is None:
        return False
    if a.key == b.key:
        return True
    if a.kind == "number" and b.kind == "number":
        return a.value == b.value and (a.unit is None or b.unit is None or a.unit == b.unit)
    if a.kind == "text" and b.kind == "text" and is_short(a) and is_short(b):
        smaller, larger = sorted((a.tokens, b.tokens), key=len)
        return bool(smaller) and smaller <= larger
    return False


def group_keys(keys: Sequence[AnswerKey]) -> list[str | None]:
    """The vote key of each answer: equal for answers that are one answer, in first-seen order.

    A key joins the first group it is the same answer as *with every member*, so "12" cannot bring
    "12 km" and "12 miles" together; a group is named by its first key with a unit, else its first key.
    """
    groups: list[list[AnswerKey]] = []
    placed: list[int | None] = []
    for key in keys:
        if key.key is None:
            placed.append(None)
            continue
        home = next((n for n, g in enumerate(groups) if all(same_answer(key, k) for k in g)), None)
        if home is None:
            groups.append([key])
            home = len(groups) - 1
        else:
            groups[home].append(key)
        placed.append(home)
    names = [_name(group) for group in groups]
    return [None if n is None else names[n] for n in placed]


def _name(group: list[AnswerKey]) -> str:
    with_unit = [k for k in group if k.unit]
    if with_unit:
        return with_unit[0].key or ""
    return group[0].key or ""
