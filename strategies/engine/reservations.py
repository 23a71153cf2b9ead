"""What a call may spend: its reservation against the cost cap, and its `max_tokens` to match.

A cap is a bound only if the provider is told it. So under a cap every call of a priced model sends
`max_tokens` equal to the output it reserved: the step's `max_tokens`, else the model's
`max_output_tokens`, or fewer to fit what is left of the cap. A call that cannot fit even
`MIN_OUTPUT_TOKENS` of output (or its own smaller `max_tokens`) is not started, and the error says what
it would cost and what is left.

A provider may ignore `max_tokens`. So the request also says `enforce_max_tokens`: the provider clients
stream it and cut the answer off once its output tokens, counted as they arrive, go past `max_tokens`
(`models.providers.streaming`), closing the connection. What arrived is kept, marked truncated, and
charged; the result says so. A call thus spends at most its reservation (give or take the last chunk
read, and the prompt's estimate, which errs high), so a run — parallel members and a session's concurrent
calls included, which reserve from one budget — ends within its cap plus at most that much per call in
flight. A call that fails or is cancelled mid-answer is charged for what had arrived (`models.metering`).

After the call, what it really cost is charged. A provider whose answer cost more than its reservation
all the same (its usage reports more than it sent, a prompt that cost more than estimated, a client that
cannot stream) is charged in full and the overshoot is noted in the result; the cap is then spent and
refuses the next call. A priced model whose provider reported no usage is charged its whole reservation:
a bound must assume the worst of what it cannot see.

A run may also have a shared allowance (`Budget.allowance`: a client's USD per day, counted in Redis so that
every replica sees the same): each call holds its reservation there too before it starts (`hold_shared`)
and settles what it was charged when it ends (`settle_shared`), so a client's calls at once, on any
replica, cannot together pass it. A call that does not fit is refused the same way as by the cap.

A model whose price is unknown reserves nothing (it is allowed while the cap is not yet spent, and its
request is left as it was); the result notes that the cap could not bound that call, so no result reads
as within the cap when its cost is not known.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import anyio

from chorus_mcp.strategies.core.completion import Completion, CompletionRequest
from chorus_mcp.strategies.core.errors import BudgetExceeded
from chorus_mcp.strategies.engine.context import RunContext
from chorus_mcp.strategies.models.catalog import output_allowance
from chorus_mcp.strategies.models.client import CostEstimator

HOLD_GRACE_S = 60.0
"""How long past the run's deadline a shared hold lives if it is never settled (a crashed replica)."""

MIN_OUTPUT_TOKENS = 64
"""The fewest output tokens a call is started with when the cap cannot pay for all it wants: below this
an answer is mostly cut off (a vote's letter needs 1, a confidence line ~10, a sentence ~30)."""


@dataclass(frozen=True)
class Reservation:
    """What one call holds against the cap while it runs."""

    request: CompletionRequest
    """The request to send: under a cap with a known price, its `max_tokens` is what was reserved."""
    amount_usd: Decimal | None = None
    """Held against the cap (None: no cap, or the price is unknown)."""
    capped: bool = False
    """Whether a cap applied to the call at all."""
    note: str | None = None
    """Said in the result when `max_tokens` was lowered to fit the cap."""


def full_request(ctx: RunContext, model: str, request: CompletionRequest) -> CompletionRequest:
    """`request` asking for all the output it may get: its `max_tokens`, else the model's, plus the
    thinking budget of its reasoning effort (providers count reasoning tokens within `max_tokens`, so a
    reasoning call capped at the answer's length alone could spend it all on thinking)."""
    if request.max_tokens is not None:
        return request
    return request.model_copy(update={"max_tokens": output_allowance(ctx.catalog.entry(model), request)})


def reserve(ctx: RunContext, model: str, request: CompletionRequest) -> Reservation:
    """Reserve the call's worst-case cost against the cap (shrinking `max_tokens` to fit), or refuse to
    start it (`BudgetExceeded`, saying why). Give the amount back with `settle` when the call ends."""
    left = ctx.budget.left_usd()
    if left is None:
        return Reservation(request)
    client = ctx.catalog.client(model)
    full = full_request(ctx, model, request)
    estimator = client if isinstance(client, CostEstimator) else None
    estimate = estimator.estimate_cost_usd(full) if estimator is not None else None
    if estimator is None or estimate is None:
        if not ctx.budget.reserve(None):
            raise BudgetExceeded(f"budget: the call could cost an unknown amount, ${left:.6f} is left")
        return Reservation(request, capped=True)
    if ctx.budget.reserve(estimate):
        return Reservation(_enforced(full), estimate, capped=True)
    wanted = full.max_tokens or 0
    fewest = min(wanted, MIN_OUTPUT_TOKENS)
    fitted = _most_tokens_within(estimator, full, fewest, wanted, left)
    said = f"budget: the call could cost up to ${estimate:.6f}, ${left:.6f} is left"
    if fitted is None:
        floor = estimator.estimate_cost_usd(full.model_copy(update={"max_tokens": fewest}))
        prompt = estimator.estimate_cost_usd(full.model_copy(update={"max_tokens": 0}))
        raise BudgetExceeded(
            f"{said}; even {fewest} output tokens would cost up to ${floor or 0:.6f} "
            f"(the prompt alone up to ${prompt or 0:.6f}), so it was not started"
        )
    tokens, amount = fitted
    if not ctx.budget.reserve(amount):  # nothing awaited since `left`: cannot happen, but never overspend
        raise BudgetExceeded(said)
    note = (
        f"budget: {model} asked for at most {tokens} output tokens (not {wanted}) to fit the ${left:.6f} left"
    )
    fitted_request = full.model_copy(update={"max_tokens": tokens, "enforce_max_tokens": True})
    return Reservation(fitted_request, amount, capped=True, note=note)


