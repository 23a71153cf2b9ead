"""Sessions across real server processes: a SIGKILL loses nothing acknowledged (SQLite), and two
stateless HTTP replicas sharing Redis continue each other's sessions and share circuit-breaker state."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.types import TextResourceContents

from tests.fake_openai import FakeOpenAI, Fault
from tests.strategies.sessions.stores.backends import delete_prefix, fresh_prefix, redis_url_or_skip

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
KEY_ENV, KEY = "CHORUS_TEST_KEY", "sk-chorus-sessions-0123456789abcdef"


def _config(fake: FakeOpenAI, path: Path, sessions: dict[str, Any]) -> Path:
    models = {
        alias: {
            "model": f"openai/{alias}",
            "api_base": fake.base_url,
            "api_key_env": KEY_ENV,
            "input_cost_per_mtok": 1,
            "output_cost_per_mtok": 2,
            "timeout_s": 30,
        }
        for alias in ("alpha", "gamma")
    }
    config = {
        "models": models,
        "strategies": {
            "route": {"kind": "route", "default": "one", "routes": [{"name": "one", "target": "alpha"}]},
            "flaky": {"kind": "route", "default": "one", "routes": [{"name": "one", "target": "gamma"}]},
        },
        "defaults": {"deadline_s": 30},
        "reliability": {
            "retry": {"max_attempts": 1},
            "breaker": {"failure_threshold": 2, "window_s": 60, "cooldown_s": 60},
        },
        "sessions": sessions,
    }
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHORUS")}
    env.update(
        {
            KEY_ENV: KEY,
            "PYTHONPATH": str(REPO),
            "LITELLM_OFFLINE_MODE": "true",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "XDG_DATA_HOME": str(tmp_path / "data"),
        }
    )
    return env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def _serving(
    config: Path, tmp_path: Path, *, stateless: bool = False
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A real `chorus-mcp serve --http` process; yields its URL and the process (it may be killed)."""
    port = _free_port()
    command = [sys.executable, "-m", "chorus_mcp.server.cli.main", "serve", "--http", "--port", str(port)]
    command += ["--config", str(config)]
    if stateless:
        command.append("--stateless")
    process = subprocess.Popen(
        command,
        env=_env(tmp_path),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                log = process.stderr.read().decode() if process.stderr else ""
                raise AssertionError(f"server exited: {log}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp", process
    finally:
        if process.poll() is None:
            process.terminate()
        try:
            _, stderr = process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
        assert KEY.encode() not in stderr, "the API key appeared in the server's log"


async def _ask(client: Client, prompt: str, session_id: str | None = None, strategy: str = "route") -> Any:
    arguments: dict[str, Any] = {"prompt": prompt, "strategy": strategy}
    if session_id is not None:
        arguments["session_id"] = session_id
    return await client.call_tool("route_specialist", arguments)


async def _session(client: Client, session_id: str) -> dict[str, Any]:
    contents = (await client.read_resource(f"session://{session_id}")).contents[0]
    assert isinstance(contents, TextResourceContents)
    data: dict[str, Any] = json.loads(contents.text)
    return data


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        server.script("alpha", lambda request: f"re: {request.last_user}")
        server.script("gamma", Fault.server_error())
        yield server


async def test_a_session_survives_sigkill_up_to_the_last_acknowledged_turn(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    sessions = {"store": "sqlite", "sqlite_path": str(tmp_path / "s.db")}
    config = _config(fake, tmp_path / "chorus.yaml", sessions)
    with _serving(config, tmp_path) as (url, process):
        async with Client(url) as client:
            first = await _ask(client, "first")
            session_id = first.structured_content["session_id"]
            second = await _ask(client, "second", session_id)
            assert not first.is_error and not second.is_error  # acknowledged
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    with _serving(config, tmp_path) as (url, _):
        async with Client(url) as client:
            survived = await _session(client, session_id)
            third = await _ask(client, "third", session_id)

    assert [t["content"] for t in survived["turns"]] == ["first", "re: first", "second", "re: second"]
    assert survived["usage"]["calls"] == 2
    assert not third.is_error
    sent = [m["content"] for m in fake.requests_for("alpha")[-1].messages]
    assert sent == ["first", "re: first", "second", "re: second", "third"]


async def test_replicas_sharing_redis_continue_each_others_sessions_and_share_open_circuits(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    url, prefix = redis_url_or_skip(), fresh_prefix()
    sessions = {"store": url, "key_prefix": prefix, "breaker_sync_s": 0.1}
    config = _config(fake, tmp_path / "chorus.yaml", sessions)
    try:
        with (
            _serving(config, tmp_path, stateless=True) as (one, _),
            _serving(config, tmp_path, stateless=True) as (two, _),
        ):
            async with Client(one) as via_one, Client(two, mode="legacy") as via_two:
                started = await _ask(via_one, "hello from one")
                session_id = started.structured_content["session_id"]
                continued = await _ask(via_two, "and now two", session_id)
                seen_by_one = await _session(via_one, session_id)

                for _ in range(2):  # two failures through replica one open gamma's circuit...
                    assert (await _ask(via_one, "x", strategy="flaky")).is_error
                calls_to_gamma = len(fake.requests_for("gamma"))
                await anyio.sleep(0.6)  # ...and a few sync rounds later replica two knows it
                skipped = await _ask(via_two, "x", strategy="flaky")
    finally:
        delete_prefix(url, prefix)

    assert not started.is_error and not continued.is_error
    sent = [m["content"] for m in fake.requests_for("alpha")[-1].messages]
    assert sent == ["hello from one", "re: hello from one", "and now two"]
    assert [t["content"] for t in seen_by_one["turns"]][-2:] == ["and now two", "re: and now two"]
    assert calls_to_gamma == 2 and len(fake.requests_for("gamma")) == 2  # replica two did not call it
    calls = skipped.structured_content["calls"]
    assert skipped.is_error and calls[0]["status"] == "skipped" and "circuit open" in calls[0]["error"]
