"""Embedding backends: names, unit-length rows, a bundled local model, and the litellm adapter."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest

from chorus_mcp.strategies.core.embedders import check_embedder, is_remote
from chorus_mcp.strategies.core.errors import ProviderUnavailable, UserInputError
from chorus_mcp.strategies.models import embeddings
from chorus_mcp.strategies.models.embeddings import aembed, embed

np = pytest.importorskip("numpy", reason="embeddings need numpy (the `eval` extra)")


@pytest.mark.parametrize("name", ["wordllama", "hashing", "litellm/openai/text-embedding-3-small"])
def test_known_embedder_names_are_accepted(name: str) -> None:
    assert check_embedder(name) == name


@pytest.mark.parametrize("name", ["word2vec", "litellm/", "openai/text-embedding-3-small", ""])
def test_unknown_embedder_names_are_rejected_naming_the_choices(name: str) -> None:
    with pytest.raises(ValueError, match="use wordllama, hashing or litellm/<embedding model>"):
        check_embedder(name)


def test_only_litellm_embedders_are_remote() -> None:
    assert is_remote("litellm/openai/text-embedding-3-small")
    assert not is_remote("wordllama") and not is_remote("hashing")


def test_hashing_rows_are_unit_length_and_lexical() -> None:
    vectors = embed("hashing", ["bake bread", "bake bread", "fix the compiler", ""])

    assert vectors.shape == (4, embeddings.HASHING_DIM) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors[:3], axis=1), 1.0)
    assert vectors[0] @ vectors[1] == pytest.approx(1.0)
    assert vectors[0] @ vectors[2] == pytest.approx(0.0)
    assert not vectors[3].any()  # an empty text is the zero vector, not NaN


@pytest.mark.anyio
async def test_an_unknown_embedder_is_a_user_input_error() -> None:
    with pytest.raises(UserInputError, match="unknown embedder 'word2vec'"):
        embed("word2vec", ["x"])
    with pytest.raises(UserInputError, match="unknown embedder 'word2vec'"):
        await aembed("word2vec", ["x"])


def test_wordllama_loads_its_bundled_model_offline_and_embeds_by_meaning() -> None:
    pytest.importorskip("wordllama", reason="the wordllama embedder is in the `eval` extra")
    vectors = embed(
        "wordllama",
        [
            "My program crashes with a null pointer exception",
            "How do I debug a segmentation fault in my code?",
            "What is a good recipe for banana bread?",
        ],
    )

    assert vectors.shape == (3, 256)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]


@pytest.mark.anyio
async def test_aembed_runs_a_local_embedder_without_usage() -> None:
    result = await aembed("hashing", ["one text", "another text"])

    assert result.vectors.shape == (2, embeddings.HASHING_DIM)
    assert result.usage is None


class _FakeLitellm:
    """Stands in for the litellm module: answers `aembedding` with fixed vectors, usage and a price."""

    def __init__(self) -> None:
        self.arguments: dict[str, Any] = {}

    async def aembedding(self, **arguments: Any) -> Any:
        self.arguments = arguments
        response = SimpleNamespace(
            data=[{"embedding": [3.0, 4.0]} for _ in arguments["input"]],
            usage=SimpleNamespace(prompt_tokens=7),
        )
        response._hidden_params = {"response_cost": 1.4e-07}
        return response


@pytest.fixture
def fake_litellm(monkeypatch: pytest.MonkeyPatch) -> Iterator[_FakeLitellm]:
    fake = _FakeLitellm()
    monkeypatch.setattr(embeddings, "_litellm", lambda: fake)
    yield fake


@pytest.mark.anyio
async def test_a_litellm_embedder_reports_usage_and_cost_without_retries(fake_litellm: _FakeLitellm) -> None:
    result = await aembed("litellm/openai/text-embedding-3-small", ["a", "b"], timeout_s=2.5)

    assert fake_litellm.arguments == {
        "model": "openai/text-embedding-3-small",
        "input": ["a", "b"],
        "max_retries": 0,
        "timeout": 2.5,
    }
    assert np.allclose(result.vectors, [[0.6, 0.8], [0.6, 0.8]])
    assert result.usage is not None
    assert (result.usage.model, result.usage.prompt_tokens, result.usage.cost_usd) == (
        "openai/text-embedding-3-small",
        7,
        Decimal("1.4E-7"),
    )


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.anyio
async def test_a_litellm_failure_is_translated_into_the_projects_errors(
    monkeypatch: pytest.MonkeyPatch, closed_port: int
) -> None:
    """A real litellm call to a closed loopback port: the connection failure becomes ProviderUnavailable."""
    real = embeddings._litellm()

    class _ToClosedPort:
        async def aembedding(self, **arguments: Any) -> Any:
            return await real.aembedding(
                **arguments, api_base=f"http://127.0.0.1:{closed_port}/v1", api_key="sk-not-a-real-key"
            )

    monkeypatch.setattr(embeddings, "_litellm", _ToClosedPort)

    with pytest.raises(ProviderUnavailable) as caught:
        await aembed("litellm/openai/text-embedding-3-small", ["a"], timeout_s=5)

    assert caught.value.model == "openai/text-embedding-3-small"
    assert "sk-not-a-real-key" not in str(caught.value)
