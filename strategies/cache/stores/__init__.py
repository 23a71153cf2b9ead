"""The cache store backends, and choosing one from the `cache` and `sessions` settings.

The cache follows the sessions' choice unless told otherwise (`cache.store: sessions`): a SQLite file in
the user's data directory by default (its own file, beside the sessions'), the same Redis when sessions
use Redis (so replicas share answers), memory with memory. Redis support is imported only when used.
"""

from __future__ import annotations

from pathlib import Path

from chorus_mcp.strategies.cache.settings import CacheSettings
from chorus_mcp.strategies.cache.store import CacheStore, StoreLimits
from chorus_mcp.strategies.core.errors import ConfigError
from chorus_mcp.strategies.sessions.session import SessionSettings


def default_sqlite_path() -> Path:
    """`<user data dir>/chorus-mcp/cache.sqlite3` (e.g. `~/.local/share/chorus-mcp/` on Linux)."""
    from chorus_mcp.strategies.sessions.stores import default_sqlite_path as sessions_path

    return sessions_path().with_name("cache.sqlite3")


def store_kind(settings: CacheSettings, sessions: SessionSettings) -> str:
    """`memory`, `sqlite` or `redis`: the backend the settings choose."""
    if settings.store != "sessions":
        return settings.store
    return "redis" if sessions.uses_redis else sessions.store


def limits_of(settings: CacheSettings) -> StoreLimits:
    return StoreLimits(
        ttl_s=settings.ttl_s, max_entries=settings.max_entries, max_bucket=settings.semantic.max_candidates
    )


def open_cache_store(settings: CacheSettings, sessions: SessionSettings) -> CacheStore:
    """The store the settings describe. Nothing is connected or opened yet: that happens on first use."""
    kind = store_kind(settings, sessions)
    limits = limits_of(settings)
    if kind == "memory":
        from chorus_mcp.strategies.cache.stores.memory import MemoryCacheStore

        return MemoryCacheStore(limits)
    if kind == "sqlite":
        from chorus_mcp.strategies.cache.stores.sqlite import SqliteCacheStore

        path = Path(settings.sqlite_path).expanduser() if settings.sqlite_path else default_sqlite_path()
        return SqliteCacheStore(path, limits)
    from chorus_mcp.strategies.sessions.stores import redis_url

    url = redis_url(sessions if sessions.uses_redis else sessions.model_copy(update={"store": "redis"}))
    try:
        from chorus_mcp.strategies.cache.stores.redis import RedisCacheStore
        from chorus_mcp.strategies.sessions.stores.redis import register_url_secret
    except ImportError:
        raise ConfigError(
            "cache.store is Redis but the 'redis' package is not installed: "
            "install Chorus with the redis extra (pip install 'chorus-mcp[redis]')"
        ) from None
    register_url_secret(url)
    return RedisCacheStore(url, limits, prefix=f"{sessions.key_prefix}cache:")
