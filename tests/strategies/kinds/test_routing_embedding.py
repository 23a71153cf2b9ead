"""The embedding step of the route strategy: rules → examples → classifier → default."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from chorus_mcp.strategies.core.completion import CompletionRequest
from chorus_mcp.strategies.core.errors import AuthenticationFailed, UserInputError
from chorus_mcp.strategies.core.result import RouteDecision, StrategyResult, compute_totals
from chorus_mcp.strategies.core.spec import RouteSpec
from chorus_mcp.strategies.engine.context import Budget
from chorus_mcp.strategies.engine.testing import context_of
from chorus_mcp.strategies.kinds import routing
from chorus_mcp.strategies.kinds.routing import run_route
from chorus_mcp.strategies.models.embeddings import Embeddings, EmbeddingUsage
from chorus_mcp.strategies.models.testing import ScriptedClient

np = pytest.importorskip("numpy", reason="embeddings need numpy (the `eval` extra)")

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def _fresh_example_cache() -> Iterator[None]:
    routing._indexes.clear()
    yield
    routing._indexes.clear()


def _spec(**overrides: object) -> RouteSpec:
    raw: dict[str, object] = {
        "routes": [
            {
                "name": "code",
                "description": "programming",
                "keywords": ["python"],
                "examples": ["fix the bug in my function", "why does my program crash on start"],
                "target": "coder",
            },
            {
                "name": "cooking",
                "description": "recipes and kitchen advice",
                "examples": ["how long do I bake banana bread", "a recipe for tomato soup"],
                "target": "chef",
            },
            {"name": "general", "description": "anything else", "target": "generalist"},
        ],
        "embedding": {"model": "hashing", "threshold": 0.3},
        "default": "general",
    }
    raw.update(overrides)
    return RouteSpec.model_validate(raw)


def _clients(classifier_reply: str = "general") -> list[ScriptedClient]:
    return [
        ScriptedClient("coder", "code answer"),
        ScriptedClient("chef", "cooking answer"),
        ScriptedClient("generalist", "general answer"),
        ScriptedClient("cheap", classifier_reply),
    ]


def _decision(result: StrategyResult) -> RouteDecision:
    [decision] = [d for d in result.decisions if isinstance(d, RouteDecision)]
    return decision


async def test_a_request_like_a_routes_examples_takes_that_route_with_the_similarity_in_the_reason() -> None:
    *_, classifier = clients = _clients()
    ctx = context_of(*clients)

    result = await run_route(
        _spec(classifier="cheap"), CompletionRequest.of("How long should I bake banana bread?"), ctx, "route"
    )

    assert result.ok and result.answer == "cooking answer"
    decision = _decision(result)
    assert (decision.route, decision.method) == ("cooking", "embedding")
    assert decision.reason.startswith("embedding similarity 0.")
    assert ">= 0.3 to route 'cooking' example 'how long do I bake banana bread'" in decision.reason
    assert classifier.requests == []
    # A local embedder makes no model call: only the target is recorded.
    assert [(c.model, c.stage) for c in result.calls] == [("chef", "route/cooking")]


async def test_rules_are_tried_before_examples(monkeypatch: pytest.MonkeyPatch) -> None:
    async def never(*_args: object, **_kwargs: object) -> Embeddings:
        raise AssertionError("a matching rule must decide before any embedding")

    monkeypatch.setattr(routing, "aembed", never)
    ctx = context_of(*_clients())

    result = await run_route(_spec(), CompletionRequest.of("a python recipe for soup"), ctx, "route")

    assert (_decision(result).route, _decision(result).method) == ("code", "rule")


async def test_below_the_threshold_the_classifier_decides_and_the_reason_says_why_examples_did_not() -> None:
    *_, classifier = clients = _clients("code")
    ctx = context_of(*clients)
    spec = _spec(classifier="cheap", embedding={"model": "hashing", "threshold": 0.95})

    result = await run_route(spec, CompletionRequest.of("how long do I bake bread"), ctx, "route")

    decision = _decision(result)
    assert (decision.route, decision.method) == ("code", "classifier")
    assert decision.reason.startswith("no example similar enough (closest: route 'cooking' at 0.")
    assert decision.reason.endswith("< 0.95); classifier chose 'code'")
    assert len(classifier.requests) == 1


async def test_below_the_threshold_without_a_classifier_the_default_is_taken() -> None:
    ctx = context_of(*_clients())

    result = await run_route(_spec(), CompletionRequest.of("what is the capital of Peru"), ctx, "route")

    decision = _decision(result)
    assert (decision.route, decision.method) == ("general", "default")
    assert decision.reason.startswith("no rule matched, no example similar enough (closest: route ")
    assert decision.reason.endswith("and no classifier is configured; default")


async def test_an_embedder_that_fails_is_noted_and_routing_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    async def missing(*_args: object, **_kwargs: object) -> Embeddings:
        raise UserInputError("the wordllama embedder needs the wordllama package")

    monkeypatch.setattr(routing, "aembed", missing)
    ctx = context_of(*_clients("cooking"))

    result = await run_route(_spec(classifier="cheap"), CompletionRequest.of("bake bread"), ctx, "route")

    assert result.ok and result.answer == "cooking answer"
    decision = _decision(result)
    assert decision.method == "classifier"
    assert decision.reason == (
        "embedding router failed (the wordllama embedder needs the wordllama package); "
        "classifier chose 'cooking'"
    )


class _RemoteEmbedder:
    """Plays a paid embedding API: a fixed vector per text, with usage, counting the texts it was sent."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.sent: list[list[str]] = []
        self.fail = fail

    async def __call__(self, model: str, texts: Sequence[str], **_kwargs: Any) -> Embeddings:
        self.sent.append(list(texts))
        if self.fail is not None:
            raise self.fail
        rows = [[1.0, 0.0] if ("bake" in t or "recipe" in t) else [0.0, 1.0] for t in texts]
        usage = EmbeddingUsage(
            model="openai/text-embedding-3-small",
            prompt_tokens=5 * len(texts),
            cost_usd=Decimal("0.000002") * len(texts),
            latency_s=0.01,
        )
        return Embeddings(np.asarray(rows, dtype=np.float32), usage)


