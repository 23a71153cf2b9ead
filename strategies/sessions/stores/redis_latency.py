"""`RedisLatencyStore`: the latency windows every replica appends to and reads (see `engine.latency`).

Keys (`{p}` is `sessions.key_prefix`):

    {p}latency:{model}   list   the model's latest samples, oldest first, at most `window`, each
                                "{at}:{seconds}" (Unix time it was taken, latency in seconds)

An entry without its time (written before samples had one) reads as taken at time 0: too old for any
reader that ages samples, so it can never pass for a recent figure.

One push appends and trims every model's list in one transaction, so a reader never sees a list longer
than the window; a list nobody appends to for `KEEP_S` expires (a model no longer used is forgotten).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import redis.asyncio as aioredis

from chorus_mcp.strategies.engine.latency import WINDOW, Sample
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

    async def add(self, samples: Mapping[str, Sequence[Sample]]) -> None:
        translated = redis_errors_as(SessionStoreError, "latency figures")
        async with translated, self._redis.pipeline(transaction=True) as pipe:
            for model, values in samples.items():
                if not values:
                    continue
                key = self._key(model)
                pipe.rpush(key, *(f"{float(s.at)!r}:{float(s.seconds)!r}" for s in values))
                pipe.ltrim(key, -self._window, -1)
                pipe.expire(key, self.KEEP_S)
            await pipe.execute()

    async def windows(self, models: Sequence[str]) -> dict[str, list[Sample]]:
        translated = redis_errors_as(SessionStoreError, "latency figures")
        async with translated, self._redis.pipeline(transaction=False) as pipe:
            for model in models:
                pipe.lrange(self._key(model), 0, -1)
            found = await pipe.execute()
        return {model: [_sample(v) for v in values] for model, values in zip(models, found, strict=True)}


def _sample(entry: bytes | str) -> Sample:
    text = entry.decode() if isinstance(entry, bytes) else entry
    at, _, seconds = text.rpartition(":")
    return Sample(float(at) if at else 0.0, float(seconds))
