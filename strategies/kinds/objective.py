"""Routing by objective: the candidate model with the lowest latency, the lowest cost or the best quality.

A route spec with `objective` other than `rules` does not read the request's content: it weighs its
candidates (`RouteSpec.objective_candidates`: the listed `candidates`, else every route whose target is a
single model step) and runs the winner, with its fallbacks. For each candidate, in order:

1. **its estimated cost** for this request: the client's pre-call estimate (`CostEstimator`) for the
   prompt as that candidate is sent it and `max_tokens` of output, else the model's `max_output_tokens`,
   the same estimate the cost cap holds for the call (`strategies.engine.reservations`); None when the price
   is unknown;
2. **eligibility**: a candidate whose estimate exceeds what is left of the call's cost cap (or its session's)
   is skipped, and so is one of unknown price once the cap is spent, or one whose circuit is open (its
   breaker would refuse the call anyway); each skip says why;
3. **its figure**: `latency` — a percentile (`latency_percentile`) of the model's recent latencies
   (`strategies.engine.latency`, shared by replicas through Redis) over its latest `latency_window`
   calls of the last `latency_max_age_s`, with its sample count; `cost` — the
   estimate; `quality` — its configured or recorded score (`strategies.kinds.quality`).

Then the winner among the eligible candidates:

- `latency`: while a candidate has fewer than `min_samples` measured calls, it is explored — the least
  measured one, then the first listed — so every candidate gets measured before any figure is trusted;
  afterwards the lowest figure wins. Samples older than `latency_max_age_s` do not count, so a candidate
  that lost (and so stopped being measured) is explored again once its figure is that old;
- `cost`: the lowest estimate; a candidate of unknown price is ranked after every priced one;
- `quality`: the highest score; an unscored candidate is ranked after every scored one.

Ties on the figure go to the lower estimated cost (for `latency` and `quality`), then to the candidate
listed first, and the decision says which rule broke the tie. When no candidate is eligible, the request
is routed by the rules instead, and the decision says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from chorus_mcp.strategies.core.completion import CompletionRequest
from chorus_mcp.strategies.core.result import Candidate
from chorus_mcp.strategies.core.spec import ModelStep, Route, RouteSpec
from chorus_mcp.strategies.engine.calling import prepare
from chorus_mcp.strategies.engine.context import RunContext
from chorus_mcp.strategies.engine.reservations import full_request
from chorus_mcp.strategies.kinds.quality import quality_figures
from chorus_mcp.strategies.models.client import CostEstimator


@dataclass(frozen=True)
class ObjectiveChoice:
    """The candidate an objective chose (None when none is eligible), why, and every candidate's figure."""

    model: str | None
    route: Route | None
    """The route whose target the winner is; None for a listed candidate (it runs as a model step)."""
    reason: str
    candidates: list[Candidate]


@dataclass
class _Weighed:
    candidate: Candidate
    order: int
    route: Route | None
    aged_out: int = 0
    """Latency samples too old to count."""


def _estimate(ctx: RunContext, model: str, route: Route | None, request: CompletionRequest) -> Decimal | None:
    client = ctx.catalog.client(model)
    if not isinstance(client, CostEstimator):
        return None
    if route is not None and isinstance(route.target, ModelStep):
        request = prepare(route.target, request)
    return client.estimate_cost_usd(full_request(ctx, model, request))


def _skip_reason(ctx: RunContext, model: str, estimate: Decimal | None) -> str | None:
    breaker = ctx.guard.breaker(model)
    if breaker.state == "open":
        return f"circuit open (next probe in {breaker.retry_in():.0f}s)"
    left = ctx.budget.left_usd()
    if left is None:
        return None
    if estimate is None:
        return "price unknown and the cost cap is spent" if left == 0 else None
    if estimate > left:
        return f"estimated ${estimate:.6f} exceeds the ${left:.6f} left of the cost cap"
    return None


def _money(value: Decimal | None) -> str:
    return "price unknown" if value is None else f"${value:.6f}"


