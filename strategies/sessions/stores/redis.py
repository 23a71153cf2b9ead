"""`RedisSessionStore`: sessions in Redis, shared by every server replica behind a load balancer.

Needs the `redis` extra (`pip install 'chorus-mcp[redis]'`); nothing else imports this module.

Keys (`{p}` is `sessions.key_prefix`, `chorus:` by default):

    {p}session:{id}          hash   created_at, updated_at (epoch s), max_cost_usd, next_seq, dropped,
                                    calls, prompt_tokens, completion_tokens, cost_pico, cost_unknown,
                                    owner, grants (JSON list), indexes (the two kinds of zset below)
    {p}session:{id}:turns    list   one JSON turn per item, oldest first
    {p}session:{id}:memos    hash   kind → JSON memo
    {p}sessions:recent       zset   id scored by updated_at (every session: what an admin lists)
    {p}sessions:owner:{h}    zset   the same, for the sessions one principal owns (h: hash of its id)
    {p}sessions:granted:{h}  zset   the same, for the sessions granted to one name (a principal, a team)

A principal's listing reads its owner zset and the granted zsets of its names; a session's zsets are
written with it and kept in step by every append. Entries of sessions that expired or were evicted are
dropped from a zset when a listing meets them. A hash without `owner` was stored before ownership
existed: it is the local user's, whose listing also reads the global zset to find those.

Every write is one Lua script, so it is atomic: concurrent appends to one session (from any replica)
each land whole, in the order Redis receives them, and the usage counters never lose an increment.
`RedisBreakerStore` (below) shares circuit-breaker state the same way (see `breakers`).

Cost is kept as an integer count of pico-dollars (HINCRBY is exact; 1e-12 USD is far below any price).
Idle sessions expire by `PEXPIRE`; the store also checks `updated_at` against its own clock, so expiry
means the same thing here as in the other stores. The scripts touch keys they compute from the prefix
(eviction), so this store expects one Redis, not a Redis Cluster.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from chorus_mcp.strategies.core.completion import Usage
from chorus_mcp.strategies.core.errors import ChorusError, redact
from chorus_mcp.strategies.engine.reliability import BreakerSettings
from chorus_mcp.strategies.sessions.ownership import LOCAL, Principal
from chorus_mcp.strategies.sessions.session import (
    ContextMemo,
    Session,
    SessionInfo,
    SessionStoreError,
    StoreLimits,
    Turn,
    clip,
    new_session_id,
    unknown_session,
    utc_now,
)
from chorus_mcp.strategies.sessions.stores.breakers import BreakerEvent

PICO = Decimal(10) ** 12

_CREATE = """
local meta, recent, owned = KEYS[1], KEYS[2], KEYS[3]
local id, now, max_cost, ttl_ms, max_sessions, cutoff, prefix =
    ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6], ARGV[7]
local owner, grants, indexes, max_owned = ARGV[8], ARGV[9], ARGV[10], tonumber(ARGV[11])
if redis.call('EXISTS', meta) == 1 then return 0 end
redis.call('HSET', meta, 'created_at', now, 'updated_at', now, 'max_cost_usd', max_cost, 'next_seq', 0,
    'dropped', 0, 'calls', 0, 'prompt_tokens', 0, 'completion_tokens', 0, 'cost_pico', 0, 'cost_unknown', 0,
    'owner', owner, 'grants', grants, 'indexes', indexes)
redis.call('ZADD', recent, now, id)
for index in string.gmatch(indexes, '%S+') do redis.call('ZADD', index, now, id) end
if ttl_ms > 0 then
    redis.call('PEXPIRE', meta, ttl_ms)
    redis.call('ZREMRANGEBYSCORE', recent, '-inf', cutoff)
    redis.call('ZREMRANGEBYSCORE', owned, '-inf', cutoff)
end
local function evict(oldest)
    for i = 1, #oldest, 2 do
        local key = prefix .. 'session:' .. oldest[i]
        redis.call('DEL', key, key .. ':turns', key .. ':memos')
        redis.call('ZREM', recent, oldest[i])
    end
