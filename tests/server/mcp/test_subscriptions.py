"""`subscriptions/listen` (2026-07-28): a client listening on a session's resources hears when a turn lands,
through a real server process over stdio and over streamable HTTP, and in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client.subscriptions import ResourceUpdated
from mcp.types import TextResourceContents

from chorus_mcp.config.schema import ChorusConfig
from chorus_mcp.server.app import build_server
from chorus_mcp.strategies.models.testing import ScriptedClient
from tests.fake_openai import FakeOpenAI
from tests.support.servers import fake_provider_config, http_server, server_env, stdio_server, write_config

pytestmark = pytest.mark.anyio

WAIT_AT_MOST_S = 60
"""A bound so a missing event fails the test instead of hanging it; not a timing claim."""


async def _updates_for_one_turn(client: Client, tool: str, arguments: dict[str, Any]) -> list[str]:
    """Start a session, listen on its resources, land one turn in it: the URIs reported updated."""
    started = await client.call_tool("start_session", {})
    session_id = (started.structured_content or {})["session_id"]
    wanted = [f"session://{session_id}", f"session://{session_id}/usage"]
    seen: list[str] = []
    async with client.listen(resource_subscriptions=wanted) as stream:
        result = await client.call_tool(tool, {**arguments, "session_id": session_id})
        assert not result.is_error, result.content
        with anyio.fail_after(WAIT_AT_MOST_S):
            async for event in stream:
                assert isinstance(event, ResourceUpdated)
                seen.append(event.uri)
                if set(wanted) <= set(seen):
                    break
    # The turn is there when the client reads the resource it was told about.
    read = await client.read_resource(wanted[0])
    assert isinstance(read.contents[0], TextResourceContents) and arguments["prompt"] in read.contents[0].text
    return seen


async def test_a_listening_client_hears_that_a_turn_landed_in_its_session(
    server_config: ChorusConfig,
) -> None:
    server = build_server(server_config, lambda alias, entry: ScriptedClient(alias, "B"))
    async with Client(server) as client:
        assert client.protocol_version == "2026-07-28"
        seen = await _updates_for_one_turn(client, "route_specialist", {"prompt": "hello"})
    assert all(uri.startswith("session://") and not uri.endswith("recent") for uri in seen)


async def test_a_stream_hears_only_the_sessions_it_asked_for(server_config: ChorusConfig) -> None:
    server = build_server(server_config, lambda alias, entry: ScriptedClient(alias, "B"))
    async with Client(server) as client:
        other = (await client.call_tool("start_session", {})).structured_content or {}
        mine = (await client.call_tool("start_session", {})).structured_content or {}
        async with client.listen(resource_subscriptions=[f"session://{mine['session_id']}"]) as stream:
            await client.call_tool("route_specialist", {"prompt": "hi", "session_id": other["session_id"]})
            await client.call_tool("route_specialist", {"prompt": "hi", "session_id": mine["session_id"]})
            with anyio.fail_after(WAIT_AT_MOST_S):
                first = await stream.__anext__()
        assert isinstance(first, ResourceUpdated) and first.uri == f"session://{mine['session_id']}"


@asynccontextmanager
async def _real_client(transport: str, tmp_path: Path) -> AsyncIterator[Client]:
    with FakeOpenAI() as fake:
        fake.script("beta", "B")
        config = write_config(tmp_path / "chorus.yaml", fake_provider_config(fake))
        if transport == "stdio":
            async with Client(stdio_server(config, server_env("sk-test"))) as client:
                yield client
            return
        with http_server(tmp_path, server_env("sk-test"), config=config) as served:
            async with Client(served.url) as client:
                yield client


@pytest.mark.slow
@pytest.mark.parametrize("transport", ["stdio", "http"])
async def test_resources_updated_arrives_over_real_transports(transport: str, tmp_path: Path) -> None:
    async with _real_client(transport, tmp_path) as client:
        assert client.protocol_version == "2026-07-28"
        seen = await _updates_for_one_turn(client, "route_specialist", {"prompt": "hello"})
    assert seen
