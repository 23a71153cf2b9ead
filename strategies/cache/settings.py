"""The `cache:` section of the configuration: where answers live, for how long, which calls qualify."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from chorus_mcp.strategies.core.embedders import check_embedder


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SemanticSettings(_Settings):
    """Reuse an answer given to a prompt that means the same (`cache.semantic`); off by default."""

    enabled: bool = False
    embedder: str = "wordllama"
    """`wordllama` (local, needs the `eval` extra), `hashing` (lexical) or `litellm/<embedding model>`."""
    threshold: float = Field(default=0.95, gt=0, le=1)
    """Least cosine similarity between the new prompt and a cached one for a hit."""
    max_candidates: int = Field(default=256, ge=1, le=10_000)
    """Cached prompts compared per model+parameters bucket (the most recently used): bounds a lookup."""

    @field_validator("embedder")
    @classmethod
    def _known_embedder(cls, value: str) -> str:
        return check_embedder(value)


class CacheSettings(_Settings):
    """The response cache in front of every model call (`cache`)."""

    enabled: bool = True
    store: Literal["sessions", "memory", "sqlite", "redis"] = "sessions"
    """`sessions`: the same kind of store as `sessions.store` (SQLite by default, the same Redis when
    sessions use Redis, memory with memory); or one of `memory`, `sqlite`, `redis` (the URL from
    `sessions.store` or `sessions.redis_url_env`)."""
    sqlite_path: str | None = None
    """The SQLite file; default `<user data dir>/chorus-mcp/cache.sqlite3` (beside the sessions file)."""
    ttl_s: float | None = Field(default=7 * 24 * 3600.0, gt=0)
    """An answer older than this is not served (and is deleted); None keeps answers until evicted."""
    max_entries: int = Field(default=20_000, ge=1)
    """When there are more answers, the least recently used are evicted."""
    scope: Literal["principal", "team", "shared"] = "principal"
    """Who shares cached answers: each client only its own (`principal`, the default: one client never
    gets, or learns from, another's answer); the members of a team (`team`: a client's first team in
    `auth.teams`, alphabetically, else itself); or every client (`shared`, one user or a trusted group)."""
    sampled_calls: bool = False
    """Also cache calls sampled at temperature > 0. Off: such a call asks for a fresh sample every time.
    A call without a temperature (the provider's default) is cached."""
    semantic: SemanticSettings = Field(default_factory=SemanticSettings)
