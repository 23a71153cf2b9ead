"""The workflow prompts and their argument completions: over stdio in both protocol eras (a real server
process), and in-process for what each prompt says and refuses."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp.types import PromptReference, ResourceTemplateReference, TextContent

from chorus_mcp.config.schema import ChorusConfig
from chorus_mcp.server.app import build_server
from chorus_mcp.strategies.models.testing import ScriptedClient
from tests.fake_openai import FakeOpenAI
from tests.support.servers import fake_provider_config, server_env, stdio_server, write_config

pytestmark = pytest.mark.anyio

WORKFLOWS = {"ask_ensemble", "second_opinion", "code_review", "debate"}


def _server(config: ChorusConfig) -> Any:
    return build_server(config, lambda alias, entry: ScriptedClient(alias, "B"))


def _tool_call(text: str) -> tuple[str, dict[str, Any]]:
    """The tool and the arguments a prompt tells the agent to call it with."""
    tool = re.search(r"Call the Chorus tool `(\w+)`", text)
    arguments = re.search(r"```json\n(.*?)\n```", text, re.DOTALL)
    assert tool and arguments, text
    return tool.group(1), json.loads(arguments.group(1))


async def _prompt_call(client: Client, name: str, arguments: dict[str, str]) -> tuple[str, dict[str, Any]]:
    got = await client.get_prompt(name, arguments)
    assert len(got.messages) == 1 and got.messages[0].role == "user"
    content = got.messages[0].content
    assert isinstance(content, TextContent)
    return _tool_call(content.text)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_prompts_and_completions_work_over_stdio_in_both_protocol_eras(
    tmp_path: Path, mode: str
) -> None:
    with FakeOpenAI() as fake:
        fake.script("alpha", "B")
        config = write_config(tmp_path / "chorus.yaml", fake_provider_config(fake))
        async with Client(stdio_server(config, server_env("sk-test")), mode=mode) as client:  # type: ignore[arg-type]
            listed = await client.list_prompts()
            assert {prompt.name for prompt in listed.prompts} == WORKFLOWS
            assert all(prompt.icons and prompt.description for prompt in listed.prompts)

            tool, arguments = await _prompt_call(
                client, "ask_ensemble", {"question": "A or B?", "models": "alpha"}
            )
            assert (tool, arguments) == ("ensemble_vote", {"prompt": "A or B?", "models": ["alpha"]})

            models = await client.complete(PromptReference(name="debate"), {"name": "judge", "value": "g"})
            assert models.completion.values == ["gamma"]
            strategies = await client.complete(
                PromptReference(name="ask_ensemble"), {"name": "strategy", "value": ""}
            )
            assert strategies.completion.values == [
                "ensemble"
            ]  # the ensembles only, not the cascade or route
            pipelines = await client.complete(
                PromptReference(name="code_review"), {"name": "pipeline", "value": "p"}
            )
            assert pipelines.completion.values == ["pipeline"]

            # What the prompt tells the agent to call works as it is.
            result = await client.call_tool(tool, arguments)
            assert not result.is_error, result.content


async def test_each_workflow_prompt_names_the_tool_call_that_runs_it(server_config: ChorusConfig) -> None:
    async with Client(_server(server_config)) as client:
        assert await _prompt_call(client, "ask_ensemble", {"question": "Q?", "strategy": "ensemble"}) == (
            "ensemble_vote",
            {"prompt": "Q?", "strategy": "ensemble"},
        )
        tool, second = await _prompt_call(client, "second_opinion", {"question": "2+2?", "answer": "5"})
        assert tool == "ensemble_vote" and second["extract"] == "yes_no"
        assert "2+2?" in second["prompt"] and "Proposed answer:\n5" in second["prompt"]
        tool, review = await _prompt_call(
            client, "code_review", {"task": "add two ints", "code": "def f(a, b): return a - b"}
        )
        assert tool == "run_pipeline" and set(review) == {"input"}
        assert "add two ints" in review["input"] and "return a - b" in review["input"]
        tool, debate = await _prompt_call(
            client, "debate", {"question": "Tabs or spaces?", "models": "cheap, mid"}
        )
        assert tool == "ensemble_vote"
        assert debate["aggregation"] == "synthesis" and debate["models"] == ["cheap", "mid"]
        assert debate["judge"] == "cheap"  # no judge configured, no model tagged strong: the first member
        for name, arguments in [
            ("ask_ensemble", {"question": "Q?"}),
            ("debate", {"question": "Q?", "models": "cheap, mid"}),
        ]:
            tool, call = await _prompt_call(client, name, arguments)
            result = await client.call_tool(tool, call)
            assert not result.is_error, result.content


async def test_a_prompt_refuses_unknown_strategies_and_models_naming_the_argument_and_the_configured_names(
    server_config: ChorusConfig,
) -> None:
    async with Client(_server(server_config)) as client:
        with pytest.raises(MCPError, match=r"strategy: no ensemble strategy 'cascade'; configured: ensemble"):
            await client.get_prompt("ask_ensemble", {"question": "Q?", "strategy": "cascade"})
        with pytest.raises(
            MCPError, match=r"models: unknown model 'gpt-9'; configured: broken, cheap, coder"
        ):
            await client.get_prompt("ask_ensemble", {"question": "Q?", "models": "cheap, gpt-9"})
        with pytest.raises(MCPError, match=r"judge: unknown model 'nobody'"):
            await client.get_prompt("debate", {"question": "Q?", "judge": "nobody"})
        with pytest.raises(
            MCPError, match=r"pipeline: no pipeline strategy 'ensemble'; configured: pipeline"
        ):
            await client.get_prompt("code_review", {"task": "T", "pipeline": "ensemble"})


async def test_completions_offer_configured_names_by_prefix_and_the_rest_of_a_model_list(
    server_config: ChorusConfig,
) -> None:
    async with Client(_server(server_config)) as client:
        every = await client.complete(PromptReference(name="ask_ensemble"), {"name": "models", "value": ""})
        assert every.completion.values == ["broken", "cheap", "coder", "mid", "strong"]
        assert every.completion.total == 5 and every.completion.has_more is False
        after = await client.complete(
            PromptReference(name="ask_ensemble"), {"name": "models", "value": "cheap, C"}
        )
        assert after.completion.values == ["cheap, coder"]  # case-insensitive, without the one already chosen
        assert (
            await client.complete(PromptReference(name="code_review"), {"name": "task", "value": "x"})
        ).completion.values == []


async def test_session_ids_complete_from_the_recent_sessions(server_config: ChorusConfig) -> None:
    async with Client(_server(server_config)) as client:
        started = await client.call_tool("start_session", {})
        session_id = (started.structured_content or {})["session_id"]
        found = await client.complete(
            ResourceTemplateReference(uri="session://{session_id}"),
            {"name": "session_id", "value": session_id[:6]},
        )
        assert found.completion.values == [session_id]
