"""Every client snippet in the README works: each is read out of README.md (the block after its
`<!-- readme-check: NAME -->` marker), its command line is taken exactly as written with the clone's path
put in for `/path/to/chorus`, and a real MCP session is run against the server it starts.

The command lines start with `uv run`. Installing is uv's business and is not repeated here — the tests
must not change the environment they run in — so uv runs with `UV_NO_SYNC=1` (use the environment as it
is) and `UV_OFFLINE=1`; everything else about the command line is what a user pastes."""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters

from tests.fake_openai import FakeOpenAI
from tests.support.extras import needs_local_extra

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("uv") is None, reason="uv is not installed: the README's commands use it"
    ),
]

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
PLACEHOLDER = "/path/to/chorus"
CLIENTS = ["claude-desktop", "claude-code", "vscode", "cursor", "python-mcp", "pydantic-ai"]


@dataclass(frozen=True)
class Launch:
    command: str
    args: list[str]
    env: dict[str, str]


def snippet(name: str) -> tuple[str, str]:
    """(language, code) of the fenced block right after `<!-- readme-check: name -->`."""
    text = README.read_text(encoding="utf-8")
    found = re.search(rf"<!-- readme-check: {re.escape(name)} -->\s*```(\w*)\n(.*?)\n```", text, re.DOTALL)
    assert found, f"README.md has no block marked readme-check: {name}"
    return found.group(1), found.group(2)


def launch_of(name: str) -> Launch:
    """How the snippet starts the server: command, arguments and environment, as written."""
    language, code = snippet(name)
    if language == "json":
        data = json.loads(code)
        servers = data.get("mcpServers") or data.get("servers")
        entry = servers["chorus"]
        assert entry.get("type", "stdio") == "stdio"
        env = {
            key: re.sub(r"\$\{input:[^}]+\}", "from-an-input", value)
            for key, value in entry.get("env", {}).items()
        }
        return Launch(entry["command"], list(entry["args"]), env)
    if language == "bash":
        return _claude_mcp_add(shlex.split(code))
    assert language == "python", f"{name}: unexpected block language {language!r}"
    return _python_launch(code)


def _claude_mcp_add(words: list[str]) -> Launch:
    assert words[:3] == ["claude", "mcp", "add"] and "--" in words
    options, command = words[3 : words.index("--")], words[words.index("--") + 1 :]
    env: dict[str, str] = {}
    names = []
    index = 0
    while index < len(options):
        word = options[index]
        if word in ("-e", "--env"):
            key, _, value = options[index + 1].partition("=")
            env[key] = value
            index += 2
        elif word in ("-t", "--transport", "-s", "--scope"):
            assert word not in ("-t", "--transport") or options[index + 1] == "stdio"
            index += 2
        else:
            names.append(word)
            index += 1
    assert names == ["chorus"], f"server name: {names}"
    return Launch(command[0], command[1:], env)


def _python_launch(code: str) -> Launch:
    compile(code, "README.md", "exec")
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) in (
            "StdioServerParameters",
            "MCPServerStdio",
        ):
            keywords = {k.arg: k.value for k in node.keywords}
            command = ast.literal_eval(node.args[0] if node.args else keywords["command"])
            args = ast.literal_eval(keywords["args"])
            return Launch(command, list(args), {})
    raise AssertionError("no StdioServerParameters(...) or MCPServerStdio(...) in the snippet")


def _exactly(launch: Launch) -> list[str]:
    line = [launch.command, *launch.args]
    assert PLACEHOLDER in line, f"the command line does not use {PLACEHOLDER}: {line}"
    return [str(REPO) if word == PLACEHOLDER else word for word in line]


