"""`OriginPool`, the fast path's transport: it keeps connections alive per origin, bounds the idle ones,
never reuses a broken connection, and raises httpx's exceptions as httpx's own transport does."""

from __future__ import annotations

import socket

import anyio
import httpx
import pytest

from chorus_mcp.strategies.models.providers.http_pool import OriginPool
from tests.fake_openai import FakeOpenAI, Fault

pytestmark = pytest.mark.anyio

BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


async def test_sequential_calls_reuse_one_kept_alive_connection(fake_openai: FakeOpenAI) -> None:
    fake_openai.script("m")
    pool = OriginPool()
    async with httpx.AsyncClient(transport=pool) as http:
        for _ in range(5):
            response = await http.post(f"{fake_openai.base_url}/chat/completions", json=BODY)
            assert response.status_code == 200 and response.json()["choices"]

        assert pool.idle_connections() == 1


async def test_after_a_burst_only_max_idle_connections_are_kept(fake_openai: FakeOpenAI) -> None:
    fake_openai.script("m", "ok", latency_s=0.2)
    pool = OriginPool(max_idle_per_origin=3)
    answered = []
    async with httpx.AsyncClient(transport=pool) as http:

        async def call() -> None:
            response = await http.post(f"{fake_openai.base_url}/chat/completions", json=BODY)
            answered.append(response.status_code)

        async with anyio.create_task_group() as group:
            for _ in range(8):
                group.start_soon(call)

        assert answered == [200] * 8
        assert pool.idle_connections() == 3


async def test_a_connection_broken_mid_answer_is_dropped_and_the_next_call_succeeds(
    fake_openai: FakeOpenAI,
) -> None:
    fake_openai.script("m")
    fake_openai.fail_next(Fault.reset())
    pool = OriginPool()
    async with httpx.AsyncClient(transport=pool) as http:
        with pytest.raises(httpx.TransportError):
            await http.post(f"{fake_openai.base_url}/chat/completions", json=BODY)
        assert pool.idle_connections() == 0

        response = await http.post(f"{fake_openai.base_url}/chat/completions", json=BODY)

        assert response.status_code == 200 and pool.idle_connections() == 1


async def test_a_refused_connection_raises_httpx_connect_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once the socket is closed
    async with httpx.AsyncClient(transport=OriginPool()) as http:
        with pytest.raises(httpx.ConnectError):
            await http.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=BODY)


async def test_a_read_time_out_raises_httpx_read_timeout(fake_openai: FakeOpenAI) -> None:
    fake_openai.script("m")
    fake_openai.fail_next(Fault.hang())
    async with httpx.AsyncClient(transport=OriginPool()) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.post(f"{fake_openai.base_url}/chat/completions", json=BODY, timeout=0.3)


async def test_closing_the_pool_closes_its_idle_connections(fake_openai: FakeOpenAI) -> None:
    fake_openai.script("m")
    pool = OriginPool()
    async with httpx.AsyncClient(transport=pool) as http:
        await http.post(f"{fake_openai.base_url}/chat/completions", json=BODY)
        assert pool.idle_connections() == 1

    assert pool.idle_connections() == 0
