"""The reliability parts on their own: retry policy, circuit breaker (on a fake clock), budget, limiters,
and the ensemble's graceful degradation (fewer members → the configured single best model)."""

from __future__ import annotations

import random
from decimal import Decimal

import anyio
import pytest

from chorus_mcp.strategies.core.completion import CompletionRequest
from chorus_mcp.strategies.core.errors import (
    AuthenticationFailed,
    BadRequest,
    CircuitOpen,
    ContextWindowExceeded,
    MalformedResponse,
    ModelError,
    ModelTimeout,
    ProviderServerError,
    ProviderUnavailable,
    RateLimited,
)
from chorus_mcp.strategies.core.result import FallbackDecision
from chorus_mcp.strategies.core.spec import EnsembleSpec, ModelStep
from chorus_mcp.strategies.engine.context import Budget
from chorus_mcp.strategies.engine.reliability import (
    BreakerSettings,
    CallGuard,
    CircuitBreaker,
    ReliabilitySettings,
    RetryPolicy,
    RetrySettings,
    counts_against_breaker,
)
from chorus_mcp.strategies.engine.testing import context_of
from chorus_mcp.strategies.kinds.ensemble import run_ensemble
from chorus_mcp.strategies.models.catalog import ModelEntry
from chorus_mcp.strategies.models.testing import ScriptedClient

GRACE_S = 1.0
"""How far past its deadline a run may return: generous, since this checks behaviour on a busy machine,
not speed (a run that ignored its deadline would take the members' 30 s)."""
QUESTION = CompletionRequest.of("Which planet is largest?\nA) Mars\nB) Jupiter\nC) Venus")

RETRYABLE: list[ModelError] = [
    ModelTimeout("m", "no answer within 1s"),
    RateLimited("m", "429"),
    ProviderServerError("m", "HTTP 500", 500),
    ProviderServerError("m", "HTTP 503", 503),
    ProviderUnavailable("m", "connection reset"),
    MalformedResponse("m", "no text"),
]
NOT_RETRYABLE: list[ModelError] = [
    BadRequest("m", "HTTP 400"),
    AuthenticationFailed("m", "HTTP 401"),
    AuthenticationFailed("m", "HTTP 403"),
    ContextWindowExceeded("m", "prompt does not fit"),
    CircuitOpen("m", "circuit open"),
]


