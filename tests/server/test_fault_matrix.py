"""The fault matrix: every fault the fake provider can inject × every orchestration tool × {a healthy
alternative, none}, through the real server (`build_server` with its default clients, over real HTTP to
the fake OpenAI-compatible server), driven by an in-process MCP client. A few cells run again over real
subprocess transports (stdio and streamable HTTP).

In every cell:

- with a healthy alternative the tool answers, and the faulted model's record says what went wrong;
- without one the result is `isError`, naming each model and its reason;
- no exception escapes the tool (the call returns a result, never a protocol error or a traceback);
- the call returns by its deadline plus a small grace (measured with `anyio.current_time`: a generous
  bound, since this checks behaviour, not speed);
- the API key (a recognisable dummy, echoed back whole by the 401 fault) appears in no result and no log.

Short time-outs, deadlines and back-offs keep the matrix fast. So does building one server per fault
(tool registration costs ~0.4 s) and sharing it across that fault's eight cells, each over a fresh
client connection: its breakers are set never to open here (a breaker is tested on its own below),
so one cell cannot change another's outcome. The module runs on one event loop for that.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.server.mcpserver import MCPServer
from mcp.types import CallToolResult, TextContent

from chorus_mcp.config.loader import parse_config
from chorus_mcp.config.schema import ChorusConfig
from chorus_mcp.server.app import build_server
from tests.fake_openai import FakeOpenAI, Fault, RecordedRequest

pytestmark = pytest.mark.anyio

REPO = Path(__file__).resolve().parents[2]
KEY_ENV = "CHORUS_MATRIX_KEY"
KEY = "matrix-dummy-credential-5e1f0c9a7b3d42"
"""Not shaped like any provider's key, so only the registered-secret redaction can catch it."""
DEADLINE_S = 3.0
GRACE_S = 1.5
"""How far past its deadline a tool may return: the server's own safety net is 0.5 s; the rest is slack
for a busy machine. A tool that ignored its deadline would take far longer (a hang never answers)."""
FAULTY_TIMEOUT_S = 0.3
PROTOCOL = os.environ.get("CHORUS_FAULT_MATRIX_PROTOCOL", "auto")
"""How the server reaches the fake provider: `auto` (what a user gets: the OpenAI-compatible fast path
for `openai/` ids) or `litellm` (the path every other provider takes). Both hold the whole matrix; the
suite runs `auto` by default to stay fast."""
HEALTHY_ANSWER = "B\nConfidence: 90%"


@dataclass(frozen=True)
class Case:
    """One fault: what the fake does for the faulted models, and what their reason must mention."""

    id: str
    fault: Fault | None
    """None: nothing listens at the faulted models' address (connection refused)."""
    reasons: tuple[str, ...]
    """The reason names the fault: at least one of these appears in it (case-insensitive)."""
    status: str = "error"


FAULTS = [
    Case("hang", Fault.hang(), ("timed out", "no answer"), status="timeout"),
    Case("429-retry-after", Fault.rate_limited(retry_after=0.05), ("429",)),
    Case("429-long-retry-after", Fault.rate_limited(retry_after=30), ("429",)),
    Case("429", Fault.rate_limited(), ("429",)),
    Case("500", Fault.server_error(), ("500",)),
    Case("502", Fault.server_error(502), ("502",)),
    Case("503", Fault.unavailable(), ("503",)),
    Case("401-echoing-the-key", Fault.unauthorized(echo_key=True), ("401",)),
    Case("403", Fault.forbidden(), ("403",)),
    Case("400", Fault.bad_request(), ("400",)),
    Case("404", Fault.not_found(), ("404",)),
    Case("context-length", Fault.context_length(), ("context window",)),
    Case("reset", Fault.reset(), ("connection", "incomplete", "closed", "peer")),
    Case("refused", None, ("connect",)),
    Case("malformed-json", Fault.malformed_json(), ("unparseable", "json")),
    Case("empty-content", Fault.empty_content(), ("no text",)),
    Case("null-content", Fault.null_content(), ("no text",)),
    Case("no-choices", Fault.no_choices(), ("no choices",)),
]
TOOLS = ["ensemble_vote", "cascade_ask", "route_specialist", "run_pipeline"]
ALTERNATIVES = {True: "with-alternative", False: "without"}
FAULTED = ("faulty-a", "faulty-b")


