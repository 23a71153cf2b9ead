"""The `route` strategy: pick one route per request, then run that route's target step.

A route is chosen, in order, by:

1. rules on the latest user message: each route's keywords (case-insensitive whole words) and
   regular expressions; routes are tried in configured order and the first with a matching rule wins;
2. when no rule matches and an embedding router is configured (`embedding`), the route whose closest
   example request is most similar to the message (cosine similarity of embeddings, see
   `strategies.models.embeddings`), if that similarity reaches the threshold;
3. otherwise, when a classifier model is configured, the classifier's choice, accepted only if it is
   one of the configured route names (see `strategies.kinds.classifier`);
4. otherwise the default route.

With an `objective` (`latency`, `cost`, `quality`) the content is not read: one candidate model is chosen
by that objective within the cost cap (`strategies.kinds.objective`), its decision listing every
candidate's figure, and runs as `{stage}/{route name}` (or `{stage}/{model}` for a listed candidate).

The decision and its reason are recorded as a `RouteDecision` (method `rule`, `embedding`,
`classifier` or `default`; an embedding decision names the similarity and the closest example, and a
later step says why the examples did not decide). The classifier's call is recorded under
`{stage}/classifier`, a remote embedding call under `{stage}/embedding`, and the target runs as
`{stage}/{route name}`. An embedder that fails (not installed, provider error) is noted in the reason
and routing goes on to the classifier or the default: a broken embedder never fails the request.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from chorus_mcp.strategies.core.completion import CompletionRequest
from chorus_mcp.strategies.core.embedders import is_remote
from chorus_mcp.strategies.core.errors import ChorusError, ConfigError, ModelError
from chorus_mcp.strategies.core.result import (
    CallRecord,
    Decision,
    NoteDecision,
    RouteDecision,
    StrategyResult,
)
from chorus_mcp.strategies.core.spec import EmbeddingRouting, ModelStep, Route, RouteSpec, Step
from chorus_mcp.strategies.core.templates import latest_user_text
from chorus_mcp.strategies.engine.calling import run_model
from chorus_mcp.strategies.engine.context import RunContext
from chorus_mcp.strategies.kinds.classifier import classifier_request, parse_choice
from chorus_mcp.strategies.kinds.objective import choose_by_objective
from chorus_mcp.strategies.models.embeddings import Embeddings, aembed

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

_SHOWN_ANSWER_CHARS = 80
"""How much of an unusable classifier answer the decision's reason quotes."""
_SHOWN_EXAMPLE_CHARS = 60
"""How much of the closest example an embedding decision's reason quotes."""
MAX_EMBEDDED_CHARS = 2000
"""The embedding router reads at most this much of the request (a long text dilutes its embedding)."""
_INDEX_CACHE_SIZE = 32
"""Example sets whose embeddings are kept (one per embedder and route spec; oldest dropped first)."""


@dataclass(frozen=True)
class _Rules:
    """One route's rules, compiled once."""

    keywords: re.Pattern[str] | None
    patterns: tuple[re.Pattern[str], ...]


@dataclass(frozen=True)
class RouteChoice:
    """Which route a request takes and why (becomes a `RouteDecision`)."""

    route: str
    method: str
    """`rule`, `embedding`, `classifier` or `default`."""
    reason: str


@lru_cache(maxsize=256)
def _compile(route_name: str, keywords: tuple[str, ...], patterns: tuple[str, ...]) -> _Rules:
    keyword_re = None
    if keywords:
        # Look-arounds instead of \b, so keywords that end in a symbol ("c++", "c#") still match whole.
        words = "|".join(re.escape(k) for k in sorted(keywords, key=len, reverse=True))
        keyword_re = re.compile(rf"(?<!\w)(?:{words})(?!\w)", re.IGNORECASE)
    compiled: list[re.Pattern[str]] = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern))
        except re.error as exc:
            raise ConfigError(
                f"route {route_name!r}: pattern {pattern!r} is not a valid regular expression: {exc}"
            ) from exc
    return _Rules(keywords=keyword_re, patterns=tuple(compiled))


def _rules_of(route: Route) -> _Rules:
    return _compile(route.name, tuple(route.keywords), tuple(route.patterns))


