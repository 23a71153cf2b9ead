"""Against a real Arize Phoenix, started by a real `chorus-mcp serve --http --phoenix`: tool calls' traces
arrive with their tree, model names and token counts; the trace list's root row is readable; Phoenix's
cost total equals the tool results' totals for models priced in config, on a gateway and at a price that
differs from Phoenix's own table; and stopping the server by SIGTERM stops its Phoenix.

Phoenix is the optional `phoenix` extra; without it this module is skipped. Starting it takes 20 s to a
few minutes (importing it is most of that), so the module shares one server and its Phoenix across tests
(`stack`); the SIGTERM test ends that one, and a test after it gets a fresh one.
"""

from __future__ import annotations

import importlib.util
import json
import re
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fake_openai import FakeOpenAI
from tests.support.servers import REPO, chorus_command, free_port, server_env, write_config

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("phoenix") is None,
        reason="needs a real Phoenix: the 'phoenix' extra is not installed (uv sync --extra phoenix)",
    ),
]

PHOENIX_START_S = 300.0
"""Generous: Phoenix starts in 20-30 s on an idle machine, but took 3 minutes on a loaded one here."""
SPANS_ARRIVE_S = 60.0
SECRET = "sk-chorus-phoenix-0123456789abcdef"

MODELS = {
    # Priced in config, under a name Phoenix does not know.
    "alpha": {"model": "openai/alpha", "input_cost_per_mtok": 1, "output_cost_per_mtok": 2},
    # A gateway's model id (provider prefix, then the vendor's name): Phoenix's table has no such name.
    "beta": {"model": "openrouter/vendor/beta", "input_cost_per_mtok": 3, "output_cost_per_mtok": 5},
    # A name Phoenix's own table prices, at another (negotiated) price in config: Chorus's must win.
    "gamma": {"model": "openai/gpt-4o-mini", "input_cost_per_mtok": 7, "output_cost_per_mtok": 11},
}
CREATE_MODEL = "mutation($input: CreateModelMutationInput!) { createModel(input: $input) { model { id } } }"
ANSWERS_UNDER = {"alpha": "alpha", "beta": "vendor/beta", "gamma": "gpt-4o-mini"}
"""The model name each is sent (and answers) under."""


@dataclass
class Stack:
    process: subprocess.Popen[bytes]
    mcp_url: str
    phoenix_url: str
    project: str
    log_path: Path

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, _fake_openai_server: FakeOpenAI
) -> Iterator[Callable[[], Stack]]:
    """The running server and its Phoenix (a new pair if a test stopped the last one)."""
    started: list[Stack] = []

    def get() -> Stack:
        if not started or started[-1].process.poll() is not None:
            started.append(_start(tmp_path_factory.mktemp("stack"), _fake_openai_server))
        return started[-1]

    yield get
    for running in started:
        if running.process.poll() is None:
            running.process.terminate()
            try:
                running.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                running.process.kill()
                running.process.wait()


def _start(folder: Path, fake: FakeOpenAI) -> Stack:
    project = f"chorus-test-{uuid.uuid4().hex[:8]}"
    models = {
        alias: {**entry, "api_base": fake.base_url, "api_key_env": "CHORUS_TEST_KEY", "timeout_s": 60}
        for alias, entry in MODELS.items()
    }
    config = {
        "models": models,
        "allow_unlisted_models": False,
        "strategies": {
            "ensemble": {
                "kind": "ensemble",
                "members": list(MODELS),
                "extract": "choice",
                "early_stop": False,
            },
            "cascade": {"kind": "cascade", "tiers": ["alpha", "beta"], "threshold": 0.8},
        },
        "defaults": {"deadline_s": 60},
        "tracing": {"project": project, "phoenix_port": free_port()},
    }
    path = write_config(folder / "chorus.yaml", config)
    port = free_port()
    env = server_env(SECRET, PHOENIX_WORKING_DIR=str(folder / "phoenix"))
    log_path = folder / "server.log"
    command = chorus_command("serve", "--http", "--port", str(port), "--config", str(path), "--phoenix")
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, env=env, cwd=REPO, stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
    stack = Stack(process, f"http://127.0.0.1:{port}/mcp", "", project, log_path)
    deadline = time.monotonic() + PHOENIX_START_S
    while "Phoenix is up" not in stack.log:
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            phoenix_log = (folder / "phoenix" / "phoenix.log").read_text(errors="replace")[-3000:]
            pytest.fail(f"Phoenix did not come up within {PHOENIX_START_S:.0f}s:\n{stack.log}\n{phoenix_log}")
        time.sleep(0.5)
    found = re.search(r"starting Phoenix at (http://[0-9.:]+)", stack.log)
    assert found is not None, stack.log
    stack.phoenix_url = found.group(1)
    return stack


