"""Regression guards on what Chorus puts into the calling model's context (token counts, not timings)."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from mcp import Client
from mcp.types import TextContent

from chorus_mcp.config.loader import load_config, parse_config
from chorus_mcp.server.app import build_server
from chorus_mcp.server.mcp.footprint import TOOLS_LIST_BUDGET, output_schema_of
from chorus_mcp.server.mcp.icons import ICONS_BUDGET, without_icons
from chorus_mcp.strategies.core.result import StrategyResult
from chorus_mcp.strategies.models.testing import ScriptedClient
from tests.tokens import tokens, wire_tokens

pytestmark = pytest.mark.anyio

RESULT_BUDGET = 800
"""o200k_base tokens for a default `ensemble_vote` result of 5 members answering ~100 words each."""
SHORT_TEXT_BUDGET = 120
"""o200k_base tokens for the text content of a default `ensemble_vote` of 5 members giving short answers:
the answer, who said what, the totals and the session id."""

ANSWER = (
    "The sky looks blue because molecules in the atmosphere scatter short wavelengths of sunlight far more "
    "strongly than long ones, an effect called Rayleigh scattering. Sunlight contains every visible colour, "
    "but blue and violet light is scattered in all directions by nitrogen and oxygen molecules, so wherever "
    "you look away from the sun some of that scattered blue light reaches your eyes. Violet is scattered "
    "even more, yet the sky does not look violet because sunlight contains less of it, some is absorbed high "
    "in the atmosphere, and our eyes are more sensitive to blue. At sunset light crosses more air, so reds "
    "remain."
)
# Five different answers tie; m1's weight breaks the tie (an unresolved tie would be no answer at all).
FIVE_MEMBERS = """
models:
  m1: {model: fake/m1, weight: 1.5}
  m2: {model: fake/m2}
  m3: {model: fake/m3}
  m4: {model: fake/m4}
  m5: {model: fake/m5}
strategies:
  ensemble: {kind: ensemble, members: [m1, m2, m3, m4, m5]}
"""


NAMED = ["gpt-4o-mini", "claude-haiku-4-5", "gemini-2.5-flash", "mistral-small", "llama-3.1-8b"]
"""Five members with names as long as real ones, for the short-answer text."""
SHORT_ANSWERS = ["391", "The answer is 391.", "381", "17 * 23 = 391", "I think it is 389."]
"""Three agree (worded three ways), two differ: three answer groups."""


def _rotated(words: int) -> str:
    split = ANSWER.split()
    return " ".join(split[words:] + split[:words])


async def test_the_tools_list_a_model_reads_stays_within_its_token_budget_and_icons_within_theirs() -> None:
    server = build_server(load_config(None), lambda alias, entry: ScriptedClient(alias, "ok"))

    async with Client(server) as client:
        listed = await client.list_tools()

    names = {tool.name for tool in listed.tools}
    assert {"ensemble_vote", "cascade_ask", "route_specialist", "run_pipeline"} <= names
    assert all(tool.icons for tool in listed.tools)
    # Everything but the icons (which clients only display) is what goes into the model's context.
    read = wire_tokens(without_icons(listed))
    assert read <= TOOLS_LIST_BUDGET
    assert wire_tokens(listed) - read <= ICONS_BUDGET


async def _ensemble_result(arguments: dict[str, Any], *, repeat: bool = False) -> Any:
    assert len(ANSWER.split()) >= 100
    # Five different ~100-word answers, a five-way tie broken by weight: the largest kind of result.
    clients = {f"m{i}": ScriptedClient(f"m{i}", _rotated(3 * i)) for i in range(1, 6)}
    config = parse_config(FIVE_MEMBERS, source="five.yaml", env={})
    server = build_server(config, lambda alias, entry: clients[alias])
    async with Client(server) as client:
        prompt = "Why is the sky blue? About 100 words."
        result = await client.call_tool("ensemble_vote", {"prompt": prompt, **arguments})
        if repeat:  # the same call again: every member answered from the response cache
            result = await client.call_tool("ensemble_vote", {"prompt": prompt, **arguments})
        return result


async def _short_vote_result() -> Any:
    clients = {name: ScriptedClient(name, answer) for name, answer in zip(NAMED, SHORT_ANSWERS, strict=True)}
    models = "".join(f"  {name}: {{model: fake/{name}}}\n" for name in NAMED)
    # Early stop off: all five answer (three agreeing would otherwise cancel whoever is still running).
    ensemble = f"  ensemble: {{kind: ensemble, members: [{', '.join(NAMED)}], early_stop: false}}\n"
    config = parse_config(f"models:\n{models}strategies:\n{ensemble}", source="named.yaml", env={})
    server = build_server(config, lambda alias, entry: clients[alias])
    async with Client(server) as client:
        return await client.call_tool("ensemble_vote", {"prompt": "What is 17 * 23?"})


def _text(result: Any) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))


def text_tokens(result: Any) -> int:
    """Tokens of a tool result's text content (what a client that reads only the text puts in context)."""
    return tokens(_text(result))


