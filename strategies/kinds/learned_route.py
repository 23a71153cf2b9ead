"""The `learned_route` strategy: a trained router or correctness predictor picks one model.

The file named by `router` is either a KNN router (`chorus-mcp eval train-router`,
`strategies.learned.router`) or a correctness predictor (`chorus-mcp eval train-predictor`,
`strategies.learned.predictor`). Either reads the original user prompt (the first user message)
and estimates every candidate model's chance of answering it correctly. The request goes to the
model with the best chance-minus-cost trade-off (`tradeoff`, routers only) or to the cheapest model
whose chance reaches `min_probability`, with the step's fallbacks behind it. The choice, the estimate
and the runner-up estimates are kept as a `RouteDecision`.

Embedding the prompt is local CPU work for the bundled embedders; a `litellm/...` embedder calls a
provider synchronously (it blocks the event loop for that call), and is not recorded as a model call.
"""

from __future__ import annotations

from chorus_mcp.strategies.core.completion import CompletionRequest
from chorus_mcp.strategies.core.errors import UserInputError
from chorus_mcp.strategies.core.result import RouteDecision, StrategyResult
from chorus_mcp.strategies.core.spec import LearnedRouteSpec, ModelStep
from chorus_mcp.strategies.engine.context import RunContext
from chorus_mcp.strategies.learned.predictor import is_predictor_file, load_predictor
from chorus_mcp.strategies.learned.router import Choice, load_router
from chorus_mcp.strategies.models.replay import original_prompt


def _choose(spec: LearnedRouteSpec, prompt: str) -> tuple[Choice, str]:
    """The choice and how it was made (for the decision's reason)."""
    if is_predictor_file(spec.router):
        if spec.min_probability is None:
            raise UserInputError(
                f"{spec.router!r} is a correctness predictor: it routes by 'min_probability' "
                "(the cheapest model at least this likely to be right), not by 'tradeoff'"
            )
        predictor = load_predictor(spec.router)
        return predictor.route(prompt, spec.min_probability), f"predictor, bar {spec.min_probability:g}"
    router = load_router(spec.router)
    choice = router.choose(prompt, spec.tradeoff, spec.min_probability)
    if spec.min_probability is not None:
        return choice, f"{choice.neighbours} nearest recorded questions, bar {spec.min_probability:g}"
    knob = router.settings.tradeoff if spec.tradeoff is None else spec.tradeoff
    return choice, f"{choice.neighbours} nearest recorded questions, tradeoff {knob:g}"


async def run_learned_route(
    spec: LearnedRouteSpec, request: CompletionRequest, ctx: RunContext, stage: str
) -> StrategyResult:
    try:
        prompt = original_prompt(request)
        # Synchronous on purpose: a bundled embedder takes well under a millisecond for one prompt,
        # and a worker thread would let a virtual clock (evaluation) jump ahead while it works.
        choice, how = _choose(spec, prompt)
    except UserInputError as exc:
        return StrategyResult(strategy="learned_route", answer=None, ok=False, error=exc.message)
    model = spec.models.get(choice.model, choice.model)
    ranked = sorted(choice.estimates.items(), key=lambda item: -item[1])[:3]
    others = ", ".join(f"{name} {p:.2f}" for name, p in ranked if name != choice.model)
    decision = RouteDecision(
        stage=stage,
        route=model,
        method="learned",
        reason=(
            f"estimated p(correct) {choice.probability:.2f} ({how}); most likely others: {others or 'none'}"
        ),
    )
    result = await ctx.run_child(
        ModelStep(model=model, fallbacks=spec.fallbacks), request, f"{stage}/{model}"
    )
    result.strategy = "learned_route"
    result.decisions.insert(0, decision)
    return result
