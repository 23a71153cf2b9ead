"""End to end with a client nobody here wrote: the official MCP Inspector CLI (Node) lists the tools, calls
each of the four orchestration tools and reads a session resource — over stdio and over streamable HTTP,
against the fake provider server.

Needs `npx` (Node.js) and the `@modelcontextprotocol/inspector@2.12.0` package, fetched from the npm
registry on first use and cached after. Without `npx` the tests skip; with `npx` but neither the registry
nor a cached copy, they skip too, saying so."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fake_openai import FakeOpenAI

INSPECTOR = "@modelcontextprotocol/inspector@2.12.0"
REPO = Path(__file__).resolve().parents[2]
SECRET = "sk-chorus-inspector-0123456789abcdef"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("npx") is None,
        reason="npx (Node.js) is not installed: the MCP Inspector CLI runs with it",
    ),
]

CALLS = {
    "ensemble_vote": ({"prompt": "Pick one: A) x B) y C) z"}, "B"),
    "cascade_ask": ({"prompt": "Pick one: A) x B) y C) z"}, "C"),
    "route_specialist": ({"prompt": "hello"}, "B"),
    "run_pipeline": ({"input": "write a haiku"}, "B"),
}


def inspector(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    npx = shutil.which("npx")
    assert npx is not None
    return subprocess.run(
        [npx, "-y", INSPECTOR, "--cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "npm_config_update_notifier": "false", "npm_config_fund": "false"},
    )


def _json(done: subprocess.CompletedProcess[str]) -> Any:
    assert done.stdout.strip(), f"no output; stderr:\n{_errors(done.stderr)}"
    return json.loads(done.stdout)


def _errors(stderr: str) -> str:
    # npm warns that 2.12.0 wants Node 22; it runs on Node 20 all the same.
    return "\n".join(
        line for line in stderr.splitlines() if "EBADENGINE" not in line and "npm warn" not in line
    )


@pytest.fixture(scope="module")
def _inspector_available() -> None:
    done = inspector("--version", timeout=600)
    if done.returncode != 0:
        said = _errors(done.stderr)
        offline = any(
            code in said for code in ("ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT", "ECONNREFUSED", "ENETUNREACH")
        )
        if offline:
            pytest.skip(f"{INSPECTOR} is not cached and the npm registry is not reachable")
        raise AssertionError(f"the Inspector CLI did not start:\n{said}")


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        server.script("alpha", "The answer is B.", latency_s=0.05)
        server.script("beta", "B", latency_s=0.05)
        server.script("gamma", "C\nConfidence: 95%", latency_s=0.05)
        yield server


@pytest.fixture(scope="module")
def config(fake: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Generous time-outs: a loaded machine must not turn a slow first call into a failure.
    entry = {
        "api_base": fake.base_url,
        "api_key_env": "CHORUS_TEST_KEY",
        "input_cost_per_mtok": 1,
        "timeout_s": 120,
    }
    data = {
        "models": {alias: {"model": f"openai/{alias}", **entry} for alias in ("alpha", "beta", "gamma")},
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
        "defaults": {"deadline_s": 240},
    }
    path = tmp_path_factory.mktemp("inspector") / "chorus.yaml"
    path.write_text(json.dumps(data))
    return path


def _server_env(config: Path) -> dict[str, str]:
    return {
        # The Inspector reads `--config` and `--log-level` as its own options, so the config goes by variable.
        "CHORUS_CONFIG": str(config),
        "CHORUS_TEST_KEY": SECRET,
        "PYTHONPATH": str(REPO),
        "LITELLM_OFFLINE_MODE": "true",
        "XDG_DATA_HOME": os.environ.get("XDG_DATA_HOME", str(config.parent)),
    }


@pytest.fixture(scope="module")
def stdio_target(config: Path, _inspector_available: None) -> list[str]:
    env = [arg for key, value in _server_env(config).items() for arg in ("-e", f"{key}={value}")]
    return [sys.executable, "-m", "server.cli", "serve", *env, "--cwd", str(REPO)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def http_target(config: Path, _inspector_available: None) -> Iterator[list[str]]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHORUS")} | _server_env(config)
    process = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "serve", "--http", "--port", str(port)],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise AssertionError(
                    f"server exited: {process.stderr.read().decode() if process.stderr else ''}"
                )
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield [f"http://127.0.0.1:{port}/mcp", "--transport", "http"]
    finally:
        process.terminate()
        try:
            _, stderr = process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
        assert SECRET.encode() not in stderr


@pytest.fixture(params=["stdio", "http"])
def target(request: pytest.FixtureRequest) -> list[str]:
    fixture = "stdio_target" if request.param == "stdio" else "http_target"
    found: list[str] = request.getfixturevalue(fixture)
    return found


def test_the_inspector_lists_every_tool_with_its_schemas(target: list[str]) -> None:
    done = inspector(*target, "--method", "tools/list")
    assert done.returncode == 0, _errors(done.stderr)
    tools = {tool["name"]: tool for tool in _json(done)["tools"]}
    for name in CALLS:
        assert tools[name]["inputSchema"]["type"] == "object"
        assert "answer" in tools[name]["outputSchema"]["properties"]


@pytest.mark.parametrize("tool", list(CALLS))
def test_the_inspector_calls_each_orchestration_tool(target: list[str], tool: str) -> None:
    arguments, answer = CALLS[tool]
    pairs = [f"{key}={value}" for key, value in arguments.items()]
    done = inspector(*target, "--method", "tools/call", "--tool-name", tool, "--tool-arg", *pairs)
    assert done.returncode == 0, _errors(done.stderr)
    result = _json(done)
    assert result.get("isError") is not True, result
    assert result["structuredContent"]["answer"] == answer
    assert result["structuredContent"]["session_id"]
    assert SECRET not in done.stdout


def test_the_inspector_reads_a_session_as_a_resource(target: list[str]) -> None:
    call = inspector(
        *target, "--method", "tools/call", "--tool-name", "route_specialist", "--tool-arg", "prompt=hello"
    )
    assert call.returncode == 0, _errors(call.stderr)
    session_id = _json(call)["structuredContent"]["session_id"]
    done = inspector(*target, "--method", "resources/read", "--uri", f"session://{session_id}")
    assert done.returncode == 0, _errors(done.stderr)
    contents = _json(done)["contents"]
    assert contents[0]["uri"] == f"session://{session_id}"
    assert "hello" in contents[0]["text"]
    listed = inspector(*target, "--method", "resources/templates/list")
    assert listed.returncode == 0, _errors(listed.stderr)
    assert any(t["uriTemplate"] == "session://{session_id}" for t in _json(listed)["resourceTemplates"])
