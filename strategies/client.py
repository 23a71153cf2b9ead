"""The one protocol every model backend implements."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from strategies.completion import Completion, CompletionRequest


@runtime_checkable
class ModelClient(Protocol):
    """Answers completion requests for one model.

    `complete` either returns a `Completion` or raises a `strategies.errors.ModelError` subclass;
    every other exception is a bug in the client. Clients do not retry: retries belong to the core.
    """

    name: str
    """The name the strategies and results use for this model (its alias in config)."""

    async def complete(self, request: CompletionRequest) -> Completion: ...
