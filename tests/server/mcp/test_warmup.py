"""The provider warm-up waits for the client's handshake, so that it does not slow it."""

from __future__ import annotations

import threading

import pytest
from mcp import Client

from chorus_mcp.config.schema import ChorusConfig
from chorus_mcp.server.app import build_server
from chorus_mcp.server.mcp.warmup import Handshake
from chorus_mcp.strategies.models.catalog import ModelEntry
from chorus_mcp.strategies.models.providers import warm_up
from chorus_mcp.strategies.models.testing import ScriptedClient

pytestmark = pytest.mark.anyio


async def test_the_handshake_is_done_once_the_client_has_listed_the_tools(
    server_config: ChorusConfig,
) -> None:
    server = build_server(server_config, lambda alias, entry: ScriptedClient(alias, "ok"))
    handshake = next(m for m in server.middleware if isinstance(m, Handshake))

    async with Client(server) as client:
        assert not handshake.done.is_set()
        await client.list_tools()
        assert handshake.done.is_set()


def test_the_warm_up_thread_loads_nothing_until_it_is_let_go() -> None:
    go = threading.Event()

    thread = warm_up([ModelEntry(model="openai/gpt-4.1-mini")], after=go, wait_at_most_s=30)
    thread.join(timeout=0.2)
    waiting = thread.is_alive()
    go.set()
    thread.join(timeout=30)

    assert waiting and not thread.is_alive()