def _strategies() -> dict[str, Any]:
    """For each tool, a strategy where a healthy model can stand in for the faulted one, and one where
    only faulted models are left."""

    def route(alternative: str) -> dict[str, Any]:
        # No rule matches, so the (faulted) classifier is asked first; its failure sends the request to
        # the default route, whose target is a faulted model with a fallback.
        return {
            "kind": "route",
            "classifier": "faulty-a",
            "default": "general",
            "routes": [
                {
                    "name": "general",
                    "description": "Everything.",
                    "target": {"kind": "model", "model": "faulty-a", "fallbacks": [alternative]},
                },
                {"name": "code", "description": "Code.", "keywords": ["python"], "target": "healthy"},
            ],
        }

    def pipeline(alternative: str) -> dict[str, Any]:
        return {
            "kind": "pipeline",
            "stages": [
                {
                    "name": "draft",
                    "prompt": "Draft: {input}",
                    "step": {"kind": "model", "model": "faulty-a", "fallbacks": [alternative]},
                },
                {"name": "polish", "prompt": "Polish: {draft}", "step": "healthy"},
            ],
        }

    return {
        "ensemble_vote/with-alternative": {"kind": "ensemble", "members": ["faulty-a", "healthy"]},
        "ensemble_vote/without": {"kind": "ensemble", "members": ["faulty-a", "faulty-b"]},
        "cascade_ask/with-alternative": {"kind": "cascade", "tiers": ["faulty-a", "healthy"]},
        "cascade_ask/without": {"kind": "cascade", "tiers": ["faulty-a", "faulty-b"]},
        "route_specialist/with-alternative": route("healthy"),
        "route_specialist/without": route("faulty-b"),
        "run_pipeline/with-alternative": pipeline("healthy"),
        "run_pipeline/without": pipeline("faulty-b"),
    }


def _dead_address() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"  # closed again: nothing listens there


def matrix_config(fake: FakeOpenAI, case: Case) -> dict[str, Any]:
    faulted_base = fake.base_url if case.fault is not None else _dead_address()

    def model(name: str, base: str, timeout_s: float) -> dict[str, Any]:
        return {
            "model": f"openai/{name}",
            "api_base": base,
            "api_key_env": KEY_ENV,
            "timeout_s": timeout_s,
            "input_cost_per_mtok": 1,
            "output_cost_per_mtok": 2,
            "protocol": PROTOCOL,
        }

    return {
        "models": {
            "faulty-a": model(f"{case.id}-a", faulted_base, FAULTY_TIMEOUT_S),
            "faulty-b": model(f"{case.id}-b", faulted_base, FAULTY_TIMEOUT_S),
            "healthy": model("healthy", fake.base_url, 10),
        },
        "allow_unlisted_models": False,
        "strategies": _strategies(),
        "defaults": {"deadline_s": DEADLINE_S},
        "reliability": {
            "retry": {"max_attempts": 2, "base_delay_s": 0.01, "max_delay_s": 0.02, "max_retry_after_s": 0.2},
            # Each cell checks the reason a model failed with; an open circuit is tested on its own below.
            "breaker": {"failure_threshold": 1000},
        },
        "log_level": "INFO",
    }


def script(fake: FakeOpenAI, case: Case) -> None:
    def healthy(request: RecordedRequest) -> str:
        # A cascade asks for a confidence line; everyone else gets the bare choice.
        return HEALTHY_ANSWER if "confident" in request.last_user else "B"

    fake.script("healthy", healthy)
    if case.fault is not None:
        fake.script(f"{case.id}-a", case.fault)
        fake.script(f"{case.id}-b", case.fault)


