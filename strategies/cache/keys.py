"""What identifies a cached answer: a SHA-256 over the canonical JSON of everything that changes it.

The key is made of the provider's model id and endpoint — not the alias, so an alias pointed at another
model never serves the old model's answers — the exact messages, and every parameter that changes the
answer (`max_tokens`, `temperature`, `logprobs`, `seed`, `response_schema`, `reasoning_effort`): a
seeded sample never replays another seed's answer, nor a structured answer a free one, nor a high-effort
answer a low-effort one. `timeout_s` is left out: it bounds
the wait, not the answer. `sample` keeps repeated samples apart (the second, third... copy of the same
member in one ensemble, see `strategies.cache.scope`).

Two more parts keep tenants and credentials apart. `scope` is whose answers these are — the principal
asking, or its team (`cache.scope`, see `scope_for`) — so one client never learns from a hit what another
asked, and never gets another's answer. `credential` is the name of the variable the model's key comes
from: an answer paid for with one key is not served to a model configured with another.

The *bucket* is the key without the latest user message: the semantic layer compares a new prompt only
with cached prompts that share everything else (model, endpoint, parameters, system prompt and history).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any

from chorus_mcp.strategies.core.completion import CompletionRequest
from chorus_mcp.strategies.models.catalog import ModelEntry
from chorus_mcp.strategies.models.providers.translation import DEFAULT_KEY_ENV
from chorus_mcp.strategies.sessions.ownership import current_principal

KEY_VERSION = 3
"""Bumped whenever what goes into a key changes, so old entries are simply never found again."""


@dataclass(frozen=True)
class CacheKey:
    key: str
    """Exact match: hex SHA-256 of the whole request."""
    bucket: str
    """Hex SHA-256 of the request without its latest user message (the semantic layer's neighbourhood)."""
    model: str
    """The provider's model id (what `cache stats` and `cache clear --model` speak of)."""
    prompt: str
    """The latest user message: what the semantic layer embeds."""


def cache_key(
    model: str,
    api_base: str | None,
    request: CompletionRequest,
    *,
    sample: int = 0,
    scope: str = "",
    credential: str | None = None,
) -> CacheKey:
    # An image enters by its SHA-256 (the bytes are in the messages sent, not needed here); a message
    # without images keeps the key it had before images existed.
    messages = [
        [m.role, m.content, *([[i.sha256 for i in m.images]] if m.images else [])] for m in request.messages
    ]
    last_user = max((i for i, m in enumerate(request.messages) if m.role == "user"), default=None)
    prompt = "" if last_user is None else request.messages[last_user].content
    context = [m for i, m in enumerate(messages) if i != last_user]
    common: dict[str, Any] = {
        "v": KEY_VERSION,
        "model": model,
        "api_base": api_base,
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
        "logprobs": request.logprobs,
        "seed": request.seed,
        "response_schema": request.response_schema,
        "sample": sample,
        "scope": scope,
        "credential": credential,
        # Only when set, so the keys of calls without an effort stay what they were.
        **({"reasoning_effort": request.reasoning_effort} if request.reasoning_effort else {}),
    }
    return CacheKey(
        key=_digest({**common, "messages": messages}),
        bucket=_digest(
            {**common, "context": context, "prompt_at": last_user, **_images_of(request, last_user)}
        ),
        model=model,
        prompt=prompt,
    )


def _images_of(request: CompletionRequest, last_user: int | None) -> dict[str, Any]:
    """The latest user message's images, by hash: a semantic hit on the same words about another image
    must not be served (absent when there are none, so keys without images are unchanged)."""
    images = [] if last_user is None else request.messages[last_user].images
    return {"prompt_images": [i.sha256 for i in images]} if images else {}


def credential_of(entry: ModelEntry) -> tuple[bool, str | None]:
    """Whether the model's key is there to be used, and the variable it comes from (None: no key).

    A model with `api_key_env` whose variable is unset cannot call its provider, so it must not answer
    from the cache either. Without `api_key_env` the provider's usual variable is used when set; when it
    is not, the call goes keyless (a local endpoint) and is cached apart from keyed ones.
    """
    if entry.api_key_env:
        return bool(os.environ.get(entry.api_key_env)), entry.api_key_env
    variable = DEFAULT_KEY_ENV.get(entry.model.partition("/")[0])
    return True, variable if variable and os.environ.get(variable) else None


def scope_for(setting: str) -> str:
    """The key's `scope` for the principal the call runs for, under `cache.scope`."""
    if setting == "shared":
        return ""
    principal = current_principal()
    return principal.cache_scope if setting == "team" else principal.id


def _digest(payload: dict[str, Any]) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()
