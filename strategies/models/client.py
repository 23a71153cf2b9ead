"""The one protocol every model backend implements, and the optional capabilities a client may have."""

from __future__ import annotations

from decimal import Decimal
from typing import Protocol, runtime_checkable

from chorus_mcp.strategies.core.completion import Completion, CompletionRequest


@runtime_checkable
class ModelClient(Protocol):
    """Answers completion requests for one model.

    `complete` either returns a `Completion` or raises a `strategies.core.errors.ModelError` subclass;
    every other exception is a bug in the client. Clients do not retry: retries belong to the core.
    """

    name: str
    """The name the strategies and results use for this model (its alias in config)."""

    async def complete(self, request: CompletionRequest) -> Completion: ...


@runtime_checkable
class CostEstimator(Protocol):
    """A client that can say, before a call, what it may cost at most (None when the price is unknown)."""

    def estimate_cost_usd(self, request: CompletionRequest) -> Decimal | None: ...


@runtime_checkable
class AnswersFromCache(Protocol):
    """A client behind the response cache (`strategies.cache.client.CachingClient`)."""

    async def answer_from_cache(self, request: CompletionRequest) -> Completion | None: ...


@runtime_checkable
class WarmsUp(Protocol):
    """A client with one-off set-up (an import, a model load) that must not count against a call's
    time-out."""

    async def ready(self) -> None: ...