def arguments(tool: str, alternative: bool) -> dict[str, Any]:
    name = f"{tool}/{ALTERNATIVES[alternative]}"
    prompt = "Which planet is largest? A) Mars B) Jupiter C) Venus"
    if tool == "run_pipeline":
        return {"input": prompt, "pipeline": name}
    return {"prompt": prompt, "strategy": name}


def text_of(result: CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))


def mentions(text: str, case: Case) -> bool:
    return any(reason in text.lower() for reason in case.reasons)


def check_cell(result: CallToolResult, elapsed: float, case: Case, alternative: bool, logs: str) -> None:
    """What must hold in every cell (see the module docstring)."""
    text = text_of(result)
    data = result.structured_content or {}
    assert elapsed <= DEADLINE_S + GRACE_S, f"returned {elapsed - DEADLINE_S:.2f}s past the deadline"
    assert KEY not in result.model_dump_json() and KEY not in logs, "the API key leaked"
    assert "Traceback" not in text and "Error executing tool" not in text, text
    calls = data.get("calls", [])
    faulted = [c for c in calls if c["model"] in FAULTED]
    assert faulted, f"no faulted model was called: {text}"
    if alternative:
        assert not result.is_error, text
        assert data["ok"] is True and data["answer"], text
        failures = [c for c in faulted if c["status"] != "ok"]
        assert failures and any(mentions(c.get("error", ""), case) for c in failures), failures
        return
    assert result.is_error, text
    assert text.startswith("No answer:"), text
    assert data["ok"] is False and not data.get("answer")
    for name in FAULTED:
        assert name in text, f"{name} is not named: {text}"
        records = [c for c in faulted if c["model"] == name]
        assert records and all(c["status"] != "ok" for c in records), records
        assert any(mentions(c.get("error", ""), case) for c in records), records
    assert mentions(text, case), text


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """One event loop for the whole module, so the servers below can be shared between tests."""
    return "asyncio"


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)


@pytest.fixture(scope="module")
async def servers() -> AsyncIterator[dict[str, MCPServer[Any]]]:
    """One server per fault, built on first use."""
    if PROTOCOL == "litellm":
        # A server warms litellm up as it starts; that takes longer than a cell's 3 s deadline here.
        from chorus_mcp.strategies.models.providers import load_litellm

        await anyio.to_thread.run_sync(load_litellm)
    yield {}


def _config(fake: FakeOpenAI, case: Case) -> ChorusConfig:
    return parse_config(json.dumps(matrix_config(fake, case)), source="fault-matrix.yaml", env={})


@pytest.mark.parametrize("alternative", list(ALTERNATIVES), ids=list(ALTERNATIVES.values()))
@pytest.mark.parametrize("tool", TOOLS)
@pytest.mark.parametrize("case", FAULTS, ids=[c.id for c in FAULTS])
async def test_fault_matrix_cell(
    fake_openai: FakeOpenAI,
    servers: dict[str, MCPServer[Any]],
    caplog: pytest.LogCaptureFixture,
    case: Case,
    tool: str,
    alternative: bool,
) -> None:
    caplog.set_level(logging.INFO)
    script(fake_openai, case)
    server = servers.get(case.id) or servers.setdefault(case.id, build_server(_config(fake_openai, case)))

    async with Client(server) as client:
        started = anyio.current_time()
        result = await client.call_tool(tool, arguments(tool, alternative))
        elapsed = anyio.current_time() - started

    check_cell(result, elapsed, case, alternative, caplog.text)
    if case.id == "401-echoing-the-key":  # the provider really did quote the key: redaction is what hid it
        assert any(r.contains(KEY) for r in fake_openai.requests)


# -- Beyond single cells ---------------------------------------------------------------------------------