class Clock:
    """A clock the test moves by hand: no sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fast_guard() -> CallGuard:
    """A guard with tiny back-offs, so retry tests stay fast."""
    retry = RetrySettings(max_attempts=3, base_delay_s=0.001, max_delay_s=0.002, max_retry_after_s=1)
    return CallGuard(ReliabilitySettings(retry=retry))


# -- RetryPolicy --------------------------------------------------------------------------------------


@pytest.mark.parametrize("error", RETRYABLE, ids=lambda e: type(e).__name__)
def test_errors_worth_retrying_are_retried_until_the_attempts_run_out(error: ModelError) -> None:
    policy = RetryPolicy(RetrySettings(max_attempts=3, base_delay_s=0.1, max_delay_s=1))

    assert policy.delay_before(0, error) is not None
    assert policy.delay_before(1, error) is not None
    assert policy.delay_before(2, error) is None  # the third attempt was the last


@pytest.mark.parametrize("error", NOT_RETRYABLE, ids=lambda e: f"{type(e).__name__}-{e}")
def test_caller_errors_and_context_window_errors_are_never_retried(error: ModelError) -> None:
    policy = RetryPolicy(RetrySettings(max_attempts=10))

    assert policy.delay_before(0, error) is None


def test_backoff_is_full_jitter_below_an_exponential_cap_and_reproducible_with_a_seed() -> None:
    settings = RetrySettings(max_attempts=10, base_delay_s=0.5, max_delay_s=3)
    error = ProviderServerError("m", "HTTP 500", 500)
    caps = [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]  # doubling from base_delay_s, then held at max_delay_s

    policy = RetryPolicy(settings, rng=random.Random(42))
    delays = [policy.delay_before(attempt, error) for attempt in range(len(caps))]

    expected = random.Random(42)
    assert delays == [expected.uniform(0, cap) for cap in caps]
    assert all(d is not None and 0 <= d <= cap for d, cap in zip(delays, caps, strict=True))


def test_full_jitter_spreads_over_the_whole_range_not_around_the_cap() -> None:
    policy = RetryPolicy(RetrySettings(max_attempts=10, base_delay_s=1, max_delay_s=1), rng=random.Random(1))
    error = ModelTimeout("m", "slow")

    delays = [policy.delay_before(0, error) or 0.0 for _ in range(2000)]

    assert min(delays) < 0.01 and max(delays) > 0.99 and 0.45 < sum(delays) / len(delays) < 0.55


def test_retry_after_is_honoured_exactly_instead_of_the_backoff() -> None:
    settings = RetrySettings(base_delay_s=5, max_delay_s=8, max_retry_after_s=30)
    policy = RetryPolicy(settings, rng=random.Random(0))

    assert policy.delay_before(0, RateLimited("m", "429", retry_after=2.5)) == 2.5
    assert policy.delay_before(0, RateLimited("m", "429", retry_after=0)) == 0


def test_a_retry_after_longer_than_allowed_is_not_waited_for() -> None:
    policy = RetryPolicy(RetrySettings(max_retry_after_s=10))

    assert policy.delay_before(0, RateLimited("m", "429", retry_after=10.5)) is None


# -- CircuitBreaker -----------------------------------------------------------------------------------


def breaker_on(
    clock: Clock, threshold: int = 3, window_s: float = 60, cooldown_s: float = 30
) -> CircuitBreaker:
    settings = BreakerSettings(failure_threshold=threshold, window_s=window_s, cooldown_s=cooldown_s)
    return CircuitBreaker(settings, clock)


def test_the_circuit_opens_after_k_failures_within_the_window() -> None:
    clock = Clock()
    breaker = breaker_on(clock, threshold=3)

    for _ in range(2):
        breaker.failure()
        clock.now += 1
    assert (breaker.state, breaker.allow()) == ("closed", True)
    breaker.failure()

    assert (breaker.state, breaker.allow()) == ("open", False)
    assert breaker.retry_in() == 30


def test_failures_spread_wider_than_the_window_do_not_open_it() -> None:
    clock = Clock()
    breaker = breaker_on(clock, threshold=3, window_s=10)

    for _ in range(5):
        breaker.failure()
        clock.now += 6  # never three within 10 s

    assert breaker.state == "closed"


def test_a_success_clears_the_failure_count() -> None:
    clock = Clock()
    breaker = breaker_on(clock, threshold=3)

    breaker.failure()
    breaker.failure()
    breaker.success()
    breaker.failure()
    breaker.failure()

    assert breaker.state == "closed"


def test_after_the_cooldown_exactly_one_probe_is_let_through() -> None:
    clock = Clock()
    breaker = breaker_on(clock, threshold=1, cooldown_s=30)
    breaker.failure()
    clock.now += 29.9
    assert not breaker.allow()

    clock.now += 0.1
    assert breaker.state == "half_open"
    assert breaker.allow()  # the probe
    assert not breaker.allow() and not breaker.allow()  # everyone else still skips


def test_a_successful_probe_closes_the_circuit() -> None:
    clock = Clock()
    breaker = breaker_on(clock, threshold=1)
    breaker.failure()
    clock.now += 30
    assert breaker.allow()

    breaker.success()

    assert breaker.state == "closed" and breaker.allow() and breaker.allow()


def test_a_failed_probe_opens_the_circuit_for_another_full_cooldown() -> None:
    clock = Clock()
    breaker = breaker_on(clock, threshold=3, cooldown_s=30)
    for _ in range(3):
        breaker.failure()
    clock.now += 30
    assert breaker.allow()

    breaker.failure()  # one failure is enough in half-open

    assert breaker.state == "open" and breaker.retry_in() == 30
    clock.now += 29
    assert not breaker.allow()


def test_an_abandoned_probe_frees_the_slot_for_the_next_caller() -> None:
    clock = Clock()
    breaker = breaker_on(clock, threshold=1)
    breaker.failure()
    clock.now += 30
    assert breaker.allow()

    breaker.abandon()  # cancelled, or refused by the budget: it said nothing about the model

    assert breaker.state == "half_open" and breaker.allow()


@pytest.mark.parametrize(
    "error", [*RETRYABLE, AuthenticationFailed("m", "401")], ids=lambda e: type(e).__name__
)
def test_failures_that_say_the_model_is_unhealthy_count_against_its_breaker(error: ModelError) -> None:
    assert counts_against_breaker(error)


@pytest.mark.parametrize(
    "error", [BadRequest("m", "400"), ContextWindowExceeded("m", "too long")], ids=lambda e: type(e).__name__
)
def test_the_callers_mistakes_do_not_count_against_the_models_breaker(error: ModelError) -> None:
    assert not counts_against_breaker(error)


def test_the_guard_keeps_one_breaker_per_model_and_one_limiter_per_provider_endpoint() -> None:
    guard = CallGuard(ReliabilitySettings(provider_concurrency=4))
    a = ModelEntry(model="openai/gpt-a")
    b = ModelEntry(model="openai/gpt-b")
    local = ModelEntry(model="openai/llama", api_base="http://127.0.0.1:11434/v1")

    assert guard.breaker("a") is guard.breaker("a") and guard.breaker("a") is not guard.breaker("b")
    assert guard.limiter(a) is guard.limiter(b)  # same provider
    assert guard.limiter(local) is not guard.limiter(a)  # another endpoint
    assert guard.limiter(a).total_tokens == 4


# -- Budget -------------------------------------------------------------------------------------------


def test_a_reservation_counts_against_the_cap_until_it_is_released() -> None:
    budget = Budget(max_cost_usd=Decimal("0.010"))

    assert budget.reserve(Decimal("0.006"))
    assert not budget.reserve(Decimal("0.006"))  # together they would break the cap
    assert budget.left_usd() == Decimal("0.004")
    budget.release(Decimal("0.006"))
    budget.charge(Decimal("0.002"))

    assert budget.reserved_usd == 0 and budget.spent_usd == Decimal("0.002")
    assert budget.reserve(Decimal("0.008")) and not budget.reserve(Decimal("0.000001"))


def test_an_unknown_price_is_allowed_while_the_cap_is_not_spent() -> None:
    budget = Budget(max_cost_usd=Decimal("0.01"))

    assert budget.reserve(None)
    budget.charge(Decimal("0.011"))
    assert not budget.reserve(None)


def test_without_a_cap_everything_is_allowed() -> None:
    budget = Budget()

    assert budget.reserve(Decimal(1000)) and budget.left_usd() is None


# -- Graceful degradation: ensemble → fewer members → the single best model ----------------------------


@pytest.mark.anyio
async def test_with_fewer_members_but_the_quorum_met_the_ensemble_still_answers() -> None:
    clients = [
        ScriptedClient("a", "B"),
        ScriptedClient("b", "B"),
        ScriptedClient("c", BadRequest("c", "HTTP 400")),
        ScriptedClient("best", "C"),
    ]
    spec = EnsembleSpec(members=["a", "b", "c"], quorum=2, degrade_to=ModelStep(model="best"))

    result = await run_ensemble(spec, QUESTION, context_of(*clients, guard=fast_guard()), "ensemble")

    assert result.ok and result.answer == "B"
    assert clients[3].requests == []
    assert not any(isinstance(d, FallbackDecision) for d in result.decisions)


@pytest.mark.anyio
async def test_below_quorum_the_configured_best_model_answers_and_the_trail_says_so() -> None:
    clients = [
        ScriptedClient("a", "B"),
        ScriptedClient("b", AuthenticationFailed("b", "HTTP 401")),
        ScriptedClient("c", BadRequest("c", "HTTP 400")),
        ScriptedClient("best", "Jupiter, B"),
    ]
    spec = EnsembleSpec(members=["a", "b", "c"], quorum=2, degrade_to=ModelStep(model="best"))

    result = await run_ensemble(spec, QUESTION, context_of(*clients, guard=fast_guard()), "ensemble")

    assert result.ok and result.answer == "Jupiter, B" and result.error is None
    degraded = [d for d in result.decisions if isinstance(d, FallbackDecision)]
    assert len(degraded) == 1 and degraded[0].from_model == "ensemble" and degraded[0].to_model == "best"
    assert "quorum not reached: 1 of 3 members answered, 2 needed" in degraded[0].reason
    assert [(c.stage, c.model, c.status) for c in result.calls] == [
        ("ensemble/member-1", "a", "ok"),
        ("ensemble/member-2", "b", "error"),
        ("ensemble/member-3", "c", "error"),
        ("ensemble/degraded", "best", "ok"),
    ]


@pytest.mark.anyio
async def test_once_the_quorum_is_out_of_reach_the_members_still_running_are_cancelled() -> None:
    slow = ScriptedClient("slow", "B", delay_s=5)
    clients = [
        ScriptedClient("a", BadRequest("a", "HTTP 400")),
        ScriptedClient("b", BadRequest("b", "HTTP 400")),
        slow,
        ScriptedClient("best", "B"),
    ]
    spec = EnsembleSpec(members=["a", "b", "slow"], quorum=2, degrade_to="best")
    started = anyio.current_time()

    result = await run_ensemble(spec, QUESTION, context_of(*clients, guard=fast_guard()), "ensemble")

    assert anyio.current_time() - started < 3  # not the slow member's 5 s
    assert result.ok and result.answer == "B" and slow.cancelled == 1
    cut = next(c for c in result.calls if c.model == "slow")
    assert cut.status == "cancelled" and cut.error == "the quorum could no longer be reached"


@pytest.mark.anyio
async def test_when_members_hang_the_best_model_still_has_time_before_the_deadline() -> None:
    hanging = [ScriptedClient(name, "B", delay_s=30) for name in ("a", "b", "c")]
    best = ScriptedClient("best", "B")
    spec = EnsembleSpec(members=["a", "b", "c"], quorum=2, degrade_to="best")
    started = anyio.current_time()

    result = await run_ensemble(spec, QUESTION, context_of(*hanging, best, deadline_s=0.6), "ensemble")

    assert anyio.current_time() - started < 0.6 + GRACE_S
    assert result.ok and result.answer == "B"
    assert result.partial and result.partial_reason == "deadline reached: 0 of 3 members answered"


@pytest.mark.anyio
async def test_when_the_best_model_fails_too_the_error_names_every_member_and_it() -> None:
    clients = [
        ScriptedClient("a", BadRequest("a", "HTTP 400 for a")),
        ScriptedClient("b", AuthenticationFailed("b", "HTTP 401 for b")),
        ScriptedClient("best", AuthenticationFailed("best", "HTTP 403 for best")),
    ]
    spec = EnsembleSpec(members=["a", "b"], quorum=1, degrade_to="best")

    result = await run_ensemble(spec, QUESTION, context_of(*clients, guard=fast_guard()), "ensemble")

    assert not result.ok and result.error is not None
    said = ("member-1 (a)", "HTTP 400 for a", "member-2 (b)", "HTTP 401 for b", "degraded to best", "403")
    assert all(part in result.error for part in said), result.error
