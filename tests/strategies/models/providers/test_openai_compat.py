"""What only the fast path has: the rule that picks it, its endpoints and keys, and its shared pool."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from chorus_mcp.strategies.core.completion import CompletionRequest
from chorus_mcp.strategies.core.errors import ProviderUnavailable
from chorus_mcp.strategies.evaluation.datasets import options_in
from chorus_mcp.strategies.evaluation.options import choice_probs
from chorus_mcp.strategies.models.catalog import ModelEntry
from chorus_mcp.strategies.models.providers import (
    LiteLLMClient,
    OpenAICompatClient,
    needs_litellm,
    provider_client,
    uses_fast_path,
)
from chorus_mcp.strategies.models.providers.openai_compat import (
    TOP_LOGPROBS,
    _bypassed,
    base_url,
    shared_pool,
)
from tests.fake_openai import FakeOpenAI

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("entry", "fast"),
    [
        ({"model": "openai/gpt-4.1-mini"}, True),
        ({"model": "openai/llama3.2:3b", "api_base": "http://127.0.0.1:11434/v1"}, True),
        ({"model": "openrouter/anthropic/claude-sonnet-4.5"}, True),
        ({"model": "anthropic/claude-sonnet-4-5"}, False),
        ({"model": "gemini/gemini-2.5-flash"}, False),
        ({"model": "gpt-4o"}, False),  # no provider prefix: litellm infers the provider
        (
            {
                "model": "groq/llama-3.1-8b-instant",
                "api_base": "https://api.groq.com/openai/v1",
                "protocol": "openai",
            },
            True,
        ),
        ({"model": "openai/gpt-4.1-mini", "protocol": "litellm"}, False),
    ],
)
def test_the_fast_path_serves_openai_and_openrouter_ids_and_whatever_opts_in(
    entry: dict[str, str], fast: bool
) -> None:
    model = ModelEntry.model_validate(entry)

    assert uses_fast_path(model) is fast
    assert isinstance(provider_client("alias", model), OpenAICompatClient if fast else LiteLLMClient)


def test_protocol_openai_for_another_provider_needs_an_endpoint() -> None:
    with pytest.raises(ValidationError, match="api_base"):
        ModelEntry(model="groq/llama-3.1-8b-instant", protocol="openai")


def test_litellm_is_needed_only_when_some_model_is_not_on_the_fast_path() -> None:
    assert not needs_litellm([ModelEntry(model="openai/gpt-4.1"), ModelEntry(model="openrouter/x/y")])
    assert needs_litellm([ModelEntry(model="openai/gpt-4.1"), ModelEntry(model="anthropic/claude-haiku-4-5")])


def test_endpoints_default_per_provider_and_follow_the_same_variables_as_litellm(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_BASE", raising=False)
    assert base_url(ModelEntry(model="openai/gpt-4.1")) == "https://api.openai.com/v1"
    assert base_url(ModelEntry(model="openrouter/a/b")) == "https://openrouter.ai/api/v1"
    assert (
        base_url(ModelEntry(model="openai/x", api_base="http://127.0.0.1:8000/v1/"))
        == "http://127.0.0.1:8000/v1"
    )
    monkeypatch.setenv("OPENAI_BASE_URL", "https://gateway.example/v1")
    assert base_url(ModelEntry(model="openai/gpt-4.1")) == "https://gateway.example/v1"


async def test_openrouter_gets_its_model_id_without_the_prefix_and_asks_for_usage(
    fake_openai: FakeOpenAI,
) -> None:
    fake_openai.script("anthropic/claude-sonnet-4.5", "ok")
    entry = ModelEntry(
        model="openrouter/anthropic/claude-sonnet-4.5",
        api_base=fake_openai.base_url,
        api_key_env="CHORUS_TEST_OR_KEY",
    )

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CHORUS_TEST_OR_KEY", "or-test-credential-123456")
        await OpenAICompatClient("router", entry).complete(CompletionRequest.of("hi"))

    assert fake_openai.last_request.body["model"] == "anthropic/claude-sonnet-4.5"
    assert fake_openai.last_request.body["usage"] == {"include": True}


async def test_a_local_server_without_any_key_is_called_without_one(
    fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    fake_openai.script("llama3.2:3b", "ok")
    client = OpenAICompatClient(
        "local", ModelEntry(model="openai/llama3.2:3b", api_base=fake_openai.base_url)
    )

    completion = await client.complete(CompletionRequest.of("hi"))

    assert completion.text == "ok"
    assert "authorization" not in fake_openai.last_request.headers


async def test_every_fast_client_shares_one_connection_pool_per_event_loop(
    fake_openai: FakeOpenAI,
) -> None:
    fake_openai.script("*", "ok")
    entries = [ModelEntry(model=f"openai/m{i}", api_base=fake_openai.base_url) for i in range(3)]
    pool = shared_pool()
    idle_before = pool.idle_connections()

    for index, entry in enumerate(entries):
        await OpenAICompatClient(f"m{index}", entry).complete(CompletionRequest.of("hi"))

    assert shared_pool() is pool
    assert len(fake_openai.requests) == 3
    # Three models on one server, called one after the other: one kept-alive connection served them all.
    assert pool.idle_connections() - idle_before <= 1


async def test_an_endpoint_behind_a_proxy_is_called_through_it(
    fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The proxy variable points at a port nothing listens on: the call fails to connect, which proves it
    # went to the proxy and not straight to the (healthy) endpoint.
    fake_openai.script("*", "ok")
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client = OpenAICompatClient("m", ModelEntry(model="openai/m", api_base=fake_openai.base_url))

    with pytest.raises(ProviderUnavailable):
        await client.complete(CompletionRequest.of("hi"))
    assert fake_openai.requests == []


async def test_no_proxy_hosts_are_called_directly(
    fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_openai.script("*", "ok")
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "example.com, 127.0.0.1")
    client = OpenAICompatClient("m", ModelEntry(model="openai/m", api_base=fake_openai.base_url))

    assert (await client.complete(CompletionRequest.of("hi"))).text == "ok"


@pytest.mark.parametrize(
    ("host", "no_proxy", "bypassed"),
    [
        ("api.openai.com", "openai.com", True),
        ("api.openai.com", ".openai.com", True),
        ("notopenai.com", "openai.com", False),
        ("127.0.0.1", "localhost,127.0.0.1:8080", True),
        ("api.groq.com", "*", True),
        ("api.groq.com", "", False),
    ],
)
def test_no_proxy_matches_hosts_and_domain_suffixes(host: str, no_proxy: str, bypassed: bool) -> None:
    assert _bypassed(host, no_proxy) is bypassed


async def test_asking_for_logprobs_asks_for_alternatives_and_each_options_probability_is_read_from_them(
    fake_openai: FakeOpenAI,
) -> None:
    # A two-way question (Winogrande's shape). Twelve alternatives are scripted, the server sends the
    # likeliest TOP_LOGPROBS; "A" and " A" are one option, "The" and "C" are none of the options.
    alternatives = {"B": -0.6, "A": -1.4, " A": -2.6, "The": -3.0, "C": -3.5}
    alternatives |= {f"x{i}": -9.0 - i for i in range(7)}
    fake_openai.script("qwen", "B", logprobs=[("B", -0.6)], top_logprobs=[alternatives])
    client = OpenAICompatClient("local", ModelEntry(model="openai/qwen", api_base=fake_openai.base_url))
    prompt = "The drink had caffeine, not sugar; the _ kept him awake.\nA) caffeine\nB) sugar\nAnswer:"

    completion = await client.complete(CompletionRequest.of(prompt, logprobs=True, max_tokens=3))

    assert fake_openai.last_request.body["top_logprobs"] == TOP_LOGPROBS
    assert completion.logprobs is not None
    top = completion.logprobs[0].top
    assert top is not None and len(top) == TOP_LOGPROBS
    assert {"B", "A", " A", "The"} <= set(top)
    probs = choice_probs(completion.logprobs, options_in(prompt))
    a, b = math.exp(-1.4) + math.exp(-2.6), math.exp(-0.6)
    assert probs == {"A": pytest.approx(a / (a + b), abs=1e-5), "B": pytest.approx(b / (a + b), abs=1e-5)}


async def test_no_alternatives_are_asked_without_logprobs_nor_from_a_reasoning_model(
    fake_openai: FakeOpenAI,
) -> None:
    fake_openai.script("qwen", "B", top_logprobs=[{"B": -0.6, "A": -1.0}])
    fake_openai.script("o4-mini", "B")
    plain = OpenAICompatClient("local", ModelEntry(model="openai/qwen", api_base=fake_openai.base_url))
    reasoning = OpenAICompatClient("r", ModelEntry(model="openai/o4-mini", api_base=fake_openai.base_url))

    completion = await plain.complete(CompletionRequest.of("A) x\nB) y\nAnswer:"))
    assert "top_logprobs" not in fake_openai.last_request.body
    assert completion.logprobs is None
    await reasoning.complete(CompletionRequest.of("A) x\nB) y\nAnswer:", logprobs=True))
    assert not {"logprobs", "top_logprobs"} & set(fake_openai.last_request.body)
