"""Where per-client quotas are counted: in this process (`MemoryQuotaStore`), or in Redis so that every
replica counts against the same figures (`strategies.sessions.stores.redis_quotas`).

Three kinds of count, each under a *bucket* (one client and one quota):

- leases: things held at once (tool calls in progress, open transport sessions). A lease has an
  expiry, so one a crashed replica never released stops counting by itself.
- a rate: requests in the current minute (a fixed window; a burst across a minute's edge may reach
  twice the rate, which is what a one-line Redis count can promise).
- spending: USD per UTC day, kept in integer pico-dollars: what was spent, and what the calls in progress
  hold. A model call holds its worst case (`hold_today`) before it starts, if spent + held + it stays
  within the day's cap, and settles what it cost when it ends (`settle_today`); so a client's calls at
  once — on any replica — cannot together pass the cap that each would respect alone. A hold has an
  expiry: one a crashed replica never settled stops counting by itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Protocol

import anyio

PICO = Decimal(10) ** 12


def to_pico(usd: Decimal) -> int:
    return int((usd * PICO).to_integral_value())


def utc_day(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d")


class QuotaStore(Protocol):
    async def take_lease(self, bucket: str, lease: str, limit: int, ttl_s: float) -> bool:
        """Hold `lease` in `bucket` if fewer than `limit` live leases are held there; False otherwise."""
        ...

    async def renew_lease(self, bucket: str, lease: str, ttl_s: float) -> None:
        """Push a held lease's expiry to `ttl_s` from now (nothing when it is not held)."""
        ...

    async def release_lease(self, bucket: str, lease: str) -> None: ...

    async def take_rate(self, bucket: str, per_minute: int) -> float | None:
        """Count one request: None when within `per_minute`, else the seconds until the next minute."""
        ...

    async def spent_today(self, bucket: str) -> Decimal: ...

    async def held_today(self, bucket: str) -> Decimal:
        """What the live holds of `bucket` add up to (today's and yesterday's not yet settled)."""
        ...

    async def spend_today(self, bucket: str, usd: Decimal) -> None: ...

    async def hold_today(self, bucket: str, hold: str, usd: Decimal, cap: Decimal, ttl_s: float) -> bool:
        """Hold `usd` under the name `hold` if today's spending, the live holds and it stay within `cap`;
        False (nothing held) otherwise."""
        ...

    async def settle_today(self, bucket: str, hold: str, usd: Decimal) -> None:
        """Drop the hold and add what the call cost (`usd`) to today's spending."""
        ...

    async def aclose(self) -> None: ...


class MemoryQuotaStore:
    """Quotas counted in this process (one server, or replicas without Redis: each counts its own)."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._leases: dict[str, dict[str, float]] = {}
        self._rates: dict[str, tuple[int, int]] = {}
        """bucket → (minute, requests in it)"""
        self._spent: dict[str, tuple[str, int]] = {}
        """bucket → (UTC day, pico-dollars spent on it)"""
        self._holds: dict[str, dict[str, tuple[int, float]]] = {}
        """bucket → hold → (pico-dollars, expiry)"""
        self._lock = anyio.Lock()

    def _live(self, bucket: str) -> dict[str, float]:
        now = self._clock()
        leases = self._leases.setdefault(bucket, {})
        for lease in [name for name, expiry in leases.items() if expiry <= now]:
            del leases[lease]
        return leases

    async def take_lease(self, bucket: str, lease: str, limit: int, ttl_s: float) -> bool:
        async with self._lock:
            leases = self._live(bucket)
            if lease not in leases and len(leases) >= limit:
                return False
            leases[lease] = self._clock() + ttl_s
            return True

    async def renew_lease(self, bucket: str, lease: str, ttl_s: float) -> None:
        async with self._lock:
            leases = self._live(bucket)
            if lease in leases:
                leases[lease] = self._clock() + ttl_s

    async def release_lease(self, bucket: str, lease: str) -> None:
        async with self._lock:
            leases = self._leases.get(bucket)
            if leases is not None:
                leases.pop(lease, None)
                if not leases:
                    del self._leases[bucket]

    async def take_rate(self, bucket: str, per_minute: int) -> float | None:
        now = self._clock()
        minute = int(now // 60)
        async with self._lock:
            if len(self._rates) > 10_000:  # forget finished minutes: one entry per client that is active
                self._rates = {b: v for b, v in self._rates.items() if v[0] == minute}
            then, count = self._rates.get(bucket, (minute, 0))
            count = count + 1 if then == minute else 1
            self._rates[bucket] = (minute, count)
        return None if count <= per_minute else (minute + 1) * 60 - now

    async def spent_today(self, bucket: str) -> Decimal:
        day, pico = self._spent.get(bucket, ("", 0))
        return Decimal(pico) / PICO if day == utc_day(self._clock()) else Decimal(0)

    async def spend_today(self, bucket: str, usd: Decimal) -> None:
        async with self._lock:
            self._add_spent(bucket, usd)

    def _add_spent(self, bucket: str, usd: Decimal) -> None:
        today = utc_day(self._clock())
        day, pico = self._spent.get(bucket, (today, 0))
        self._spent[bucket] = (today, (pico if day == today else 0) + to_pico(usd))

    def _live_holds(self, bucket: str) -> dict[str, tuple[int, float]]:
        now = self._clock()
        holds = self._holds.setdefault(bucket, {})
        for name in [name for name, (_, expiry) in holds.items() if expiry <= now]:
            del holds[name]
        return holds

    async def held_today(self, bucket: str) -> Decimal:
        async with self._lock:
            return Decimal(sum(pico for pico, _ in self._live_holds(bucket).values())) / PICO

    async def hold_today(self, bucket: str, hold: str, usd: Decimal, cap: Decimal, ttl_s: float) -> bool:
        async with self._lock:
            holds = self._live_holds(bucket)
            spent = to_pico(await self.spent_today(bucket))
            if spent + sum(pico for pico, _ in holds.values()) + to_pico(usd) > to_pico(cap):
                return False
            holds[hold] = (to_pico(usd), self._clock() + ttl_s)
            return True

    async def settle_today(self, bucket: str, hold: str, usd: Decimal) -> None:
        async with self._lock:
            self._holds.get(bucket, {}).pop(hold, None)
            if usd > 0:
                self._add_spent(bucket, usd)

    async def aclose(self) -> None:
        return None
