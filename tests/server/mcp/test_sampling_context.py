"""The client's own model (`mcp/sampling`) answers through a real MCP client session, in both protocol eras:
mid-call over the back channel (handshake era, `legacy`) and in `InputRequiredResult` rounds (2026-07-28,
`auto`), where every other model is called once and its outcome replayed in later rounds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.client.context import ClientRequestContext
from mcp.types import CreateMessageRequestParams, CreateMessageResult, ErrorData, TextContent

from chorus_mcp.config.loader import parse_config
from chorus_mcp.server.app import build_server
from chorus_mcp.strategies.core.completion import CompletionRequest
from chorus_mcp.strategies.models.catalog import ModelEntry
from chorus_mcp.strategies.models.client import ModelClient
from chorus_mcp.strategies.models.providers import provider_client
from chorus_mcp.strategies.models.sampling import (
    SamplingClient,
    SamplingUnavailable,
    is_sampling_model,
)
from chorus_mcp.strategies.models.testing import ScriptedClient
from tests.fake_openai import FakeOpenAI
from tests.support.servers import KEY_ENV, chorus_vars, http_server, server_env, stdio_server, write_config

pytestmark = pytest.mark.anyio

MODES = ["auto", "legacy"]

CONFIG = """
models:
  cheap: {model: fake/cheap}
  mid: {model: fake/mid}
  me: {model: mcp/sampling, fallbacks: [mid]}
allow_unlisted_models: false
strategies:
  ensemble: {kind: ensemble, members: [cheap, mid, me], extract: choice, early_stop: false}
  cascade: {kind: cascade, tiers: [cheap, me], estimator: self_report, threshold: 0.9}
  agreement: {kind: cascade, tiers: [me, mid], estimator: agreement, samples: 3, threshold: 0.5}
  route:
    kind: route
    default: general
    routes: [{name: general, target: me}]
  pipeline:
    kind: pipeline
    stages:
      - {name: plan, prompt: "Plan: {input}", step: cheap}
      - {name: code, prompt: "Code for this plan: {plan}", step: me}
      - {name: review, prompt: "Review: {code}", step: mid}
defaults: {deadline_s: 10}
"""


class ClientModel:
    """The MCP client's sampling callback: answers in turn from `replies`, remembering what it was asked."""

    def __init__(self, *replies: str | ErrorData) -> None:
        self.replies = list(replies) or ["B"]
        self.asked: list[CreateMessageRequestParams] = []

    async def __call__(
        self, context: ClientRequestContext, params: CreateMessageRequestParams
    ) -> CreateMessageResult | ErrorData:
        self.asked.append(params)
        reply = self.replies[min(len(self.asked), len(self.replies)) - 1]
        if isinstance(reply, ErrorData):
            return reply
        return CreateMessageResult(
            role="assistant",
            content=TextContent(type="text", text=reply),
            model="client-llm",
            stop_reason="endTurn",
        )

    def prompts(self) -> list[str]:
        texts = []
        for params in self.asked:
            content = params.messages[-1].content
            assert isinstance(content, TextContent)
            texts.append(content.text)
        return texts


@pytest.fixture
def scripted() -> dict[str, ScriptedClient]:
    return {
        "cheap": ScriptedClient("cheap", "The answer is (B).\nConfidence: 40%", delay_s=0.05),
        "mid": ScriptedClient("mid", "C"),
    }


def _server(scripted: dict[str, ScriptedClient]) -> Any:
    def factory(alias: str, entry: ModelEntry) -> ModelClient:
        return provider_client(alias, entry) if is_sampling_model(entry.model) else scripted[alias]

    return build_server(parse_config(CONFIG, source="sampling-test.yaml", env={}), factory)


def _calls(result: Any) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = (result.structured_content or {})["calls"]
    return calls


@pytest.mark.parametrize("mode", MODES)
async def test_the_clients_model_answers_as_an_ensemble_member_and_every_other_model_is_called_once(
    scripted: dict[str, ScriptedClient], mode: str
) -> None:
    model = ClientModel("B")
    async with Client(_server(scripted), mode=mode, sampling_callback=model) as client:
        result = await client.call_tool("ensemble_vote", {"prompt": "Pick one: A) x B) y C) z"})
    assert not result.is_error, result.content
    data = result.structured_content or {}
    assert data["answer"] == "B"
    mine = next(c for c in data["calls"] if c["model"] == "me")
    assert mine["status"] == "ok" and mine["answer"] == "B"
    assert "cost_usd" not in mine  # the client's model: its price is unknown, never 0
    assert model.prompts() == ["Pick one: A) x B) y C) z"]
    assert len(scripted["cheap"].requests) == 1 and len(scripted["mid"].requests) == 1


@pytest.mark.parametrize("mode", MODES)
async def test_a_stage_that_needs_earlier_stages_is_asked_after_them_with_their_output(
    scripted: dict[str, ScriptedClient], mode: str
) -> None:
    model = ClientModel("def solve(): return 42")
    async with Client(_server(scripted), mode=mode, sampling_callback=model) as client:
        result = await client.call_tool("run_pipeline", {"input": "the answer"})
    assert not result.is_error, result.content
    assert [(c["model"], c["status"]) for c in _calls(result)] == [
        ("cheap", "ok"),
        ("me", "ok"),
        ("mid", "ok"),
    ]
    assert model.prompts() == ["Code for this plan: The answer is (B).\nConfidence: 40%"]
    assert "def solve" in scripted["mid"].requests[0].messages[-1].content
    assert len(scripted["cheap"].requests) == 1 and len(scripted["mid"].requests) == 1


