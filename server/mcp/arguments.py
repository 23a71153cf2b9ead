"""Tool arguments checked before a tool runs, every refusal in one voice (`config.problems`).

The SDK validates a call's arguments with the tool's pydantic model and, when they do not fit, returns
pydantic's own dump (input types, a documentation link). `ArgumentCheck` validates the same arguments
with the same model first, so what it accepts is exactly what the SDK accepts, and says what is wrong
the way every other Chorus error does: `deadline_s: 0; expected more than 0`.

The bounds the operator sets in config (`limits:`) are in `BOUNDS`: `publish_bounds` writes them into
the published input schemas and `ArgumentCheck` enforces them, from the same table, so an agent reading
a schema is never refused for a value the schema allows (`tests/server/mcp/test_arguments.py` proves it
for every bound the schemas publish).

Deliberate tool errors reach the client as the SDK words them, `Error executing tool <name>: <message>`;
the prefix is dropped, as Chorus's messages already name the argument.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.types import CallToolResult, TextContent
from pydantic import ValidationError

from chorus_mcp.config.problems import dotted, joined, problem, problems_of, shown
from chorus_mcp.config.schema import ChorusConfig, Limits
from chorus_mcp.server.mcp.specs import names_of_kind
from chorus_mcp.server.mcp.tools import STRATEGY_ARGUMENTS

log = logging.getLogger("chorus.arguments")


@dataclass(frozen=True)
class Bound:
    """An argument bounded by an operator's limit: the schema keyword that publishes it, what is counted."""

    argument: str
    keyword: str
    """`maxLength` (characters), `maxItems` (list items) or `maximum` (a number)."""
    limit: str
    """The field of `Limits` that holds the bound (None there: unbounded)."""
    noun: str = ""
    """What is counted, for a length (`characters`, `models`)."""
    not_for: frozenset[str] = frozenset()
    """Tools whose argument of that name means something else."""


BOUNDS = (
    Bound("prompt", "maxLength", "max_prompt_chars", "character"),
    Bound("input", "maxLength", "max_prompt_chars", "character"),
    Bound("system", "maxLength", "max_prompt_chars", "character"),
    Bound("models", "maxItems", "max_members", "model"),
    Bound("tiers", "maxItems", "max_members", "model"),
    Bound("max_iterations", "maximum", "max_pipeline_iterations"),
    Bound("deadline_s", "maximum", "max_deadline_s"),
    # `start_session`'s cap is for the whole session; `limits.max_cost_usd` bounds each call of it.
    Bound("max_cost_usd", "maximum", "max_cost_usd", not_for=frozenset({"start_session"})),
)


def bound_value(bound: Bound, limits: Limits) -> int | float | None:
    """The bound as the schema publishes it (a JSON number), None when the limit is unset."""
    value = getattr(limits, bound.limit)
    if value is None:
        return None
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    assert isinstance(value, int | float)
    return value


def publish_bounds(server: MCPServer[Any], limits: Limits) -> None:
    """Write the operator's limits into every registered tool's published input schema."""
    for tool in server._tool_manager.list_tools():  # the SDK's registry holds the published schemas
        properties = tool.parameters.get("properties", {})
        for bound in BOUNDS:
            value = bound_value(bound, limits)
            if bound.argument in properties and tool.name not in bound.not_for and value is not None:
                properties[bound.argument][bound.keyword] = value


def past_bound(tool: str, arguments: Mapping[str, Any], limits: Limits) -> str | None:
    """The first argument past an operator's limit, as a message naming it and the limit; else None."""
    for bound in BOUNDS:
        value, limit = arguments.get(bound.argument), bound_value(bound, limits)
        if limit is None or tool in bound.not_for:
            continue
        accepted = f"expected at most {limit} (limits.{bound.limit})"
        if bound.keyword == "maxLength" and isinstance(value, str) and len(value) > limit:
            return problem(bound.argument, f"{len(value)} {bound.noun}s", accepted)
        if bound.keyword == "maxItems" and isinstance(value, list) and len(value) > limit:
            return problem(bound.argument, f"{len(value)} {bound.noun}s", accepted)
        number = _number(value)
        if bound.keyword == "maximum" and number is not None and number > Decimal(str(limit)):
            return problem(bound.argument, shown(value), accepted)
    return None


