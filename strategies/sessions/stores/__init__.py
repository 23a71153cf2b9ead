"""The session store backends, and choosing one from `sessions` settings.

`memory` (one process, lost on exit), `sqlite` (the default: a file in the user's data directory) and
Redis (for several replicas). Redis support needs the `redis` extra and is imported only when
configured, so the server starts without it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from chorus_mcp.strategies.core.errors import ConfigError
from chorus_mcp.strategies.sessions.session import SessionSettings, SessionStore

if TYPE_CHECKING:
    from chorus_mcp.strategies.sessions.stores.quotas import QuotaStore

APP_NAME = "chorus-mcp"


def default_sqlite_path() -> Path:
    """`<user data dir>/chorus-mcp/sessions.sqlite3` (e.g. `~/.local/share/chorus-mcp/` on Linux)."""
    from platformdirs import user_data_path

    return user_data_path(APP_NAME, appauthor=False) / "sessions.sqlite3"


def redis_url(settings: SessionSettings) -> str:
    """The Redis URL the settings name (directly, or through `redis_url_env`)."""
    if settings.store != "redis":
        return settings.store
    url = os.environ.get(settings.redis_url_env)
    if not url:
        raise ConfigError(
            f"sessions.store is 'redis' but the environment variable {settings.redis_url_env} "
            "(sessions.redis_url_env) is not set"
        )
    return url


def open_session_store(settings: SessionSettings) -> SessionStore:
    """The store `settings` describe. Nothing is connected or opened yet: that happens on first use."""
    limits = settings.limits()
    if settings.store == "memory":
        from chorus_mcp.strategies.sessions.stores.memory import MemorySessionStore

        return MemorySessionStore(limits)
    if settings.store == "sqlite":
        from chorus_mcp.strategies.sessions.stores.sqlite import SqliteSessionStore

        path = Path(settings.sqlite_path).expanduser() if settings.sqlite_path else default_sqlite_path()
        return SqliteSessionStore(path, limits)
    url = redis_url(settings)
    try:
        from chorus_mcp.strategies.sessions.stores.redis import RedisSessionStore, register_url_secret
    except ImportError:
        raise ConfigError(
            "sessions.store is a Redis URL but the 'redis' package is not installed: "
            "install Chorus with the redis extra (pip install 'chorus-mcp[redis]')"
        ) from None
    register_url_secret(url)
    return RedisSessionStore(url, limits, prefix=settings.key_prefix)


def open_quota_store(settings: SessionSettings) -> QuotaStore:
    """Where per-client quotas are counted: Redis when sessions use Redis (every replica counts the
    same), else this process."""
    from chorus_mcp.strategies.sessions.stores.quotas import MemoryQuotaStore

    if not settings.uses_redis:
        return MemoryQuotaStore()
    from chorus_mcp.strategies.sessions.stores.redis_quotas import RedisQuotaStore

    return RedisQuotaStore(redis_url(settings), prefix=f"{settings.key_prefix}quota:")