def _enforced(request: CompletionRequest) -> CompletionRequest:
    """`request`, to be cut off at its `max_tokens` whatever the provider does (see the module docstring)."""
    return request.model_copy(update={"enforce_max_tokens": True})


def _most_tokens_within(
    estimator: CostEstimator, request: CompletionRequest, fewest: int, most: int, left: Decimal
) -> tuple[int, Decimal] | None:
    """The largest `max_tokens` in [fewest, most] whose estimate fits `left`, with that estimate.

    A search, not arithmetic: the estimate is the client's (a wrapper may cap `max_tokens` inside it), and
    only its being non-decreasing in `max_tokens` is assumed."""

    def cost(tokens: int) -> Decimal | None:
        return estimator.estimate_cost_usd(request.model_copy(update={"max_tokens": tokens}))

    found = cost(fewest)
    if found is None or found > left:
        return None
    best, low, high = (fewest, found), fewest + 1, most - 1  # `most` itself did not fit
    while low <= high:
        middle = (low + high) // 2
        middle_cost = cost(middle)
        if middle_cost is not None and middle_cost <= left:
            best, low = (middle, middle_cost), middle + 1
        else:
            high = middle - 1
    return best


def settle(ctx: RunContext, model: str, reservation: Reservation, completion: Completion) -> str | None:
    """Give back the reservation and charge what the call cost; returns a note for the result when the
    call cost more than it reserved, or when a cap applied but the price is unknown."""
    reserved = reservation.amount_usd
    ctx.budget.release(reserved)
    cost = completion.cost_usd
    if cost is None and reserved is not None and not completion.cached:
        # Priced, but the provider reported no usage: assume the worst the reservation allowed.
        ctx.budget.charge(reserved)
        return f"budget: {model} reported no usage; its reservation of ${reserved:.6f} is counted as spent"
    ctx.budget.charge(cost)
    if cost is None and reservation.capped and not completion.cached:
        return f"budget: {model}'s price is unknown, so the cost cap could not bound this call"
    if completion.truncated is not None:
        return (
            f"budget: {model}'s answer was {completion.truncated}; charged ${cost or 0:.6f} for what arrived"
        )
    if cost is not None and reserved is not None and cost > reserved:
        asked, got = reservation.request.max_tokens, completion.completion_tokens
        excess = f"${cost - reserved:.6f} over its reservation of ${reserved:.6f}"
        if got is not None and asked is not None and got > asked:
            return (
                f"budget: {model} sent {got} output tokens, {asked} asked for: charged ${cost:.6f}, {excess}"
            )
        return f"budget: {model} cost ${cost:.6f}, {excess}: charged in full"
    return None


def charged_usd(reservation: Reservation, completion: Completion) -> Decimal:
    """What `settle` charges for `completion`: its cost, or the whole reservation when a priced call's
    provider reported no usage; 0 when the price is unknown or the answer came from the cache."""
    if completion.cost_usd is not None:
        return completion.cost_usd
    if reservation.amount_usd is not None and not completion.cached:
        return reservation.amount_usd
    return Decimal(0)


async def hold_shared(ctx: RunContext, model: str, reservation: Reservation) -> str | None:
    """Hold the call's reservation against the run's shared allowance (None when there is none, or the
    call is not capped). When it does not fit, the reservation is given back and `BudgetExceeded` says
    why, so the call is not started."""
    allowance = ctx.budget.allowance
    if allowance is None or not reservation.capped:
        return None
    amount = reservation.amount_usd or Decimal(0)
    try:
        return await allowance.hold(model, amount, ctx.time_left() + HOLD_GRACE_S)
    except BudgetExceeded:
        ctx.budget.release(reservation.amount_usd)
        raise


async def settle_shared(ctx: RunContext, hold: str | None, charged: Decimal | None) -> None:
    """Settle a shared hold with what the call was charged (shielded: a cancelled call settles too)."""
    allowance = ctx.budget.allowance
    if hold is None or allowance is None:
        return
    with anyio.CancelScope(shield=True):
        await allowance.settle(hold, charged or Decimal(0))
