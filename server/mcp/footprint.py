"""Keeping the tool definitions small: clients put every one of them into the model's context.

pydantic's JSON Schemas are written for validators, not for a model's context window: a `title` on
every property, `anyOf: [X, {type: null}]` plus `default: null` for every optional parameter, `$defs`
for every nested model, and the output's six-way `decisions` union spelled out in full — about 8,000
tokens for Chorus's tools. `compact_tools` rewrites what a server publishes into the same contract,
minus that weight (~2,300 tokens):

- input schemas: titles and `null` defaults dropped; an optional parameter is published as its type
  (`null` is still accepted: the server validates arguments with the original pydantic model);
- output schemas: `$defs` inlined; no titles, descriptions or defaults; nullable fields as their type
  (results are sent without `null` values). The root lists every field; a nested object (a call record,
  a decision, the totals) is published as an object, fields unlisted: all four orchestration tools
  repeat this schema, and listing a call record's and a decision's fields cost ~90 tokens a tool for
  what every result shows anyway. `StrategyResult` (strategies/core/result.py) is the full contract.

Nothing here changes what a tool accepts or returns: a schema only gets looser, never stricter, and the
SDK client checks every structured result against it in the tests. `tests/server/mcp/test_footprint.py`
keeps the `tools/list` result a model reads (icons apart) under its token budget.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from mcp.server.mcpserver import MCPServer
from pydantic import BaseModel, TypeAdapter

TOOLS_LIST_BUDGET = 2_500
"""o200k_base tokens for the whole `tools/list` result."""

_DROPPED = ("title", "default", "discriminator")


def compact_tools(server: MCPServer[Any]) -> None:
    """Rewrite every registered tool's published schemas in place (call after all tools are registered)."""
    for tool in server._tool_manager.list_tools():  # the SDK's registry holds the published schemas
        tool.parameters = compact_schema(tool.parameters)
        output = tool.fn_metadata.output_schema
        if output is not None:
            # The SDK reads these fields live; `Tool.output_schema` caches the first read.
            tool.fn_metadata.output_schema = compact_schema(output, output=True)
            tool.__dict__.pop("output_schema", None)


def publish_output_schema(server: MCPServer[Any], tools: Iterable[str], model: type[BaseModel]) -> None:
    """Publish `model`'s (compacted) schema as these tools' `outputSchema`.

    The tools are declared as returning a plain `CallToolResult`, so the SDK derives no schema of its own:
    deriving `StrategyResult`'s takes ~0.1 s a tool at start-up (the same schema four times, thrown away
    by `compact_tools` anyway), and the SDK would then validate every result against the model again,
    though it was built from a validated `StrategyResult`. Clients still check results against it.
    """
    schema = output_schema_of(model)
    for name in tools:
        tool = server._tool_manager.get_tool(name)
        if tool is None:
            raise ValueError(f"no tool {name!r} to publish an output schema for")
        tool.fn_metadata.output_schema = schema
        tool.__dict__.pop("output_schema", None)


@functools.cache
def output_schema_of(model: type[BaseModel]) -> dict[str, Any]:
    """`model`'s JSON Schema, compacted for an `outputSchema` (computed once)."""
    return compact_schema(TypeAdapter(model).json_schema(), output=True)


def compact_schema(schema: dict[str, Any], *, output: bool = False) -> dict[str, Any]:
    """`schema` compacted as the module docstring says (`output=True` for an output schema)."""
    compacted = _Compactor(schema.get("$defs", {}), output).node(schema, level=0)
    assert isinstance(compacted, dict)
    return compacted


class _Compactor:
    def __init__(self, definitions: dict[str, Any], output: bool) -> None:
        self.definitions = definitions
        self.output = output

    def node(self, node: Any, level: int, refs: int = 0) -> Any:
        """`level` counts objects entered (0 at the root); `refs` guards against a recursive `$ref`."""
        if isinstance(node, list):
            return [self.node(item, level, refs) for item in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node and refs < 8:
            target = self.definitions.get(str(node["$ref"]).rsplit("/", 1)[-1], {})
            return self.node({**target, **{k: v for k, v in node.items() if k != "$ref"}}, level, refs + 1)
        options = node.get("anyOf") or node.get("oneOf")
        if isinstance(options, list):
            kept = [option for option in options if option != {"type": "null"}]
            rest = {k: v for k, v in node.items() if k not in ("anyOf", "oneOf")}
            if len(kept) == 1:
                return self.node({**kept[0], **rest}, level, refs)
            if all(set(option) == {"type"} for option in kept):
                # Bare types (a Decimal is a number or a string): one `type` list.
                return self.node({**rest, "type": [option["type"] for option in kept]}, level, refs)
            if "discriminator" in node:
                if self.output and level > 0:
                    return {"type": "object"}
                return self.tagged_union(kept, level, refs)
            node = {**rest, "anyOf": kept}
        compacted: dict[str, Any] = {}
        for key, value in node.items():
            if key in _DROPPED or key == "$defs" or (key == "description" and self.output):
                continue
            if self.output and level > 0 and key in ("properties", "required", "additionalProperties"):
                continue  # a nested object is published as an object: its fields are in every result
            if key == "properties" and isinstance(value, dict):
                fields = {name: self.node(sub, level + 1, refs) for name, sub in value.items()}
                if fields or not self.output:  # an input schema keeps `properties: {}` (clients expect it)
                    compacted[key] = fields
            else:
                compacted[key] = self.node(value, level, refs)
        return compacted

    def tagged_union(self, options: list[Any], level: int, refs: int) -> dict[str, Any]:
        """One object: its `kind` names the variant; the fields every variant requires are listed."""
        kinds: list[Any] = []
        required: list[str] | None = None
        for option in options:
            resolved = self.node(option, level, refs)
            kind = resolved.get("properties", {}).get("kind", {})
            kinds.extend(kind.get("enum", [kind["const"]] if "const" in kind else []))
            names = [name for name in resolved.get("required", []) if name != "kind"]
            required = names if required is None else [name for name in required if name in names]
        shared = {name: {"type": "string"} for name in required or []}
        return {
            "type": "object",
            "properties": {"kind": {"enum": kinds}, **shared},
            "required": ["kind", *(required or [])],
        }
