"""The semantic layer with the real local embedder (WordLlama): paraphrases hit above the threshold and
miss below it; near-misses never hit; the literal guard; buckets; the candidate cap."""

from __future__ import annotations

from decimal import Decimal

import pytest

from chorus_mcp.strategies.cache.keys import cache_key
from chorus_mcp.strategies.cache.response_cache import ResponseCache
from chorus_mcp.strategies.cache.semantic import SemanticMatcher
from chorus_mcp.strategies.cache.settings import CacheSettings, SemanticSettings
from chorus_mcp.strategies.cache.stores.memory import MemoryCacheStore
from chorus_mcp.strategies.core.completion import Completion, CompletionRequest
from chorus_mcp.strategies.core.literals import literals
from chorus_mcp.strategies.models.catalog import ModelEntry
from chorus_mcp.strategies.models.embeddings import embed
from tests.strategies.cache.pairs import NEAR_MISSES, PARAPHRASES

pytestmark = pytest.mark.anyio
pytest.importorskip("wordllama")

ENTRY = ModelEntry(model="openai/m")
DEFAULT_THRESHOLD = SemanticSettings().threshold


def _cache(threshold: float = DEFAULT_THRESHOLD, max_candidates: int = 256) -> ResponseCache:
    semantic = SemanticSettings(enabled=True, threshold=threshold, max_candidates=max_candidates)
    settings = CacheSettings(semantic=semantic)
    return ResponseCache(settings, MemoryCacheStore(), matcher=SemanticMatcher(semantic))


async def _store(cache: ResponseCache, prompt: str, answer: str = "cached answer", **params: object) -> None:
    request = CompletionRequest.of(prompt, **params)
    lookup = await cache.lookup(ENTRY, request)
    assert lookup.status == "miss"
    await cache.save(lookup, Completion(text=answer, model="openai/m", cost_usd=Decimal("0.001")))


def _similarity(a: str, b: str) -> float:
    vectors = embed("wordllama", [a, b])
    return float(vectors[0] @ vectors[1])


def test_there_are_at_least_twenty_pairs_of_each_kind() -> None:
    assert len(PARAPHRASES) >= 20 and len(NEAR_MISSES) >= 20


@pytest.mark.parametrize(("cached", "asked"), PARAPHRASES)
async def test_a_paraphrase_hits_exactly_when_its_similarity_reaches_the_threshold(
    cached: str, asked: str
) -> None:
    cache = _cache()
    await _store(cache, cached)
    lookup = await cache.lookup(ENTRY, CompletionRequest.of(asked))
    similarity = _similarity(cached, asked)
    if similarity >= DEFAULT_THRESHOLD + 1e-3:
        assert lookup.hit is not None and lookup.hit.text == "cached answer"
        assert lookup.hit.similarity == pytest.approx(similarity, abs=1e-3)
        assert lookup.hit.cost_usd == 0 and lookup.hit.saved_cost_usd == Decimal("0.001")
    elif similarity < DEFAULT_THRESHOLD - 1e-3:
        assert lookup.hit is None and lookup.status == "miss"


@pytest.mark.parametrize(("cached", "asked"), NEAR_MISSES)
async def test_a_near_miss_never_hits(cached: str, asked: str) -> None:
    cache = _cache()
    await _store(cache, cached)
    lookup = await cache.lookup(ENTRY, CompletionRequest.of(asked))
    assert lookup.hit is None, f"{asked!r} was answered with the answer to {cached!r}"


async def test_most_paraphrases_hit_at_the_default_threshold() -> None:
    hits = 0
    for cached, asked in PARAPHRASES:
        cache = _cache()
        await _store(cache, cached)
        hits += (await cache.lookup(ENTRY, CompletionRequest.of(asked))).hit is not None
    assert hits / len(PARAPHRASES) >= 0.6


async def test_a_different_number_misses_even_with_a_low_threshold() -> None:
    cache = _cache(threshold=0.5)
    await _store(cache, "Is 91 prime?", "No: 91 = 7 × 13.")
    assert (await cache.lookup(ENTRY, CompletionRequest.of("Is 97 prime?"))).hit is None
    hit = (await cache.lookup(ENTRY, CompletionRequest.of("Is 91 a prime number?"))).hit
    assert hit is not None and hit.text == "No: 91 = 7 × 13."


async def test_prompts_are_only_compared_within_the_same_model_and_parameters() -> None:
    cache = _cache()
    await _store(cache, "What is the capital of France?", max_tokens=50)
    paraphrase = "What's the capital of France?"
    assert (await cache.lookup(ENTRY, CompletionRequest.of(paraphrase, max_tokens=50))).hit is not None
    assert (await cache.lookup(ENTRY, CompletionRequest.of(paraphrase, max_tokens=51))).hit is None
    other_model = ModelEntry(model="openai/other")
    assert (await cache.lookup(other_model, CompletionRequest.of(paraphrase, max_tokens=50))).hit is None
    other_system = CompletionRequest.of(paraphrase, system="Be terse.", max_tokens=50)
    assert (await cache.lookup(ENTRY, other_system)).hit is None


async def test_only_the_most_recent_candidates_of_a_bucket_are_compared() -> None:
    cache = _cache(max_candidates=2)
    await _store(cache, "What is the capital of France?")
    await _store(cache, "How does photosynthesis work?")
    await _store(cache, "Why is the sky blue?")
    # The capital question fell out of the bucket's two most recent entries.
    assert (await cache.lookup(ENTRY, CompletionRequest.of("What's the capital of France?"))).hit is None
    assert (
        await cache.lookup(ENTRY, CompletionRequest.of("Why is the sky blue during the day?"))
    ).hit is None
    assert (await cache.lookup(ENTRY, CompletionRequest.of("How does photosynthesis work exactly?"))).hit


def test_the_key_ignores_the_time_out_and_the_bucket_ignores_only_the_latest_question() -> None:
    a = cache_key("openai/m", None, CompletionRequest.of("Q1", timeout_s=3))
    b = cache_key("openai/m", None, CompletionRequest.of("Q1", timeout_s=30))
    c = cache_key("openai/m", None, CompletionRequest.of("Q2"))
    assert a.key == b.key and a.key != c.key and a.bucket == c.bucket
    assert cache_key("openai/m", "http://127.0.0.1:1/v1", CompletionRequest.of("Q1")).key != a.key


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("Give me three tips.", "Give me 3 tips.", True),
        ("Convert 100 Fahrenheit to Celsius.", "Convert 100 Celsius to Fahrenheit.", False),
        ("Is it safe?", "Isn't it safe?", False),
        ("Who was the first president?", "Who was the second president?", False),
        ("Explain `df.groupby`.", "Explain `df.pivot`.", False),
        ("What is the capital of France?", "Tell me the capital city of France.", True),
        ("Convert 30 miles to kilometres.", "Convert 30 km to miles.", False),
        ("Convert 30 miles to kilometres.", "Convert 30 miles into km.", True),
        ("Is it safe to microwave foil?", "Is it unsafe to microwave foil?", False),
        ("Help me understand recursion.", "Help me understand recursion, please.", True),
    ],
)
def test_the_literal_guard(a: str, b: str, same: bool) -> None:
    assert (literals(a) == literals(b)) is same
