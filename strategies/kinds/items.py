"""Reading the list a fan-out stage maps over from an earlier stage's answer.

The answer is a model's text, so it is data to read carefully: a JSON array may sit in a ``` fence or
after a sentence of prose, and a model asked for lines may number them or bullet them. Reading never
raises: it says what it found (`ItemList`), or why there is no list (`ItemList.problem`), and the
fan-out turns that into an outcome naming its stage.

JSON: the longest top-level array in the text that decodes is the list (a short bracket in prose such
as `[1]` loses to the real outline). Strings are kept as they are (stripped; empty ones dropped), other
values are written back as compact JSON, so an array of objects maps over its objects.

Lines: every non-empty line is an item, with a leading list marker (`-`, `*`, `+`, `•`, `1.`, `1)`,
`(1)`) and code-fence lines (```) removed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from chorus_mcp.strategies.core.spec import ItemFormat

_MARKER = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)]|\(\d{1,3}\))\s+")
_MAX_ATTEMPTS = 2_000
"""Decoding attempts (one per `[`); past it the text is read as holding no array, and reading stays
linear in the answer's length."""


@dataclass(frozen=True)
class ItemList:
    """What was read: the items and how, or the reason there is no list."""

    items: list[str] = field(default_factory=list)
    how: str = ""
    """`a JSON array` or `lines`: how the items were read (for the decision note)."""
    problem: str | None = None
    """Set when there is no list to map over: what the text held instead."""


def read_items(text: str, parse: ItemFormat) -> ItemList:
    """The items of `text` read as `parse` says; an empty `items` with `problem` set when there are none."""
    if parse in ("json", "auto"):
        array = _longest_array(text)
        if array is not None:
            items = [item for item in (_as_text(value) for value in array) if item]
            if not items:
                return ItemList(how="a JSON array", problem="a JSON array with no items")
            return ItemList(items=items, how="a JSON array")
        if parse == "json":
            return ItemList(problem=f"no JSON array (its answer began {_opening(text)})")
    items = [line for line in (_item_line(raw) for raw in text.splitlines()) if line]
    if not items:
        return ItemList(how="lines", problem="no non-empty line")
    return ItemList(items=items, how="lines")


def _longest_array(text: str) -> list[object] | None:
    decoder = json.JSONDecoder()
    best: tuple[int, list[object]] | None = None
    position = text.find("[")
    attempts = 0
    while position != -1 and attempts < _MAX_ATTEMPTS:
        attempts += 1
        try:
            value, end = decoder.raw_decode(text, position)
        except ValueError:
            position = text.find("[", position + 1)
            continue
        if isinstance(value, list) and (best is None or end - position > best[0]):
            best = (end - position, value)
        # What is inside a decoded array belongs to it: go on after its end.
        position = text.find("[", end)
    return None if best is None else best[1]


def _as_text(value: object) -> str:
    if isinstance(value, str):
        return value.strip()
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def _item_line(raw: str) -> str:
    line = raw.strip()
    if line.startswith("```"):
        return ""
    return _MARKER.sub("", line, count=1).strip()


def _opening(text: str) -> str:
    opening = " ".join(text.split())
    if not opening:
        return "empty"
    return repr(opening if len(opening) <= 60 else opening[:57] + "...")
