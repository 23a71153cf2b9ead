"""The `learned_route` strategy: a trained router (`strategies.evaluation.router`) picks one model.

The router reads the original user prompt (the first user message), estimates every candidate
model's chance of answering it correctly from its nearest recorded neighbours, and the request goes
to the model with the best chance-minus-cost trade-off, with the step's fallbacks behind it. The
choice, the estimate and the runner-up estimates are kept as a `RouteDecision`.

Embedding the prompt is local CPU work for the bundled embedders; a `litellm/...` embedder calls a
provider synchronously (it blocks the event loop for that call), and is not recorded as a model call.
"""

from __future__ import annotations

from strategies.completion import CompletionRequest
from strategies.context import RunContext
from strategies.errors import UserInputError
from strategies.evaluation.router import load_router
from strategies.replay import original_prompt
from strategies.result import RouteDecision, StrategyResult
from strategies.runner import run_step
from strategies.spec import LearnedRouteSpec, ModelStep


async def run_learned_route(
    spec: LearnedRouteSpec, request: CompletionRequest, ctx: RunContext, stage: str
) -> StrategyResult:
    try:
        router = load_router(spec.router)
        prompt = original_prompt(request)
        # Synchronous on purpose: a bundled embedder takes well under a millisecond for one prompt,
        # and a worker thread would let a virtual clock (evaluation) jump ahead while it works.
        choice = router.choose(prompt, spec.tradeoff)
    except UserInputError as exc:
        return StrategyResult(strategy="learned_route", answer=None, ok=False, error=exc.message)
    model = spec.models.get(choice.model, choice.model)
    ranked = sorted(choice.estimates.items(), key=lambda item: -item[1])[:3]
    others = ", ".join(f"{name} {p:.2f}" for name, p in ranked if name != choice.model)
    knob = router.settings.tradeoff if spec.tradeoff is None else spec.tradeoff
    decision = RouteDecision(
        stage=stage,
        route=model,
        method="learned",
        reason=(
            f"estimated p(correct) {choice.probability:.2f} from {choice.neighbours} nearest recorded "
            f"questions, tradeoff {knob:g}; most likely others: {others or 'none'}"
        ),
    )
    result = await run_step(
        ModelStep(model=model, fallbacks=spec.fallbacks), request, ctx, f"{stage}/{model}"
    )
    result.strategy = "learned_route"
    result.decisions.insert(0, decision)
    return result