async def test_the_summary_text_of_five_short_answers_names_who_said_what_within_its_token_budget() -> None:
    result = await _short_vote_result()

    text = _text(result)
    assert not result.is_error and text.startswith("391\n"), text
    assert "391 ← gpt-4o-mini, claude-haiku-4-5, mistral-small" in text, text
    assert "381 ← gemini-2.5-flash" in text and "389 ← llama-3.1-8b" in text, text
    assert text_tokens(result) <= SHORT_TEXT_BUDGET


async def test_a_default_ensemble_result_of_five_long_answers_stays_within_its_token_budget() -> None:
    result = await _ensemble_result({})

    assert not result.is_error
    assert wire_tokens(result) <= RESULT_BUDGET
    assert all(f"← m{i}" in _text(result) for i in range(1, 6)), "the text says who said what"
    data = result.structured_content
    assert data is not None and len(data["answer"].split()) >= 100, "the final answer is never cut"
    assert len(data["calls"]) == 5 and all(call["answer"].endswith("…") for call in data["calls"])


async def test_the_same_result_answered_from_the_cache_stays_within_the_budget_too() -> None:
    result = await _ensemble_result({}, repeat=True)

    data = result.structured_content
    assert data is not None and all(call.get("cached") for call in data["calls"])
    assert data["totals"]["cached_calls"] == 5
    assert wire_tokens(result) <= RESULT_BUDGET


async def test_detail_full_returns_every_answer_whole() -> None:
    result = await _ensemble_result({"detail": "full"})

    data = result.structured_content
    assert data is not None
    assert all(len(call["answer"].split()) >= 100 for call in data["calls"])
    assert wire_tokens(result) > RESULT_BUDGET


async def test_the_output_schema_lists_every_result_field_and_publishes_nested_records_as_objects() -> None:
    server = build_server(load_config(None), lambda alias, entry: ScriptedClient(alias, "ok"))
    async with Client(server) as client:
        listed = {tool.name: tool for tool in (await client.list_tools()).tools}
    schema = listed["ensemble_vote"].output_schema
    assert schema is not None
    assert set(StrategyResult.model_fields) == set(schema["properties"])
    # Call records, decisions and totals are objects whose fields every result shows: listing them in a
    # schema four tools repeat would cost the model's context more than it tells it.
    assert schema["properties"]["calls"] == {"type": "array", "items": {"type": "object"}}
    assert schema["properties"]["decisions"] == {"type": "array", "items": {"type": "object"}}
    assert schema["properties"]["totals"] == {"type": "object"}


async def test_a_full_result_with_every_kind_of_record_validates_against_the_published_output_schema() -> (
    None
):
    result = await _ensemble_result({"detail": "full"})
    schema = output_schema_of(StrategyResult)

    assert result.structured_content is not None and result.structured_content["decisions"]
    jsonschema.validate(result.structured_content, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**result.structured_content, "calls": ["not a record"]}, schema)
