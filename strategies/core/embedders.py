"""The names of the text embedders, checked without importing any (config validation stays cheap)."""

from __future__ import annotations

LOCAL_EMBEDDERS = ("wordllama", "hashing")
DEFAULT_THRESHOLDS = {"wordllama": 0.2, "hashing": 0.1}
"""Least cosine similarity to a route's closest example for the embedding router to take that route, per
local embedder (measured in bench/results/routing_accuracy.md). Remote embedders have no default."""
LITELLM_PREFIX = "litellm/"
UNKNOWN_EMBEDDER = "unknown embedder {name}: use wordllama, hashing or litellm/<embedding model>"


def check_embedder(name: str) -> str:
    """`name` if it names an embedder (imports nothing, so config validation stays cheap); else ValueError."""
    if name in LOCAL_EMBEDDERS or (name.startswith(LITELLM_PREFIX) and len(name) > len(LITELLM_PREFIX)):
        return name
    raise ValueError(UNKNOWN_EMBEDDER.format(name=repr(name)))


def is_remote(embedder: str) -> bool:
    """Whether the embedder calls a provider (which may cost money) rather than computing locally."""
    return embedder.startswith(LITELLM_PREFIX)
