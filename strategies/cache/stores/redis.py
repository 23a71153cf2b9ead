"""`RedisCacheStore`: the cache in Redis, shared by every replica (needs the `redis` extra).

Keys (`{p}` is the sessions' `key_prefix` followed by `cache:`):

    {p}e:{key}        string  the entry's JSON, expiring natively (PX) when its TTL runs out
    {p}meta           hash    key → "model<TAB>bucket<TAB>bytes<TAB>created_at"
    {p}lru            zset    key scored by its last use (a counter, {p}seq), for eviction
    {p}age            zset    key scored by created_at, to drop expired keys from the indexes
    {p}b:{bucket}     zset    keys of a bucket that have an embedding, scored by last use
    {p}stats          hash    "model<TAB>hits|misses|saved_pico" → counter

Every write is one Lua script, so replicas never leave the indexes half-updated. Entries expire by
Redis's own TTL; the store also checks `created_at` against its own clock, so expiry means the same here
as in the other stores. The scripts compute keys from the prefix, so this expects one Redis, not a
Redis Cluster (as the session store does).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from decimal import Decimal

import redis.asyncio as aioredis

from chorus_mcp.strategies.cache.store import (
    PICO,
    CacheEntry,
    CacheStats,
    CacheStoreError,
    ModelStats,
    Outcome,
    StoreLimits,
    pico,
    stats_of,
)
from chorus_mcp.strategies.sessions.stores.redis import redis_errors_as

_DROP = """
local function drop(p, key)
    local meta = redis.call('HGET', p .. 'meta', key)
    if meta then
        local bucket = string.match(meta, '^[^\\t]*\\t([^\\t]*)')
        redis.call('ZREM', p .. 'b:' .. bucket, key)
    end
    redis.call('DEL', p .. 'e:' .. key)
    redis.call('HDEL', p .. 'meta', key)
    redis.call('ZREM', p .. 'lru', key)
    redis.call('ZREM', p .. 'age', key)
end
"""

_PUT = (
    _DROP
    + """
local p, key, bucket, meta, data = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local created, ttl_ms, cutoff = tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8]
local max_entries, max_bucket, has_embedding = tonumber(ARGV[9]), tonumber(ARGV[10]), ARGV[11]
for _, old in ipairs(redis.call('ZRANGEBYSCORE', p .. 'age', '-inf', cutoff)) do drop(p, old) end
local seq = redis.call('INCR', p .. 'seq')
if ttl_ms > 0 then
    redis.call('SET', p .. 'e:' .. key, data, 'PX', ttl_ms)
else
    redis.call('SET', p .. 'e:' .. key, data)
end
redis.call('HSET', p .. 'meta', key, meta)
redis.call('ZADD', p .. 'lru', seq, key)
redis.call('ZADD', p .. 'age', created, key)
if has_embedding == '1' then
    redis.call('ZADD', p .. 'b:' .. bucket, seq, key)
    local extra = redis.call('ZCARD', p .. 'b:' .. bucket) - max_bucket
    if extra > 0 then
        for _, old in ipairs(redis.call('ZRANGE', p .. 'b:' .. bucket, 0, extra - 1)) do drop(p, old) end
    end
end
local excess = redis.call('ZCARD', p .. 'lru') - max_entries
if excess > 0 then
    for _, old in ipairs(redis.call('ZRANGE', p .. 'lru', 0, excess - 1)) do drop(p, old) end
end
return 1
"""
)

_TOUCH = """
local p, key = ARGV[1], ARGV[2]
if not redis.call('ZSCORE', p .. 'lru', key) then return 0 end
local seq = redis.call('INCR', p .. 'seq')
redis.call('ZADD', p .. 'lru', seq, key)
local meta = redis.call('HGET', p .. 'meta', key)
if meta then
    local bucket = string.match(meta, '^[^\\t]*\\t([^\\t]*)')
    redis.call('ZADD', p .. 'b:' .. bucket, 'XX', seq, key)
end
return 1
"""

_CLEAR = (
    _DROP
    + """
local p, model = ARGV[1], ARGV[2]
local dropped = 0
local metas = redis.call('HGETALL', p .. 'meta')
for i = 1, #metas, 2 do
    if model == '' or string.match(metas[i + 1], '^([^\\t]*)') == model then
        drop(p, metas[i])
        dropped = dropped + 1
    end
end
if model == '' then
    redis.call('DEL', p .. 'stats', p .. 'seq')
else
    redis.call('HDEL', p .. 'stats', model .. '\\thits', model .. '\\tmisses', model .. '\\tsaved_pico')
