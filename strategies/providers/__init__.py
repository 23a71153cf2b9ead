"""Model clients for real providers. Importing this package does not import litellm; the first call does."""

from __future__ import annotations

from strategies.catalog import ModelEntry
from strategies.client import ModelClient


def provider_client(alias: str, entry: ModelEntry) -> ModelClient:
    """The client for a configured model: the one place that chooses how a provider is reached."""
    from strategies.providers.litellm_client import litellm_client_factory

    return litellm_client_factory(alias, entry)