async def test_a_dead_provider_opens_its_circuit_and_the_next_tool_call_skips_it_at_once(
    fake_openai: FakeOpenAI,
) -> None:
    case = next(c for c in FAULTS if c.id == "hang")
    script(fake_openai, case)
    config = matrix_config(fake_openai, case)
    config["reliability"]["breaker"] = {"failure_threshold": 2, "cooldown_s": 60}
    server = build_server(parse_config(json.dumps(config), env={}))

    async with Client(server) as client:
        first = await client.call_tool("cascade_ask", arguments("cascade_ask", True))
        sent = len(fake_openai.requests_for(f"{case.id}-a"))
        started = anyio.current_time()
        second = await client.call_tool("cascade_ask", arguments("cascade_ask", True))
        elapsed = anyio.current_time() - started

    assert not first.is_error and not second.is_error
    calls = (second.structured_content or {})["calls"]
    skipped = [c for c in calls if c["model"] == "faulty-a"]
    assert [c["status"] for c in skipped] == ["skipped"] and "circuit open" in skipped[0]["error"]
    assert elapsed < FAULTY_TIMEOUT_S * 2  # no time was spent on the dead model
    first_calls = (first.structured_content or {})["calls"]
    assert [c["status"] for c in first_calls if c["model"] == "faulty-a"] == ["timeout", "timeout"]
    assert len(fake_openai.requests_for(f"{case.id}-a")) == sent  # the second call sent it nothing


async def test_at_the_deadline_an_ensemble_with_three_of_five_votes_is_a_partial_answer(
    fake_openai: FakeOpenAI,
) -> None:
    case = next(c for c in FAULTS if c.id == "hang")
    script(fake_openai, case)
    config = matrix_config(fake_openai, case)
    for name in ("h1", "h2", "h3"):
        config["models"][name] = {**config["models"]["healthy"]}
    for name in ("faulty-a", "faulty-b"):
        config["models"][name]["timeout_s"] = 30  # only the deadline stops them
    config["strategies"]["five"] = {
        "kind": "ensemble",
        "members": ["h1", "h2", "h3", "faulty-a", "faulty-b"],
        "quorum": 3,
        "early_stop": False,
    }
    server = build_server(parse_config(json.dumps(config), env={}))

    async with Client(server) as client:
        started = anyio.current_time()
        result = await client.call_tool(
            "ensemble_vote", {"prompt": "A) B) C)?", "strategy": "five", "deadline_s": 1.5}
        )
        elapsed = anyio.current_time() - started

    data = result.structured_content or {}
    assert not result.is_error and data["answer"] == "B"
    assert data["partial"] is True and data["partial_reason"] == "deadline reached: 3 of 5 members answered"
    assert 1.5 - 0.1 <= elapsed <= 1.5 + GRACE_S
    assert sorted(c["status"] for c in data["calls"]) == ["cancelled", "cancelled", "ok", "ok", "ok"]


@pytest.mark.parametrize("tool", TOOLS)
async def test_every_tool_returns_by_its_deadline_when_every_model_hangs(
    fake_openai: FakeOpenAI, tool: str
) -> None:
    case = next(c for c in FAULTS if c.id == "hang")
    script(fake_openai, case)
    fake_openai.script("healthy", Fault.hang())
    config = matrix_config(fake_openai, case)
    for entry in config["models"].values():
        entry["timeout_s"] = 30  # only the deadline stops them
    server = build_server(parse_config(json.dumps(config), env={}))

    async with Client(server) as client:
        started = anyio.current_time()
        result = await client.call_tool(tool, {**arguments(tool, True), "deadline_s": 1.0})
        elapsed = anyio.current_time() - started

    data = result.structured_content or {}
    assert result.is_error and data.get("partial") is True and data["partial_reason"], text_of(result)
    assert 1.0 - 0.1 <= elapsed <= 1.0 + GRACE_S
    assert "faulty-a" in text_of(result)


# -- Cost caps against a provider that ignores max_tokens ---------------------------------------------------

