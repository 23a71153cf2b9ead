"""`CachingClient`: any `ModelClient`, answering from the response cache when it can.

Installed by wrapping the catalog's factory (`with_cache`) *inside* the instrumentation
(`instrument(with_cache(factory, cache))`), so a hit is still one LLM span and one usage record: the
span says `chorus.cache=hit|miss|bypass|sampled|error` (and the similarity of a semantic hit), and the
usage ledger counts hits, misses and saved cost instead of a call.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Protocol

from opentelemetry import trace

from chorus_mcp.strategies.cache.response_cache import LookupStatus, ResponseCache
from chorus_mcp.strategies.core.completion import Completion, CompletionRequest
from chorus_mcp.strategies.models.catalog import ClientFactory, ModelEntry
from chorus_mcp.strategies.models.client import ModelClient
from chorus_mcp.strategies.models.sampling import is_sampling_model
from chorus_mcp.strategies.models.wrappers import ClientWrapper, wrap


class CacheObserver(Protocol):
    """Told about every lookup that reached the store (hits and misses), e.g. the usage ledger."""

    def record_cache(self, alias: str, model_id: str, hit: bool, saved_cost_usd: Decimal | None) -> None: ...


class CachingClient(ClientWrapper):
    def __init__(
        self,
        inner: ModelClient,
        entry: ModelEntry,
        cache: ResponseCache,
        observer: CacheObserver | None = None,
    ) -> None:
        super().__init__(inner)
        self._entry = entry
        self._cache = cache
        self._observer = observer

    async def complete(self, request: CompletionRequest) -> Completion:
        lookup = await self._cache.lookup(self._entry, request)
        _annotate(lookup.status, lookup.hit)
        if lookup.status in ("hit", "miss") and self._observer is not None:
            saved = lookup.hit.saved_cost_usd if lookup.hit is not None else None
            self._observer.record_cache(self.name, self._entry.model, lookup.hit is not None, saved)
        if lookup.hit is not None:
            return lookup.hit
        completion = await self.inner.complete(request)  # an error or a cancellation is never stored
        await self._cache.save(lookup, completion)
        return completion

    async def answer_from_cache(self, request: CompletionRequest) -> Completion | None:
        """The cached answer to `request`, or None; never calls the provider. For a call the budget cannot
        pay for: a hit costs nothing, so it may still be served."""
        lookup = await self._cache.lookup(self._entry, request)
        if lookup.hit is not None and self._observer is not None:
            self._observer.record_cache(self.name, self._entry.model, True, lookup.hit.saved_cost_usd)
        return lookup.hit


def _annotate(status: LookupStatus, hit: Completion | None) -> None:
    """Say on the current (LLM) span what the cache did."""
    span = trace.get_current_span()
    if not span.is_recording():
        return
    span.set_attribute("chorus.cache", status)
    if hit is not None:
        if hit.similarity is not None:
            span.set_attribute("chorus.cache.similarity", hit.similarity)
        if hit.saved_cost_usd is not None:
            span.set_attribute("chorus.cache.saved_cost_usd", float(hit.saved_cost_usd))


def caching(
    client: ModelClient, entry: ModelEntry, cache: ResponseCache, observer: CacheObserver | None = None
) -> CachingClient:
    """`client` wrapped, keeping the optional capabilities the core checks for (warm-up, cost estimate)."""
    return wrap(CachingClient, client, entry, cache, observer)


def with_cache(
    factory: ClientFactory, cache: ResponseCache | None, observer: CacheObserver | None = None
) -> ClientFactory:
    """A factory whose clients are `factory`'s behind `cache` (`factory` itself when there is no cache)."""
    if cache is None:
        return factory

    def build(alias: str, entry: ModelEntry) -> ModelClient:
        client = factory(alias, entry)
        if is_sampling_model(entry.model):
            # The calling client's own model (MCP sampling): which model that is, is the client's choice
            # and differs from one client to the next, so no key can say whose answer it was.
            return client
        return caching(client, entry, cache, observer)

    return build
