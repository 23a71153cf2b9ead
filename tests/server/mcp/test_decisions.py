"""What the agent reads from `ensemble_vote`, through a real MCP client session: worded answers that
agree are one vote (and stop early), one model in two seats is one voter, a tie is a tie, and the
vote is read from the last JSON object."""

from __future__ import annotations

from typing import Any

import pytest
from mcp import Client

from chorus_mcp.config.loader import parse_config
from chorus_mcp.config.schema import ChorusConfig
from chorus_mcp.server.app import build_server
from chorus_mcp.strategies.core.errors import ProviderServerError
from chorus_mcp.strategies.models.testing import ScriptedClient

pytestmark = pytest.mark.anyio

CONFIG = """
models:
  a: {model: fake/a}
  b: {model: fake/b}
  c: {model: fake/c}
  d: {model: fake/d}
  a-again: {model: fake/a}
  falls-to-a: {model: fake/broken, fallbacks: [a]}
allow_unlisted_models: false
cache: {enabled: false}
defaults: {deadline_s: 20}
"""


@pytest.fixture
def config() -> ChorusConfig:
    return parse_config(CONFIG, source="decisions.yaml", env={})


async def _vote(config: ChorusConfig, clients: list[ScriptedClient], arguments: dict[str, Any]) -> Any:
    by_name = {c.name: c for c in clients}
    server = build_server(config, lambda alias, _entry: by_name[alias])
    async with Client(server) as client:  # type: ignore[arg-type]
        return await client.call_tool("ensemble_vote", arguments)


def _vote_of(result: Any) -> dict[str, Any]:
    votes = [d for d in result.structured_content["decisions"] if d["kind"] == "vote"]
    assert len(votes) == 1
    return votes[0]


async def test_worded_answers_with_the_same_number_are_one_vote_and_stop_the_slowest_member(
    config: ChorusConfig,
) -> None:
    clients = [
        ScriptedClient("a", "391"),
        ScriptedClient("b", "17 * 23 = 391"),
        ScriptedClient("c", "The product is 391."),
        ScriptedClient("d", "**391**", delay_s=6.0),
    ]
    result = await _vote(config, clients, {"prompt": "What is 17 * 23?", "models": ["a", "b", "c", "d"]})

    vote = _vote_of(result)
    assert not result.is_error and result.structured_content["answer"] == "391"
    assert vote["counts"] == {"391": 3.0} and vote["consensus"] and vote["early_stop"]
    assert [c["status"] for c in result.structured_content["calls"] if c["model"] == "d"] == ["cancelled"]


async def test_a_short_answer_and_the_sentence_that_contains_it_are_one_vote(config: ChorusConfig) -> None:
    clients = [ScriptedClient("a", "Paris"), ScriptedClient("b", "The capital of France is Paris.")]
    arguments = {"prompt": "What is the capital of France?", "models": ["a", "b"]}

    vote = _vote_of(await _vote(config, clients, arguments))

    assert vote["counts"] == {"paris": 2.0} and vote["consensus"] and vote["voters"] == 2


async def test_one_provider_model_in_two_seats_is_one_independent_voter_not_a_consensus(
    config: ChorusConfig,
) -> None:
    clients = [ScriptedClient("a", "No."), ScriptedClient("a-again", "No.")]
    arguments = {"prompt": "Is 91 a prime number?", "models": ["a", "a-again"]}

    result = await _vote(config, clients, arguments)

    vote = _vote_of(result)
    assert result.structured_content["answer"] == "no"
    assert vote["voters"] == 1 and vote["seats"] == 2 and not vote["consensus"]
    assert vote["groups"][0]["echoes"] == ["member-2 (a-again)"]


async def test_a_fallback_onto_a_model_already_voting_counts_once(config: ChorusConfig) -> None:
    clients = [
        ScriptedClient("a", "B"),
        ScriptedClient("falls-to-a", ProviderServerError("falls-to-a", "HTTP 500", 500)),
        ScriptedClient("c", "C"),
    ]
    prompt = "Pick one.\nA) x\nB) y\nC) z"
    result = await _vote(config, clients, {"prompt": prompt, "models": ["a", "falls-to-a", "c"]})

    vote = _vote_of(result)
    assert vote["voters"] == 2 and vote["counts"] == {"B": 1.0, "C": 1.0}
    assert result.is_error and sorted(vote["tie"]) == ["B", "C"]  # one B voter against one C voter


async def test_a_one_to_one_tie_is_an_error_naming_both_answers_never_the_first_members(
    config: ChorusConfig,
) -> None:
    clients = [ScriptedClient("a", "The Earth is flat!"), ScriptedClient("b", "No, the Earth is round.")]
    result = await _vote(config, clients, {"prompt": "Is the Earth flat?", "models": ["a", "b"]})

    vote = _vote_of(result)
    assert result.is_error and result.structured_content.get("answer") is None
    assert sorted(vote["tie"]) == ["no", "yes"] and vote["tie_break"] == "unresolved"
    error = result.structured_content["error"]
    assert "'yes' (a)" in error and "'no' (b)" in error


async def test_a_json_field_vote_reads_the_last_object_not_a_quoted_earlier_one(config: ChorusConfig) -> None:
    forged = 'Someone wrote {"label": "spam"} in the ticket. Actually: {"label": "ham"}'
    clients = [ScriptedClient("a", forged), ScriptedClient("b", '{"label": "ham"}')]
    arguments = {
        "prompt": "Classify the ticket.",
        "models": ["a", "b"],
        "extract": "json_field",
        "json_field": "label",
    }

    vote = _vote_of(await _vote(config, clients, arguments))

    assert vote["counts"] == {"ham": 2.0}
