"""What the server builds once at start-up and every request reads (the lifespan context)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from config.schema import ChorusConfig
from strategies.catalog import ClientFactory, ModelCatalog
from strategies.reliability import CallGuard
from strategies.session_stores.memory import MemorySessionStore
from strategies.sessions import SessionStore


@dataclass
class ChorusState:
    config: ChorusConfig
    catalog: ModelCatalog
    sessions: SessionStore
    guard: CallGuard
    """Shared by every tool call, so a breaker opened by one call protects the next."""


def default_client_factory() -> ClientFactory:
    # Importing litellm takes seconds: it happens in a background thread once the server is up, so the
    # MCP handshake never waits for it and the first tool call usually finds it done.
    from strategies.providers import provider_client

    return provider_client


def start_provider_warm_up() -> None:
    from strategies.providers.litellm_client import load_litellm

    threading.Thread(target=load_litellm, name="chorus-warm-up", daemon=True).start()


def build_state(config: ChorusConfig, factory: ClientFactory | None = None) -> ChorusState:
    catalog = ModelCatalog(
        config.models,
        factory or default_client_factory(),
        allow_unlisted=config.allow_unlisted_models,
    )
    return ChorusState(
        config=config, catalog=catalog, sessions=MemorySessionStore(), guard=CallGuard(config.reliability)
    )
