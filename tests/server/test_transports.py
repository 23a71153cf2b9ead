"""The real server process over real transports (stdio subprocess, streamable HTTP on loopback), calling
real litellm over real HTTP against the fake OpenAI-compatible server."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters

from tests.fake_openai import FakeOpenAI

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SECRET = "sk-chorus-test-0123456789abcdef"


def _config(fake: FakeOpenAI, path: Path) -> Path:
    models = {
        alias: {
            "model": f"openai/{alias}",
            "api_base": fake.base_url,
            "api_key_env": "CHORUS_TEST_KEY",
            "input_cost_per_mtok": 1,
            "output_cost_per_mtok": 2,
            "timeout_s": 30,
        }
        for alias in ("alpha", "beta", "gamma")
    }
    config = {
        "models": models,
        "allow_unlisted_models": False,
        "strategies": {
            "ensemble": {"kind": "ensemble", "members": ["alpha", "beta", "gamma"], "extract": "choice"},
            "cascade": {"kind": "cascade", "tiers": ["alpha", "gamma"], "threshold": 0.8},
            "route": {
                "kind": "route",
                "default": "general",
                "routes": [{"name": "general", "target": "beta"}],
            },
            "pipeline": {
                "kind": "pipeline",
                "stages": [{"name": "draft", "prompt": "Do: {input}", "step": "beta"}],
            },
        },
        "defaults": {"deadline_s": 90},
    }
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHORUS")}
    env.update(
        CHORUS_TEST_KEY=SECRET,
        PYTHONPATH=str(REPO),
        LITELLM_OFFLINE_MODE="true",
        LITELLM_LOCAL_MODEL_COST_MAP="True",
    )
    return env


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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def http_server(scripted: FakeOpenAI, tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    config = _config(scripted, tmp_path / "chorus.yaml")
    process = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "serve", "--http", "--port", str(port), "--config", str(config)],
        env=_env(),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(
                    f"server exited: {process.stderr.read().decode() if process.stderr else ''}"
                )
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        try:
            _, stderr = process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
        assert SECRET.encode() not in stderr, "the API key appeared in the server's log"


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
    config = _config(scripted, tmp_path / "chorus.yaml")
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "server.cli", "serve", "--config", str(config)],
        env=_env(),
        cwd=REPO,
    )
    async with Client(params, mode=mode) as client:  # type: ignore[arg-type]
        await _exercise(client, scripted)


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_every_tool_works_over_streamable_http_in_both_protocol_eras(
    scripted: FakeOpenAI, http_server: str, mode: str
) -> None:
    async with Client(http_server, mode=mode) as client:  # type: ignore[arg-type]
        await _exercise(client, scripted)


async def test_progress_notifications_arrive_over_http(scripted: FakeOpenAI, http_server: str) -> None:
    seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    async with Client(http_server, mode="legacy") as client:
        # Compared as text the three answers differ, so no early stop: every member finishes and reports.
        arguments = {"prompt": "A) B) C)?", "extract": "text"}
        await client.call_tool("ensemble_vote", arguments, progress_callback=on_progress)
    assert seen == [1, 2, 3]


def test_a_broken_config_stops_start_up_with_the_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("defaults:\n  deadline_s: soon\n")
    done = subprocess.run(
        [sys.executable, "-m", "server.cli", "serve", "--config", str(bad)],
        env=_env(),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2
    assert f"{bad}: defaults.deadline_s:" in done.stderr and "valid number" in done.stderr
    assert done.stdout == ""  # stdout belongs to the stdio transport


def test_http_refuses_to_listen_beyond_loopback_without_auth(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "server.cli", "serve", "--http", "--host", "0.0.0.0", "--port", "1"],
        env=_env(),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2 and "refusing to listen on 0.0.0.0" in done.stderr
