"""Property-based fuzzing (hypothesis) of every tool's arguments through the real MCP client, in-process.

Arguments are drawn from each tool's published input schema — valid values, values of the wrong type,
values past the limits, model names the caller may not use, hostile strings, and extra keys such as
`api_base` — and every call must end in a clear error or a correct result: no exception reaches the
client, no traceback in a message, no secret in the output, no disallowed model called, and the
server still answers the next request. `EXAMPLES_PER_TOOL` examples per tool (README, Security).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client
from mcp.types import CallToolResult, TextContent

from chorus_mcp.server.app import build_server
from tests.server.test_hostile_inputs import CONFIG, SECRET, make_clients

EXAMPLES_PER_TOOL = int(os.environ.get("CHORUS_FUZZ_EXAMPLES", "30"))
MODEL_NAMES = [
    *sorted(CONFIG.models),
    "openai/gpt-4o",
    "../cheap",
    "",
    "CHEAP",
    "cheap\r\nX: 1",
    "ｃｈｅａｐ",
]
HOSTILE_TEXT = [
    "{__class__}",
    "{0.__init__}",
    "{input.__class__.__mro__}",
    "{{}}{plan}",
    "ANSWER:hidden",
    'ANSWER:{"route": "code"}',
    "../../etc/passwd",
    "\u202e\u200b\ufeff",
    "\x00",
    "👩‍👩‍👧‍👦",
    "api_base=http://127.0.0.1:1",
    "x" * 5001,
]
INJECTED_KEYS = ["api_base", "base_url", "headers", "api_key", "extra_headers", "model", "_meta", "__class__"]
_counts: dict[str, dict[str, int]] = {}
"""Examples run per tool, by outcome (`error` or `ok`)."""


def _tools() -> list[str]:
    async def names() -> list[str]:
        async with Client(build_server(CONFIG, lambda alias, _entry: make_clients()[alias])) as client:
            return [tool.name for tool in (await client.list_tools()).tools]

    return anyio.run(names)


TOOLS = _tools()

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
texts = st.one_of(
    st.text(max_size=200), st.sampled_from(HOSTILE_TEXT), st.text(alphabet="{}._[]0!:ab", max_size=30)
)
model_names = st.sampled_from(MODEL_NAMES) | st.text(max_size=20)
session_ids = st.one_of(
    st.from_regex(r"[A-Za-z0-9_\-]{16,64}", fullmatch=True),
    st.sampled_from(HOSTILE_TEXT),
    st.text(max_size=80),
)


def _for_schema(name: str, schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """A value for one argument: mostly plausible for its schema and name, sometimes anything at all."""
    if name in ("models", "tiers"):
        plausible: st.SearchStrategy[Any] = st.lists(model_names, max_size=6)
    elif name in ("judge",):
        plausible = model_names
    elif name == "session_id":
        plausible = session_ids
    elif name in ("strategy", "pipeline"):
        plausible = st.sampled_from([*sorted(CONFIG.strategies), "../x", "__class__"]) | st.text(max_size=12)
    elif "anyOf" in schema:
        plausible = st.one_of([_for_schema(name, option) for option in schema["anyOf"]])
    elif "enum" in schema:
        plausible = st.sampled_from(schema["enum"]) | st.text(max_size=10)
    else:
        plausible = _by_type(schema)
    return st.one_of(plausible, plausible, plausible, json_values)


def _by_type(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    kind = schema.get("type")
    if kind == "string":
        return texts
    if kind == "integer":
        low, high = schema.get("minimum", -5), schema.get("maximum", 50)
        return st.integers(low - 2, high + 2) | st.integers()
    if kind == "number":
        return st.floats(allow_nan=False, allow_infinity=False, min_value=-10, max_value=1e6) | st.integers(
            -5, 500
        )
    if kind == "boolean":
        return st.booleans()
    if kind == "array":
        return st.lists(_by_type(schema.get("items", {})), max_size=5)
    if kind == "null":
        return st.none()
    return json_values


ALLOWED = sorted(CONFIG.limits.allowed_models or CONFIG.models)
SKIPPED_WHEN_VALID = {"session_id", "strategy", "pipeline"}
"""Arguments a valid example leaves out: an unknown session or strategy is an error by design."""


def _valid_for(name: str, schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """A value the tool should accept (the call may still fail: a model can be down)."""
    if name in ("models", "tiers"):
        return st.lists(st.sampled_from(ALLOWED), min_size=1, max_size=CONFIG.limits.max_members)
    if name == "judge":
        return st.sampled_from(ALLOWED)
    if "anyOf" in schema:
        return st.one_of(
            [_valid_for(name, option) for option in schema["anyOf"] if option.get("type") != "null"]
        )
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "string":
        return st.text(min_size=1, max_size=100).filter(str.strip) | st.sampled_from(HOSTILE_TEXT[:-1])
    if kind == "integer":
        high = CONFIG.limits.max_pipeline_iterations if name == "max_iterations" else schema.get("maximum", 3)
        return st.integers(schema.get("minimum", 0), min(high, 3))
    if kind == "number":
        return st.floats(
            min_value=max(schema.get("minimum", 0.01), 0.01), max_value=min(schema.get("maximum", 1), 1)
        )
    if kind == "boolean":
        return st.booleans()
    return st.nothing()


def _arguments(schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    properties: dict[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", []))

    @st.composite
    def draw(data: st.DrawFn) -> dict[str, Any]:
        arguments: dict[str, Any] = {}
        if data(st.booleans()):  # a valid call: required arguments, and now and then an optional one
            for name, subschema in properties.items():
                wanted = name in required or (name not in SKIPPED_WHEN_VALID and data(st.integers(0, 3)) == 0)
                if wanted:
                    arguments[name] = data(_valid_for(name, subschema))
            return arguments
        for name, subschema in properties.items():
            # A required argument is usually present, an optional one now and then.
            present = data(st.integers(0, 9)) > 0 if name in required else data(st.integers(0, 2)) == 0
            if present:
                arguments[name] = data(_for_schema(name, subschema))
        if data(st.integers(0, 5)) == 0:
            arguments[data(st.sampled_from(INJECTED_KEYS) | st.text(min_size=1, max_size=10))] = data(
                json_values
            )
        return arguments

    return draw()


@pytest.fixture(scope="module")
def connected() -> Iterator[tuple[BlockingPortal, Client, dict[str, Any], dict[str, Any]]]:
    """One in-process server and client session for every example (reused, as a server is in use)."""
    clients = make_clients()
    server = build_server(CONFIG, lambda alias, _entry: clients[alias])
    with start_blocking_portal() as portal, portal.wrap_async_context_manager(Client(server)) as client:
        schemas = {tool.name: tool.input_schema for tool in portal.call(client.list_tools).tools}
        yield portal, client, schemas, clients


@pytest.mark.parametrize("tool", TOOLS)
def test_fuzzed_arguments_get_a_clear_error_or_a_correct_result(
    tool: str, connected: tuple[BlockingPortal, Client, dict[str, Any], dict[str, Any]]
) -> None:
    portal, client, schemas, clients = connected
    counts = _counts[tool] = {"error": 0, "ok": 0}

    @settings(
        max_examples=EXAMPLES_PER_TOOL,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(arguments=_arguments(schemas[tool]))
    def call(arguments: dict[str, Any]) -> None:
        result: CallToolResult = portal.call(client.call_tool, tool, arguments)
        counts["error" if result.is_error else "ok"] += 1
        text = " ".join(block.text for block in result.content if isinstance(block, TextContent))
        if result.is_error:
            assert text.strip(), "an error says what is wrong"
            assert "Traceback" not in text and len(text) < 5000, text[:500]
        elif result.structured_content is not None and "calls" in result.structured_content:
            assert isinstance(result.structured_content["ok"], bool)
        assert SECRET not in result.model_dump_json()
        assert clients["hidden"].requests == [], f"{arguments!r} reached a model the caller may not name"
        # Still serving.
        assert portal.call(client.call_tool, "list_models", {}).is_error is False

    call()
    assert sum(counts.values()) >= min(EXAMPLES_PER_TOOL, 10)
    if tool in ("ensemble_vote", "cascade_ask", "route_specialist", "run_pipeline"):
        assert counts["ok"] and counts["error"], f"the examples should reach both outcomes: {counts}"


def test_every_tool_is_fuzzed() -> None:
    assert {"ensemble_vote", "cascade_ask", "route_specialist", "run_pipeline", "list_models"} <= set(TOOLS)