async def choose_by_objective(
    spec: RouteSpec, request: CompletionRequest, ctx: RunContext
) -> tuple[ObjectiveChoice, list[str]]:
    """The candidate that best meets `spec.objective`, and notes (e.g. shared figures unavailable)."""
    objective = spec.objective
    pairs = spec.objective_candidates()
    models = [model for model, _route in pairs]
    weighed: list[_Weighed] = []
    for order, (model, route) in enumerate(pairs):
        estimate = _estimate(ctx, model, route, request)
        candidate = Candidate(
            model=model,
            route=route.name if route is not None else None,
            cost_usd=estimate,
            skipped=_skip_reason(ctx, model, estimate),
        )
        weighed.append(_Weighed(candidate, order, route))
    notes: list[str] = []
    if objective == "latency":
        figures, note = await ctx.latency.figures(
            models, spec.latency_percentile, spec.latency_max_age_s, spec.latency_window
        )
        notes += [note] if note else []
        for item in weighed:
            figure = figures[item.candidate.model]
            item.candidate.figure, item.candidate.samples = figure.seconds, figure.samples
            item.aged_out = figure.aged_out
    elif objective == "cost":
        for item in weighed:
            cost = item.candidate.cost_usd
            item.candidate.figure = None if cost is None else float(cost)
    else:
        scores = quality_figures(spec, models)
        for item in weighed:
            score = scores[item.candidate.model]
            item.candidate.figure, item.candidate.samples = score.score, score.samples
    eligible = [item for item in weighed if item.candidate.skipped is None]
    skipped = [item for item in weighed if item.candidate.skipped is not None]
    if not eligible:
        why = "; ".join(f"{i.candidate.model}: {i.candidate.skipped}" for i in skipped)
        reason = f"objective {objective}: no candidate is eligible ({why}); routed by the rules instead"
        return ObjectiveChoice(None, None, reason, [i.candidate for i in weighed]), notes
    if objective == "latency":
        explored = _explored(eligible, spec.min_samples)
        if explored is not None:
            ranked = [explored, *(i for i in eligible if i is not explored)]
            winner = explored.candidate
            older = f"; {explored.aged_out} older no longer count" if explored.aged_out else ""
            age = f"{spec.latency_max_age_s:g}s"
            reason = (
                f"exploring {winner.model}: {winner.samples} of {spec.min_samples} measured calls "
                f"in the last {age}{older} (a candidate measured fewer times is tried first, "
                "the least measured, then the first listed)"
            )
            return _choice(explored, reason, ranked, skipped), notes
    ranked = sorted(eligible, key=lambda item: _rank_key(objective, item))
    reason = _why(objective, spec, ranked)
    return _choice(ranked[0], reason, ranked, skipped), notes


def _choice(
    winner: _Weighed, reason: str, ranked: list[_Weighed], skipped: list[_Weighed]
) -> ObjectiveChoice:
    listed = [item.candidate for item in [*ranked, *skipped]]
    return ObjectiveChoice(winner.candidate.model, winner.route, reason, listed)


def _explored(eligible: list[_Weighed], min_samples: int) -> _Weighed | None:
    under = [item for item in eligible if (item.candidate.samples or 0) < min_samples]
    if not under:
        return None
    return min(under, key=lambda item: ((item.candidate.samples or 0), item.order))


def _cost_key(item: _Weighed) -> tuple[int, Decimal]:
    cost = item.candidate.cost_usd
    return (1, Decimal(0)) if cost is None else (0, cost)


def _rank_key(objective: str, item: _Weighed) -> tuple[object, ...]:
    figure = item.candidate.figure
    missing = figure is None
    if objective == "cost":
        return (missing, figure or 0.0, item.order)
    primary = (figure or 0.0) if objective == "latency" else -(figure or 0.0)
    return (missing, primary, _cost_key(item), item.order)


def _shown(objective: str, candidate: Candidate) -> str:
    if candidate.figure is None:
        return {
            "latency": "unmeasured",
            "cost": "price unknown",
            "quality": "no score",
        }[objective]
    if objective == "latency":
        return f"{candidate.figure:.3f}s over {candidate.samples} calls"
    if objective == "cost":
        return f"${candidate.figure:.6f}"
    over = f" on {candidate.samples} graded answers" if candidate.samples is not None else " (configured)"
    return f"{candidate.figure:.3f}{over}"


def _why(objective: str, spec: RouteSpec, ranked: list[_Weighed]) -> str:
    winner = ranked[0].candidate
    what = {
        "latency": f"lowest p{spec.latency_percentile:g} latency",
        "cost": "lowest estimated cost",
        "quality": "best quality score",
    }[objective]
    reason = f"{what}: {winner.model} {_shown(objective, winner)}"
    if len(ranked) > 1:
        others = ", ".join(f"{i.candidate.model} {_shown(objective, i.candidate)}" for i in ranked[1:])
        reason += f" (then {others})"
    if winner.figure is None:
        return f"{reason}; no candidate has a figure, so the first listed is taken"
    if len(ranked) > 1 and ranked[1].candidate.figure == winner.figure:
        tied = ranked[1].candidate.model
        if objective != "cost" and _cost_key(ranked[0]) != _cost_key(ranked[1]):
            return f"{reason}; tied with {tied}: the lower estimated cost ({_money(winner.cost_usd)}) wins"
        return f"{reason}; tied with {tied}: the one listed first wins"
    return reason
