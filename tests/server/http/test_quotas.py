"""Per-client quotas over real streamable HTTP with two bearer tokens: the client that floods (transport
sessions, tool calls in progress, requests per minute, USD per day) is refused, naming the quota,
while the other client goes on being served."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from tests.fake_openai import FakeOpenAI, Fault
from tests.server.http.test_tenancy import (
    TOKENS,
    ask,
    connected,
    structured,
    tenancy_config,
    tenancy_env,
    text,
)
from tests.strategies.sessions.stores.backends import delete_prefix, fresh_prefix, redis_url_or_skip
from tests.support.servers import INITIALIZE, MCP_HEADERS, http_server, write_config

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

PROVIDER_KEY = "sk-chorus-tenancy-0123456789abcdef"


def post(url: str, who: str, body: Any = INITIALIZE, **headers: str) -> httpx.Response:
    sent = {**MCP_HEADERS, "authorization": f"Bearer {TOKENS[who]}", **headers}
    return httpx.post(url, content=json.dumps(body), headers=sent, timeout=30)


def serve(fake: FakeOpenAI, directory: Path, per_client: dict[str, Any]) -> Any:
    config = tenancy_config(fake, directory)
    config["limits"] = {"per_client": per_client}
    path = write_config(directory / "quotas.yaml", config)
    return http_server(directory, tenancy_env(), config=path, never_logged=PROVIDER_KEY)


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        server.script("beta", "B")
        yield server


def test_a_client_at_its_open_session_quota_is_refused_and_another_is_not(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    with serve(fake, tmp_path, {"max_transport_sessions": 3}) as served:
        opened = [post(served.url, "alice") for _ in range(3)]
        assert [r.status_code for r in opened] == [200, 200, 200]
        flood = post(served.url, "alice")
        assert flood.status_code == 429
        message = flood.json()["error"]["message"]
        assert "too many open sessions for client 'alice': 3" in message
        assert "limits.per_client.max_transport_sessions" in message

        assert post(served.url, "bob").status_code == 200  # bob is not starved

        first = opened[0].headers["mcp-session-id"]
        headers = {**MCP_HEADERS, "authorization": f"Bearer {TOKENS['alice']}", "mcp-session-id": first}
        ended = httpx.delete(served.url, headers=headers, timeout=30)
        assert ended.status_code < 400
        assert post(served.url, "alice").status_code == 200  # an ended session frees its place


async def test_a_client_at_its_tool_call_quota_is_refused_while_another_clients_call_runs(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    fake.script("beta", "B", latency_s=4)
    with serve(fake, tmp_path, {"max_concurrent_tool_calls": 2}) as served:
        async with connected(served.url, "alice") as alice, connected(served.url, "bob") as bob:
            finished: list[Any] = []

            async def slow(prompt: str) -> None:
                finished.append(await ask(alice, prompt, cache=False))

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(slow, "one")
                tasks.start_soon(slow, "two")
                with anyio.fail_after(20):
                    while len(fake.requests) < 2:  # noqa: ASYNC110 - the fake records from its own thread
                        await anyio.sleep(0.05)
                third = await ask(alice, "three", cache=False)
                bobs = await ask(bob, "bob's", cache=False)
            assert third.is_error
            assert "too many tool calls in progress for client 'alice': 2 at once" in text(third)
            assert structured(bobs)["answer"] == "B"
            assert [structured(r)["answer"] for r in finished] == ["B", "B"]
            again = await ask(alice, "four", cache=False)  # the slots were given back
            assert not again.is_error


def test_a_client_past_its_requests_per_minute_is_refused_and_another_is_not(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
    with serve(fake, tmp_path, {"requests_per_minute": 20, "max_transport_sessions": 0}) as served:
        # A minute's count: within any 2 x 20 + 1 requests sent in well under a minute, one is refused.
        responses = [post(served.url, "alice", ping) for _ in range(41)]
        refused = [r for r in responses if r.status_code == 429]
        assert refused, [r.status_code for r in responses]
        assert "limits.per_client.requests_per_minute" in refused[0].json()["error"]["message"]
        assert int(refused[0].headers["retry-after"]) >= 1
        assert post(served.url, "bob", ping).status_code != 429


async def test_a_client_past_its_daily_spend_is_refused_and_another_is_not(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    # The provider returns 2000 tokens ($0.004 at $2/M) whatever was asked: one call spends the day.
    fake.script("beta", "B", completion_tokens=2000)
    fake.script("alpha", "A")  # bob's model: beta is now known to overshoot, so it reserves more
    with serve(fake, tmp_path, {"max_usd_per_day": 0.003}) as served:
        async with connected(served.url, "alice") as alice, connected(served.url, "bob") as bob:
            first = structured(await ask(alice, "spend", cache=False))
            assert any("left of this client's $0.003 for today" in json.dumps(d) for d in first["decisions"])
            refused = await ask(alice, "spend more", cache=False)
            bobs = await bob.call_tool(
                "cascade_ask", {"prompt": "bob spends", "tiers": ["alpha"], "cache": False}
            )

    assert refused.is_error
    assert "client 'alice' has spent its $0.003 for today (limits.per_client.max_usd_per_day)" in text(
        refused
    )
    assert structured(bobs)["answer"] == "A"


async def test_a_quota_store_that_cannot_be_reached_refuses_the_call_with_the_reason(tmp_path: Path) -> None:
    from mcp import Client

    from chorus_mcp.config.loader import parse_config
    from chorus_mcp.server.app import build_server
    from chorus_mcp.strategies.models.testing import ScriptedClient
    from tests.server.conftest import SERVER_TEST_CONFIG
    from tests.support.servers import free_port

    config = parse_config(SERVER_TEST_CONFIG, source="q.yaml", env={})
    dead = f"redis://127.0.0.1:{free_port()}/0"
    sessions = config.sessions.model_copy(update={"store": dead})
    config = config.model_copy(
        update={"sessions": sessions, "cache": config.cache.model_copy(update={"enabled": False})}
    )
    server = build_server(config, lambda alias, _entry: ScriptedClient(alias, "B"))

    async with Client(server) as client:
        result = await client.call_tool("route_specialist", {"prompt": "q"})

    assert result.is_error
    assert "quota store (Redis)" in text(result) and dead not in text(result)


async def test_one_clients_concurrent_calls_on_two_replicas_together_stay_within_its_day(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    """The day is one budget per client, held in Redis: each model call holds its worst case there before
    it starts. Alice sends four calls at once, two to each replica, to a provider that ignores max_tokens
    (each call, cut off at its reservation, costs ~$0.0021 of her $0.005): at most two can start, the others
    are refused naming the quota, and together they stay within the day. Bob, meanwhile, is served."""
    url = redis_url_or_skip()
    prefix = fresh_prefix()
    # Slow to begin and paced, so that all four are in progress at once; 2000 tokens whatever is asked.
    fake.script(
        "beta", Fault.ignores_max_tokens(2000), latency_s=2, words_per_chunk=10, chunk_latency_s=0.005
    )
    fake.script("alpha", "A")
    config = tenancy_config(fake, tmp_path)
    config["sessions"] = {"store": "redis", "key_prefix": prefix}
    config["limits"] = {"per_client": {"max_usd_per_day": 0.005}}
    path = write_config(tmp_path / "replicas.yaml", config)
    env = tenancy_env(CHORUS_REDIS_URL=url)
    try:
        with (
            http_server(tmp_path, env, config=path, flags=("--stateless",), never_logged=PROVIDER_KEY) as one,
            http_server(tmp_path, env, config=path, flags=("--stateless",), never_logged=PROVIDER_KEY) as two,
        ):
            async with (
                connected(one.url, "alice") as alice_one,
                connected(two.url, "alice") as alice_two,
                connected(two.url, "bob") as bob,
            ):
                results: list[Any] = []

                async def spend(client: Any, prompt: str) -> None:
                    results.append(await ask(client, prompt, cache=False))

                async with anyio.create_task_group() as tasks:
                    for number, client in enumerate([alice_one, alice_two, alice_one, alice_two]):
                        tasks.start_soon(spend, client, f"alice spends, call {number}")
                    with anyio.fail_after(60):
                        while not fake.requests_for("beta"):  # noqa: ASYNC110 - the fake records from its thread
                            await anyio.sleep(0.05)
                    bobs = await bob.call_tool(
                        "cascade_ask", {"prompt": "bob spends", "tiers": ["alpha"], "cache": False}
                    )
    finally:
        delete_prefix(url, prefix)

    answered = [structured(r) for r in results if not r.is_error]
    refused = [text(r) for r in results if r.is_error]
    # Two fit whole; a third may start with fewer tokens if it asks after the first two hold theirs.
    assert 1 <= len(answered) <= 3 and len(refused) == 4 - len(answered), refused
    assert len(fake.requests_for("beta")) == len(answered)  # a refused call never reached the provider
    spent = sum(Decimal(str(a["totals"]["cost_usd"])) for a in answered)
    # Within the day, give or take the chunk each cut-off read past its reservation (10 tokens, $0.00002).
    assert spent <= Decimal("0.005") + len(answered) * Decimal("0.00002"), spent
    assert all(any(c.get("truncated") for c in a["calls"]) for a in answered)  # each cut at its reservation
    assert all("client 'alice'" in r and "limits.per_client.max_usd_per_day" in r for r in refused), refused
    assert structured(bobs)["answer"] == "A"
