"""Tool arguments through a real MCP client session: every refusal in one voice, and the published bounds
are the enforced ones, whatever the config's limits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.client.stdio import stdio_client
from mcp.types import CallToolResult, TextContent

from chorus_mcp.config.loader import parse_config
from chorus_mcp.config.schema import ChorusConfig
from chorus_mcp.server.app import build_server
from chorus_mcp.server.mcp.arguments import BOUNDS, bound_value
from chorus_mcp.strategies.models.testing import ScriptedClient
from tests.server.conftest import SERVER_TEST_CONFIG
from tests.support.servers import server_env, stdio_server, write_config

pytestmark = pytest.mark.anyio

MODES = ["auto", "legacy"]
RAW_DUMP = ("validation error", "errors.pydantic.dev", "input_value", "type=", "Error executing tool", "http")
"""What pydantic's or the SDK's own wording gives away."""


def _factory(alias: str, _entry: Any) -> ScriptedClient:
    return ScriptedClient(alias, "B")


def _text(result: CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, TextContent)
    return block.text


def _config(limits: dict[str, Any] | None = None) -> ChorusConfig:
    return parse_config(f"{SERVER_TEST_CONFIG}\nlimits: {json.dumps(limits or {})}", source="t.yaml", env={})


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("tool", "arguments", "message"),
    [
        ("ensemble_vote", {"prompt": 42}, "prompt: 42; expected a string"),
        ("ensemble_vote", {}, "prompt: missing; required"),
        ("ensemble_vote", {"prompt": ""}, "prompt: '' (empty); expected at least 1 character"),
        ("route_specialist", {"prompt": " \n"}, "prompt: ' \\n'; expected some text, not only white space"),
        ("ensemble_vote", {"prompt": "q", "deadline_s": 0}, "deadline_s: 0; expected more than 0"),
        ("cascade_ask", {"prompt": "q", "deadline_s": -2.5}, "deadline_s: -2.5; expected more than 0"),
        ("ensemble_vote", {"prompt": "q", "deadline_s": "abc"}, "deadline_s: 'abc'; expected a number"),
        (
            "ensemble_vote",
            {"prompt": "q", "deadline_s": 301},
            "deadline_s: 301; expected at most 300.0 (limits.max_deadline_s)",
        ),
        ("ensemble_vote", {"prompt": "q", "models": "cheap"}, "models: 'cheap'; expected a list"),
        ("ensemble_vote", {"prompt": "q", "models": ["cheap", 7]}, "models[1]: 7; expected a string"),
        (
            "ensemble_vote",
            {"prompt": "q", "aggregation": "loudest"},
            "aggregation: 'loudest'; expected one of 'majority', 'weighted', 'synthesis', 'ranking', "
            "'debate'",
        ),
        ("ensemble_vote", {"prompt": "q", "quorum": 0}, "quorum: 0; expected at least 1"),
        ("ensemble_vote", {"prompt": "q", "cache": "maybe"}, "cache: 'maybe'; expected true or false"),
        ("cascade_ask", {"prompt": "q", "threshold": 2}, "threshold: 2; expected at most 1"),
        (
            "run_pipeline",
            {"input": "t", "max_iterations": 1.5},
            "max_iterations: 1.5; expected a whole number",
        ),
        (
            "run_pipeline",
            {"input": "t", "max_iterations": 6},
            "max_iterations: 6; expected at most 5 (limits.max_pipeline_iterations)",
        ),
        ("start_session", {"max_cost_usd": -1}, "max_cost_usd: -1; expected at least 0"),
        ("end_session", {}, "session_id: missing; required"),
        (
            "ensemble_vote",
            {"prompt": "q", "models": ["cheap"] * 9},
            "models: 9 models; expected at most 8 (limits.max_members)",
        ),
        (
            "ensemble_vote",
            {"prompt": 1, "deadline_s": 0},
            "prompt: 1; expected a string\ndeadline_s: 0; expected more than 0",
        ),
    ],
)
async def test_a_bad_argument_is_refused_in_one_line_naming_it_what_was_given_and_what_is_accepted(
    tool: str, arguments: dict[str, Any], message: str, mode: str
) -> None:
    async with Client(build_server(_config(), _factory), mode=mode) as client:  # type: ignore[arg-type]
        result = await client.call_tool(tool, arguments)
    assert result.is_error and _text(result) == message


async def test_a_given_text_is_cut_short_and_its_secrets_removed() -> None:
    secret = "sk-" + "a" * 40
    async with Client(build_server(_config(), _factory)) as client:
        result = await client.call_tool("ensemble_vote", {"prompt": "q", "aggregation": secret + "b" * 200})
    text = _text(result)
    assert result.is_error and text.startswith("aggregation: '[REDACTED]") and secret not in text
    assert len(text) < 160


async def test_errors_the_tools_raise_themselves_come_without_the_sdk_prefix() -> None:
    async with Client(build_server(_config(), _factory)) as client:
        strategy = await client.call_tool("ensemble_vote", {"prompt": "q", "strategy": "nope"})
        pipeline = await client.call_tool("run_pipeline", {"input": "q", "pipeline": "ensemble"})
        override = await client.call_tool("ensemble_vote", {"prompt": "q", "aggregation": "synthesis"})
    assert (
        _text(strategy)
        == "strategy: unknown strategy 'nope'; expected one of ensemble (the configured ensemble strategies)"
    )
    assert (
        _text(pipeline) == "pipeline: 'ensemble' is an ensemble strategy; this tool needs a pipeline strategy"
    )
    assert _text(override) == "aggregation 'synthesis' needs a 'judge' model"
    for result in (strategy, pipeline, override):
        assert result.is_error and not any(fragment in _text(result) for fragment in RAW_DUMP)


# -- schema bounds = enforced bounds ---------------------------------------------------------------

LIMITS = {
    "default": {},
    "lowered": {
        "max_members": 2,
        "max_prompt_chars": 50,
        "max_pipeline_iterations": 1,
        "max_deadline_s": 20.0,
        "max_cost_usd": "0.5",
    },
    "raised": {
        "max_members": 12,
        "max_prompt_chars": 300_000,
        "max_pipeline_iterations": 8,
        "max_deadline_s": 900.0,
        "max_cost_usd": "40",
    },
}
BASE = {"prompt": "q", "input": "q", "session_id": "s" * 16}
"""A valid value of each required argument."""
KEYWORDS = ("maximum", "minimum", "exclusiveMinimum", "maxLength", "minLength", "maxItems")


def _values(keyword: str, bound: Any, prop: dict[str, Any]) -> tuple[Any, Any]:
    """(a value on the bound's accepted side, right at it where the bound is inclusive; one past it)."""
    if keyword == "maxLength":
        return "x" * bound, "x" * (bound + 1)
    if keyword == "minLength":
        return "x" * bound, "x" * (bound - 1)
    if keyword == "maxItems":
        return ["cheap"] * bound, ["cheap"] * (bound + 1)
    step = 1 if prop.get("type") == "integer" else 0.5
    if keyword == "maximum":
        return bound, bound + step
    if keyword == "minimum":
        return bound, bound - step
    assert keyword == "exclusiveMinimum"
    return bound + step, bound


def _refused_for(result: CallToolResult, argument: str) -> bool:
    """Refused by the argument check, in its voice: `<argument>: <given>; expected ...`."""
    text = _text(result)
    return bool(result.is_error) and text.startswith(f"{argument}: ") and "; expected " in text


@pytest.mark.parametrize("limits", list(LIMITS))
async def test_every_published_bound_is_accepted_on_it_and_refused_past_it(limits: str) -> None:
    config = _config(LIMITS[limits])
    checked: list[str] = []
    async with Client(build_server(config, _factory)) as client:
        tools = (await client.list_tools()).tools
        for tool in tools:
            properties: dict[str, Any] = tool.input_schema.get("properties", {})
            base = {name: BASE[name] for name in tool.input_schema.get("required", [])}
            for argument, prop in properties.items():
                for keyword in KEYWORDS:
                    if keyword not in prop:
                        continue
                    inside, past = _values(keyword, prop[keyword], prop)
                    accepted = await client.call_tool(tool.name, {**base, argument: inside})
                    refused = await client.call_tool(tool.name, {**base, argument: past})
                    where = f"{tool.name}.{argument} {keyword} {prop[keyword]}"
                    assert not _refused_for(accepted, argument), f"{where}: {_text(accepted)}"
                    assert _refused_for(refused, argument), f"{where}: {refused}"
                    assert not any(fragment in _text(refused) for fragment in RAW_DUMP), _text(refused)
                    checked.append(f"{tool.name}.{argument}.{keyword}")
    # The operator's bounds are among those published and checked, with the config's values.
    published = {(t.name, a): p for t in tools for a, p in t.input_schema.get("properties", {}).items()}
    for bound in BOUNDS:
        value = bound_value(bound, config.limits)
        for (tool_name, argument), prop in published.items():
            if argument != bound.argument:
                continue
            if value is None or tool_name in bound.not_for:
                assert bound.keyword not in prop or tool_name in bound.not_for, (tool_name, argument)
            else:
                assert prop[bound.keyword] == value, (tool_name, argument, prop)
                assert f"{tool_name}.{argument}.{bound.keyword}" in checked
    assert len(checked) >= 30


STRATEGY_ARGUMENT = {"run_pipeline": ("pipeline", "input")}
"""Where a tool's strategy argument and its text differ from `strategy` and `prompt`."""


async def test_each_tool_publishes_the_strategies_it_accepts_and_refuses_the_others() -> None:
    more = "  also: {kind: strategy, name: ensemble}\n  careful: {kind: cascade, tiers: [strong]}\n"
    config = parse_config(SERVER_TEST_CONFIG.replace("defaults:", more + "defaults:"), env={})
    async with Client(build_server(config, _factory)) as client:
        listed = {tool.name: tool.input_schema["properties"] for tool in (await client.list_tools()).tools}
        published = {}
        for tool in ("ensemble_vote", "cascade_ask", "route_specialist", "run_pipeline"):
            argument, field = STRATEGY_ARGUMENT.get(tool, ("strategy", "prompt"))
            published[tool] = listed[tool][argument]["enum"]
            for name in published[tool]:
                accepted = await client.call_tool(tool, {field: "q", argument: name})
                said = _text(accepted)
                assert not accepted.is_error or not said.startswith(f"{argument}:"), said
            other = "cascade" if tool == "route_specialist" else "route"
            refused = await client.call_tool(tool, {field: "q", argument: other})
            said = _text(refused)
            assert refused.is_error and said.startswith(f"{argument}: '{other}' is a"), said
    assert published == {
        "ensemble_vote": ["also", "ensemble"],
        "cascade_ask": ["careful", "cascade"],
        "route_specialist": ["route"],
        "run_pipeline": ["pipeline"],
    }


@pytest.mark.slow
async def test_over_stdio_a_bad_argument_is_refused_in_the_same_voice(tmp_path: Path) -> None:
    config = write_config(tmp_path / "chorus.yaml", {"models": {"a": {"model": "openai/a"}}})
    params = stdio_server(config, server_env("unused"))
    async with Client(stdio_client(params)) as client:
        wrong = await client.call_tool("ensemble_vote", {"prompt": "q", "deadline_s": 0})
        empty = await client.call_tool("cascade_ask", {"prompt": ""})
    assert wrong.is_error and _text(wrong) == "deadline_s: 0; expected more than 0"
    assert empty.is_error and _text(empty) == "prompt: '' (empty); expected at least 1 character"
