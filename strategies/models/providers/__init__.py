"""Model clients for real providers, and the one rule that picks how each model is reached.

Importing this package imports neither litellm nor the price map: both load on first use (or in the
server's warm-up thread).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from chorus_mcp.strategies.models.catalog import ModelEntry
from chorus_mcp.strategies.models.client import ModelClient
from chorus_mcp.strategies.models.providers.litellm_client import (
    LiteLLMClient,
    estimate_prompt_tokens,
    litellm_client_factory,
    load_litellm,
    preload_in_background,
)
from chorus_mcp.strategies.models.providers.openai_compat import OpenAICompatClient
from chorus_mcp.strategies.models.sampling import SamplingClient, is_sampling_model

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


def is_local_model(entry: ModelEntry) -> bool:
    """Whether `entry` is run in-process by llama.cpp (`local/...`)."""
    return entry.model.startswith("local/")


def uses_litellm(entry: ModelEntry) -> bool:
    """Whether `entry` is reached through litellm: mirrors `provider_client`, which must agree with it."""
    return not (is_sampling_model(entry.model) or is_local_model(entry) or uses_fast_path(entry))


def provider_client(alias: str, entry: ModelEntry) -> ModelClient:
    """The client for a configured model: the one place that chooses how a provider is reached."""
    if is_sampling_model(entry.model):
        # `mcp/sampling`: the calling MCP client's own model (models/sampling.py; the sampling work).
        return SamplingClient(alias, entry)
    if is_local_model(entry):
        # A model run in-process by llama.cpp (providers/local.py); its packages are the `local` extra.
        from chorus_mcp.strategies.models.providers.local import local_client

        return local_client(alias, entry)
    if uses_fast_path(entry):
        return OpenAICompatClient(alias, entry)
    return litellm_client_factory(alias, entry)


def needs_litellm(entries: list[ModelEntry]) -> bool:
    """Whether any of these models is reached through litellm (so the server should warm it up).

    The client's own model (`mcp/sampling`) and the embedded one (`local/`) never are."""
    return any(uses_litellm(entry) for entry in entries)


def warm_up(
    entries: Iterable[ModelEntry], after: threading.Event | None = None, wait_at_most_s: float = 10.0
) -> threading.Thread:
    """Load what the first calls will need, in a daemon thread, so that no call waits for it: httpcore,
    the price map (~0.2 s), the fast path's TLS context (when a model takes it), and litellm (3-20 s)
    only when some configured model is reached through it.

    With `after`, the thread waits for that event (the server sets it when the client's handshake is
    done: `server.mcp.warmup`), `wait_at_most_s` at most, so the import does not slow the handshake.
    """
    listed = list(entries)
    with_litellm = needs_litellm(listed)

    def load() -> None:
        if after is not None:
            after.wait(wait_at_most_s)
        import httpcore  # noqa: F401 - httpx imports it on its first client (~0.1 s, on the event loop)

        if any(uses_fast_path(entry) for entry in listed):
            from chorus_mcp.strategies.models.providers.http_pool import tls_context

            tls_context()  # ~20-200 ms of CPU the first https call would otherwise spend on the loop

        from chorus_mcp.strategies.models.providers.pricing import load_prices

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
    "is_local_model",
    "litellm_client_factory",
    "load_litellm",
    "needs_litellm",
    "preload_in_background",
    "provider_client",
    "uses_fast_path",
    "uses_litellm",
    "warm_up",
]
