"""Model clients for real providers. Importing this package does not import litellm; the first call does."""

from __future__ import annotations

from strategies.catalog import ModelEntry
from strategies.client import ModelClient
from strategies.providers.litellm_client import (
    LiteLLMClient,
    estimate_prompt_tokens,
    litellm_client_factory,
    load_litellm,
    preload_in_background,
)

__all__ = [
    "LiteLLMClient",
    "estimate_prompt_tokens",
    "litellm_client_factory",
    "load_litellm",
    "preload_in_background",
    "provider_client",
]


def provider_client(alias: str, entry: ModelEntry) -> ModelClient:
    """The client for a configured model: the one place that chooses how a provider is reached."""
    return litellm_client_factory(alias, entry)