end
local own_excess = redis.call('ZCARD', owned) - max_owned
if own_excess > 0 then evict(redis.call('ZPOPMIN', owned, own_excess)) end
local excess = redis.call('ZCARD', recent) - max_sessions
if excess > 0 then evict(redis.call('ZPOPMIN', recent, excess)) end
return 1
"""

_APPEND = """
local meta, turns, memos, recent = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, now, ttl_ms, max_turns = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local calls, prompt, completion, pico, unknown = ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local n = tonumber(ARGV[10])
local updated = redis.call('HGET', meta, 'updated_at')
if not updated then return -1 end
if ttl_ms > 0 and tonumber(updated) + ttl_ms / 1000 <= tonumber(now) then return -1 end
for i = 1, n do redis.call('RPUSH', turns, ARGV[10 + i]) end
local next_seq = redis.call('HINCRBY', meta, 'next_seq', n)
local dropped = tonumber(redis.call('HGET', meta, 'dropped'))
if next_seq - dropped > max_turns then
    redis.call('LTRIM', turns, next_seq - dropped - max_turns, -1)
    redis.call('HSET', meta, 'dropped', next_seq - max_turns)
end
redis.call('HINCRBY', meta, 'calls', calls)
redis.call('HINCRBY', meta, 'prompt_tokens', prompt)
redis.call('HINCRBY', meta, 'completion_tokens', completion)
redis.call('HINCRBY', meta, 'cost_pico', pico)
if unknown == '1' then redis.call('HSET', meta, 'cost_unknown', 1) end
redis.call('HSET', meta, 'updated_at', now)
redis.call('ZADD', recent, now, id)
local indexes = redis.call('HGET', meta, 'indexes')
if indexes then
    for index in string.gmatch(indexes, '%S+') do redis.call('ZADD', index, now, id) end
end
if ttl_ms > 0 then
    redis.call('PEXPIRE', meta, ttl_ms)
    redis.call('PEXPIRE', turns, ttl_ms)
    if redis.call('EXISTS', memos) == 1 then redis.call('PEXPIRE', memos, ttl_ms) end
end
return next_seq
"""

_WINDOW = """
local dropped = tonumber(redis.call('HGET', KEYS[1], 'dropped') or '0')
local next_seq = tonumber(redis.call('HGET', KEYS[1], 'next_seq') or '0')
local before, n = tonumber(ARGV[1]), tonumber(ARGV[2])
if before < 0 or before > next_seq then before = next_seq end
local stop = before - dropped - 1
if stop < 0 or n == 0 then return {dropped, {}} end
local start = 0
if n > 0 then start = math.max(0, stop - n + 1) end
return {start + dropped, redis.call('LRANGE', KEYS[2], start, stop)}
"""

_SAVE_MEMO = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
return 1
"""


