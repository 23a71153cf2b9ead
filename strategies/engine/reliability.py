"""What keeps a run going when providers misbehave: retries, circuit breakers, concurrency caps.

One `CallGuard` lives as long as the server, so a breaker opened by one tool call protects the next.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import anyio
from pydantic import BaseModel, ConfigDict, Field

from chorus_mcp.strategies.core.errors import (
    AuthenticationFailed,
    MalformedResponse,
    ModelError,
    ModelTimeout,
    ProviderServerError,
    ProviderUnavailable,
    RateLimited,
)
from chorus_mcp.strategies.models.catalog import ModelEntry


class RetrySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(default=3, ge=1, le=10)
    """Attempts per model, the first included. Only timeouts, 429, 5xx, connection errors and unusable
    responses are retried; 400/401/403 and context-window errors never are."""
    base_delay_s: float = Field(default=0.5, ge=0)
    """Back-off cap before the first retry; it doubles with every further retry, up to `max_delay_s`.
    The delay itself is drawn uniformly below the cap ("full jitter")."""
    max_delay_s: float = Field(default=8.0, ge=0)
    max_retry_after_s: float = Field(default=30.0, ge=0)
    """A provider's Retry-After longer than this is not waited for: the next model in the chain is tried."""


class BreakerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    failure_threshold: int = Field(default=5, ge=1)
    """Failures within `window_s` that open a model's circuit."""
    window_s: float = Field(default=60.0, gt=0)
    cooldown_s: float = Field(default=30.0, gt=0)
    """How long an open circuit skips the model before letting one probe call through."""


class ReliabilitySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    retry: RetrySettings = Field(default_factory=RetrySettings)
    breaker: BreakerSettings = Field(default_factory=BreakerSettings)
    provider_concurrency: int = Field(default=32, ge=1)
    """Calls in flight at once per provider (endpoint), so a burst does not trip the provider's own limit."""


@dataclass
class RetryPolicy:
    settings: RetrySettings = field(default_factory=RetrySettings)
    rng: random.Random = field(default_factory=random.Random)

    def delay_before(self, attempt: int, error: ModelError) -> float | None:
        """Seconds to wait after failed attempt `attempt` (0-based) before the next one, or None when it is
        not worth retrying: the error is not retryable, the attempts are used up, or the provider asked
        (`Retry-After`) for a longer pause than `max_retry_after_s` — then the next model is better."""
        if not error.retryable or attempt + 1 >= self.settings.max_attempts:
            return None
        # Any error that carries the provider's Retry-After (a 429, or a 5xx such as a 503 that sent one).
        retry_after = getattr(error, "retry_after", None)
        if isinstance(retry_after, int | float):
            if retry_after > self.settings.max_retry_after_s:
                return None
            return float(retry_after)
        # Full jitter (uniform in [0, cap]) spreads retries from many callers instead of synchronising them.
        cap = min(self.settings.max_delay_s, self.settings.base_delay_s * 2**attempt)
        return self.rng.uniform(0, cap)


BreakerState = Literal["closed", "open", "half_open"]


@dataclass
class CircuitBreaker:
    """closed → open after `failure_threshold` failures within `window_s` → half-open after `cooldown_s`,
    when one probe call is let through: success closes the circuit, failure opens it again."""

    settings: BreakerSettings
    clock: Callable[[], float] = time.monotonic
    failures: list[float] = field(default_factory=list)
    opened_at: float | None = None
    probing: bool = False

    @property
    def state(self) -> BreakerState:
        if self.opened_at is None:
            return "closed"
        if self.clock() - self.opened_at >= self.settings.cooldown_s:
            return "half_open"
        return "open"

    def allow(self) -> bool:
        """May a call start now? In half-open, only one probe at a time."""
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and not self.probing:
            self.probing = True
            return True
        return False

    @property
    def is_closed(self) -> bool:
        return self.opened_at is None

    def retry_in(self) -> float:
        if self.opened_at is None:
            return 0.0
        return max(0.0, self.settings.cooldown_s - (self.clock() - self.opened_at))

    def success(self) -> None:
        self.failures.clear()
        self.opened_at = None
        self.probing = False

    def abandon(self) -> None:
        """A call ended without telling anything about the model's health (cancelled, refused for budget,
        a bad request): free the half-open probe slot, if it held it, so that the next call may probe."""
        self.probing = False

    def failure(self) -> None:
        now = self.clock()
        if self.probing or self.state == "half_open":
            self.opened_at, self.probing = now, False
            return
        self.failures = [t for t in self.failures if now - t < self.settings.window_s] + [now]
        if len(self.failures) >= self.settings.failure_threshold:
            self.opened_at = now


def counts_against_breaker(error: ModelError) -> bool:
    """Failures that say the model is unhealthy; a bad request or a prompt too long for the model is the
    caller's problem, not the model's. (A time-out forced by the run's deadline is not counted either:
    `strategies.engine.calling` decides that, since only it knows the deadline.)"""
    return isinstance(
        error,
        ModelTimeout
        | ProviderServerError
        | ProviderUnavailable
        | RateLimited
        | AuthenticationFailed
        | MalformedResponse,
    )


@dataclass
class CallGuard:
    """Server-lifetime reliability state: the retry policy, a breaker per model, a limiter per provider."""

    settings: ReliabilitySettings = field(default_factory=ReliabilitySettings)
    clock: Callable[[], float] = time.monotonic
    retry: RetryPolicy = field(init=False)
    _breakers: dict[str, CircuitBreaker] = field(default_factory=dict, init=False)
    _limiters: dict[str, anyio.CapacityLimiter] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.retry = RetryPolicy(self.settings.retry)

    def breaker(self, model: str) -> CircuitBreaker:
        found = self._breakers.get(model)
        if found is None:
            found = self._breakers[model] = CircuitBreaker(self.settings.breaker, self.clock)
        return found

    def limiter(self, entry: ModelEntry) -> anyio.CapacityLimiter:
        key = provider_key(entry)
        found = self._limiters.get(key)
        if found is None:
            found = self._limiters[key] = anyio.CapacityLimiter(self.settings.provider_concurrency)
        return found


def provider_key(entry: ModelEntry) -> str:
    """Calls to one endpoint share a cap: the api_base when set, else litellm's provider prefix."""
    return entry.api_base or entry.model.split("/", 1)[0]
