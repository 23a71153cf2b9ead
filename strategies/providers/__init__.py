"""Model clients for real providers. Importing this package does not import litellm; the first call does."""

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
]