class RedisSessionStore:
    def __init__(
        self,
        url: str,
        limits: StoreLimits | None = None,
        *,
        prefix: str = "chorus:",
        clock: Callable[[], datetime] = utc_now,
        client: aioredis.Redis | None = None,
    ) -> None:
        self._redis: aioredis.Redis = client or aioredis.Redis.from_url(url, decode_responses=True)
        self._limits = limits or StoreLimits()
        self._prefix = prefix
        self._clock = clock
        self._create = self._redis.register_script(_CREATE)
        self._append = self._redis.register_script(_APPEND)
        self._save_memo = self._redis.register_script(_SAVE_MEMO)
        self._window = self._redis.register_script(_WINDOW)

    @property
    def redis(self) -> aioredis.Redis:
        return self._redis

    def _keys(self, session_id: str) -> tuple[str, str, str]:
        meta = f"{self._prefix}session:{session_id}"
        return meta, f"{meta}:turns", f"{meta}:memos"

    @property
    def _recent(self) -> str:
        return f"{self._prefix}sessions:recent"

    def _owned(self, owner: str) -> str:
        return f"{self._prefix}sessions:owner:{_hashed(owner)}"

    def _granted(self, name: str) -> str:
        return f"{self._prefix}sessions:granted:{_hashed(name)}"

    def open_now(self) -> None:
        """Nothing to open ahead: Redis is reached on first use (and may come up after the server)."""

    def _ttl_ms(self) -> int:
        return 0 if self._limits.ttl_s is None else max(1, int(self._limits.ttl_s * 1000))

    def _now(self) -> float:
        return self._clock().timestamp()

    def _info(self, session_id: str, meta: dict[str, str]) -> SessionInfo | None:
        """The metadata, or None when there is none or it has expired by this store's clock."""
        if not meta:
            return None
        updated = float(meta["updated_at"])
        ttl = self._limits.ttl_s
        if ttl is not None and updated + ttl <= self._now():
            return None
        next_seq, dropped = int(meta["next_seq"]), int(meta["dropped"])
        usage = Usage(
            calls=int(meta["calls"]),
            prompt_tokens=int(meta["prompt_tokens"]),
            completion_tokens=int(meta["completion_tokens"]),
            cost_usd=Decimal(int(meta["cost_pico"])) / PICO,
            cost_complete=meta["cost_unknown"] == "0",
        )
        return SessionInfo(
            id=session_id,
            owner=meta.get("owner") or LOCAL,
            grants=json.loads(meta.get("grants") or "[]"),
            created_at=_dt(float(meta["created_at"])),
            updated_at=_dt(updated),
            turn_count=next_seq - dropped,
            dropped_turns=dropped,
            usage=usage,
            max_cost_usd=Decimal(meta["max_cost_usd"]) if meta["max_cost_usd"] else None,
            expires_at=None if ttl is None else _dt(updated) + timedelta(seconds=ttl),
        )

    async def create(
        self,
        *,
        max_cost_usd: Decimal | None = None,
        session_id: str | None = None,
        turns: Sequence[Turn] = (),
        usage: Usage | None = None,
        owner: str = LOCAL,
        grants: Sequence[str] = (),
    ) -> str:
        session_id = session_id or new_session_id()
        now = self._now()
        cutoff = now - (self._limits.ttl_s or 0)
        indexes = [self._owned(owner), *(self._granted(name) for name in grants)]
        async with _translated():
            created = await self._create(
                keys=[self._keys(session_id)[0], self._recent, indexes[0]],
                args=[
                    session_id,
                    repr(now),
                    "" if max_cost_usd is None else str(max_cost_usd),
                    self._ttl_ms(),
                    self._limits.max_sessions,
                    repr(cutoff),
                    self._prefix,
                    owner,
                    json.dumps(list(grants)),
                    " ".join(indexes),
                    self._limits.max_sessions_per_owner,
                ],
            )
        if int(created) != 1:
            raise SessionStoreError("a session with this id already exists")
        if turns or usage is not None:
            # A second script, not one transaction: nobody knows this id before `create` returns, so no
            # reader can see the session without its first exchange.
            await self.append(session_id, turns, usage=usage)
        return session_id

    async def get(
        self, session_id: str, *, latest: int | None = None, before: int | None = None
    ) -> Session | None:
        meta_key, turns_key, memos_key = self._keys(session_id)
        async with _translated(), self._redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(meta_key)
            # One script reads `dropped` and the slice it implies together, so a trim cannot shift it.
            args = [-1 if before is None else max(0, before), -1 if latest is None else max(0, latest)]
            await self._window(keys=[meta_key, turns_key], args=args, client=pipe)
            pipe.hgetall(memos_key)
            meta, (first, raw_turns), raw_memos = await pipe.execute()
        info = self._info(session_id, meta)
        if info is None:
            return None
        turns = [
            Turn.model_validate_json(raw).model_copy(update={"seq": int(first) + i})
            for i, raw in enumerate(raw_turns)
        ]
        memos = {kind: ContextMemo.model_validate_json(raw) for kind, raw in raw_memos.items()}
        return Session(**info.model_dump(), turns=turns, memos=memos)

    async def info(self, session_id: str) -> SessionInfo | None:
        async with _translated():
            meta: dict[str, str] = await self._redis.hgetall(self._keys(session_id)[0])  # type: ignore[assignment]
        return self._info(session_id, meta)

    async def append(self, session_id: str, turns: Sequence[Turn], *, usage: Usage | None = None) -> None:
        stored = [t.model_dump_json(exclude={"seq"}) for t in clip(turns, self._limits)]
        usage = usage or Usage()
        pico = int((usage.cost_usd * PICO).to_integral_value())
        async with _translated():
            seq = await self._append(
                keys=[*self._keys(session_id), self._recent],
                args=[
                    session_id,
                    repr(self._now()),
                    self._ttl_ms(),
                    self._limits.max_turns,
                    usage.calls,
                    usage.prompt_tokens,
                    usage.completion_tokens,
                    pico,
                    "0" if usage.cost_complete else "1",
                    len(stored),
                    *stored,
                ],
            )
        if int(seq) < 0:
            raise unknown_session()

    async def save_memo(self, session_id: str, memo: ContextMemo) -> None:
        meta_key, _, memos_key = self._keys(session_id)
        async with _translated():
            await self._save_memo(keys=[meta_key, memos_key], args=[memo.kind, memo.model_dump_json()])

    async def list_recent(self, limit: int = 20, *, viewer: Principal | None = None) -> list[SessionInfo]:
        if viewer is None or viewer.admin:
            sources = [self._recent]
        else:
            sources = [self._owned(viewer.id), *(self._granted(name) for name in sorted(viewer.names))]
            if viewer.id == LOCAL:
                sources.append(self._recent)  # sessions stored before ownership are the local user's
        found: dict[str, SessionInfo] = {}
        async with _translated():
            for source in sources:
                for info in await self._page(source, limit, viewer):
                    found.setdefault(info.id, info)
        recent = sorted(found.values(), key=lambda info: info.updated_at, reverse=True)
        return recent[: max(0, limit)]

    async def _page(self, source: str, limit: int, viewer: Principal | None) -> list[SessionInfo]:
        """The newest `limit` live sessions of one zset that `viewer` may read; dead entries are dropped."""
        found: list[SessionInfo] = []
        start = 0
        if self._limits.ttl_s is not None:
            await self._redis.zremrangebyscore(source, "-inf", self._now() - self._limits.ttl_s)
        while len(found) < limit:
            ids: list[str] = await self._redis.zrevrange(  # type: ignore[assignment]
                source, start, start + limit - 1
            )
            if not ids:
                break
            start += len(ids)
            async with self._redis.pipeline(transaction=False) as pipe:
                for session_id in ids:
                    pipe.hgetall(self._keys(session_id)[0])
                metas: list[dict[str, str]] = await pipe.execute()
            gone = []
            for session_id, meta in zip(ids, metas, strict=True):
                info = self._info(session_id, meta)
                if info is None:
                    gone.append(session_id)
                elif len(found) < limit and info.readable_by(viewer):
                    found.append(info)
            if gone:
                await self._redis.zrem(source, *gone)
                start -= len(gone)
        return found

    async def delete(self, session_id: str) -> bool:
        async with _translated(), self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._keys(session_id)[0])
            pipe.delete(*self._keys(session_id)[1:])
            pipe.zrem(self._recent, session_id)
            deleted, _, _ = await pipe.execute()
        return bool(deleted)

    async def aclose(self) -> None:
        await self._redis.aclose()