PRICE = {"input_cost_per_mtok": 1_000, "output_cost_per_mtok": 100_000, "max_output_tokens": 20}
"""$0.001 a prompt token, $0.10 an output token, 20 output tokens a call: an honest call reserves ~$2.05."""
SESSION_CAP = Decimal(3)
LONG_ANSWER = " ".join(["B"] * 200)
"""200 tokens ($20 of output): an honest provider cuts it to `max_tokens`, the adversary sends it all."""
ONE_TOKEN = Decimal("0.1")
"""The price of one output token: what the last chunk read before a cut-off may add to a reservation."""


@dataclass(frozen=True)
class CapCell:
    tool: str
    provider: str
    """`honest` (answers cut to `max_tokens`) or `ignores-max-tokens` (200 tokens whatever was asked)."""


def _cap_strategies() -> dict[str, Any]:
    return {
        "ensemble_vote/capped": {
            "kind": "ensemble",
            "members": ["priced-a", "priced-b"],
            "early_stop": False,
        },
        "cascade_ask/capped": {"kind": "cascade", "tiers": ["priced-a", "priced-b"]},
        "route_specialist/capped": {
            "kind": "route",
            "classifier": "priced-a",
            "default": "general",
            "routes": [{"name": "general", "description": "Everything.", "target": "priced-b"}],
        },
        "run_pipeline/capped": {
            "kind": "pipeline",
            "stages": [
                {"name": "draft", "prompt": "Draft: {input}", "step": "priced-a"},
                {"name": "polish", "prompt": "Polish: {draft}", "step": "priced-b"},
            ],
        },
    }


def cap_config(fake: FakeOpenAI, cell: CapCell) -> dict[str, Any]:
    def model(name: str) -> dict[str, Any]:
        return {
            "model": f"openai/{cell.provider}-{name}",
            "api_base": fake.base_url,
            "api_key_env": KEY_ENV,
            "protocol": PROTOCOL,
            **PRICE,
        }

    return {
        "models": {"priced-a": model("a"), "priced-b": model("b")},
        "allow_unlisted_models": False,
        "strategies": _cap_strategies(),
        "defaults": {"deadline_s": 10},
        "reliability": {"breaker": {"failure_threshold": 1000}},
    }


def script_provider(fake: FakeOpenAI, provider: str) -> None:
    if provider == "honest":
        fake.script("*", LONG_ANSWER, honour_max_tokens=True)
    else:
        # Paced, so that the fake is still sending when the client cuts the stream off and goes away.
        fake.script("*", Fault.ignores_max_tokens(200), chunk_latency_s=0.005)


def _capped_arguments(tool: str, session_id: str, turn: int) -> dict[str, Any]:
    prompt = f"Question {turn}: which planet is largest? A) Mars B) Jupiter"  # a new prompt: no cache hit
    name = f"{tool}/capped"
    if tool == "run_pipeline":
        return {"input": prompt, "pipeline": name, "session_id": session_id}
    return {"prompt": prompt, "strategy": name, "session_id": session_id}


CAP_CELLS = [CapCell(tool, provider) for provider in ("honest", "ignores-max-tokens") for tool in TOOLS]


def _cut_off(request: RecordedRequest) -> bool:
    """The client closed the stream before the fake had sent all 200 tokens."""
    return request.stream is not None and not request.stream.completed and request.stream.content_chunks < 200