async def _call(stack: Stack, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    from mcp import Client

    async with Client(stack.mcp_url) as client:
        result = await client.call_tool(tool, {**arguments, "detail": "full"})
    assert not result.is_error, result.content
    data: dict[str, Any] = result.structured_content  # type: ignore[assignment]
    return data


async def test_a_tool_calls_trace_reaches_phoenix_with_its_llm_spans_token_counts_and_a_readable_root(
    stack: Callable[[], Stack], fake_openai: FakeOpenAI
) -> None:
    running = stack()
    fake_openai.script("alpha", "The answer is B.", latency_s=0.05)
    fake_openai.script("vendor/beta", "B", latency_s=0.05)
    fake_openai.script("gpt-4o-mini", "C", latency_s=0.05)
    prompt = f"Which? A) x B) y C) z ({uuid.uuid4().hex[:6]})"
    data = await _call(running, "ensemble_vote", {"prompt": prompt})
    assert data["answer"] == "B"

    spans = _read_trace(running, data["session_id"], expected=9)
    by_id = {s["context"]["span_id"]: s for s in spans}
    names = sorted(s["name"] for s in spans)
    assert names == sorted(
        [
            "tools/call ensemble_vote",
            "chorus ensemble",
            "member-1",
            "member-2",
            "member-3",
            *[f"llm {m}" for m in MODELS],
            "vote decision",
        ]
    )
    top = next(s for s in spans if s["name"] == "tools/call ensemble_vote")
    # The row of Phoenix's trace list: the prompt, the answer, OK, what the call cost.
    assert top.get("parent_id") not in by_id and top["span_kind"] == "TOOL"
    assert top["status_code"] == "OK"
    assert top["attributes"]["input.value"] == prompt and top["attributes"]["output.value"] == "B"
    assert top["attributes"]["chorus.totals.cost_usd"] == pytest.approx(float(data["totals"]["cost_usd"]))
    root = next(s for s in spans if s["name"] == "chorus ensemble")
    assert root["parent_id"] == top["context"]["span_id"] and root["span_kind"] == "AGENT"

    tokens = {c["model"]: (c["prompt_tokens"], c["completion_tokens"]) for c in data["calls"]}
    for span in (s for s in spans if s["span_kind"] == "LLM"):
        attributes = span["attributes"]
        alias = attributes["chorus.model"]
        assert attributes["llm.model_name"] == ANSWERS_UNDER[alias]
        prompt_tokens, completion_tokens = tokens[alias]
        assert attributes["llm.token_count.prompt"] == prompt_tokens
        assert attributes["llm.token_count.completion"] == completion_tokens
        assert by_id[span["parent_id"]]["parent_id"] == root["context"]["span_id"]


async def test_phoenixs_cost_total_equals_the_tool_results_totals(
    stack: Callable[[], Stack], fake_openai: FakeOpenAI
) -> None:
    running = stack()
    before = _project_cost(running)
    fake_openai.script("alpha", "The answer is B.", latency_s=0.05)
    fake_openai.script("vendor/beta", "B " * 40, latency_s=0.05)
    fake_openai.script("gpt-4o-mini", "C", latency_s=0.05)
    results = [
        await _call(running, "ensemble_vote", {"prompt": f"Which? A) x B) y ({uuid.uuid4().hex})"}),
        await _call(running, "cascade_ask", {"prompt": f"What is 2+2? ({uuid.uuid4().hex})"}),
    ]
    expected = sum(float(r["totals"]["cost_usd"]) for r in results)
    assert expected > 0 and all(r["totals"]["cost_complete"] for r in results)

    cost = _cost_once_in(running, before, expected)
    assert cost == pytest.approx(expected, rel=1e-9), running.log


def test_prices_already_given_are_left_alone_and_a_custom_model_of_someone_elses_is_kept(
    stack: Callable[[], Stack],
) -> None:
    from chorus_mcp.server.ops.phoenix_prices import register_prices
    from chorus_mcp.strategies.models.catalog import ModelEntry
    from chorus_mcp.strategies.tracing.prices import span_prices

    running = stack()
    deadline = time.monotonic() + SPANS_ARRIVE_S
    while "Phoenix prices models as Chorus does" not in running.log:  # the server gave its prices
        assert time.monotonic() < deadline, running.log
        time.sleep(0.2)
    entries = {alias: ModelEntry(**entry) for alias, entry in MODELS.items()}  # type: ignore[arg-type]
    again = register_prices(running.phoenix_url, span_prices(entries))
    assert sorted(again.unchanged) == [
        "chorus: openai/alpha",
        "chorus: openai/gpt-4o-mini",
        "chorus: openrouter/vendor/beta",
    ]
    assert not again.changed

    mine = {"delta": ModelEntry(model="openai/delta-7", input_cost_per_mtok=1, output_cost_per_mtok=1)}  # type: ignore[arg-type]
    theirs = {
        "name": "my delta",
        "provider": "openai",
        "namePattern": "^delta\\-7$",
        "costs": [
            {"tokenType": "input", "kind": "PROMPT", "costPerMillionTokens": 9},
            {"tokenType": "output", "kind": "COMPLETION", "costPerMillionTokens": 9},
        ],
    }
    created = httpx.post(
        f"{running.phoenix_url}/graphql",
        json={"query": CREATE_MODEL, "variables": {"input": theirs}},
        timeout=10,
    ).json()
    assert "errors" not in created, created
    assert register_prices(running.phoenix_url, span_prices(mine)).kept_theirs == ["chorus: openai/delta-7"]


def test_stopping_the_server_by_sigterm_stops_the_phoenix_it_started(stack: Callable[[], Stack]) -> None:
    running = stack()
    port = int(running.phoenix_url.rsplit(":", 1)[1])
    assert _healthy(running.phoenix_url)

    running.process.send_signal(signal.SIGTERM)

    assert running.process.wait(timeout=60) == -signal.SIGTERM, running.log
    assert not _healthy(running.phoenix_url), "Phoenix outlived the server"
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0, f"something still listens on Phoenix's port {port}"
    assert "stopping Phoenix" in running.log


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _trace_of(span: dict[str, Any]) -> str:
    return str(span["context"]["trace_id"])


def _read_trace(stack: Stack, session_id: str, *, expected: int) -> list[dict[str, Any]]:
    """The spans of the trace whose run has `session_id`, once Phoenix has ingested `expected` of them (it
    writes in the background)."""
    from phoenix.client import Client as PhoenixClient

    client = PhoenixClient(base_url=stack.phoenix_url)
    deadline = time.monotonic() + SPANS_ARRIVE_S
    spans: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        try:
            found = [dict(s) for s in client.spans.get_spans(project_identifier=stack.project, limit=1000)]
        except Exception:  # the project appears with its first span
            found = []
        runs = [s for s in found if s["attributes"].get("session.id") == session_id]
        spans = [s for s in found if runs and _trace_of(s) == _trace_of(runs[0])]
        if len(spans) >= expected:
            return spans
        time.sleep(0.5)
    pytest.fail(
        f"Phoenix has {len(spans)} of {expected} spans after {SPANS_ARRIVE_S:.0f}s: {spans}\n{stack.log}"
    )


def _cost_once_in(stack: Stack, before: float, expected: float) -> float:
    """The project's cost added since `before`, once it reaches `expected` (or what it is after the wait)."""
    deadline = time.monotonic() + SPANS_ARRIVE_S
    while (cost := _project_cost(stack) - before) < expected * (1 - 1e-9) and time.monotonic() < deadline:
        time.sleep(0.5)
    return cost


def _project_cost(stack: Stack) -> float:
    """Phoenix's own cost total for the project (0 before its first span)."""
    query = "query($name: String!) { getProjectByName(name: $name) { costSummary { total { cost } } } }"
    response = httpx.post(
        f"{stack.phoenix_url}/graphql",
        json={"query": query, "variables": {"name": stack.project}},
        timeout=10,
    )
    body = json.loads(response.text)
    assert "errors" not in body, body
    project = body["data"]["getProjectByName"]
    return float(project["costSummary"]["total"]["cost"] or 0) if project else 0.0
