"""Capped calls stream (`CompletionRequest.enforce_max_tokens`), on both provider paths, against the fake
OpenAI server over real HTTP: an honest answer streamed is the same `Completion` as unstreamed; a provider
that ignores `max_tokens` is cut off just past them, the connection closed, and what arrived is kept,
marked and priced; a fault reads as it does unstreamed; what arrived before a stream broke off is on the
call's meter."""

from __future__ import annotations

from typing import Any

import pytest

from chorus_mcp.strategies.core.completion import CompletionRequest
from chorus_mcp.strategies.core.errors import ProviderUnavailable
from chorus_mcp.strategies.models.catalog import ModelEntry
from chorus_mcp.strategies.models.metering import metering
from chorus_mcp.strategies.models.providers import OpenAICompatClient
from chorus_mcp.strategies.models.providers.openai_compat import close_shared_pool, shared_pool
from chorus_mcp.strategies.models.providers.pricing import cost_of, estimate_prompt_tokens
from tests.fake_openai import FakeOpenAI, Fault
from tests.strategies.models.providers.test_clients import (
    CLIENTS,
    FAULT_IDS,
    FAULTS,
    KEY_ENV,
    PARITY_ANSWERS,
    ClientType,
    Make,
    _comparable,
    _outcome,
    build,
)

pytestmark = pytest.mark.anyio

PRICE = {"input_cost_per_mtok": 1_000, "output_cost_per_mtok": 100_000}


@pytest.fixture(params=CLIENTS, ids=["litellm", "openai_compat"])
def make(request: pytest.FixtureRequest, fake_openai: FakeOpenAI) -> Make:
    kind: ClientType = request.param
    return lambda name, **entry: build(kind, fake_openai, name, **entry)


@pytest.fixture(autouse=True)
def _api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "dummy-credential-7f3a9c2e51b8d406")


def capped(max_tokens: int = 20, **settings: Any) -> CompletionRequest:
    return CompletionRequest.of(
        "What is the capital of France?", max_tokens=max_tokens, enforce_max_tokens=True, **settings
    )


@pytest.mark.parametrize(
    ("script", "entry"), [(s, e) for _, _, s, e in PARITY_ANSWERS], ids=[i for i, _, _, _ in PARITY_ANSWERS]
)
async def test_an_honest_answer_streamed_is_the_same_completion_as_unstreamed_on_both_paths(
    fake_openai: FakeOpenAI, script: dict[str, Any], entry: dict[str, Any]
) -> None:
    name = next(n for _, n, s, e in PARITY_ANSWERS if s is script and e is entry)
    fake_openai.script(name, "Paris is the capital", **script)
    streamed = capped(logprobs="logprobs" in script)
    plain = streamed.model_copy(update={"enforce_max_tokens": False})

    outcomes = []
    for kind in CLIENTS:
        client = build(kind, fake_openai, name, **entry)
        outcomes += [
            _comparable(await _outcome(client, plain)),
            _comparable(await _outcome(client, streamed)),
        ]

    assert outcomes[0] == outcomes[1] == outcomes[2] == outcomes[3]
    bodies = [r.body for r in fake_openai.requests]
    assert [b.get("stream") for b in bodies] == [None, True, None, True]
    assert bodies[1]["stream_options"] == {"include_usage": True} and bodies[1] == bodies[3]
    assert all(r.stream is not None and r.stream.completed for r in fake_openai.requests[1::2])


