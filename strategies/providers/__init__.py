"""Model clients for real providers, and the one rule that picks how each model is reached.

Importing this package imports neither litellm nor the price map: both load on first use (or in the
server's warm-up thread).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from strategies.catalog import ModelEntry
from strategies.client import ModelClient
from strategies.providers.litellm_client import (
    LiteLLMClient,
    estimate_prompt_tokens,
    litellm_client_factory,
    load_litellm,
    preload_in_background,
)
from strategies.providers.openai_compat import OpenAICompatClient
from strategies.providers.sampling import SamplingClient, is_sampling_model

FAST_PATH_PROVIDERS = frozenset({"openai", "openrouter"})
"""Provider prefixes that speak OpenAI's chat-completions protocol as litellm uses them."""


def uses_fast_path(entry: ModelEntry) -> bool:
    """Whether `entry` is reached by `OpenAICompatClient` rather than litellm.

    The rule: `protocol: openai` → yes; `protocol: litellm` → no; `protocol: auto` (the default) → yes
    for ids starting with `openai/` (OpenAI itself, or any OpenAI-compatible server given as `api_base`:
    vLLM, Ollama, llama.cpp, LM Studio...) or `openrouter/`, no for every other provider.
    """
    if entry.protocol != "auto":
        return entry.protocol == "openai"
    return entry.model.split("/", 1)[0] in FAST_PATH_PROVIDERS and "/" in entry.model


def provider_client(alias: str, entry: ModelEntry) -> ModelClient:
    """The client for a configured model: the one place that chooses how a provider is reached."""
    if is_sampling_model(entry.model):
        # `mcp/sampling`: the calling MCP client's own model (providers/sampling.py; the sampling work).
        return SamplingClient(alias, entry)
    if uses_fast_path(entry):
        return OpenAICompatClient(alias, entry)
    return litellm_client_factory(alias, entry)


def needs_litellm(entries: list[ModelEntry]) -> bool:
    """Whether any of these models is reached through litellm (so the server should warm it up)."""
    return any(not uses_fast_path(entry) for entry in entries)


def warm_up(entries: Iterable[ModelEntry]) -> threading.Thread:
    """Load what the first calls will need, in a daemon thread, so that no call waits for it: the price
    map (~0.1 s), and litellm (3-20 s) only when some configured model is reached through it."""
    with_litellm = needs_litellm(list(entries))

    def load() -> None:
        from strategies.providers.pricing import load_prices

        load_prices()
        if with_litellm:
            load_litellm()

    thread = threading.Thread(target=load, name="chorus-warm-up", daemon=True)
    thread.start()
    return thread


__all__ = [
    "FAST_PATH_PROVIDERS",
    "LiteLLMClient",
    "OpenAICompatClient",
    "estimate_prompt_tokens",
    "litellm_client_factory",
    "load_litellm",
    "needs_litellm",
    "preload_in_background",
    "provider_client",
    "uses_fast_path",
    "warm_up",
]