async def test_remote_embedding_calls_are_recorded_and_charged_and_examples_are_embedded_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    remote = _RemoteEmbedder()
    monkeypatch.setattr(routing, "aembed", remote)
    spec = _spec(embedding={"model": "litellm/openai/text-embedding-3-small", "threshold": 0.8})
    ctx = context_of(*_clients(), budget=Budget(max_cost_usd=Decimal("1")))

    first = await run_route(spec, CompletionRequest.of("bake me something"), ctx, "route")
    second = await run_route(spec, CompletionRequest.of("a recipe please"), ctx, "route")

    assert [len(texts) for texts in remote.sent] == [4, 1, 1]  # 4 examples once, then one query each
    assert _decision(first).route == _decision(second).route == "cooking"
    assert [(c.model, c.stage, c.status, c.cost_usd) for c in first.calls] == [
        ("openai/text-embedding-3-small", "route/embedding", "ok", Decimal("0.000008")),
        ("openai/text-embedding-3-small", "route/embedding", "ok", Decimal("0.000002")),
        ("chef", "route/cooking", "ok", Decimal("0.001")),
    ]
    assert compute_totals(first.calls, 0.0).cost_usd == Decimal("0.00101")
    assert ctx.budget.spent_usd == Decimal("0.000012") + Decimal("0.002")


async def test_a_failed_remote_embedding_is_recorded_and_routing_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        routing, "aembed", _RemoteEmbedder(AuthenticationFailed("text-embedding-3-small", "HTTP 401"))
    )
    spec = _spec(embedding={"model": "litellm/openai/text-embedding-3-small", "threshold": 0.8})
    ctx = context_of(*_clients())

    result = await run_route(spec, CompletionRequest.of("bake"), ctx, "route")

    assert result.ok and _decision(result).method == "default"
    assert "embedding router failed (text-embedding-3-small: HTTP 401)" in _decision(result).reason
    assert [(c.stage, c.status) for c in result.calls] == [
        ("route/embedding", "error"),
        ("route/general", "ok"),
    ]


async def test_wordllama_routes_by_meaning_without_a_shared_word() -> None:
    pytest.importorskip("wordllama", reason="the wordllama embedder is in the `eval` extra")
    ctx = context_of(*_clients())
    spec = _spec(embedding={"model": "wordllama", "threshold": 0.2})

    result = await run_route(
        spec, CompletionRequest.of("My script throws an exception when it launches"), ctx, "route"
    )

    assert (_decision(result).route, _decision(result).method) == ("code", "embedding")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"embedding": None},
            r"routes \['code', 'cooking'\] have 'examples', which only an embedding router",
        ),
        (
            {"routes": [{"name": "general", "target": "generalist"}]},
            "embedding routing needs 'examples' on at least one route",
        ),
        ({"embedding": {"model": "word2vec"}}, "unknown embedder 'word2vec'"),
        ({"embedding": {"model": "hashing", "threshold": 1.5}}, "threshold"),
        (
            {"embedding": {"model": "litellm/openai/text-embedding-3-small"}},
            "needs a .threshold.: its similarity",
        ),
    ],
)
def test_a_misconfigured_embedding_router_is_rejected_when_the_config_loads(
    overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        _spec(**overrides)


async def test_a_remote_embedder_is_not_called_once_the_cost_cap_is_spent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    remote = _RemoteEmbedder()
    monkeypatch.setattr(routing, "aembed", remote)
    spec = _spec(embedding={"model": "litellm/openai/text-embedding-3-small", "threshold": 0.8})
    ctx = context_of(*_clients(), budget=Budget(max_cost_usd=Decimal("0.01"), spent_usd=Decimal("0.01")))

    result = await run_route(spec, CompletionRequest.of("bake"), ctx, "route")

    assert remote.sent == []
    assert "embedding router skipped (the cost cap is spent)" in _decision(result).reason


async def test_the_classifier_is_shown_a_few_examples_per_route_and_examples_alone_need_a_classifier() -> (
    None
):
    *_, classifier = clients = _clients("cooking")
    ctx = context_of(*clients)
    spec = _spec(embedding=None, classifier="cheap")  # examples without an embedder: a classifier reads them

    result = await run_route(spec, CompletionRequest.of("bake"), ctx, "route")

    assert _decision(result).method == "classifier"
    sent = classifier.requests[0].messages[-1].content
    assert (
        '- cooking: recipes and kitchen advice\n  for example: "how long do I bake banana bread"; '
        '"a recipe for tomato soup"\n- general: anything else\n'
    ) in sent