def refusal(server: MCPServer[Any], limits: Limits, params: Mapping[str, Any]) -> str | None:
    """Why the `tools/call` with these params cannot run as asked; None when its arguments are fine
    (an unknown tool or malformed params are the SDK's to answer)."""
    name, arguments = params.get("name"), params.get("arguments")
    if arguments is None:
        arguments = {}
    if not isinstance(name, str) or not isinstance(arguments, Mapping):
        return None
    tool = server._tool_manager.get_tool(name)
    if tool is None:
        return None
    for field, value in arguments.items():
        # Before the model: NaN fails its bounds with a misleading "expected more than 0", infinity passes.
        if isinstance(value, float) and not math.isfinite(value):
            return problem(field, shown(value), "expected a finite number")
    try:
        # The very validation the SDK runs next, so both accept exactly the same arguments.
        tool.fn_metadata.validate_arguments(dict(arguments))
    except ValidationError as exc:
        return joined(problems_of(exc, dotted))
    return past_bound(name, arguments, limits)


class ArgumentCheck:
    """Server middleware: a `tools/call` whose arguments do not fit is refused with a message naming each
    argument, what was given and what is accepted; deliberate tool errors lose the SDK's prefix."""

    def __init__(self, server: MCPServer[Any], limits: Limits) -> None:
        self._server = server
        self._limits = limits

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        params = ctx.params
        if ctx.method != "tools/call" or not isinstance(params, Mapping):
            return await call_next(ctx)
        problem_text = refusal(self._server, self._limits, params)
        if problem_text is not None:
            log.info("tool call refused: %s", problem_text)
            return CallToolResult(content=[TextContent(type="text", text=problem_text)], is_error=True)
        return _unprefixed(await call_next(ctx), str(params.get("name")))


def publish_strategy_names(server: MCPServer[Any], config: ChorusConfig) -> None:
    """Publish the configured strategies each orchestration tool accepts as its argument's `enum`: an
    agent sees which names it may pass, and `ask --strategy` picks the tool from `tools/list` alone."""
    for name, (argument, kind) in STRATEGY_ARGUMENTS.items():
        tool = server._tool_manager.get_tool(name)
        names = names_of_kind(config, kind)
        if tool is not None and names and argument in tool.parameters.get("properties", {}):
            tool.parameters["properties"][argument]["enum"] = names


def check_tool_arguments(server: MCPServer[Any], config: ChorusConfig) -> None:
    """Publish the limits and strategy names in the tools' schemas and install `ArgumentCheck` (after
    the tools are registered, before any other argument guard, so its refusals are the ones a caller
    sees)."""
    publish_bounds(server, config.limits)
    publish_strategy_names(server, config)
    server.middleware.append(ArgumentCheck(server, config.limits))


def _unprefixed(result: HandlerResult, tool: str) -> HandlerResult:
    """`result` without the SDK's `Error executing tool <name>: ` before a deliberate error's message.

    The result arrives shaped for the wire (a dict with `isError` and `content`)."""
    prefix = f"Error executing tool {tool}: "
    if not isinstance(result, dict) or result.get("isError") is not True:
        return result
    content = result.get("content")
    first = content[0] if isinstance(content, list) and content else None
    if not isinstance(first, dict) or not str(first.get("text", "")).startswith(prefix):
        return result
    assert isinstance(content, list)
    return {**result, "content": [{**first, "text": first["text"][len(prefix) :]}, *content[1:]]}


def _number(value: object) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return Decimal(str(value))
