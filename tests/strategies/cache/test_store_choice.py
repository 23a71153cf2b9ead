"""Which store the `cache` settings open: the sessions' choice unless told otherwise."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from chorus_mcp.config.loader import parse_config
from chorus_mcp.strategies.cache.settings import CacheSettings
from chorus_mcp.strategies.cache.stores import open_cache_store
from chorus_mcp.strategies.cache.stores.memory import MemoryCacheStore
from chorus_mcp.strategies.cache.stores.sqlite import SqliteCacheStore
from chorus_mcp.strategies.core.errors import ConfigError
from chorus_mcp.strategies.sessions.session import SessionSettings


def test_by_default_the_cache_is_a_sqlite_file_beside_the_sessions_in_the_data_directory() -> None:
    store = open_cache_store(CacheSettings(), SessionSettings())
    assert isinstance(store, SqliteCacheStore)
    assert store.path == Path(os.environ["XDG_DATA_HOME"]) / "chorus-mcp" / "cache.sqlite3"


def test_the_cache_follows_sessions_kept_in_memory_unless_told_otherwise(tmp_path: Path) -> None:
    assert isinstance(open_cache_store(CacheSettings(), SessionSettings(store="memory")), MemoryCacheStore)
    own = CacheSettings(store="sqlite", sqlite_path=str(tmp_path / "c.sqlite3"))
    store = open_cache_store(own, SessionSettings(store="memory"))
    assert isinstance(store, SqliteCacheStore) and store.path == tmp_path / "c.sqlite3"


def test_with_sessions_in_redis_the_cache_uses_the_same_redis_under_its_own_prefix() -> None:
    pytest.importorskip("redis")
    from chorus_mcp.strategies.cache.stores.redis import RedisCacheStore

    sessions = SessionSettings(store="redis://127.0.0.1:6379/15", key_prefix="team:")
    store = open_cache_store(CacheSettings(), sessions)
    assert isinstance(store, RedisCacheStore) and store._prefix == "team:cache:"


def test_a_redis_cache_without_a_url_names_the_variable_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHORUS_REDIS_URL", raising=False)
    with pytest.raises(ConfigError, match="CHORUS_REDIS_URL"):
        open_cache_store(CacheSettings(store="redis"), SessionSettings())


def test_a_bad_cache_setting_is_refused_with_its_place_in_the_file() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("cache:\n  semantic: {embedder: bert}\n", source="c.yaml", env={})
    assert "cache.semantic.embedder" in str(caught.value) and "unknown embedder" in str(caught.value)
    with pytest.raises(ValidationError):
        CacheSettings(max_entries=0)
