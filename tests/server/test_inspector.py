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
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fake_openai import FakeOpenAI
from tests.support.servers import (
    REPO,
    chorus_command,
    chorus_vars,
    fake_provider_config,
    http_server,
    server_env,
    write_config,
)

INSPECTOR = "@modelcontextprotocol/inspector@2.12.0"
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
    return write_config(tmp_path_factory.mktemp("inspector") / "chorus.yaml", fake_provider_config(fake))


def _server_vars(config: Path) -> dict[str, str]:
    # The Inspector reads `--config` and `--log-level` as its own options, so the config goes by variable.
    return chorus_vars(
        SECRET,
        CHORUS_CONFIG=str(config),
        XDG_DATA_HOME=os.environ.get("XDG_DATA_HOME", str(config.parent)),
    )


@pytest.fixture(scope="module")
def stdio_target(config: Path, _inspector_available: None) -> list[str]:
    # The Inspector starts the server with these variables only (and its own few defaults).
    env = [arg for key, value in _server_vars(config).items() for arg in ("-e", f"{key}={value}")]
    return [*chorus_command("serve"), *env, "--cwd", str(REPO)]


@pytest.fixture(scope="module")
def http_target(config: Path, _inspector_available: None) -> Iterator[list[str]]:
    env = server_env(SECRET, **_server_vars(config))
    with http_server(config.parent, env, never_logged=SECRET) as served:
        yield [served.url, "--transport", "http"]


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
    assert any(
        t["uriTemplate"] == "session://{session_id}{?before,limit}"
        for t in _json(listed)["resourceTemplates"]
    )


def test_the_inspector_lists_the_workflow_prompts_and_gets_one(target: list[str]) -> None:
    listed = inspector(*target, "--method", "prompts/list")
    assert listed.returncode == 0, _errors(listed.stderr)
    names = {prompt["name"] for prompt in _json(listed)["prompts"]}
    assert names == {"ask_ensemble", "second_opinion", "code_review", "debate"}
    done = inspector(
        *target,
        "--method",
        "prompts/get",
        "--prompt-name",
        "ask_ensemble",
        "--prompt-args",
        "question=A or B?",
    )
    assert done.returncode == 0, _errors(done.stderr)
    text = _json(done)["messages"][0]["content"]["text"]
    assert "`ensemble_vote`" in text and '"prompt": "A or B?"' in text