async def test_a_provider_that_ignores_max_tokens_is_cut_off_just_past_them_and_the_connection_closed(
    fake_openai: FakeOpenAI,
) -> None:
    fake_openai.script("*", Fault.ignores_max_tokens(200), chunk_latency_s=0.005)
    request = capped(20)

    outcomes = []
    for kind in CLIENTS:
        client = build(kind, fake_openai, "adversary", **PRICE)
        completion = await client.complete(request)
        outcomes.append(_comparable(completion))

        # What arrived: 20 tokens and the one that went past them. The stream never got to its usage.
        assert completion.text == " ".join(["word"] * 21) and completion.completion_tokens == 21
        assert completion.prompt_tokens == estimate_prompt_tokens(request)
        entry = ModelEntry.model_validate({"model": "openai/adversary", **PRICE})
        assert completion.cost_usd == cost_of(entry, completion.prompt_tokens, 21)
        assert completion.finish_reason == "length"
        assert completion.truncated == (
            "cut off at its reservation of 20 output tokens: the provider went past the max_tokens it was "
            "sent (21 received)"
        )
        sent = fake_openai.last_request.stream
        assert sent is not None and not sent.completed and sent.content_chunks < 200

    assert outcomes[0] == outcomes[1]


async def test_a_provider_that_batches_past_max_tokens_into_one_chunk_is_cut_after_it_and_charged_for_it(
    make: Make, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script("adversary", Fault.ignores_max_tokens(200), words_per_chunk=50, chunk_latency_s=0.005)

    completion = await make("adversary", **PRICE).complete(capped(20))

    assert completion.completion_tokens == 50 and completion.truncated is not None
    assert completion.text == " ".join(["word"] * 50)


async def test_a_streamed_answer_whose_usage_says_more_than_arrived_is_charged_what_the_usage_says(
    make: Make, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script("overbilling", "one two three", prompt_tokens=9, completion_tokens=500)

    completion = await make("overbilling", **PRICE).complete(capped(20))

    assert completion.text == "one two three" and completion.truncated is None
    assert (completion.prompt_tokens, completion.completion_tokens) == (9, 500)
    assert completion.cost_usd is not None and completion.cost_usd > 50


@pytest.mark.parametrize("fault", [f for _, f, _ in FAULTS], ids=FAULT_IDS)
async def test_a_fault_on_a_streamed_call_is_the_same_error_as_unstreamed_on_both_paths(
    fake_openai: FakeOpenAI, fault: Fault
) -> None:
    fake_openai.script("gpt-a", fault)
    streamed = capped()
    plain = streamed.model_copy(update={"enforce_max_tokens": False})

    outcomes = []
    for kind in CLIENTS:
        client = build(kind, fake_openai, "gpt-a")
        outcomes += [
            _comparable(await _outcome(client, plain)),
            _comparable(await _outcome(client, streamed)),
        ]

    assert all(isinstance(o, tuple) for o in outcomes), outcomes
    assert outcomes[0] == outcomes[1] == outcomes[2] == outcomes[3]


async def test_what_arrived_before_a_stream_broke_off_is_on_the_calls_meter(
    make: Make, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script("breaking", Fault.reset())
    request = capped()

    with metering() as meter, pytest.raises(ProviderUnavailable):
        await make("breaking", **PRICE).complete(request)

    assert meter.output_tokens == 1  # "cut", then the connection closed
    assert meter.spent_usd is not None and meter.spent_usd > 0


async def test_an_uncapped_request_is_not_streamed(make: Make, fake_openai: FakeOpenAI) -> None:
    fake_openai.script("gpt-a", "Paris")

    completion = await make("gpt-a").complete(CompletionRequest.of("Capital of France?", max_tokens=20))

    assert completion.text == "Paris" and "stream" not in fake_openai.last_request.body


async def test_a_stream_read_to_its_end_leaves_its_connection_for_the_next_call_and_a_cut_one_closes_it(
    fake_openai: FakeOpenAI,
) -> None:
    await close_shared_pool()
    fake_openai.script("honest", "one two three")
    fake_openai.script("adversary", Fault.ignores_max_tokens(200), chunk_latency_s=0.005)

    await build(OpenAICompatClient, fake_openai, "honest", **PRICE).complete(capped())
    kept = shared_pool().idle_connections()
    cut = await build(OpenAICompatClient, fake_openai, "adversary", **PRICE).complete(capped())

    assert kept == 1
    assert cut.truncated is not None and shared_pool().idle_connections() == 0  # reused, then closed
