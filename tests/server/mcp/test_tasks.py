"""Long calls as tasks (the 2026-07-28 extension `io.modelcontextprotocol/tasks`): created for a client that
declares the extension when the deadline is long, polled to the result, cancelled, kept through a restart
of the server process, and owned by the principal that made them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from chorus_mcp.config.loader import parse_config
from chorus_mcp.config.schema import ChorusConfig
from chorus_mcp.server.app import build_server
from chorus_mcp.strategies.models.testing import ScriptedClient
from tests.fake_openai import FakeOpenAI
from tests.server.conftest import SERVER_TEST_CONFIG
from tests.support.servers import fake_provider_config, http_server, server_env, stdio_server, write_config
from tests.support.tasks import TaskHandle, TasksClient, cancel_task, get_task, poll

pytestmark = pytest.mark.anyio

LONG = {"prompt": "Pick one: A) x B) y", "deadline_s": 120}
"""A call whose deadline is above `tasks.after_deadline_s` (50 s): a task, for a client that can take one."""
TOKENS = {
    "alice": "alice-token-0123456789abcdefghijklmnopq",
    "bob": "bob-token-0123456789abcdefghijklmnopqrstu",
}


def _config(tmp_path: Path, **tasks: Any) -> ChorusConfig:
    extra = {"tasks": {"poll_interval_s": 0.05, **tasks}, "sessions": {"sqlite_path": str(tmp_path / "s.db")}}
    text = (
        SERVER_TEST_CONFIG + "\n" + "\n".join(f"{key}: {json.dumps(value)}" for key, value in extra.items())
    )
    return parse_config(text, source="tasks.yaml", env={})


def _server(config: ChorusConfig, delay_s: float = 0.0) -> Any:
    return build_server(config, lambda alias, entry: ScriptedClient(alias, "B", delay_s=delay_s))


async def test_a_long_call_runs_as_a_task_polled_to_the_same_result(tmp_path: Path) -> None:
    tasks = TasksClient()
    async with Client(_server(_config(tmp_path)), extensions=[tasks]) as client:
        assert "io.modelcontextprotocol/tasks" in (client.server_capabilities.extensions or {})
        result = await client.call_tool("ensemble_vote", LONG)
    assert not result.is_error and (result.structured_content or {})["answer"] == "B"
    assert len(tasks.handles) == 1 and tasks.handles[0].status == "working"
    final = tasks.states[0]
    assert final.status == "completed" and final.status_message == "ensemble_vote answered"
    assert final.ttl_ms == 24 * 3600 * 1000 and final.created_at.endswith("Z")


async def test_short_calls_legacy_clients_and_clients_without_the_extension_get_the_result_directly(
    tmp_path: Path,
) -> None:
    config = _config(tmp_path)
    tasks = TasksClient()
    async with Client(_server(config), extensions=[tasks]) as client:
        short = await client.call_tool("ensemble_vote", {"prompt": "Pick one: A) x B) y"})  # deadline 10 s
        listed = await client.call_tool("list_models", {})
    assert not short.is_error and not listed.is_error and tasks.handles == []
    async with Client(_server(config)) as client:  # no extension declared
        assert not (await client.call_tool("ensemble_vote", LONG)).is_error
    async with Client(_server(config), mode="legacy", extensions=[tasks]) as client:
        assert not (await client.call_tool("ensemble_vote", LONG)).is_error
    assert tasks.handles == []


async def test_every_orchestration_call_is_a_task_when_the_threshold_is_zero(tmp_path: Path) -> None:
    tasks = TasksClient()
    calls = {
        "ensemble_vote": {"prompt": "Pick one: A) x B) y"},
        "cascade_ask": {"prompt": "Pick one: A) x B) y"},
        "route_specialist": {"prompt": "hello"},
        "run_pipeline": {"input": "write it"},
    }
    async with Client(_server(_config(tmp_path, after_deadline_s=0)), extensions=[tasks]) as client:
        for tool, arguments in calls.items():
            result = await client.call_tool(tool, arguments)
            assert result.structured_content is not None, tool
    assert [state.status for state in tasks.states] == ["completed"] * 4


async def test_a_cancelled_task_stops_and_says_so(tmp_path: Path) -> None:
    async with Client(_server(_config(tmp_path), delay_s=30), extensions=[TasksClient()]) as client:
        handle = await client.session.call_tool("ensemble_vote", LONG, allow_claimed=True)
        assert isinstance(handle, TaskHandle)
        working = await get_task(client.session, handle.task_id)
        assert working.status == "working"
        await cancel_task(client.session, handle.task_id)
        with anyio.fail_after(30):  # a bound, so a cancel that does not stop the run fails instead of hanging
            ended = await poll(client.session, handle.task_id)
    assert ended.status == "cancelled" and ended.result is None


async def test_polling_an_unknown_task_is_an_invalid_params_error(tmp_path: Path) -> None:
    async with Client(_server(_config(tmp_path)), extensions=[TasksClient()]) as client:
        with pytest.raises(MCPError, match="no task 'nope'") as caught:
            await get_task(client.session, "nope")
    assert caught.value.error.code == -32602


@pytest.mark.slow
async def test_a_restarted_server_answers_the_poll_for_a_task_that_finished(tmp_path: Path) -> None:
    with FakeOpenAI() as fake:
        fake.script("alpha", "B")
        fake.script("beta", "B")
        fake.script("gamma", "B")
        sections = {
            "sessions": {"sqlite_path": str(tmp_path / "sessions.db")},
            "tasks": {"poll_interval_s": 0.1},
        }
        config = write_config(tmp_path / "chorus.yaml", fake_provider_config(fake, **sections))
        tasks = TasksClient()
        async with Client(stdio_server(config, server_env("sk-test")), extensions=[tasks]) as client:
            first = await client.call_tool("ensemble_vote", LONG)
        task_id = tasks.handles[0].task_id
        # A new server process, the same store: the task and its result are still there.
        async with Client(stdio_server(config, server_env("sk-test")), extensions=[TasksClient()]) as client:
            again = await get_task(client.session, task_id)
    assert again.status == "completed" and again.result is not None
    assert again.result["structuredContent"] == first.structured_content


@pytest.mark.slow
async def test_a_task_is_its_creators_another_principal_is_told_there_is_none(tmp_path: Path) -> None:
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    with FakeOpenAI() as fake:
        fake.script("alpha", "B")
        fake.script("beta", "B")
        fake.script("gamma", "B")
        auth = {"tokens": {name: {"env": f"CHORUS_TOKEN_{name.upper()}"} for name in TOKENS}}
        config = write_config(tmp_path / "chorus.yaml", fake_provider_config(fake, auth=auth))
        env = server_env(
            "sk-test", **{f"CHORUS_TOKEN_{name.upper()}": token for name, token in TOKENS.items()}
        )
        with http_server(tmp_path, env, config=config) as served:

            def as_user(name: str) -> Any:
                http = httpx2.AsyncClient(headers={"authorization": f"Bearer {TOKENS[name]}"}, timeout=30)
                return http, Client(
                    streamable_http_client(served.url, http_client=http), extensions=[TasksClient()]
                )

            alice_http, alice = as_user("alice")
            bob_http, bob = as_user("bob")
            async with alice_http, alice, bob_http, bob:
                handle = await alice.session.call_tool("ensemble_vote", LONG, allow_claimed=True)
                assert isinstance(handle, TaskHandle)
                assert (await poll(alice.session, handle.task_id)).status == "completed"
                with pytest.raises(MCPError, match="no task") as caught:
                    await get_task(bob.session, handle.task_id)
                assert caught.value.error.code == -32602
                with pytest.raises(MCPError, match="no task"):
                    await cancel_task(bob.session, handle.task_id)


async def test_a_listening_client_hears_when_a_task_lands_its_turn(tmp_path: Path) -> None:
    from mcp.client.subscriptions import ResourceUpdated

    tasks = TasksClient()
    async with Client(_server(_config(tmp_path)), extensions=[tasks]) as client:
        session_id = ((await client.call_tool("start_session", {})).structured_content or {})["session_id"]
        async with client.listen(resource_subscriptions=[f"session://{session_id}"]) as stream:
            result = await client.call_tool("ensemble_vote", {**LONG, "session_id": session_id})
            with anyio.fail_after(30):
                event = await stream.__anext__()
    assert tasks.handles and not result.is_error
    assert isinstance(event, ResourceUpdated) and event.uri == f"session://{session_id}"


async def test_past_the_cap_on_running_tasks_a_long_call_is_an_ordinary_one(tmp_path: Path) -> None:
    async with Client(
        _server(_config(tmp_path, max_running=1), delay_s=1.0), extensions=[TasksClient()]
    ) as client:
        first = await client.session.call_tool("ensemble_vote", LONG, allow_claimed=True)
        second = await client.session.call_tool("ensemble_vote", LONG, allow_claimed=True)
        assert isinstance(first, TaskHandle)
        assert not isinstance(second, TaskHandle) and (second.structured_content or {})["answer"] == "B"
        assert (await poll(client.session, first.task_id)).status == "completed"
