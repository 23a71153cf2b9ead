"""`route_specialist(objective=...)` through real MCP sessions: a Chorus process over stdio (both protocol
eras) and two streamable-HTTP replicas sharing Redis, its models the fake OpenAI server over real HTTP
with scripted latencies and prices."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import anyio
import pytest
import redis.asyncio as aioredis
from mcp import Client

from chorus_mcp.strategies.sessions.stores.redis_latency import RedisLatencyStore
from tests.fake_openai import FakeOpenAI
from tests.strategies.sessions.stores.backends import delete_prefix, fresh_prefix, redis_url_or_skip
from tests.support.servers import KEY_ENV, http_server, server_env, stdio_server, write_config

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

SECRET = "sk-chorus-objective-0123456789abcdef"
LATENCY_S = {"alpha": 0.5, "beta": 0.0, "gamma": 0.2}
"""beta answers at once; gamma after 0.2 s; alpha after 0.5 s."""
PRICES = {"alpha": (1, 2), "beta": (100, 400), "gamma": (2, 4)}
"""USD per million tokens in, out: beta, the fastest, is also by far the dearest (~$0.04 a call)."""
_numbers = itertools.count()


def _config(fake: FakeOpenAI, path: Path, **sessions: Any) -> Path:
    for model, latency in LATENCY_S.items():
        fake.script(model, f"{model} answers", latency_s=latency)
    models = {
        alias: {
            "model": f"openai/{alias}",
            "api_base": fake.base_url,
            "api_key_env": KEY_ENV,
            "input_cost_per_mtok": PRICES[alias][0],
            "output_cost_per_mtok": PRICES[alias][1],
            "max_output_tokens": 100,
            "timeout_s": 60,
        }
        for alias in LATENCY_S
    }
    route = {
        "kind": "route",
        "default": "general",
        "routes": [{"name": "general", "target": "alpha"}],
        "candidates": ["alpha", "beta", "gamma"],
        "min_samples": 1,
    }
    config = {
        "models": models,
        "strategies": {"route": route},
        "defaults": {"deadline_s": 60},
        **({"sessions": sessions} if sessions else {}),
    }
    return write_config(path, config)


async def _route(client: Client, **arguments: Any) -> Any:
    # A new prompt each time: a cached answer says nothing about latency, and is not recorded as one.
    prompt = f"Name a colour ({next(_numbers)})"
    return await client.call_tool("route_specialist", {"prompt": prompt, "detail": "full", **arguments})


def _decision(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    routes = [d for d in result.structured_content["decisions"] if d["kind"] == "route"]
    assert len(routes) == 1
    decision: dict[str, Any] = routes[0]
    return decision


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_latency_routing_explores_each_candidate_then_keeps_the_fastest_within_the_cost_cap(
    fake_openai: FakeOpenAI, tmp_path: Path, mode: str
) -> None:
    params = stdio_server(_config(fake_openai, tmp_path / "chorus.yaml"), server_env(SECRET))
    async with Client(params, mode=mode) as client:  # type: ignore[arg-type]
        explored = [_decision(await _route(client, objective="latency")) for _ in range(3)]
        fastest = await _route(client, objective="latency")
        capped = await _route(client, objective="latency", max_cost_usd=0.01)
        by_rules = await _route(client)

    assert [d["route"] for d in explored] == ["alpha", "beta", "gamma"]
    assert all(d["reason"].startswith(f"exploring {d['route']}: 0 of 1") for d in explored)
    decision = _decision(fastest)
    assert (decision["route"], decision["method"]) == ("beta", "latency")
    assert [(c["model"], c["samples"]) for c in decision["candidates"]] == [
        ("beta", 1),
        ("gamma", 1),
        ("alpha", 1),
    ]
    figures = [c["figure"] for c in decision["candidates"]]
    assert figures == sorted(figures) and figures[1] >= 0.2 and figures[2] >= 0.5
    assert fastest.structured_content["answer"] == "beta answers"
    assert fastest.structured_content["calls"][0]["stage"] == "route/beta"
    assert "route: beta (latency)" in fastest.content[0].text
    # Under a cap of $0.01 beta (estimated at ~$0.04) is skipped, and gamma is the fastest left.
    under_cap = _decision(capped)
    assert under_cap["route"] == "gamma" and capped.structured_content["answer"] == "gamma answers"
    skipped = [c for c in under_cap["candidates"] if c.get("skipped")]
    assert [c["model"] for c in skipped] == ["beta"] and "left of the cost cap" in skipped[0]["skipped"]
    assert (
        _decision(by_rules)["method"] == "default"
        and by_rules.structured_content["answer"] == "alpha answers"
    )


async def test_cost_routing_over_stdio_takes_the_cheapest_estimate_and_a_bad_objective_names_the_argument(
    fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    params = stdio_server(_config(fake_openai, tmp_path / "chorus.yaml"), server_env(SECRET))
    async with Client(params) as client:
        cheapest = await _route(client, objective="cost")
        no_scores = await _route(client, objective="quality")

    decision = _decision(cheapest)
    assert (decision["route"], decision["method"]) == ("alpha", "cost")
    assert [c["model"] for c in decision["candidates"]] == ["alpha", "gamma", "beta"]
    assert decision["reason"].startswith("lowest estimated cost: alpha $0.000")
    assert no_scores.is_error
    assert "objective 'quality' needs scores" in no_scores.content[0].text


async def test_two_replicas_sharing_redis_route_by_each_others_latency_measurements(
    fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    url, prefix = redis_url_or_skip(), fresh_prefix()
    config = _config(fake_openai, tmp_path / "chorus.yaml", store=url, key_prefix=prefix, breaker_sync_s=0.1)
    env = server_env(SECRET)
    shared = aioredis.Redis.from_url(url, decode_responses=True)
    try:
        with (
            http_server(tmp_path, env, config=config, flags=("--stateless",)) as one,
            http_server(tmp_path, env, config=config, flags=("--stateless",)) as two,
        ):
            async with Client(one.url) as via_one:
                explored = [_decision(await _route(via_one, objective="latency"))["route"] for _ in range(3)]
            # Replica one pushes its samples in the background (every 0.1 s): wait until Redis has them all.
            store = RedisLatencyStore(shared, prefix=prefix)
            with anyio.fail_after(30):
                while not all((await store.windows(list(LATENCY_S))).values()):  # noqa: ASYNC110 (polls Redis)
                    await anyio.sleep(0.05)
            before = len(fake_openai.requests)
            async with Client(two.url, mode="legacy") as via_two:
                first_on_two = await _route(via_two, objective="latency")
    finally:
        await shared.aclose()
        delete_prefix(url, prefix)

    assert explored == ["alpha", "beta", "gamma"]
    decision = _decision(first_on_two)
    # Replica two never called a model before, yet explores nothing: the figures are replica one's.
    assert decision["route"] == "beta" and not decision["reason"].startswith("exploring")
    assert [c["samples"] for c in decision["candidates"]] == [1, 1, 1]
    assert [r.model for r in fake_openai.requests[before:]] == ["beta"]
