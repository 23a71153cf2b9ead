"""In-memory test doubles for `ModelClient`: scripted answers, latency and failures, no network.

Shipped with the package, as pydantic-ai ships `FunctionModel` and httpx `MockTransport`, so code that
builds on Chorus can test its strategies without a provider."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import anyio

from chorus_mcp.strategies.core.completion import Completion, CompletionRequest, TokenLogprob
from chorus_mcp.strategies.core.errors import ModelError
from chorus_mcp.strategies.models.catalog import ModelCatalog, ModelEntry

Reply = str | ModelError | Callable[[CompletionRequest], "str | ModelError"]


@dataclass
class ScriptedClient:
    """Answers from a script: a fixed reply, a list of replies taken in turn, or a function of the request.

    A `ModelError` in the script is raised instead of answering. `delay_s` is slept before answering,
    so tests can order completions and exercise cancellation.
    """

    name: str
    replies: Reply | Sequence[Reply]
    delay_s: float = 0.0
    cost_usd: Decimal | None = Decimal("0.001")
    logprobs: list[float] | None = None
    requests: list[CompletionRequest] = field(default_factory=lambda: [])
    cancelled: int = 0

    async def complete(self, request: CompletionRequest) -> Completion:
        self.requests.append(request)
        reply = self._next()
        try:
            if self.delay_s:
                await anyio.sleep(self.delay_s)
        except anyio.get_cancelled_exc_class():
            self.cancelled += 1
            raise
        if callable(reply) and not isinstance(reply, ModelError):
            reply = reply(request)
        if isinstance(reply, ModelError):
            raise reply
        return Completion(
            text=reply,
            model=self.name,
            prompt_tokens=10,
            completion_tokens=max(1, len(reply.split())),
            cost_usd=self.cost_usd,
            latency_s=self.delay_s,
            finish_reason="stop",
            logprobs=[TokenLogprob(token="t", logprob=lp) for lp in self.logprobs] if self.logprobs else None,
        )

    def _next(self) -> Reply:
        if isinstance(self.replies, (str, ModelError)) or callable(self.replies):
            return self.replies
        index = min(len(self.requests) - 1, len(self.replies) - 1)
        return self.replies[index]


def catalog_of(*clients: ScriptedClient, fallbacks: dict[str, list[str]] | None = None) -> ModelCatalog:
    """A catalog whose aliases are the clients' names and whose factory hands out those clients."""
    by_name = {client.name: client for client in clients}
    entries = {
        name: ModelEntry(model=f"fake/{name}", fallbacks=(fallbacks or {}).get(name, [])) for name in by_name
    }
    return ModelCatalog(entries, lambda name, _entry: by_name[name], allow_unlisted=False)