def match_rules(routes: list[Route], text: str) -> RouteChoice | None:
    """The first route (in configured order) with a keyword or pattern matching `text`."""
    # Compile every route first, so a broken pattern is reported whichever route would have matched.
    for route, rules in [(route, _rules_of(route)) for route in routes]:
        if rules.keywords is not None and (found := rules.keywords.search(text)):
            said = found.group(0)
            # Name the configured keyword; fall back to the text when Unicode case rules differ.
            keyword = next((k for k in route.keywords if k.casefold() == said.casefold()), said)
            return RouteChoice(route.name, "rule", f"keyword {keyword!r} matched")
        for pattern in rules.patterns:
            if pattern.search(text):
                return RouteChoice(route.name, "rule", f"pattern {pattern.pattern!r} matched")
    return None


async def _classify(
    spec: RouteSpec, classifier: str, text: str, ctx: RunContext, stage: str
) -> tuple[RouteChoice, list[CallRecord]]:
    """Ask the classifier model; fall back to the default route when it fails or names no route."""
    request = classifier_request(spec.routes, text)
    outcome = await run_model(ModelStep(model=classifier), request, ctx, f"{stage}/classifier")
    answer = outcome.result.answer
    if not outcome.result.ok or answer is None:
        reason = f"classifier failed ({outcome.result.error}); default"
        return RouteChoice(spec.default, "default", reason), outcome.result.calls
    chosen = parse_choice(answer, [r.name for r in spec.routes])
    if chosen is None:
        shown = " ".join(answer.split())[:_SHOWN_ANSWER_CHARS]
        reason = f"classifier answered {shown!r}, not a route; default"
        return RouteChoice(spec.default, "default", reason), outcome.result.calls
    return RouteChoice(chosen, "classifier", f"classifier chose {chosen!r}"), outcome.result.calls


@dataclass(frozen=True)
class _ExampleIndex:
    """Every route example, embedded once per embedder and example set."""

    vectors: NDArray[np.float32]
    """One unit-length row per example."""
    routes: tuple[str, ...]
    """The route of each row."""
    examples: tuple[str, ...]


_ExampleKey = tuple[str, tuple[tuple[str, tuple[str, ...]], ...]]
_indexes: OrderedDict[_ExampleKey, _ExampleIndex] = OrderedDict()


@dataclass(frozen=True)
class ExampleMatch:
    """The route whose closest example is most similar to a request."""

    route: str
    similarity: float
    example: str


def closest_route(index: _ExampleIndex, query: NDArray[np.float32]) -> ExampleMatch:
    """The route of the example most similar to `query` (a unit vector): nearest neighbour, cosine."""
    similarities = index.vectors @ query
    best = int(similarities.argmax())
    return ExampleMatch(index.routes[best], float(similarities[best]), index.examples[best])


async def _example_index(
    spec: RouteSpec, settings: EmbeddingRouting, ctx: RunContext, stage: str, calls: list[CallRecord]
) -> _ExampleIndex:
    key: _ExampleKey = (settings.model, tuple((r.name, tuple(r.examples)) for r in spec.routes if r.examples))
    index = _indexes.get(key)
    if index is None:
        pairs = [(name, example) for name, examples in key[1] for example in examples]
        embedded = await _embed(settings.model, [example for _name, example in pairs], ctx, stage, calls)
        index = _ExampleIndex(
            embedded.vectors, tuple(name for name, _ in pairs), tuple(example for _, example in pairs)
        )
        _indexes[key] = index
        while len(_indexes) > _INDEX_CACHE_SIZE:
            _indexes.popitem(last=False)
    return index


async def _embed(
    model: str, texts: list[str], ctx: RunContext, stage: str, calls: list[CallRecord]
) -> Embeddings:
    """Embed `texts`; a remote call is recorded under `{stage}/embedding` and charged to the budget."""
    try:
        embedded = await aembed(model, texts, timeout_s=max(ctx.time_left(), 0.001))
    except ModelError as exc:
        calls.append(
            CallRecord(model=exc.model, stage=f"{stage}/embedding", status=exc.status, error=exc.message)
        )
        raise
    usage = embedded.usage
    if usage is not None:
        ctx.budget.charge(usage.cost_usd)
        calls.append(
            CallRecord(
                model=usage.model,
                stage=f"{stage}/embedding",
                status="ok",
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=0,
                cost_usd=usage.cost_usd,
                latency_s=usage.latency_s,
            )
        )
    return embedded