@pytest.mark.parametrize("cell", CAP_CELLS, ids=[f"{c.tool}-{c.provider}" for c in CAP_CELLS])
async def test_a_session_cap_bounds_every_tool_against_an_honest_and_an_adversarial_provider(
    fake_openai: FakeOpenAI, cell: CapCell
) -> None:
    script_provider(fake_openai, cell.provider)
    server = build_server(parse_config(json.dumps(cap_config(fake_openai, cell)), env={}))

    async with Client(server) as client:
        started = await client.call_tool("start_session", {"max_cost_usd": float(SESSION_CAP)})
        session_id = (started.structured_content or {})["session_id"]
        results = []
        for turn in range(3):
            sent_before = len(fake_openai.requests)
            result = await client.call_tool(cell.tool, _capped_arguments(cell.tool, session_id, turn))
            results.append((result, len(fake_openai.requests) - sent_before))
        usage = json.loads(_text(await client.read_resource(f"session://{session_id}/usage")))

    spent = Decimal(usage["usage"]["cost_usd"])
    requests = fake_openai.requests
    # Every call told the provider what it reserved (at most the model's 20 tokens, fewer to fit the cap),
    # and streamed its answer so that it could be cut off there.
    assert requests and all(0 < r.body["max_tokens"] <= 20 and r.body["stream"] is True for r in requests)
    assert spent <= SESSION_CAP, f"the session's ${SESSION_CAP} cap was overshot: ${spent}"
    if cell.provider == "honest":
        assert all(r.stream is not None and r.stream.completed for r in requests)
        return
    # The adversary's stream was cut off at the reservation and the connection closed; what arrived (20
    # tokens, and the chunk that went past them) was charged, kept, and said to be cut off.
    assert all(_cut_off(r) for r in requests), [r.stream for r in requests]
    first, _ = results[0]
    data = first.structured_content or {}
    truncated = [c for c in data["calls"] if c.get("truncated")]
    assert truncated and all(
        c["truncated"].startswith("cut off at its reservation of 20 output tokens") for c in truncated
    )
    assert all(c["answer"] for c in truncated) and data["totals"]["completion_tokens"] == 21 * len(truncated)
    # Partial: cut off (a pipeline then also says its next stage found the budget spent).
    assert data["partial"] is True and data["partial_reason"], data.get("partial_reason")
    notes = [d.get("message", "") for d in data.get("decisions", [])]
    assert any(n.startswith("budget: priced-") and "was cut off at its reservation" in n for n in notes)
    # What is left cannot pay for another call: none reaches the provider.
    for later, sent in results[1:]:
        assert later.is_error and sent == 0 and "so it was not started" in text_of(later), text_of(later)


async def test_two_parallel_members_against_an_adversary_each_stop_at_their_reservation(
    fake_openai: FakeOpenAI,
) -> None:
    """Parallel members each reserve from the one budget, and each is cut off at what it reserved, so an
    ensemble whose members both fit stays within its cap — and then starts nothing more."""
    script_provider(fake_openai, "ignores-max-tokens")
    cell = CapCell("ensemble_vote", "ignores-max-tokens")
    server = build_server(parse_config(json.dumps(cap_config(fake_openai, cell)), env={}))

    async with Client(server) as client:
        started = await client.call_tool("start_session", {"max_cost_usd": 5})
        session_id = (started.structured_content or {})["session_id"]
        first = await client.call_tool("ensemble_vote", _capped_arguments("ensemble_vote", session_id, 0))
        sent = len(fake_openai.requests)
        second = await client.call_tool("ensemble_vote", _capped_arguments("ensemble_vote", session_id, 1))
        usage = json.loads(_text(await client.read_resource(f"session://{session_id}/usage")))

    data = first.structured_content or {}
    calls = data["calls"]
    assert sorted(c["status"] for c in calls) == ["ok", "ok"] and sent == 2
    assert all(c["truncated"] for c in calls) and data["totals"]["completion_tokens"] == 42
    assert all(_cut_off(r) for r in fake_openai.requests)
    assert Decimal(usage["usage"]["cost_usd"]) <= 5
    assert second.is_error and len(fake_openai.requests) == sent


