"""`CacheStore`: the one protocol every cache backend implements (memory, SQLite, Redis), and its values.

One contract suite (tests/strategies/cache/test_store_contract.py) runs against every backend. Every
store enforces the same two caps: an entry older than `ttl_s` (counted from when it was written) is
never returned and is deleted; beyond `max_entries` the least recently used entries are evicted. Hits,
misses and saved cost are counted per model in the store itself, so `chorus-mcp cache stats` — another
process — and every replica sharing a Redis see the same figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal, Protocol

from pydantic import BaseModel, Field

from chorus_mcp.strategies.core.completion import Completion
from chorus_mcp.strategies.core.errors import ChorusError

PICO = Decimal(10) ** 12
"""Saved cost is counted in integer pico-dollars by the stores (exact sums, 1e-12 USD is far below any
price)."""

Outcome = Literal["hit", "miss"]


class CacheStoreError(ChorusError):
    """The cache store failed (a broken file, Redis down). Callers treat the cache as empty: never fatal."""


class CacheEntry(BaseModel):
    """One cached answer."""

    key: str
    bucket: str
    model: str
    """The provider's model id."""
    prompt: str
    """The latest user message of the request (kept for the semantic layer)."""
    completion: Completion
    """As the provider returned it (never a cache hit itself)."""
    created_at: float
    """Epoch seconds when it was written; the TTL counts from here."""
    embedding: list[float] | None = None
    """The prompt's unit-length embedding, when the semantic layer is on."""

    def size(self) -> int:
        """Bytes the entry takes when stored (its JSON)."""
        return len(self.model_dump_json().encode())


@dataclass(frozen=True)
class StoreLimits:
    ttl_s: float | None = None
    max_entries: int = 20_000
    max_bucket: int = 256
    """Most entries with an embedding kept per bucket (the most recently used): bounds a semantic scan."""


class ModelStats(BaseModel):
    entries: int = 0
    bytes: int = 0
    hits: int = 0
    misses: int = 0
    saved_cost_usd: Decimal = Decimal(0)
    """Sum of the known original costs of every hit."""


class CacheStats(BaseModel):
    """What `chorus-mcp cache stats` prints: totals and per provider model id."""

    totals: ModelStats = Field(default_factory=ModelStats)
    models: dict[str, ModelStats] = Field(default_factory=dict)


def stats_of(models: dict[str, ModelStats]) -> CacheStats:
    totals = ModelStats()
    for stats in models.values():
        totals.entries += stats.entries
        totals.bytes += stats.bytes
        totals.hits += stats.hits
        totals.misses += stats.misses
        totals.saved_cost_usd += stats.saved_cost_usd
    return CacheStats(totals=totals, models=dict(sorted(models.items())))


class CacheStore(Protocol):
    async def get(self, key: str) -> CacheEntry | None:
        """The live entry under `key` (written less than `ttl_s` ago), or None."""
        ...

    async def put(self, entry: CacheEntry) -> None:
        """Store `entry` (replacing one with the same key) as the most recently used; evict past the caps."""
        ...

    async def touch(self, key: str) -> None:
        """Mark the entry as just used (it was served), so eviction keeps it longer."""
        ...

    async def candidates(self, bucket: str, limit: int) -> list[CacheEntry]:
        """Live entries of `bucket` that have an embedding, most recently used first, at most `limit`."""
        ...

    async def count(self, model: str, outcome: Outcome, saved_cost_usd: Decimal | None = None) -> None:
        """Count a lookup for `model` (a hit adds what it saved). A store may keep counts in memory until
        its next write (`put`, `touch`), `stats` or `aclose`; other processes see them from then on."""
        ...

    async def stats(self) -> CacheStats: ...

    async def clear(self, model: str | None = None) -> int:
        """Delete every entry (of `model` only, when given) and its counters; return how many entries."""
        ...

    def open_now(self) -> None:
        """At start-up: open a file store now, so a read-only or corrupt file stops the server with its
        path and the fix (`ConfigError`) instead of every call silently going uncached."""
        ...

    async def aclose(self) -> None: ...


def pico(amount: Decimal | None) -> int:
    return 0 if amount is None else int((amount * PICO).to_integral_value())