async def match_examples(
    spec: RouteSpec, settings: EmbeddingRouting, text: str, ctx: RunContext, stage: str
) -> tuple[RouteChoice | None, str, list[CallRecord]]:
    """The embedding router: the route whose closest example reaches the threshold, or None and why not.

    Returns (choice or None, a note for the next step's reason when None, embedding calls made).
    """
    calls: list[CallRecord] = []
    if is_remote(settings.model) and ctx.budget.left_usd() == 0:
        return None, "embedding router skipped (the cost cap is spent)", calls
    try:
        index = await _example_index(spec, settings, ctx, stage, calls)
        query = await _embed(settings.model, [text[:MAX_EMBEDDED_CHARS]], ctx, stage, calls)
    except ChorusError as exc:
        return None, f"embedding router failed ({exc.message})", calls
    match = closest_route(index, query.vectors[0])
    shown = " ".join(match.example.split())[:_SHOWN_EXAMPLE_CHARS]
    if match.similarity >= settings.min_similarity:
        reason = (
            f"embedding similarity {match.similarity:.3f} >= {settings.min_similarity:g} "
            f"to route {match.route!r} example {shown!r}"
        )
        return RouteChoice(match.route, "embedding", reason), "", calls
    note = (
        f"no example similar enough (closest: route {match.route!r} at "
        f"{match.similarity:.3f} < {settings.min_similarity:g})"
    )
    return None, note, calls


async def choose_route(
    spec: RouteSpec, request: CompletionRequest, ctx: RunContext, stage: str
) -> tuple[RouteChoice, list[CallRecord]]:
    """Which route this request takes, why, and the embedding and classifier calls made to decide."""
    text = latest_user_text(request)
    by_rule = match_rules(spec.routes, text)
    if by_rule is not None:
        return by_rule, []
    calls: list[CallRecord] = []
    note = ""
    if spec.embedding is not None:
        by_example, note, calls = await match_examples(spec, spec.embedding, text, ctx, stage)
        if by_example is not None:
            return by_example, calls
    if spec.classifier is not None:
        choice, classifier_calls = await _classify(spec, spec.classifier, text, ctx, stage)
        if note:
            choice = RouteChoice(choice.route, choice.method, f"{note}; {choice.reason}")
        return choice, [*calls, *classifier_calls]
    if note:
        reason = f"no rule matched, {note}, and no classifier is configured; default"
    else:
        reason = "no rule matched and no classifier is configured; default"
    return RouteChoice(spec.default, "default", reason), calls


async def run_route(
    spec: RouteSpec, request: CompletionRequest, ctx: RunContext, stage: str
) -> StrategyResult:
    """Choose a route for the request and run its target; the target's result is the answer."""

    if spec.objective != "rules":
        by_objective, notes = await choose_by_objective(spec, request, ctx)
        decisions: list[Decision] = [NoteDecision(stage=stage, message=note) for note in notes]
        decision = RouteDecision(
            stage=stage,
            route="",
            method=spec.objective,
            reason=by_objective.reason,
            candidates=by_objective.candidates,
        )
        if by_objective.model is not None:
            chosen = by_objective.route
            target: Step = chosen.target if chosen else ModelStep(model=by_objective.model)
            name = chosen.name if chosen else by_objective.model
            decision.route = name
            return await _run_target(name, target, [*decisions, decision], [], request, ctx, stage)
        # No candidate is eligible: the rules decide, after the objective's decision that says why.
        decisions.append(decision)
    else:
        decisions = []
    choice, calls = await choose_route(spec, request, ctx, stage)
    route = next(r for r in spec.routes if r.name == choice.route)
    decisions.append(RouteDecision(stage=stage, route=route.name, method=choice.method, reason=choice.reason))
    return await _run_target(route.name, route.target, decisions, calls, request, ctx, stage)


async def _run_target(
    name: str,
    target: Step,
    decisions: list[Decision],
    calls: list[CallRecord],
    request: CompletionRequest,
    ctx: RunContext,
    stage: str,
) -> StrategyResult:
    """Run the chosen target as `{stage}/{name}`; its result is the route's answer."""
    result = StrategyResult(strategy="route", answer=None, ok=False, calls=list(calls), decisions=decisions)
    child = await ctx.run_child(target, request, f"{stage}/{name}")
    result.include(child)
    result.answer = child.answer
    result.ok = child.ok
    result.partial = child.partial
    result.partial_reason = child.partial_reason
    if not child.ok:
        result.error = f"route {name!r}: {child.error}"
    return result