end
return dropped
"""
)


class RedisCacheStore:
    def __init__(
        self,
        url: str,
        limits: StoreLimits | None = None,
        *,
        prefix: str = "chorus:cache:",
        clock: Callable[[], float] = time.time,
        client: aioredis.Redis | None = None,
    ) -> None:
        self._redis: aioredis.Redis = client or aioredis.Redis.from_url(url, decode_responses=True)
        self._limits = limits or StoreLimits()
        self._prefix = prefix
        self._clock = clock
        self._put = self._redis.register_script(_PUT)
        self._touch = self._redis.register_script(_TOUCH)
        self._clear = self._redis.register_script(_CLEAR)

    def _cutoff(self) -> float:
        return float("-inf") if self._limits.ttl_s is None else self._clock() - self._limits.ttl_s

    def _live(self, entry: CacheEntry) -> bool:
        return entry.created_at > self._cutoff()

    async def get(self, key: str) -> CacheEntry | None:
        async with _translated():
            data = await self._redis.get(f"{self._prefix}e:{key}")
        if data is None:
            return None
        entry = CacheEntry.model_validate_json(data)
        return entry if self._live(entry) else None

    async def put(self, entry: CacheEntry) -> None:
        data = entry.model_dump_json()
        ttl = self._limits.ttl_s
        ttl_ms = 0 if ttl is None else max(1, int((entry.created_at + ttl - self._clock()) * 1000))
        meta = "\t".join([entry.model, entry.bucket, str(len(data.encode())), repr(entry.created_at)])
        cutoff = "-inf" if ttl is None else repr(self._cutoff())
        async with _translated():
            await self._put(
                args=[
                    self._prefix,
                    entry.key,
                    entry.bucket,
                    meta,
                    data,
                    repr(entry.created_at),
                    ttl_ms,
                    cutoff,
                    self._limits.max_entries,
                    self._limits.max_bucket,
                    "1" if entry.embedding is not None else "0",
                ],
            )

    async def touch(self, key: str) -> None:
        async with _translated():
            await self._touch(args=[self._prefix, key])

    async def candidates(self, bucket: str, limit: int) -> list[CacheEntry]:
        async with _translated():
            keys: list[str] = await self._redis.zrevrange(  # type: ignore[assignment]
                f"{self._prefix}b:{bucket}", 0, max(0, limit) - 1
            )
            if not keys or limit <= 0:
                return []
            values = await self._redis.mget([f"{self._prefix}e:{key}" for key in keys])
        entries = [CacheEntry.model_validate_json(value) for value in values if value is not None]
        return [entry for entry in entries if self._live(entry) and entry.embedding is not None]

    async def count(self, model: str, outcome: Outcome, saved_cost_usd: Decimal | None = None) -> None:
        stats = f"{self._prefix}stats"
        async with _translated(), self._redis.pipeline(transaction=True) as pipe:
            if outcome == "hit":
                pipe.hincrby(stats, f"{model}\thits", 1)
                pipe.hincrby(stats, f"{model}\tsaved_pico", pico(saved_cost_usd))
            else:
                pipe.hincrby(stats, f"{model}\tmisses", 1)
            await pipe.execute()

    async def stats(self) -> CacheStats:
        async with _translated(), self._redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(f"{self._prefix}meta")
            pipe.hgetall(f"{self._prefix}stats")
            metas, counters = await pipe.execute()
        models: dict[str, ModelStats] = {}
        for field, value in counters.items():
            model, kind = field.rsplit("\t", 1)
            found = models.setdefault(model, ModelStats())
            if kind == "hits":
                found.hits = int(value)
            elif kind == "misses":
                found.misses = int(value)
            else:
                found.saved_cost_usd = Decimal(int(value)) / PICO
        cutoff = self._cutoff()
        for meta in metas.values():
            model, _bucket, size, created = meta.split("\t")
            if float(created) > cutoff:
                found = models.setdefault(model, ModelStats())
                found.entries += 1
                found.bytes += int(size)
        return stats_of(models)

    async def clear(self, model: str | None = None) -> int:
        async with _translated():
            dropped = await self._clear(args=[self._prefix, model or ""])
        return int(dropped)

    def open_now(self) -> None:
        """Nothing to open ahead: Redis is reached on first use."""

    async def aclose(self) -> None:
        await self._redis.aclose()


def _translated() -> AbstractAsyncContextManager[None]:
    return redis_errors_as(CacheStoreError, "cache store")
