"""`RedisQuotaStore`: per-client quotas every replica counts against (see `quotas`).

Keys (`{p}` is `sessions.key_prefix` + `quota:`):

    {p}lease:{bucket}          zset    lease → expiry (epoch s); expired ones are dropped before counting
    {p}rate:{bucket}:{minute}  string  requests in that minute; expires after two minutes
    {p}usd:{bucket}:{day}      string  pico-dollars spent that UTC day; expires after two days
    {p}hold:{bucket}           hash    hold → pico-dollars held by a call in progress
    {p}holdexp:{bucket}        zset    hold → expiry (epoch s); expired holds are dropped before counting

A lease is taken by one script (drop expired, count, add), so two replicas can never both take the last
one; a spending hold likewise (drop expired, add spent and held, compare with the cap, hold), and it is
settled by one script too (drop the hold, add the cost), so no replica ever sees a call in neither.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from decimal import Decimal

import redis.asyncio as aioredis

from chorus_mcp.strategies.sessions.session import SessionStoreError
from chorus_mcp.strategies.sessions.stores.quotas import PICO, to_pico, utc_day
from chorus_mcp.strategies.sessions.stores.redis import redis_errors_as

_TAKE = """
local now, lease, limit, expiry = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if not redis.call('ZSCORE', KEYS[1], lease) and redis.call('ZCARD', KEYS[1]) >= limit then return 0 end
redis.call('ZADD', KEYS[1], expiry, lease)
local last = tonumber(redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')[2])
redis.call('PEXPIRE', KEYS[1], math.ceil((last - now) * 1000) + 1000)
return 1
"""

_RENEW = """
local now, lease, expiry = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
if redis.call('ZADD', KEYS[1], 'XX', 'CH', expiry, lease) == 0 then return 0 end
local last = tonumber(redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')[2])
redis.call('PEXPIRE', KEYS[1], math.ceil((last - now) * 1000) + 1000)
return 1
"""


_DROP_EXPIRED_HOLDS = """
local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[1])
for _, name in ipairs(expired) do redis.call('HDEL', KEYS[2], name) end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[1])
local held = 0
for _, pico in ipairs(redis.call('HVALS', KEYS[2])) do held = held + tonumber(pico) end
"""

_HELD = _DROP_EXPIRED_HOLDS + "return tostring(held)"

# Pico-dollars pass Lua's doubles exactly up to 2^53 (~$9,000): comparisons of larger sums lose precision
# in the last pico-dollars only.
_HOLD = (
    _DROP_EXPIRED_HOLDS
    + """
local spent = tonumber(redis.call('GET', KEYS[1]) or '0')
if spent + held + tonumber(ARGV[3]) > tonumber(ARGV[4]) then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[2])
redis.call('EXPIRE', KEYS[2], 172800)
redis.call('EXPIRE', KEYS[3], 172800)
return 1
"""
)

_SETTLE = """
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
if tonumber(ARGV[2]) > 0 then
  redis.call('INCRBY', KEYS[1], ARGV[2])
  redis.call('EXPIRE', KEYS[1], 172800)
end
return 1
"""


class RedisQuotaStore:
    def __init__(
        self,
        url: str,
        *,
        prefix: str = "chorus:quota:",
        clock: Callable[[], float] = time.time,
        client: aioredis.Redis | None = None,
    ) -> None:
        self._redis: aioredis.Redis = client or aioredis.Redis.from_url(url, decode_responses=True)
        self._prefix = prefix
        self._clock = clock
        self._take = self._redis.register_script(_TAKE)
        self._renew = self._redis.register_script(_RENEW)
        self._held = self._redis.register_script(_HELD)
        self._hold = self._redis.register_script(_HOLD)
        self._settle = self._redis.register_script(_SETTLE)

    def _lease_key(self, bucket: str) -> str:
        return f"{self._prefix}lease:{bucket}"

    async def take_lease(self, bucket: str, lease: str, limit: int, ttl_s: float) -> bool:
        now = self._clock()
        async with _translated():
            taken = await self._take(
                keys=[self._lease_key(bucket)], args=[repr(now), lease, limit, repr(now + ttl_s)]
            )
        return int(taken) == 1

    async def renew_lease(self, bucket: str, lease: str, ttl_s: float) -> None:
        now = self._clock()
        async with _translated():
            await self._renew(keys=[self._lease_key(bucket)], args=[repr(now), lease, repr(now + ttl_s)])

    async def release_lease(self, bucket: str, lease: str) -> None:
        async with _translated():
            await self._redis.zrem(self._lease_key(bucket), lease)

    async def take_rate(self, bucket: str, per_minute: int) -> float | None:
        now = self._clock()
        minute = int(now // 60)
        key = f"{self._prefix}rate:{bucket}:{minute}"
        async with _translated(), self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, 120)
            count, _ = await pipe.execute()
        return None if int(count) <= per_minute else (minute + 1) * 60 - now

    def _usd_key(self, bucket: str) -> str:
        return f"{self._prefix}usd:{bucket}:{utc_day(self._clock())}"

    async def spent_today(self, bucket: str) -> Decimal:
        async with _translated():
            value = await self._redis.get(self._usd_key(bucket))
        return Decimal(int(value or 0)) / PICO

    async def spend_today(self, bucket: str, usd: Decimal) -> None:
        key = self._usd_key(bucket)
        async with _translated(), self._redis.pipeline(transaction=True) as pipe:
            pipe.incrby(key, to_pico(usd))
            pipe.expire(key, 2 * 24 * 3600)
            await pipe.execute()

    def _hold_keys(self, bucket: str) -> list[str]:
        return [self._usd_key(bucket), f"{self._prefix}hold:{bucket}", f"{self._prefix}holdexp:{bucket}"]

    async def held_today(self, bucket: str) -> Decimal:
        async with _translated():
            held = await self._held(keys=self._hold_keys(bucket), args=[repr(self._clock())])
        return Decimal(int(float(held))) / PICO

    async def hold_today(self, bucket: str, hold: str, usd: Decimal, cap: Decimal, ttl_s: float) -> bool:
        now = self._clock()
        args: list[str | int] = [repr(now), hold, to_pico(usd), to_pico(cap), repr(now + ttl_s)]
        async with _translated():
            taken = await self._hold(keys=self._hold_keys(bucket), args=args)
        return int(taken) == 1

    async def settle_today(self, bucket: str, hold: str, usd: Decimal) -> None:
        async with _translated():
            await self._settle(keys=self._hold_keys(bucket), args=[hold, max(0, to_pico(usd))])

    async def aclose(self) -> None:
        await self._redis.aclose()


def _translated() -> AbstractAsyncContextManager[None]:
    return redis_errors_as(SessionStoreError, "quota store")
