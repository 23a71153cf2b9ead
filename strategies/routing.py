"""The `route` strategy: pick one route per request, then run that route's target step.

A route is chosen, in order, by:

1. rules on the latest user message: each route's keywords (case-insensitive whole words) and
   regular expressions; routes are tried in configured order and the first with a matching rule wins;
2. when no rule matches and a classifier model is configured, the classifier's choice, accepted only
   if it is one of the configured route names (see `strategies.classifier`);
3. otherwise the default route.

The decision and its reason are recorded as a `RouteDecision`; the classifier's call is recorded
under `{stage}/classifier` and the target runs as `{stage}/{route name}`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from strategies.calling import run_model
from strategies.classifier import classifier_request, parse_choice
from strategies.completion import CompletionRequest
from strategies.context import RunContext
from strategies.errors import ConfigError
from strategies.result import CallRecord, RouteDecision, StrategyResult
from strategies.spec import ModelStep, Route, RouteSpec
from strategies.templates import latest_user_text

_SHOWN_ANSWER_CHARS = 80
"""How much of an unusable classifier answer the decision's reason quotes."""


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
    """`rule`, `classifier` or `default`."""
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


async def choose_route(
    spec: RouteSpec, request: CompletionRequest, ctx: RunContext, stage: str
) -> tuple[RouteChoice, list[CallRecord]]:
    """Which route this request takes, why, and the classifier calls made to decide (if any)."""
    text = latest_user_text(request)
    by_rule = match_rules(spec.routes, text)
    if by_rule is not None:
        return by_rule, []
    if spec.classifier is not None:
        return await _classify(spec, spec.classifier, text, ctx, stage)
    reason = "no rule matched and no classifier is configured; default"
    return RouteChoice(spec.default, "default", reason), []


async def run_route(
    spec: RouteSpec, request: CompletionRequest, ctx: RunContext, stage: str
) -> StrategyResult:
    """Choose a route for the request and run its target; the target's result is the answer."""
    from strategies.runner import run_step  # the runner imports this module

    choice, calls = await choose_route(spec, request, ctx, stage)
    route = next(r for r in spec.routes if r.name == choice.route)
    result = StrategyResult(
        strategy="route",
        answer=None,
        ok=False,
        calls=list(calls),
        decisions=[RouteDecision(stage=stage, route=route.name, method=choice.method, reason=choice.reason)],
    )
    child = await run_step(route.target, request, ctx, f"{stage}/{route.name}")
    result.include(child)
    result.answer = child.answer
    result.ok = child.ok
    result.partial = child.partial
    result.partial_reason = child.partial_reason
    if not child.ok:
        result.error = f"route {route.name!r}: {child.error}"
    return result
