"""The session-store backends the contract suite runs on, and how tests reach a real Redis.

Redis tests need `CHORUS_TEST_REDIS_URL` (CI sets it to a local redis-server, database 15); without
it, or when nothing answers there, they are skipped with the reason. Every test uses its own key
prefix and removes its keys afterwards, so runs never see each other's data.
"""

from __future__ import annotations

import functools
import os
import uuid

import pytest

REDIS_ENV = "CHORUS_TEST_REDIS_URL"


@functools.cache
def _redis_problem() -> str | None:
    url = os.environ.get(REDIS_ENV)
    if not url:
        return f"{REDIS_ENV} is not set (CI points it at a local redis-server)"
    try:
        import redis
    except ImportError:
        return "the redis package is not installed (it is in the dev dependency group)"
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        client.ping()
        client.close()
    except redis.RedisError as exc:
        return f"no Redis answers at {REDIS_ENV} ({type(exc).__name__})"
    return None


def redis_url_or_skip() -> str:
    problem = _redis_problem()
    if problem is not None:
        pytest.skip(f"Redis tests skipped: {problem}")
    return os.environ[REDIS_ENV]


def fresh_prefix() -> str:
    return f"chorus-test:{uuid.uuid4().hex[:12]}:"


def delete_prefix(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