@pytest.mark.parametrize("mode", MODES)
async def test_repeated_samples_of_the_clients_model_are_separate_questions(
    scripted: dict[str, ScriptedClient], mode: str
) -> None:
    model = ClientModel("A", "A", "B")
    async with Client(_server(scripted), mode=mode, sampling_callback=model) as client:
        result = await client.call_tool("cascade_ask", {"prompt": "A or B?", "strategy": "agreement"})
    assert not result.is_error, result.content
    answers = sorted(c["answer"] for c in _calls(result) if c["model"] == "me")
    assert answers == ["A", "A", "B"] and len(model.asked) == 3
    assert (result.structured_content or {})["answer"] == "A"


@pytest.mark.parametrize("mode", MODES)
async def test_a_client_without_sampling_gets_the_fallback_at_once(
    scripted: dict[str, ScriptedClient], mode: str
) -> None:
    async with Client(_server(scripted), mode=mode) as client:
        result = await client.call_tool("route_specialist", {"prompt": "hello"})
    assert not result.is_error, result.content
    calls = _calls(result)
    assert calls[0]["model"] == "me" and calls[0]["status"] == "error"
    assert "does not offer sampling" in calls[0]["error"]
    assert calls[1]["model"] == "mid" and (result.structured_content or {})["answer"] == "C"


async def test_a_declined_request_is_a_failed_call_and_the_fallback_answers(
    scripted: dict[str, ScriptedClient],
) -> None:
    # In the 2026-07-28 era a refusal ends the whole call on the client's side (the SDK's input-required
    # driver raises), so the server never sees it; in the handshake era it is an error answer mid-call.
    model = ClientModel(ErrorData(code=-1, message="User rejected sampling request"))
    async with Client(_server(scripted), mode="legacy", sampling_callback=model) as client:
        result = await client.call_tool("route_specialist", {"prompt": "hello"})
    calls = _calls(result)
    assert calls[0]["status"] == "error" and "declined: User rejected" in calls[0]["error"]
    assert (result.structured_content or {})["answer"] == "C"


async def test_outside_a_tool_call_the_clients_model_fails_as_data() -> None:
    client = provider_client("me", ModelEntry(model="mcp/sampling"))
    assert isinstance(client, SamplingClient)
    with pytest.raises(SamplingUnavailable, match="only answer inside an MCP tool call") as caught:
        await client.complete(CompletionRequest.of("hi"))
    assert not caught.value.retryable


def test_only_mcp_sampling_ids_are_sampling_models() -> None:
    assert is_sampling_model("mcp/sampling") and is_sampling_model("mcp/sampling/claude-sonnet")
    assert not is_sampling_model("mcp/samplingx") and not is_sampling_model("openai/gpt-4o")


def _process_config(fake: FakeOpenAI, tmp_path: Path) -> Path:
    fake.script("alpha", "The answer is B.", latency_s=0.05)
    alpha = {"model": "openai/alpha", "api_base": fake.base_url, "api_key_env": KEY_ENV}
    config = {
        "models": {"alpha": alpha, "me": {"model": "mcp/sampling/claude-sonnet"}},
        "strategies": {"ensemble": {"kind": "ensemble", "members": ["alpha", "me"], "early_stop": False}},
    }
    return write_config(tmp_path / "chorus.yaml", config)


KEY = "sk-test-0123456789"


async def _vote(target: Any, mode: str) -> tuple[Any, ClientModel]:
    model = ClientModel("B")
    async with Client(target, mode=mode, sampling_callback=model) as client:
        result = await client.call_tool("ensemble_vote", {"prompt": "A) x B) y?", "extract": "choice"})
    assert not result.is_error, result.content
    return result, model


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("transport", ["stdio", "http"])
async def test_over_real_transports_the_clients_model_votes_beside_a_real_provider(
    fake_openai: FakeOpenAI, tmp_path: Path, mode: str, transport: str
) -> None:
    config = _process_config(fake_openai, tmp_path)
    if transport == "stdio":
        result, model = await _vote(stdio_server(config, chorus_vars(KEY), "--log-level", "WARNING"), mode)
    else:
        with http_server(tmp_path, server_env(KEY), config=config, never_logged=KEY) as served:
            result, model = await _vote(served.url, mode)
    assert {c["model"]: c["answer"] for c in _calls(result)} == {"alpha": "B", "me": "B"}
    assert len(fake_openai.requests_for("alpha")) == 1
    hints = model.asked[0].model_preferences
    assert hints is not None and hints.hints and hints.hints[0].name == "claude-sonnet"


@pytest.mark.slow
async def test_over_stateless_http_rounds_work_and_the_handshake_era_falls_back_with_the_reason(
    fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    # The 2026-07-28 rounds carry everything in sealed request_state, so a replica with no session can
    # serve them; the handshake era needs a session to reach the client, and stateless HTTP has none.
    config = _process_config(fake_openai, tmp_path)
    with http_server(
        tmp_path, server_env(KEY), config=config, flags=("--stateless",), never_logged=KEY
    ) as served:
        modern, _ = await _vote(served.url, "auto")
        legacy, model = await _vote(served.url, "legacy")
    assert {c["model"]: c["status"] for c in _calls(modern)} == {"alpha": "ok", "me": "ok"}
    mine = next(c for c in _calls(legacy) if c["model"] == "me")
    assert mine["status"] == "error" and "cannot be asked on this connection (no session)" in mine["error"]
    assert not model.asked
