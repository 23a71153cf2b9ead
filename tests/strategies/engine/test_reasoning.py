"""Which reasoning effort each call is sent with: the call's over the model's configured one, only to models
that may take one (by the catalog), and what the call record says — over real HTTP to the fake server."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

import pytest

from chorus_mcp.strategies.core.completion import THINKING_BUDGET_TOKENS, CompletionRequest
from chorus_mcp.strategies.core.spec import ModelStep
from chorus_mcp.strategies.engine.calling import run_model
from chorus_mcp.strategies.engine.context import Budget, RunContext
from chorus_mcp.strategies.models.catalog import ModelCatalog, ModelEntry
from chorus_mcp.strategies.models.client import ModelClient
from chorus_mcp.strategies.models.providers import OpenAICompatClient
from chorus_mcp.strategies.models.testing import ScriptedClient
from tests.fake_openai import FakeOpenAI, Fault

pytestmark = pytest.mark.anyio


def _context(fake: FakeOpenAI, entries: Mapping[str, Mapping[str, object]], **kwargs: object) -> RunContext:
    """Models served by `fake` (an `openai/...` id), the client's own model as a scripted client."""
    parsed = {
        name: ModelEntry.model_validate({"api_base": fake.base_url, **fields})
        for name, fields in entries.items()
    }

    def client(name: str, entry: ModelEntry) -> ModelClient:
        if entry.model == "mcp/sampling":
            return ScriptedClient(name, "42")
        return OpenAICompatClient(name, entry)

    return RunContext.starting_now(ModelCatalog(parsed, client, allow_unlisted=False), 30, **kwargs)  # type: ignore[arg-type]


async def test_a_models_configured_effort_is_sent_and_recorded(fake_openai: FakeOpenAI) -> None:
    fake_openai.script("o3-mini", "42", reasoning_tokens=120)
    ctx = _context(fake_openai, {"thinker": {"model": "openai/o3-mini", "reasoning_effort": "medium"}})

    outcome = await run_model(ModelStep(model="thinker"), CompletionRequest.of("6*7?"), ctx, "model")

    assert fake_openai.last_request.body["reasoning_effort"] == "medium"
    [call] = outcome.result.calls
    assert (call.status, call.reasoning_effort, call.reasoning_note) == ("ok", "medium", None)
    assert call.reasoning_tokens == 120


async def test_the_calls_effort_wins_over_the_models(fake_openai: FakeOpenAI) -> None:
    fake_openai.script("o3-mini", "42")
    ctx = _context(fake_openai, {"thinker": {"model": "openai/o3-mini", "reasoning_effort": "low"}})

    request = CompletionRequest.of("6*7?", reasoning_effort="high")
    outcome = await run_model(ModelStep(model="thinker"), request, ctx, "model")

    assert fake_openai.last_request.body["reasoning_effort"] == "high"
    assert outcome.result.calls[0].reasoning_effort == "high"


async def test_a_model_that_takes_no_effort_answers_without_one_and_its_record_says_so(
    fake_openai: FakeOpenAI,
) -> None:
    fake_openai.script("gpt-4.1-mini", "42")
    ctx = _context(fake_openai, {"plain": {"model": "openai/gpt-4.1-mini"}})

    request = CompletionRequest.of("6*7?", reasoning_effort="high")
    outcome = await run_model(ModelStep(model="plain"), request, ctx, "model")

    assert "reasoning_effort" not in fake_openai.last_request.body
    [call] = outcome.result.calls
    assert call.status == "ok" and call.reasoning_effort is None
    assert call.reasoning_note == (
        "reasoning effort high not sent: openai/gpt-4.1-mini takes none (by the model map)"
    )


async def test_a_model_unknown_to_the_map_is_sent_the_effort_with_a_note_unless_the_config_settles_it(
    fake_openai: FakeOpenAI,
) -> None:
    fake_openai.script("*", "42")
    entries = {
        "house": {"model": "openai/house-model"},
        "house-thinker": {"model": "openai/house-thinker", "reasoning": True},
        "house-plain": {"model": "openai/house-plain", "reasoning": False},
    }
    ctx = _context(fake_openai, entries)
    request = CompletionRequest.of("6*7?", reasoning_effort="low")

    calls = [
        (await run_model(ModelStep(model=name), request, ctx, "model")).result.calls[0] for name in entries
    ]

    sent = [r.body.get("reasoning_effort") for r in fake_openai.requests]
    assert sent == ["low", "low", None]
    assert (
        calls[0].reasoning_note
        == "sent, though the model map does not say whether openai/house-model reasons"
    )
    assert calls[1].reasoning_note is None
    assert (
        calls[2].reasoning_note
        == "reasoning effort low not sent: openai/house-plain takes none (by the config)"
    )


async def test_the_clients_own_model_is_asked_without_an_effort_and_its_record_says_why(
    fake_openai: FakeOpenAI,
) -> None:
    ctx = _context(fake_openai, {"client": {"model": "mcp/sampling", "reasoning_effort": "high"}})

    outcome = await run_model(ModelStep(model="client"), CompletionRequest.of("6*7?"), ctx, "model")

    [call] = outcome.result.calls
    assert call.status == "ok" and call.reasoning_effort is None
    assert call.reasoning_note == "reasoning effort high not sent: MCP sampling cannot carry one"


async def test_a_fallback_gets_the_effort_only_if_it_can_take_one(fake_openai: FakeOpenAI) -> None:
    fake_openai.script("o3-mini", Fault.server_error())
    fake_openai.script("gpt-4.1-mini", "42")
    entries = {
        "thinker": {"model": "openai/o3-mini", "fallbacks": ["plain"], "reasoning_effort": "high"},
        "plain": {"model": "openai/gpt-4.1-mini"},
    }
    ctx = _context(fake_openai, entries)

    outcome = await run_model(ModelStep(model="thinker"), CompletionRequest.of("6*7?"), ctx, "model")

    assert outcome.result.ok
    failed, answered = outcome.result.calls[-2:]
    assert (failed.model, failed.status, failed.reasoning_effort) == ("thinker", "error", "high")
    # The plain model's own config has no effort, and the call asked for none: nothing to say.
    assert (answered.model, answered.reasoning_effort, answered.reasoning_note) == ("plain", None, None)
    assert all(r.body.get("reasoning_effort") == "high" for r in fake_openai.requests_for("o3-mini"))
    assert "reasoning_effort" not in fake_openai.requests_for("gpt-4.1-mini")[0].body


async def test_under_a_cost_cap_the_reservation_covers_the_efforts_thinking_budget(
    fake_openai: FakeOpenAI,
) -> None:
    fake_openai.script("o3-mini", "42", reasoning_tokens=900)
    ctx = _context(fake_openai, {"thinker": {"model": "openai/o3-mini", "max_output_tokens": 200}})
    ctx.budget = Budget(max_cost_usd=Decimal(1))

    request = CompletionRequest.of("6*7?", reasoning_effort="high")
    outcome = await run_model(ModelStep(model="thinker"), request, ctx, "model")

    # The answer's 200 tokens plus the effort's thinking budget, so thinking cannot starve the answer.
    assert fake_openai.last_request.body["max_completion_tokens"] == 200 + THINKING_BUDGET_TOKENS["high"]
    [call] = outcome.result.calls
    assert call.reasoning_tokens == 900 and call.cost_usd is not None
    assert ctx.budget.spent_usd == call.cost_usd and ctx.budget.reserved_usd == 0
