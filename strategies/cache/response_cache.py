"""`ResponseCache`: which calls may be answered from the cache, and what a hit returns.

- A call qualifies unless the tool call bypasses the cache (`scope.bypassing`) or it is sampled at a
  temperature above 0 while `sampled_calls` is off (a caller asking for a sample wants a fresh one).
  A call without a temperature uses the provider's default, usually above 0 too; it is cached all the
  same, because strategies send one when they want diversity, and most repeats are plain questions.
- An exact hit returns the stored `Completion` marked `cached`, with cost 0 (nothing was paid) and the
  original cost in `saved_cost_usd`; its latency is the lookup's own. A semantic hit also says how
  similar the prompts were.
- Only answers are stored: a call that raised (any `ModelError`, a cancellation) never reaches `save`.
- The cache never fails a call: a store or embedder that fails is logged and the call goes on uncached.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

import anyio

from chorus_mcp.strategies.cache.keys import CacheKey, cache_key, credential_of, scope_for
from chorus_mcp.strategies.cache.scope import bypassed, current_sample
from chorus_mcp.strategies.cache.semantic import SemanticMatcher
from chorus_mcp.strategies.cache.settings import CacheSettings
from chorus_mcp.strategies.cache.store import CacheEntry, CacheStore
from chorus_mcp.strategies.core.completion import Completion, CompletionRequest
from chorus_mcp.strategies.core.errors import ChorusError
from chorus_mcp.strategies.models.catalog import ModelEntry
from chorus_mcp.strategies.sessions.session import SessionSettings

log = logging.getLogger("chorus.cache")

LookupStatus = Literal["hit", "miss", "bypass", "sampled", "no_key", "error"]
"""`bypass`: the tool call said `cache: false`; `sampled`: temperature > 0 with `sampled_calls` off;
`no_key`: the model's key variable is unset (no answer may come without one); `error`: the store
failed, so the call went to the provider."""


@dataclass
class Lookup:
    status: LookupStatus
    key: CacheKey | None = None
    """Set when the answer may be stored (the call qualifies)."""
    hit: Completion | None = None
    embedding: list[float] | None = None


class ResponseCache:
    def __init__(
        self,
        settings: CacheSettings,
        store: CacheStore,
        *,
        matcher: SemanticMatcher | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.store = store
        self._matcher = matcher
        self._clock = clock

    def qualifies(self, request: CompletionRequest) -> LookupStatus | None:
        """Why the request skips the cache, or None when it may be answered from it."""
        if bypassed():
            return "bypass"
        if request.temperature is not None and request.temperature > 0 and not self.settings.sampled_calls:
            return "sampled"
        return None

    async def lookup(self, entry: ModelEntry, request: CompletionRequest) -> Lookup:
        skip = self.qualifies(request)
        if skip is not None:
            return Lookup(skip)
        usable, credential = credential_of(entry)
        if not usable:
            return Lookup("no_key")
        started = anyio.current_time()
        key = cache_key(
            entry.model,
            entry.api_base,
            request,
            sample=current_sample(),
            scope=scope_for(self.settings.scope),
            credential=credential,
        )
        try:
            found = await self.store.get(key.key)
            similarity: float | None = None
            embedding: list[float] | None = None
            if found is None and self._matcher is not None:
                embedding = await self._embed(key.prompt)
                if embedding is not None:
                    limit = self._matcher.settings.max_candidates
                    match = self._matcher.best(
                        key.prompt, embedding, await self.store.candidates(key.bucket, limit)
                    )
                    if match is not None:
                        found, similarity = match.entry, match.similarity
            if found is None:
                await self.store.count(key.model, "miss")
                return Lookup("miss", key=key, embedding=embedding)
            original = found.completion
            # Counted first: a store may hold counts until its next write, which the touch is.
            await self.store.count(key.model, "hit", original.cost_usd)
            await self.store.touch(found.key)
        except ChorusError as exc:
            log.warning("response cache unavailable, calling the provider: %s", exc.message)
            return Lookup("error")
        hit = original.model_copy(
            update={
                "cached": True,
                "cost_usd": Decimal(0),
                "saved_cost_usd": original.cost_usd,
                "similarity": None if similarity is None else round(similarity, 4),
                "latency_s": anyio.current_time() - started,
            }
        )
        return Lookup("hit", key=key, hit=hit)

    async def save(self, lookup: Lookup, completion: Completion) -> None:
        """Store the provider's answer to a call that qualified. An answer cut off at its reservation is not
        kept: where it stops is an accident of that call's budget, not what the model answers."""
        key = lookup.key
        if key is None or completion.cached or completion.truncated:
            return
        entry = CacheEntry(
            key=key.key,
            bucket=key.bucket,
            model=key.model,
            prompt=key.prompt,
            completion=completion,
            created_at=self._clock(),
            embedding=lookup.embedding,
        )
        try:
            await self.store.put(entry)
        except ChorusError as exc:
            log.warning("response cache: the answer could not be stored: %s", exc.message)

    async def _embed(self, prompt: str) -> list[float] | None:
        assert self._matcher is not None
        try:
            return await self._matcher.embed(prompt)
        except ChorusError as exc:  # an embedder not installed, a remote embedding call that failed
            log.warning(
                "semantic cache: the prompt could not be embedded (%s); exact matches only", exc.message
            )
            return None

    async def aclose(self) -> None:
        await self.store.aclose()


def open_response_cache(settings: CacheSettings, sessions: SessionSettings) -> ResponseCache | None:
    """The cache `settings` describe (its store shares the sessions' choice), or None when it is off."""
    if not settings.enabled:
        return None
    from chorus_mcp.strategies.cache.stores import open_cache_store

    matcher = SemanticMatcher(settings.semantic) if settings.semantic.enabled else None
    return ResponseCache(settings, open_cache_store(settings, sessions), matcher=matcher)