async def test_concurrent_capped_calls_on_one_session_together_stay_within_its_cap(
    fake_openai: FakeOpenAI,
) -> None:
    """Six tool calls at once on a $5 session, each wanting a ~$2.05 call of an adversary: each reserves
    from the session's one budget before it starts, so at most two run, and together they stay within $5."""
    script_provider(fake_openai, "ignores-max-tokens")
    cell = CapCell("cascade_ask", "ignores-max-tokens")
    config = cap_config(fake_openai, cell)
    config["strategies"]["cascade_ask/capped"] = {"kind": "cascade", "tiers": ["priced-a"]}
    server = build_server(parse_config(json.dumps(config), env={}))

    async with Client(server) as client:
        started = await client.call_tool("start_session", {"max_cost_usd": 5})
        session_id = (started.structured_content or {})["session_id"]
        results: list[CallToolResult] = []

        async def ask(turn: int) -> None:
            results.append(
                await client.call_tool("cascade_ask", _capped_arguments("cascade_ask", session_id, turn))
            )

        async with anyio.create_task_group() as tasks:
            for turn in range(6):
                tasks.start_soon(ask, turn)
        usage = json.loads(_text(await client.read_resource(f"session://{session_id}/usage")))

    answered = [r for r in results if not r.is_error]
    assert 1 <= len(answered) <= 2 and len(fake_openai.requests) == len(answered)
    assert all(_cut_off(r) for r in fake_openai.requests)
    assert Decimal(usage["usage"]["cost_usd"]) <= 5


def _text(contents: Any) -> str:
    return "".join(getattr(c, "text", "") for c in contents.contents)


# -- A few cells over real subprocess transports ---------------------------------------------------------


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHORUS")}
    env.update(
        {
            KEY_ENV: KEY,
            "PYTHONPATH": str(REPO),
            "LITELLM_OFFLINE_MODE": "true",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        }
    )
    return env


@pytest.fixture
def config_file(fake_openai: FakeOpenAI, tmp_path: Path) -> Iterator[tuple[Path, Case]]:
    case = next(c for c in FAULTS if c.id == "401-echoing-the-key")
    script(fake_openai, case)
    path = tmp_path / "matrix.yaml"
    path.write_text(json.dumps(matrix_config(fake_openai, case)))
    yield path, case


@dataclass
class HttpServer:
    url: str
    stderr: bytes = b""
    """The server's log, once it has stopped."""


@pytest.fixture
def http_server(config_file: tuple[Path, Case]) -> Iterator[HttpServer]:
    """A real `chorus-mcp serve --http` process on the matrix configuration."""
    path, _ = config_file
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chorus_mcp.server.cli.main",
            "serve",
            "--http",
            "--port",
            str(port),
            "--config",
            str(path),
        ],
        env=_env(),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    served = HttpServer(f"http://127.0.0.1:{port}/mcp")
    try:
        _wait_for(port, process)
        yield served
    finally:
        process.terminate()
        try:
            _, served.stderr = process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            _, served.stderr = process.communicate()
        assert KEY.encode() not in served.stderr, "the API key appeared in the server's log"


@pytest.mark.slow
async def test_cells_hold_over_streamable_http(
    config_file: tuple[Path, Case], http_server: HttpServer, fake_openai: FakeOpenAI
) -> None:
    _, case = config_file
    async with Client(http_server.url) as client:
        for tool, alternative in [("ensemble_vote", False), ("run_pipeline", True)]:
            started = anyio.current_time()
            result = await client.call_tool(tool, arguments(tool, alternative))
            check_cell(result, anyio.current_time() - started, case, alternative, "")
    assert any(r.contains(KEY) for r in fake_openai.requests)  # the key was echoed: redaction hid it


@pytest.mark.slow
async def test_a_cell_holds_over_stdio(config_file: tuple[Path, Case]) -> None:
    path, case = config_file
    command = ["-m", "chorus_mcp.server.cli.main", "serve", "--config", str(path)]
    params = StdioServerParameters(command=sys.executable, args=command, env=_env(), cwd=REPO)
    async with Client(params) as client:
        started = anyio.current_time()
        result = await client.call_tool("cascade_ask", arguments("cascade_ask", False))
        check_cell(result, anyio.current_time() - started, case, False, "")


def _wait_for(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited: {process.stderr.read().decode() if process.stderr else ''}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("the server did not start listening")
