"""The real server process over real transports (stdio subprocess, streamable HTTP on loopback), calling
real litellm over real HTTP against the fake OpenAI-compatible server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from tests.fake_openai import FakeOpenAI
from tests.support.servers import (
    fake_provider_config,
    http_server,
    run_chorus,
    server_env,
    stdio_server,
    write_config,
)

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

SECRET = "sk-chorus-test-0123456789abcdef"


def _config(fake: FakeOpenAI, path: Path) -> Path:
    return write_config(
        path, fake_provider_config(fake, deadline_s=90, timeout_s=30, allow_unlisted_models=False)
    )


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def scripted(fake: FakeOpenAI) -> FakeOpenAI:
    fake.reset()
    fake.script("alpha", "The answer is B.", latency_s=0.05)
    fake.script("beta", "B", latency_s=0.05)
    fake.script("gamma", "C\nConfidence: 95%", latency_s=0.05)
    return fake


@pytest.fixture
def http_url(scripted: FakeOpenAI, tmp_path: Path) -> Iterator[str]:
    config = _config(scripted, tmp_path / "chorus.yaml")
    with http_server(tmp_path, server_env(SECRET), config=config, never_logged=SECRET) as served:
        yield served.url


async def _exercise(client: Client, fake: FakeOpenAI) -> None:
    tools = {t.name for t in (await client.list_tools()).tools}
    assert {"ensemble_vote", "cascade_ask", "route_specialist", "run_pipeline"} <= tools

    vote = await client.call_tool("ensemble_vote", {"prompt": "Pick one: A) x B) y C) z"})
    assert not vote.is_error, vote.content
    data: dict[str, Any] = vote.structured_content or {}
    assert data["answer"] == "B"
    assert sorted(c["model"] for c in data["calls"]) == ["alpha", "beta", "gamma"]
    assert data["totals"]["cost_usd"] is not None and float(data["totals"]["cost_usd"]) > 0

    cascade = await client.call_tool("cascade_ask", {"prompt": "Pick: A) B) C)"})
    assert not cascade.is_error, cascade.content
    route = await client.call_tool("route_specialist", {"prompt": "hello"})
    assert (route.structured_content or {})["answer"] == "B"
    pipeline = await client.call_tool("run_pipeline", {"input": "write a haiku"})
    assert (pipeline.structured_content or {})["answer"] == "B"

    # The key reached the provider as a bearer token, and nowhere else.
    assert fake.requests and all(r.headers.get("authorization") == f"Bearer {SECRET}" for r in fake.requests)
    for result in (vote, cascade, route, pipeline):
        assert SECRET not in result.model_dump_json()


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_every_tool_works_over_stdio_in_both_protocol_eras(
    scripted: FakeOpenAI, tmp_path: Path, mode: str
) -> None:
    params = stdio_server(_config(scripted, tmp_path / "chorus.yaml"), server_env(SECRET))
    async with Client(params, mode=mode) as client:  # type: ignore[arg-type]
        await _exercise(client, scripted)


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_every_tool_works_over_streamable_http_in_both_protocol_eras(
    scripted: FakeOpenAI, http_url: str, mode: str
) -> None:
    async with Client(http_url, mode=mode) as client:  # type: ignore[arg-type]
        await _exercise(client, scripted)


async def test_progress_notifications_arrive_over_http(scripted: FakeOpenAI, http_url: str) -> None:
    seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    scripted.script("beta", "Neither", latency_s=0.05)
    async with Client(http_url, mode="legacy") as client:
        # The three answers differ ("b", "neither", "c"), so no early stop: every member finishes and reports.
        arguments = {"prompt": "A) B) C)?", "extract": "text"}
        await client.call_tool("ensemble_vote", arguments, progress_callback=on_progress)
    # One whole number per finished call; a heartbeat (a fraction between them) may come on a slow machine.
    assert [value for value in seen if value == int(value)] == [1, 2, 3]


def test_a_broken_config_stops_start_up_with_the_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("defaults:\n  deadline_s: soon\n")
    done = run_chorus("serve", "--config", str(bad), env=server_env(SECRET), timeout=60)
    assert done.returncode == 2
    assert f"{bad}: defaults.deadline_s: 'soon'; expected a number" in done.stderr
    assert done.stdout == ""  # stdout belongs to the stdio transport


def test_http_refuses_to_listen_beyond_loopback_without_auth(tmp_path: Path) -> None:
    done = run_chorus(
        "serve", "--http", "--host", "0.0.0.0", "--port", "1", env=server_env(SECRET), timeout=60
    )
    assert done.returncode == 2 and "refusing to listen on 0.0.0.0" in done.stderr