def _test_env(config: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHORUS", "UV_"))}
    env.update(
        CHORUS_CONFIG=config,
        CHORUS_TEST_KEY="sk-readme-0123456789",
        UV_NO_SYNC="1",
        UV_OFFLINE="1",
        LITELLM_OFFLINE_MODE="true",
    )
    return env


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        server.script("alpha", "The answer is B.")
        server.script("beta", "B")
        yield server


@pytest.fixture(scope="module")
def config(fake: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory) -> str:
    # Generous time-outs: a loaded machine must not turn a slow first call into a failure.
    entry = {"api_base": fake.base_url, "api_key_env": "CHORUS_TEST_KEY", "timeout_s": 120}
    data = {
        "models": {"alpha": {"model": "openai/alpha", **entry}, "beta": {"model": "openai/beta", **entry}},
        "strategies": {"ensemble": {"kind": "ensemble", "members": ["alpha", "beta"], "extract": "choice"}},
        "defaults": {"deadline_s": 240},
    }
    path = tmp_path_factory.mktemp("readme") / "chorus.yaml"
    path.write_text(json.dumps(data))
    return str(path)


def test_every_client_has_a_checked_snippet() -> None:
    text = README.read_text(encoding="utf-8")
    for name in ["run-it", *CLIENTS]:
        assert f"<!-- readme-check: {name} -->" in text


@pytest.mark.anyio
@pytest.mark.parametrize("name", CLIENTS)
async def test_the_snippet_starts_a_working_server_with_exactly_its_command_line(
    name: str, config: str, tmp_path: Path
) -> None:
    launch = launch_of(name)
    line = _exactly(launch)
    # The snippet's own env (keys, placeholders) is passed as written; the test adds its config on top.
    params = StdioServerParameters(
        command=line[0], args=line[1:], env={**launch.env, **_test_env(config)}, cwd=tmp_path
    )
    async with Client(params) as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        assert {"ensemble_vote", "cascade_ask", "route_specialist", "run_pipeline"} <= tools
        result = await client.call_tool("ensemble_vote", {"prompt": "Pick one: A) x B) y"})
    assert not result.is_error, result.content
    data: dict[str, Any] = result.structured_content or {}
    assert data["answer"] == "B"


def test_the_python_client_snippet_uses_the_sdk_as_installed() -> None:
    _, code = snippet("python-mcp")
    tree = ast.parse(code)
    imported = {
        alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) for alias in node.names
    }
    import mcp

    assert {"Client", "StdioServerParameters"} <= imported and all(
        hasattr(mcp, n) for n in ("Client", "StdioServerParameters")
    )


def test_the_run_it_command_answers_through_a_real_session(config: str) -> None:
    _, code = snippet("run-it")
    words = shlex.split(code)
    assert words[:6] == ["uv", "run", "--extra", "local", "chorus-mcp", "ask"]
    # Here against the test's fake provider, with or without the embedded model's extra; the test below
    # runs the command exactly as written, on the embedded model.
    words = [*words[:2], *words[4:]]
    done = subprocess.run(
        words,
        cwd=REPO,
        env=_test_env(config),
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Answer: ") and "alpha" in done.stdout and "beta" in done.stdout


@needs_local_extra
def test_the_run_it_command_exactly_as_written_is_answered_by_two_or_more_independent_embedded_voters(
    tmp_path: Path,
) -> None:
    _, code = snippet("run-it")
    keys = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "CHORUS_CONFIG")
    env = {k: v for k, v in os.environ.items() if k not in keys}
    env.update(XDG_DATA_HOME=str(tmp_path), UV_OFFLINE="1")  # fresh sessions and cache; no network
    done = subprocess.run(
        shlex.split(code),
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode == 1 and "deadline" in done.stdout:  # cut short before the vote was complete
        pytest.skip("this machine is too busy for the default deadline: " + done.stdout.splitlines()[0])

    assert done.returncode == 0, done.stderr
    assert re.match(r"Answer: (yes|no)\n", done.stdout), done.stdout
    # The greedy seat and a sampled one are distinct samples, counted twice, but of one model: the line
    # says so rather than calling them independent voters.
    vote = re.search(
        r"vote \(majority\): (yes|no) ← .*; (\d) of (\d) samples of one model agree, consensus", done.stdout
    )
    assert vote is not None and int(vote.group(2)) >= 2, done.stdout
    # Either client seat's fallback may finish first; the other is then cancelled by the early stop.
    assert re.search(r"ensemble/member-[23]: local answered for client", done.stdout), done.stdout
