"""Safe prompt templates, and the request text they are built from.

Pipeline prompts are written in config, but the values put into them (the user's request, model
outputs) are untrusted. `str.format` would let a template reach attributes (`{input.__class__}`),
index into values, apply format specs and conversions; and running `format` twice would re-parse
braces that came from a value. So templates here know exactly one thing: a plain `{name}` field.
`{{` and `}}` are literal braces. Everything is parsed once, and values are inserted as they are.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import NoReturn

from chorus_mcp.strategies.core.completion import CompletionRequest, Message
from chorus_mcp.strategies.core.errors import UserInputError

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|\{|\}")
"""An escaped brace, a `{field}`, or a lone brace (which is an error)."""


@dataclass(frozen=True)
class _Field:
    name: str


Part = str | _Field


def parse(template: str, *, where: str) -> list[Part]:
    """Split a template into literal text and fields; raise `UserInputError` for anything but `{name}`.

    `where` says whose template it is (e.g. "stage 'draft'"), so the message points at the config.
    """
    parts: list[Part] = []
    position = 0
    for match in _TOKEN.finditer(template):
        parts.append(template[position : match.start()])
        position = match.end()
        token = match.group(0)
        if token in ("{{", "}}"):
            parts.append(token[0])
        elif match.group(1) is None:
            raise UserInputError(
                f"{where}: unmatched {token!r} at position {match.start()} in the prompt template "
                "(write '{{' or '}}' for a literal brace)"
            )
        else:
            parts.append(_Field(_check_field(match.group(1), where)))
    parts.append(template[position:])
    return [p for p in parts if p != ""]


def _check_field(field: str, where: str) -> str:
    if _NAME.fullmatch(field):
        return field
    # Say what was attempted: these are the format-string features a template must not use.
    if field == "" or field.isdigit():
        why = "positional fields are not supported"
    elif "!" in field:
        why = "conversions (!r, !s, !a) are not supported"
    elif ":" in field:
        why = "format specs are not supported"
    elif "." in field or "[" in field:
        why = "attribute access and indexing are not supported"
    else:
        why = "a field must be a plain name"
    raise UserInputError(f"{where}: template field {{{field}}} is not allowed: {why}; use a plain {{name}}")


def fields_of(template: str, *, where: str) -> list[str]:
    """The field names a template uses, in order of first use (validates the template)."""
    names: list[str] = []
    for part in parse(template, where=where):
        if isinstance(part, _Field) and part.name not in names:
            names.append(part.name)
    return names


def check_fields(template: str, available: Iterable[str], *, where: str) -> None:
    """Raise `UserInputError` naming the first field that is not among `available`, listing those."""
    allowed = list(available)
    for name in fields_of(template, where=where):
        if name not in allowed:
            _unknown(name, allowed, where)


def render(template: str, values: Mapping[str, str], *, where: str) -> str:
    """Fill a template's fields with `values`, inserted literally (never parsed again)."""
    parts = parse(template, where=where)
    for part in parts:
        if isinstance(part, _Field) and part.name not in values:
            _unknown(part.name, values, where)
    return "".join(p if isinstance(p, str) else values[p.name] for p in parts)


def _unknown(name: str, available: Iterable[str], where: str) -> NoReturn:
    listed = ", ".join(available) or "none"
    raise UserInputError(f"{where}: unknown template field {{{name}}}; available: {listed}")


def latest_user_text(request: CompletionRequest) -> str:
    """The text of the latest user message: what the caller is asking now."""
    for message in reversed(request.messages):
        if message.role == "user":
            return message.content
    return ""


def with_prompt(request: CompletionRequest, prompt: str) -> CompletionRequest:
    """The request with its latest user message replaced by `prompt` (system prompt and history kept)."""
    messages = list(request.messages)
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].role == "user":
            messages[index] = Message(role="user", content=prompt)
            break
    else:
        messages.append(Message(role="user", content=prompt))
    return request.model_copy(update={"messages": tuple(messages)})
