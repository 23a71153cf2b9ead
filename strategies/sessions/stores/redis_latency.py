"""`RedisLatencyStore`: the latency windows every replica appends to and reads (see `engine.latency`).

Keys (`{p}` is `sessions.key_prefix`):

    {p}latency:{model}   list   the model's latest samples in seconds, oldest first, at most `window`

One push appends and trims every model's list in one transaction, so a reader never sees a list longer
than the window; a list nobody appends to for `KEEP_S` expires (a model no longer used is forgotten).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import redis.asyncio as aioredis

from chorus_mcp.strategies.engine.latency import WINDOW
from chorus_mcp.strategies.sessions.session import SessionStoreError
from chorus_mcp.strategies.sessions.stores.redis import redis_errors_as


class RedisLatencyStore:
    KEEP_S = 7 * 24 * 3600
    """A model's samples expire this long after its last one."""

    def __init__(self, redis: aioredis.Redis, *, prefix: str = "chorus:", window: int = WINDOW) -> None:
        self._redis = redis
        self._prefix = prefix
        self._window = window

    def _key(self, model: str) -> str:
        return f"{self._prefix}latency:{model}"

    async def add(self, samples: Mapping[str, Sequence[float]]) -> None:
        translated = redis_errors_as(SessionStoreError, "latency figures")
        async with translated, self._redis.pipeline(transaction=True) as pipe:
            for model, values in samples.items():
                if not values:
                    continue
                key = self._key(model)
                pipe.rpush(key, *(repr(float(v)) for v in values))
                pipe.ltrim(key, -self._window, -1)
                pipe.expire(key, self.KEEP_S)
            await pipe.execute()

    async def windows(self, models: Sequence[str]) -> dict[str, list[float]]:
        translated = redis_errors_as(SessionStoreError, "latency figures")
        async with translated, self._redis.pipeline(transaction=False) as pipe:
            for model in models:
                pipe.lrange(self._key(model), 0, -1)
            found = await pipe.execute()
        return {model: [float(v) for v in values] for model, values in zip(models, found, strict=True)}
