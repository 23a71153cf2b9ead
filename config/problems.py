"""One voice for every bad value Chorus is given: tool arguments, config keys, environment variables, flags.

Each problem is one line, `<where>: <what was given>; <what is accepted>`, for example::

    deadline_s: 0; expected more than 0
    models: 9 models; expected at most 8 (limits.max_members)
    team.yaml: strategies.vote.aggregation: 'loudest'; expected one of 'majority', 'weighted', 'synthesis'
    CHORUS__DEFAULTS__DEADLINE_S (defaults.deadline_s): 'abc'; expected a number

`where` names the argument, the key path (after the file), the variable or the flag; what was given is
cut short and has secrets removed; what is accepted is said in words, never as a validator's dump or a
link to its documentation. pydantic's errors are translated here (`problems_of`), and the checks Chorus
makes itself build the same line with `problem`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from chorus_mcp.strategies.core.errors import redact

SHOWN_CHARS = 60
"""A given text is cut to this many characters in a message."""

Location = tuple[int | str, ...]

_TYPES = {
    "string_type": "a string",
    "string_unicode": "a string",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "decimal_type": "a number",
    "decimal_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "tuple_type": "a list",
    "set_type": "a list",
    "dict_type": "a mapping (key: value)",
    "model_type": "a mapping (key: value)",
    "model_attributes_type": "a mapping (key: value)",
    "none_required": "nothing (null)",
    "url_type": "a URL",
    "url_parsing": "a URL such as https://host/path",
    "url_scheme": "a URL starting http:// or https://",
    "finite_number": "a finite number",
}
"""pydantic error types that mean "not of the accepted kind" → that kind, in words."""


def problem(where: str, given: str, accepted: str) -> str:
    """The one line: `<where>: <given>; <accepted>`."""
    return f"{where}: {given}; {accepted}"


def shown(value: Any) -> str:
    """A given value as a message shows it: JSON-like, cut short, secrets removed."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, int | float):
        text = str(value)
        return text if len(text) <= SHOWN_CHARS else f"a number of {len(text)} digits"
    if isinstance(value, str):
        if not value:
            return "'' (empty)"
        cut = value if len(value) <= SHOWN_CHARS else value[: SHOWN_CHARS - 3] + "..."
        return redact(repr(cut))
    if isinstance(value, list | tuple):
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def dotted(loc: Location) -> str:
    """`('strategies', 'vote', 'members', 0)` → `strategies.vote.members[0]`."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def accepted(error: ErrorDetails) -> str:
    """What the value should have been, in words."""
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "missing":
        return "required"
    if kind in _TYPES:
        return "expected " + _TYPES[kind]
    if kind in ("literal_error", "enum"):
        options = str(ctx.get("expected", "")).replace(" or ", ", ")
        return f"expected one of {options}"
    bounds = {
        "greater_than": ("more than", "gt"),
        "greater_than_equal": ("at least", "ge"),
        "less_than": ("less than", "lt"),
        "less_than_equal": ("at most", "le"),
    }
    if kind in bounds:
        words, key = bounds[kind]
        return f"expected {words} {_number(ctx.get(key))}"
    if kind == "string_too_short":
        return f"expected at least {_count(ctx.get('min_length'), 'character')}"
    if kind == "string_too_long":
        return f"expected at most {_count(ctx.get('max_length'), 'character')}"
    if kind == "too_short":
        return f"expected at least {_count(ctx.get('min_length'), 'item')}"
    if kind == "too_long":
        return f"expected at most {_count(ctx.get('max_length'), 'item')}"
    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern", ""))
        if pattern == r"\S":
            return "expected some text, not only white space"
        return f"expected text matching {pattern}"
    if kind == "extra_forbidden":
        return "not a known key"  # (its value is not shown: a key pasted into the wrong place)
    if kind == "union_tag_invalid":
        return f"expected one of {ctx.get('expected_tags')}"
    if kind == "union_tag_not_found":
        return f"expected a '{ctx.get('discriminator', 'kind')}' key".replace("''", "'")
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message[:1].lower() + message[1:]


def given(error: ErrorDetails, *, echo: bool = True) -> str:
    """What was given, as the message shows it: a length for a text or list that is too long or short."""
    kind, value = error["type"], error.get("input")
    if kind == "missing":
        return "missing"
    if not echo:
        return "(value not shown)"
    if kind in ("string_too_long", "string_too_short") and isinstance(value, str) and value:
        return _count(len(value), "character")
    if kind in ("too_long", "too_short") and isinstance(value, list | tuple | dict):
        return _count(len(value), "item")
    return shown(value)


def problems_of(
    exc: ValidationError, where: Callable[[Location], str] = dotted, *, echo: bool = True
) -> list[str]:
    """One line per error of `exc`, each located by `where` (the field's name in the caller's terms).

    A custom validator's own message (it already says what is wrong) is kept as it is, after `where`.
    """
    lines = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        if error["type"] == "extra_forbidden":
            lines.append(f"{where(loc)}: {accepted(error)}")
        elif error["type"] in ("value_error", "assertion_error"):
            lines.append(f"{where(loc)}: {accepted(error)}" if loc else accepted(error))
        else:
            lines.append(problem(where(loc), given(error, echo=echo), accepted(error)))
    return lines


def joined(lines: Sequence[str]) -> str:
    """Several problems as one message: one per line after the first, the first on its own."""
    return lines[0] if len(lines) == 1 else "\n".join(lines)


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _count(n: Any, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
