from __future__ import annotations

from decimal import Decimal

import pytest

from chorus_mcp.strategies.core.completion import CompletionRequest, Message
from chorus_mcp.strategies.core.errors import ModelError, UserInputError
from chorus_mcp.strategies.core.spec import ModelStep
from chorus_mcp.strategies.engine.calling import run_model
from chorus_mcp.strategies.engine.context import RunContext
from chorus_mcp.strategies.models.replay import (
    JITTER,
    NotRecorded,
    RecordedOutcome,
    Recording,
    ReplayClient,
    estimate_latency,
    jitter_factor,
    original_prompt,
    replay_catalog,
)

pytestmark = pytest.mark.anyio

PROMPT = "Which is a mammal?\nA) trout\nB) whale\nAnswer:"


def recording() -> Recording:
    rec = Recording()
    rec.add(PROMPT, "small", RecordedOutcome("B", Decimal("0.0001"), correct=True))
    rec.add(PROMPT, "big", RecordedOutcome("B", Decimal("0.01"), latency_s=2.5, correct=True))
    rec.add("Other question?", "small", RecordedOutcome("no", Decimal("0.0002")))
    return rec


async def test_answers_with_the_recorded_response_and_cost() -> None:
    client = ReplayClient("small", recording())
    completion = await client.complete(CompletionRequest.of(PROMPT))
    assert completion.text == "B"
    assert completion.cost_usd == Decimal("0.0001")
    assert completion.model == "small"
    assert completion.latency_s == pytest.approx(estimate_latency(PROMPT, "B"))


async def test_a_recorded_latency_is_used_as_is() -> None:
    completion = await ReplayClient("big", recording(), jitter_seed=3).complete(CompletionRequest.of(PROMPT))
    assert completion.latency_s == 2.5


def test_latency_estimate_grows_with_prompt_and_answer() -> None:
    assert estimate_latency("x" * 40_000, "B") > estimate_latency("x" * 400, "B")
    assert estimate_latency("q", "y" * 4000) > estimate_latency("q", "y")


def test_jitter_is_fixed_by_the_seed_and_bounded() -> None:
    assert jitter_factor(7, "m", "p") == jitter_factor(7, "m", "p")
    assert jitter_factor(7, "m", "p") != jitter_factor(8, "m", "p")
    factors = [jitter_factor(seed, "m", "p") for seed in range(200)]
    assert all(1 - JITTER <= f <= 1 + JITTER for f in factors)


async def test_keyed_on_the_first_user_message_whatever_the_system_prompt() -> None:
    request = CompletionRequest.of(PROMPT, system="Answer tersely.")
    assert original_prompt(request) == PROMPT
    assert (await ReplayClient("small", recording()).complete(request)).text == "B"


async def test_a_prompt_with_an_appended_instruction_replays_the_original() -> None:
    request = CompletionRequest.of(PROMPT + "\n\nAlso state your confidence between 0 and 1.")
    assert (await ReplayClient("small", recording()).complete(request)).text == "B"


async def test_later_turns_do_not_change_the_key() -> None:
    messages = (
        Message(role="user", content=PROMPT),
        Message(role="assistant", content="B"),
        Message(role="user", content="Are you sure?"),
    )
    assert (
        await ReplayClient("small", recording()).complete(CompletionRequest(messages=messages))
    ).text == "B"


async def test_an_unknown_prompt_is_a_clear_error_and_is_logged() -> None:
    rec = recording()
    with pytest.raises(NotRecorded, match="prompt not in the recording") as caught:
        await ReplayClient("small", rec).complete(CompletionRequest.of("What is 2+2?"))
    assert isinstance(caught.value, UserInputError) and not isinstance(caught.value, ModelError)
    assert rec.misses == [caught.value]


async def test_an_unknown_model_names_the_recorded_ones() -> None:
    with pytest.raises(NotRecorded, match=r"not in the recording \(recorded models: big, small\)"):
        await ReplayClient("gpt-x", recording()).complete(CompletionRequest.of(PROMPT))


async def test_a_model_missing_for_one_prompt_is_an_error_not_another_models_answer() -> None:
    with pytest.raises(NotRecorded, match="no outcome of this model"):
        await ReplayClient("big", recording()).complete(CompletionRequest.of("Other question?"))


async def test_a_miss_stops_the_fallback_chain_instead_of_answering_with_another_model() -> None:
    catalog = replay_catalog(recording())
    ctx = RunContext.starting_now(catalog, 10.0)
    step = ModelStep(model="big", fallbacks=["small"])
    outcome = await run_model(step, CompletionRequest.of("Other question?"), ctx, "model")
    assert not outcome.result.ok
    assert [(c.model, c.status) for c in outcome.result.calls] == [("big", "skipped")]
    assert "no outcome of this model" in (outcome.result.calls[0].error or "")


def test_catalog_aliases_map_to_recorded_models_and_unknown_names_fail() -> None:
    catalog = replay_catalog(recording(), aliases={"fast": "small"})
    client = catalog.client("fast")
    assert isinstance(client, ReplayClient) and client.recorded_model == "small"
    with pytest.raises(UserInputError, match="unknown model 'nope'"):
        catalog.client("nope")
    with pytest.raises(UserInputError, match="alias 'x'"):
        replay_catalog(recording(), aliases={"x": "missing"})


def test_recording_refuses_the_same_model_twice_for_a_prompt() -> None:
    rec = recording()
    with pytest.raises(UserInputError, match="already holds"):
        rec.add(PROMPT, "small", RecordedOutcome("A"))
