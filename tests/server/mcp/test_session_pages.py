"""`session://{id}` in pages: the latest turns, `page.next` for the page before, a character budget so
one read stays small however large the turns are; the whole session is never one document."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.types import TextResourceContents

from chorus_mcp.config.loader import parse_config
from chorus_mcp.server.app import build_server
from chorus_mcp.server.mcp.resources import PAGE_CHARS
from chorus_mcp.strategies.models.testing import ScriptedClient
from chorus_mcp.strategies.sessions.session import Turn, utc_now
from chorus_mcp.strategies.sessions.stores.sqlite import SqliteSessionStore
from tests.server.conftest import SERVER_TEST_CONFIG

pytestmark = pytest.mark.anyio


async def stored(path: Path, contents: list[str]) -> str:
    store = SqliteSessionStore(path)
    try:
        turns = [
            Turn(role="user" if i % 2 == 0 else "assistant", content=c, at=utc_now())
            for i, c in enumerate(contents)
        ]
        return await store.create(turns=turns)
    finally:
        await store.aclose()


def server_on(path: Path) -> Any:
    config = parse_config(SERVER_TEST_CONFIG, source="pages.yaml", env={})
    config = config.model_copy(
        update={"sessions": config.sessions.model_copy(update={"sqlite_path": str(path)})}
    )
    return build_server(config, lambda alias, _entry: ScriptedClient(alias, "B"))


async def page(client: Client, uri: str) -> dict[str, Any]:
    contents = (await client.read_resource(uri)).contents[0]
    assert isinstance(contents, TextResourceContents)
    body: dict[str, Any] = json.loads(contents.text)
    return body


async def test_a_long_session_is_read_newest_page_first_back_to_its_first_turn(tmp_path: Path) -> None:
    path = tmp_path / "sessions.sqlite3"
    session_id = await stored(path, [f"turn {i}" for i in range(45)])

    async with Client(server_on(path)) as client:
        first = await page(client, f"session://{session_id}")
        second = await page(client, first["page"]["next"])
        third = await page(client, second["page"]["next"])
        small = await page(client, f"session://{session_id}?before=10&limit=3")

    assert [t["seq"] for t in first["turns"]] == list(range(25, 45))
    assert first["turn_count"] == 45 and first["page"]["before"] == 25
    assert [t["seq"] for t in second["turns"]] == list(range(5, 25))
    assert [t["seq"] for t in third["turns"]] == list(range(5))
    assert third["page"] == {"turns": 5, "before": None, "next": None}
    assert [t["content"] for t in small["turns"]] == ["turn 7", "turn 8", "turn 9"]


async def test_a_page_of_large_turns_stays_within_its_character_budget(tmp_path: Path) -> None:
    path = tmp_path / "sessions.sqlite3"
    big = PAGE_CHARS // 3 + 1
    session_id = await stored(path, [str(i) * big for i in range(8)])

    async with Client(server_on(path)) as client:
        first = await page(client, f"session://{session_id}")
        contents = (await client.read_resource(f"session://{session_id}")).contents[0]

    assert [t["seq"] for t in first["turns"]] == [6, 7]
    assert first["page"]["before"] == 6
    assert isinstance(contents, TextResourceContents) and len(contents.text) < PAGE_CHARS + 10_000
