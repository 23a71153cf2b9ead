"""What the server builds once at start-up and every request reads (the lifespan context)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio

from chorus_mcp.config.schema import AuthConfig, ChorusConfig, ClientQuotas
from chorus_mcp.server.http.principals import Principals
from chorus_mcp.server.http.quotas import Quotas
from chorus_mcp.server.mcp.session_budgets import SessionBudgets
from chorus_mcp.strategies.cache.response_cache import ResponseCache
from chorus_mcp.strategies.engine.context_passing import ContextPassing, offline_tokens
from chorus_mcp.strategies.engine.latency import LatencyStats
from chorus_mcp.strategies.engine.reliability import CallGuard
from chorus_mcp.strategies.models.availability import known_context_window
from chorus_mcp.strategies.models.catalog import ClientFactory, ModelCatalog
from chorus_mcp.strategies.sessions.session import SessionStore
from chorus_mcp.strategies.sessions.stores import open_quota_store, open_session_store
from chorus_mcp.strategies.sessions.stores.breakers import BreakerStore, SharedCallGuard
from chorus_mcp.strategies.sessions.stores.quotas import MemoryQuotaStore

log = logging.getLogger("chorus.state")


@dataclass
class ChorusState:
    config: ChorusConfig
    catalog: ModelCatalog
    sessions: SessionStore
    guard: CallGuard
    """Shared by every tool call, so a breaker opened by one call protects the next."""
    context: ContextPassing = field(default_factory=ContextPassing)
    """How session history is passed to models (`sessions.context`)."""
    breakers: BreakerStore | None = None
    """Where replicas share circuit-breaker state (Redis); None for one process."""
    session_budgets: SessionBudgets = field(default_factory=SessionBudgets)
    """The budgets of sessions with calls in flight, shared by those calls."""
    cache: ResponseCache | None = None
    """The response cache the catalog's clients sit behind (`cache`); None when it is off."""
    latency: LatencyStats = field(default_factory=LatencyStats)
    """Every model's measured latencies, for routing by latency; shared through Redis when sessions are."""
    principals: Principals = field(default_factory=lambda: Principals(AuthConfig()))
    """Who each request is from (`auth`): admins and teams."""
    quotas: Quotas = field(
        default_factory=lambda: Quotas(ClientQuotas(), MemoryQuotaStore(), call_lease_s=3600.0)
    )
    """What each client may hold and spend (`limits.per_client`)."""

    @asynccontextmanager
    async def running(self) -> AsyncIterator[ChorusState]:
        """For the server's lifetime: keep breaker state in step with the other replicas; close the
        session store at the end."""
        try:
            async with anyio.create_task_group() as tg:
                if self.breakers is not None and isinstance(self.guard, SharedCallGuard):
                    interval = self.config.sessions.breaker_sync_s
                    tg.start_soon(self.guard.run_sync, self.breakers, interval, _sync_failed)
                if self.latency.shared is not None:
                    interval = self.config.sessions.breaker_sync_s
                    tg.start_soon(self.latency.run_sync, interval, _latency_sync_failed)
                yield self
                tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await self.sessions.aclose()
                await self.quotas.store.aclose()
                if self.cache is not None:
                    await self.cache.aclose()


def _sync_failed(exc: BaseException) -> None:
    log.warning("circuit-breaker state could not be shared through Redis: %s", exc)


def _latency_sync_failed(exc: BaseException) -> None:
    log.warning("latency figures could not be shared through Redis: %s", exc)


def default_client_factory() -> ClientFactory:
    # Importing litellm takes seconds: it happens in a background thread once the server is up, so the
    # MCP handshake never waits for it and the first tool call usually finds it done.
    from chorus_mcp.strategies.models.availability import provider_client

    return provider_client


def build_state(
    config: ChorusConfig, factory: ClientFactory | None = None, *, cache: ResponseCache | None = None
) -> ChorusState:
    catalog = ModelCatalog(
        config.models,
        factory or default_client_factory(),
        allow_unlisted=config.allow_unlisted_models,
        windows=config.sessions.context.windows,
    )
    settings = config.sessions
    sessions = open_session_store(settings)
    guard: CallGuard = CallGuard(config.reliability)
    breakers: BreakerStore | None = None
    if settings.uses_redis and settings.share_breakers:
        from chorus_mcp.strategies.sessions.stores.redis import RedisBreakerStore, RedisSessionStore

        assert isinstance(sessions, RedisSessionStore)
        guard = SharedCallGuard(config.reliability)
        for alias in config.models:
            guard.breaker(alias)  # known up front, so the first sync already adopts their shared state
        breakers = RedisBreakerStore(sessions.redis, prefix=settings.key_prefix)
    latency = LatencyStats()
    if settings.uses_redis:
        from chorus_mcp.strategies.sessions.stores.redis import RedisSessionStore
        from chorus_mcp.strategies.sessions.stores.redis_latency import RedisLatencyStore

        assert isinstance(sessions, RedisSessionStore)
        latency = LatencyStats(shared=RedisLatencyStore(sessions.redis, prefix=settings.key_prefix))
    context = ContextPassing(
        settings.context, count_tokens=offline_tokens, known_window=known_context_window, blocking=True
    )
    quotas = Quotas(
        config.limits.per_client, open_quota_store(settings), call_lease_s=config.limits.max_deadline_s + 120
    )
    return ChorusState(
        principals=Principals(config.auth),
        quotas=quotas,
        config=config,
        catalog=catalog,
        sessions=sessions,
        guard=guard,
        context=context,
        breakers=breakers,
        cache=cache,
        latency=latency,
    )
