"""Sessions through the MCP server (in-process): resources, end/start tools, budgets, context passing,
concurrent calls — on the SQLite and the Redis store."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp.types import TextContent, TextResourceContents

from chorus_mcp.config.schema import ChorusConfig
from chorus_mcp.server.app import build_server
from chorus_mcp.strategies.core.completion import CompletionRequest
from chorus_mcp.strategies.models.testing import ScriptedClient
from tests.server.conftest import SERVER_TEST_CONFIG
from tests.strategies.sessions.stores.backends import delete_prefix, fresh_prefix, redis_url_or_skip

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["sqlite", "redis"])
async def sessions_config(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    if request.param == "sqlite":
        yield {"store": "sqlite", "sqlite_path": str(tmp_path / "sessions.sqlite3")}
        return
    url, prefix = redis_url_or_skip(), fresh_prefix()
    try:
        yield {"store": url, "key_prefix": prefix}
    finally:
        delete_prefix(url, prefix)


def _config(sessions: dict[str, Any], **context: Any) -> ChorusConfig:
    data = yaml.safe_load(SERVER_TEST_CONFIG)
    data["sessions"] = {**sessions, "context": context}
    return ChorusConfig.model_validate(data)


def _clients() -> dict[str, ScriptedClient]:
    return {
        "cheap": ScriptedClient("cheap", "They talked about sums."),
        "mid": ScriptedClient("mid", "B"),
        "strong": ScriptedClient("strong", '{"approved": true, "issues": []}'),
        "coder": ScriptedClient("coder", lambda r: f"answer to: {r.messages[-1].content}"),
        "broken": ScriptedClient("broken", "unused"),
    }


def _server(config: ChorusConfig, clients: dict[str, ScriptedClient]) -> Any:
    return build_server(config, lambda alias, _entry: clients[alias])


def _data(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    data: dict[str, Any] = result.structured_content
    return data


def _text(result: Any) -> str:
    block = result.content[0]
    assert isinstance(block, TextContent)
    return block.text


async def _read(client: Client, uri: str) -> Any:
    contents = (await client.read_resource(uri)).contents[0]
    assert isinstance(contents, TextResourceContents)
    return json.loads(contents.text)


async def _ask(client: Client, prompt: str, session_id: str | None = None, **extra: Any) -> dict[str, Any]:
    arguments = {"prompt": f"python: {prompt}", **extra}
    if session_id is not None:
        arguments["session_id"] = session_id
    return _data(await client.call_tool("route_specialist", arguments))


async def test_a_session_is_readable_as_resources_with_its_turns_usage_and_listing(
    sessions_config: dict[str, Any],
) -> None:
    server = _server(_config(sessions_config), _clients())
    async with Client(server) as client:
        first = await _ask(client, "one")
        session_id = first["session_id"]
        await _ask(client, "two", session_id)
        templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
        session = await _read(client, f"session://{session_id}")
        usage = await _read(client, f"session://{session_id}/usage")
        recent = await _read(client, "session://recent")

    assert {"session://{session_id}{?before,limit}", "session://{session_id}/usage"} <= templates
    assert [(t["role"], t["content"]) for t in session["turns"]] == [
        ("user", "python: one"),
        ("assistant", "answer to: python: one"),
        ("user", "python: two"),
        ("assistant", "answer to: python: two"),
    ]
    assert session["turns"][1]["model"] == "coder" and session["turns"][1]["strategy"] == "route"
    assert session["usage"]["calls"] == 2 and session["usage"]["cost_usd"] == "0.002"
    assert [t["cost_usd"] for t in usage["turns"]] == ["0.001", "0.001"] and usage["cost_left_usd"] is None
    assert recent["sessions"][0]["id"] == session_id and "turns" not in recent["sessions"][0]


async def test_unknown_and_malformed_session_ids_are_not_found_without_echoing_a_malformed_one(
    sessions_config: dict[str, Any],
) -> None:
    server = _server(_config(sessions_config), _clients())
    async with Client(server) as client:
        with pytest.raises(MCPError, match="no session 'AAAAAAAAAAAAAAAAAAAAAAAA'"):
            await client.read_resource("session://AAAAAAAAAAAAAAAAAAAAAAAA")
        with pytest.raises(MCPError) as malformed:
            await client.read_resource("session://x*y%7Bz")
        with pytest.raises(MCPError):
            await client.read_resource("session://AAAAAAAAAAAAAAAAAAAAAAAA/usage")
    assert "x*y" not in str(malformed.value)


async def test_end_session_deletes_it_and_the_id_cannot_be_continued(sessions_config: dict[str, Any]) -> None:
    server = _server(_config(sessions_config), _clients())
    async with Client(server) as client:
        session_id = (await _ask(client, "one"))["session_id"]
        ended = _data(await client.call_tool("end_session", {"session_id": session_id}))
        again = _data(await client.call_tool("end_session", {"session_id": session_id}))
        continued = await client.call_tool("route_specialist", {"prompt": "hi", "session_id": session_id})
        with pytest.raises(MCPError, match="no session"):
            await client.read_resource(f"session://{session_id}")
        bad = await client.call_tool("end_session", {"session_id": "../../etc/passwd"})

    assert ended == {"session_id": session_id, "deleted": True} and again["deleted"] is False
    assert continued.is_error and "no session" in _text(continued)
    assert bad.is_error and "not a valid session id" in _text(bad)


async def test_a_session_budget_caps_each_call_to_what_is_left_and_refuses_once_spent(
    sessions_config: dict[str, Any],
) -> None:
    server = _server(_config(sessions_config), _clients())
    async with Client(server) as client:
        started = _data(await client.call_tool("start_session", {"max_cost_usd": 0.0015}))
        session_id = started["session_id"]
        first = await _ask(client, "one", session_id)
        second = await _ask(client, "two", session_id)
        refused = await client.call_tool("route_specialist", {"prompt": "three", "session_id": session_id})
        usage = await _read(client, f"session://{session_id}/usage")

    assert started["max_cost_usd"] == "0.0015"
    notes = [d["message"] for d in first["decisions"] if d["kind"] == "note" and d["stage"] == "session"]
    assert notes == ["cost capped at $0.0015: what is left of the session's $0.0015"]
    assert any("cost capped at $0.0005" in d.get("message", "") for d in second["decisions"])
    assert refused.is_error and "budget of $0.0015 is spent" in _text(refused)
    assert usage["usage"]["cost_usd"] == "0.002" and usage["cost_left_usd"] == "0"


async def test_two_tool_calls_at_once_on_one_session_both_land_each_exchange_whole(
    sessions_config: dict[str, Any],
) -> None:
    clients = _clients()
    clients["coder"].delay_s = 0.05
    server = _server(_config(sessions_config), clients)
    async with Client(server) as client:
        session_id = (await _ask(client, "zero"))["session_id"]
        async with anyio.create_task_group() as tg:
            for prompt in ("left", "right"):
                tg.start_soon(_ask, client, prompt, session_id)
        session = await _read(client, f"session://{session_id}")

    contents = [t["content"] for t in session["turns"]]
    assert contents[:2] == ["python: zero", "answer to: python: zero"]
    pairs = [contents[i : i + 2] for i in range(2, 6, 2)]
    assert sorted(pairs) == [
        ["python: left", "answer to: python: left"],
        ["python: right", "answer to: python: right"],
    ]
    assert [t["seq"] for t in session["turns"]] == list(range(6))


async def test_context_none_sends_no_history_and_summary_uses_the_cheap_model(
    sessions_config: dict[str, Any],
) -> None:
    clients = _clients()
    config = _config(sessions_config, summary_model="cheap", keep_recent_turns=2)
    server = _server(config, clients)
    async with Client(server) as client:
        session_id = (await _ask(client, "one"))["session_id"]
        await _ask(client, "two", session_id)
        await _ask(client, "three", session_id, context="none")
        summarised = await _ask(client, "four", session_id, context="summary")

    none_sent = clients["coder"].requests[2].messages
    assert [m.content for m in none_sent] == ["python: three"]
    summary_sent = clients["coder"].requests[3].messages
    assert summary_sent[0].content == "Summary of the earlier conversation:\nThey talked about sums."
    assert [m.content for m in summary_sent[1:]] == [
        "python: three",
        "answer to: python: three",
        "python: four",
    ]
    assert [c["stage"] for c in summarised["calls"]] == ["context/summary", "route/code"]
    assert summarised["totals"]["calls"] == 2


async def test_a_pipeline_stage_can_choose_its_own_context(sessions_config: dict[str, Any]) -> None:
    data = yaml.safe_load(SERVER_TEST_CONFIG)
    data["sessions"] = sessions_config
    data["strategies"]["pipeline"] = {
        "kind": "pipeline",
        "stages": [
            {"name": "plan", "prompt": "Plan: {input}", "step": "coder", "context": "none"},
            {"name": "code", "prompt": "Code: {plan}", "step": "coder"},
        ],
    }
    clients = _clients()
    server = _server(ChorusConfig.model_validate(data), clients)
    async with Client(server) as client:
        session_id = (await _ask(client, "one"))["session_id"]
        result = _data(await client.call_tool("run_pipeline", {"input": "two", "session_id": session_id}))

    plan, code = clients["coder"].requests[1:]
    assert [m.content for m in plan.messages] == ["Plan: two"]
    assert [m.content for m in code.messages][:2] == ["python: one", "answer to: python: one"]
    assert any(d["stage"] == "pipeline/plan/context" for d in result["decisions"])


@dataclass
class _PricedClient(ScriptedClient):
    """Says before a call what it may cost at most, as a priced provider model does."""

    def estimate_cost_usd(self, request: CompletionRequest) -> Decimal | None:
        return self.cost_usd


async def test_two_calls_at_once_on_one_session_together_stay_within_its_budget(
    sessions_config: dict[str, Any],
) -> None:
    clients = _clients()
    coder = clients["coder"] = _PricedClient("coder", "ok", delay_s=0.3, cost_usd=Decimal("0.001"))
    server = _server(_config(sessions_config), clients)
    async with Client(server) as client:
        session_id = _data(await client.call_tool("start_session", {"max_cost_usd": 0.0015}))["session_id"]
        results: list[Any] = []

        async def ask(prompt: str) -> None:
            arguments = {"prompt": f"python: {prompt}", "session_id": session_id}
            results.append(await client.call_tool("route_specialist", arguments))

        async with anyio.create_task_group() as tg:
            for prompt in ("left", "right"):
                tg.start_soon(ask, prompt)
        usage = await _read(client, f"session://{session_id}/usage")

    # Each call alone would fit ($0.001 of $0.0015): together they would not, so only one is sent.
    assert len(coder.requests) == 1
    assert Decimal(usage["usage"]["cost_usd"]) <= Decimal("0.0015")
    answered = [r for r in results if not r.is_error and r.structured_content["ok"]]
    assert len(answered) == 1