def _dt(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def _hashed(name: str) -> str:
    """A principal's or team's name as a key part: any characters it has stay out of the key."""
    return hashlib.sha256(name.encode()).hexdigest()[:32]


class RedisBreakerStore:
    """Shared breaker state in Redis: a sorted set of failure times and an `open` key per model."""

    _PUSH = """
    local failures, opened = KEYS[1], KEYS[2]
    local kind, at, window, threshold, member, keep_ms =
        ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6])
    if kind == 'success' then
        redis.call('DEL', failures, opened)
    elseif kind == 'reopened' then
        redis.call('SET', opened, ARGV[2], 'PX', keep_ms)
    else
        redis.call('ZADD', failures, at, member)
        redis.call('ZREMRANGEBYSCORE', failures, '-inf', at - window)
        redis.call('PEXPIRE', failures, math.ceil(window * 1000))
        if redis.call('ZCARD', failures) >= threshold then
            redis.call('SET', opened, ARGV[2], 'NX', 'PX', keep_ms)
        end
    end
    return 1
    """

    KEEP_OPEN_S = 24 * 3600.0
    """An open circuit nobody probes is forgotten after this long (the key must expire some day)."""

    def __init__(self, redis: aioredis.Redis, *, prefix: str = "chorus:") -> None:
        self._redis = redis
        self._prefix = prefix
        self._push = redis.register_script(self._PUSH)

    def _keys(self, model: str) -> list[str]:
        base = f"{self._prefix}breaker:{model}"
        return [f"{base}:failures", f"{base}:opened"]

    async def push(self, events: Sequence[BreakerEvent], settings: BreakerSettings) -> None:
        keep_ms = int(max(self.KEEP_OPEN_S, settings.cooldown_s * 10) * 1000)
        for event in events:
            await self._push(
                keys=self._keys(event.model),
                args=[
                    event.kind,
                    repr(event.at),
                    settings.window_s,
                    settings.failure_threshold,
                    f"{event.at!r}:{uuid.uuid4().hex}",
                    keep_ms,
                ],
            )

    async def opened_at(self, models: Sequence[str]) -> dict[str, float | None]:
        values = await self._redis.mget([self._keys(model)[1] for model in models])
        pairs = zip(models, values, strict=True)
        return {model: None if value is None else float(value) for model, value in pairs}


@asynccontextmanager
async def redis_errors_as(error: Callable[[str], ChorusError], what: str) -> AsyncIterator[None]:
    """Redis failures become `error("<what> (Redis): ...")`, redacted: a URL may carry a password."""
    try:
        yield
    except RedisError as exc:
        raise error(f"{what} (Redis): {type(exc).__name__}: {redact(str(exc))[:300]}") from exc


def _translated() -> AbstractAsyncContextManager[None]:
    return redis_errors_as(SessionStoreError, "session store")


def register_url_secret(url: str) -> None:
    """Make sure a password in a Redis URL is redacted wherever it might be printed."""
    from urllib.parse import urlsplit

    from chorus_mcp.strategies.core.errors import register_secret

    register_secret(urlsplit(url).password)
