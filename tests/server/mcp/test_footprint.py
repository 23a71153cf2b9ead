"""Regression guards on what Chorus puts into the calling model's context (token counts, not timings)."""

from __future__ import annotations

from typing import Any

import pytest
from mcp import Client

from chorus_mcp.config.loader import load_config, parse_config
from chorus_mcp.server.app import build_server
from chorus_mcp.server.mcp.footprint import TOOLS_LIST_BUDGET
from chorus_mcp.strategies.models.testing import ScriptedClient
from tests.tokens import wire_tokens

pytestmark = pytest.mark.anyio

RESULT_BUDGET = 800
"""o200k_base tokens for a default `ensemble_vote` result of 5 members answering ~100 words each."""

ANSWER = (
    "The sky looks blue because molecules in the atmosphere scatter short wavelengths of sunlight far more "
    "strongly than long ones, an effect called Rayleigh scattering. Sunlight contains every visible colour, "
    "but blue and violet light is scattered in all directions by nitrogen and oxygen molecules, so wherever "
    "you look away from the sun some of that scattered blue light reaches your eyes. Violet is scattered "
    "even more, yet the sky does not look violet because sunlight contains less of it, some is absorbed high "
    "in the atmosphere, and our eyes are more sensitive to blue. At sunset light crosses more air, so reds "
    "remain."
)
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


def _rotated(words: int) -> str:
    split = ANSWER.split()
    return " ".join(split[words:] + split[:words])


async def test_the_whole_tools_list_stays_within_its_token_budget() -> None:
    server = build_server(load_config(None), lambda alias, entry: ScriptedClient(alias, "ok"))

    async with Client(server) as client:
        listed = await client.list_tools()

    names = {tool.name for tool in listed.tools}
    assert {"ensemble_vote", "cascade_ask", "route_specialist", "run_pipeline"} <= names
    assert wire_tokens(listed) <= TOOLS_LIST_BUDGET


async def _ensemble_result(arguments: dict[str, Any], *, repeat: bool = False) -> Any:
    assert len(ANSWER.split()) >= 100
    # Five different ~100-word answers: a free-text vote with nothing in common, the largest kind of result.
    clients = {f"m{i}": ScriptedClient(f"m{i}", _rotated(3 * i)) for i in range(1, 6)}
    config = parse_config(FIVE_MEMBERS, source="five.yaml", env={})
    server = build_server(config, lambda alias, entry: clients[alias])
    async with Client(server) as client:
        prompt = "Why is the sky blue? About 100 words."
        result = await client.call_tool("ensemble_vote", {"prompt": prompt, **arguments})
        if repeat:  # the same call again: every member answered from the response cache
            result = await client.call_tool("ensemble_vote", {"prompt": prompt, **arguments})
        return result


async def test_a_default_ensemble_result_of_five_long_answers_stays_within_its_token_budget() -> None:
    result = await _ensemble_result({})

    assert not result.is_error
    assert wire_tokens(result) <= RESULT_BUDGET
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
