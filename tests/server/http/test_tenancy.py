"""The team service's trust boundary, over real streamable HTTP with several bearer tokens: sessions,
usage and cached answers belong to the client that made them; another client cannot read, list,
continue or end them, and cannot tell them from ids that never existed. Sharing is by explicit grant.
The same holds across two replicas sharing Redis.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult, TextContent, TextResourceContents

from tests.fake_openai import FakeOpenAI
from tests.strategies.sessions.stores.backends import delete_prefix, fresh_prefix, redis_url_or_skip
from tests.support.servers import RunningServer, fake_provider_config, http_server, server_env, write_config

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

PROVIDER_KEY = "sk-chorus-tenancy-0123456789abcdef"
TOKENS = {
    "alice": "alice-tenancy-token-0123456789abcdefghij",
    "bob": "bob-tenancy-token-0123456789abcdefghijklm",
    "carol": "carol-tenancy-token-0123456789abcdefghi",
    "ops": "ops-tenancy-token-0123456789abcdefghijklm",
}
NEVER = "AAAAAAAAAAAAAAAAAAAAAAAA"
"""A well-formed id no session has."""


def tenancy_config(fake: FakeOpenAI, directory: Path, **sections: Any) -> dict[str, Any]:
    auth = {
        "tokens": {name: {"env": f"CHORUS_TOKEN_{name.upper()}"} for name in TOKENS},
        "admins": ["ops"],
        "teams": {"eng": ["bob", "carol"]},
    }
    sessions = {"sqlite_path": str(directory / "sessions.sqlite3")}
    cache = {"sqlite_path": str(directory / "cache.sqlite3")}
    return fake_provider_config(
        fake, deadline_s=30, timeout_s=30, auth=auth, sessions=sessions, cache=cache, **sections
    )


def tenancy_env(**extra: str) -> dict[str, str]:
    tokens = {f"CHORUS_TOKEN_{name.upper()}": token for name, token in TOKENS.items()}
    return server_env(PROVIDER_KEY, **tokens, **extra)


@asynccontextmanager
async def connected(url: str, who: str) -> AsyncIterator[Client]:
    async with (
        httpx2.AsyncClient(headers={"authorization": f"Bearer {TOKENS[who]}"}, timeout=60) as http,
        Client(streamable_http_client(url, http_client=http), mode="legacy") as client,
    ):
        yield client


async def read(client: Client, uri: str) -> Any:
    contents = (await client.read_resource(uri)).contents[0]
    assert isinstance(contents, TextResourceContents)
    return json.loads(contents.text)


async def refused(client: Client, uri: str) -> str:
    with pytest.raises(MCPError) as raised:
        await client.read_resource(uri)
    return str(raised.value)


def text(result: CallToolResult) -> str:
    return " ".join(c.text for c in result.content if isinstance(c, TextContent))


async def ask(client: Client, prompt: str, **arguments: Any) -> CallToolResult:
    return await client.call_tool("route_specialist", {"prompt": prompt, **arguments})


def structured(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, text(result)
    assert result.structured_content is not None
    return result.structured_content


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        server.script("beta", "Paris is the capital of France.")
        yield server


@pytest.fixture(scope="module")
def served(fake: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    directory = tmp_path_factory.mktemp("tenancy")
    path = write_config(directory / "chorus.yaml", tenancy_config(fake, directory))
    with http_server(directory, tenancy_env(), config=path, never_logged=PROVIDER_KEY) as running:
        yield running


async def test_another_clients_session_is_not_found_exactly_like_a_missing_one(served: RunningServer) -> None:
    async with connected(served.url, "alice") as alice, connected(served.url, "bob") as bob:
        session_id = structured(await ask(alice, "alice's secret plan: capital of France?"))["session_id"]

        mine = await read(alice, f"session://{session_id}")
        assert "alice's secret plan" in json.dumps(mine)
        theirs = await refused(bob, f"session://{session_id}")
        missing = await refused(bob, f"session://{NEVER}")
        assert theirs.replace(session_id, "<id>") == missing.replace(NEVER, "<id>")
        assert "secret plan" not in theirs
        usage = await refused(bob, f"session://{session_id}/usage")
        assert usage.replace(session_id, "<id>") == (await refused(bob, f"session://{NEVER}/usage")).replace(
            NEVER, "<id>"
        )
        ledger = await refused(bob, f"usage://session/{session_id}")
        assert ledger.replace(session_id, "<id>") == (await refused(bob, f"usage://session/{NEVER}")).replace(
            NEVER, "<id>"
        )
        assert (await read(alice, f"usage://session/{session_id}"))["calls"] >= 1


async def test_another_client_cannot_continue_or_end_a_session(served: RunningServer) -> None:
    async with connected(served.url, "alice") as alice, connected(served.url, "bob") as bob:
        session_id = structured(await ask(alice, "first question"))["session_id"]

        continued = await ask(bob, "second question", session_id=session_id)
        never = await ask(bob, "second question", session_id=NEVER)
        assert continued.is_error and never.is_error
        assert text(continued).replace(session_id, "<id>") == text(never).replace(NEVER, "<id>")

        ended = structured(await bob.call_tool("end_session", {"session_id": session_id}))
        assert ended == {"session_id": session_id, "deleted": False}

        kept = await read(alice, f"session://{session_id}")
        assert kept["turn_count"] == 2  # bob's turn never landed, and the session is still there
        assert structured(await alice.call_tool("end_session", {"session_id": session_id}))["deleted"] is True


async def test_recent_sessions_and_usage_are_per_client_and_an_admin_sees_all(served: RunningServer) -> None:
    async with (
        connected(served.url, "alice") as alice,
        connected(served.url, "carol") as carol,
        connected(served.url, "ops") as ops,
    ):
        session_id = structured(await ask(alice, "listed for alice only"))["session_id"]

        listed_alice = {s["id"] for s in (await read(alice, "session://recent"))["sessions"]}
        listed_carol = {s["id"] for s in (await read(carol, "session://recent"))["sessions"]}
        listed_ops = {s["id"] for s in (await read(ops, "session://recent"))["sessions"]}
        assert session_id in listed_alice and session_id in listed_ops
        assert session_id not in listed_carol
        assert all(s["owner"] == "alice" for s in (await read(alice, "session://recent"))["sessions"])

        carol_usage = await read(carol, "usage://summary")
        assert carol_usage["totals"]["calls"] == 0 and session_id not in carol_usage["sessions"]
        alice_usage = await read(alice, "usage://summary")
        assert alice_usage["totals"]["calls"] >= 1 and session_id in alice_usage["sessions"]
        assert (await read(ops, "usage://summary"))["totals"]["calls"] >= alice_usage["totals"]["calls"]
        assert (await read(ops, f"session://{session_id}"))["owner"] == "alice"


async def test_a_session_shared_with_a_team_is_read_and_continued_by_members_and_ended_by_its_owner(
    served: RunningServer,
) -> None:
    async with (
        connected(served.url, "alice") as alice,
        connected(served.url, "bob") as bob,
        connected(served.url, "carol") as carol,
        connected(served.url, "ops") as ops,
    ):
        started = structured(await alice.call_tool("start_session", {"share_with": ["team:eng"]}))
        session_id = started["session_id"]
        assert started["shared_with"] == ["team:eng"]

        structured(await ask(bob, "bob asks in the shared session", session_id=session_id))
        shared = await read(carol, f"session://{session_id}")
        assert shared["owner"] == "alice" and "bob asks" in json.dumps(shared)
        assert session_id in {s["id"] for s in (await read(carol, "session://recent"))["sessions"]}

        ending = await bob.call_tool("end_session", {"session_id": session_id})
        assert ending.is_error and "only its owner may end it" in text(ending)
        assert structured(await ops.call_tool("end_session", {"session_id": session_id}))["deleted"] is True


async def test_sharing_with_an_unknown_client_or_team_is_refused_by_name(served: RunningServer) -> None:
    async with connected(served.url, "alice") as alice:
        unknown = await alice.call_tool("start_session", {"share_with": ["bob", "mallory"]})
        team = await alice.call_tool("start_session", {"share_with": ["team:sales"]})
        malformed = await alice.call_tool("start_session", {"share_with": ["bob; DROP"]})

    assert unknown.is_error and "share_with[1]: 'mallory' is not a configured client" in text(unknown)
    assert team.is_error and "share_with[0]: 'team:sales' is not a configured team" in text(team)
    assert malformed.is_error and "share_with[0]" in text(malformed) and "DROP" not in text(malformed)


async def test_two_replicas_sharing_redis_keep_sessions_owned(fake: FakeOpenAI, tmp_path: Path) -> None:
    url = redis_url_or_skip()
    prefix = fresh_prefix()
    config = tenancy_config(fake, tmp_path)
    config["sessions"] = {"store": "redis", "key_prefix": prefix}
    path = write_config(tmp_path / "replicas.yaml", config)
    env = tenancy_env(CHORUS_REDIS_URL=url)
    try:
        with (
            http_server(tmp_path, env, config=path, flags=("--stateless",)) as one,
            http_server(tmp_path, env, config=path, flags=("--stateless",)) as two,
        ):
            async with connected(one.url, "alice") as alice_one, connected(two.url, "alice") as alice_two:
                session_id = structured(await ask(alice_one, "stored by replica one"))["session_id"]
                assert (await read(alice_two, f"session://{session_id}"))["owner"] == "alice"
                assert session_id in {
                    s["id"] for s in (await read(alice_two, "session://recent"))["sessions"]
                }
            async with connected(two.url, "bob") as bob_two:
                theirs = await refused(bob_two, f"session://{session_id}")
                assert theirs.replace(session_id, "<id>") == (
                    await refused(bob_two, f"session://{NEVER}")
                ).replace(NEVER, "<id>")
                assert session_id not in {
                    s["id"] for s in (await read(bob_two, "session://recent"))["sessions"]
                }
                continued = await ask(bob_two, "bob tries", session_id=session_id)
                assert continued.is_error
    finally:
        delete_prefix(url, prefix)


async def test_a_client_asking_another_clients_exact_prompt_is_not_answered_from_the_cache(
    served: RunningServer, fake: FakeOpenAI
) -> None:
    async with connected(served.url, "alice") as alice, connected(served.url, "bob") as bob:
        prompt = "what alice asked the cache, word for word"
        first = structured(await ask(alice, prompt))
        again = structured(await ask(alice, prompt))
        asked = len(fake.requests)
        bobs = structured(await ask(bob, prompt))

    assert not first["totals"].get("cached_calls") and again["totals"]["cached_calls"] == 1
    assert not bobs["totals"].get("cached_calls")
    assert len(fake.requests) == asked + 1  # bob's question went to the provider
