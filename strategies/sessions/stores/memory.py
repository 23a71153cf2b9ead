"""`MemorySessionStore`: sessions in a dict, for one process (tests, `sessions.store: memory`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal

import anyio

from chorus_mcp.strategies.core.completion import Usage
from chorus_mcp.strategies.sessions.ownership import LOCAL, Principal
from chorus_mcp.strategies.sessions.session import (
    ContextMemo,
    Session,
    SessionInfo,
    SessionStoreError,
    StoreLimits,
    Turn,
    add_usage,
    clip,
    new_session_id,
    unknown_session,
    utc_now,
    window,
)


class MemorySessionStore:
    """Sessions in a dict. Bounded: the least recently updated go first when full; idle ones expire."""

    def __init__(
        self,
        limits: StoreLimits | None = None,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._limits = limits or StoreLimits()
        self._sessions: dict[str, Session] = {}
        self._lock = anyio.Lock()
        self._clock = clock

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
        async with self._lock:
            self._expire()
            session_id = session_id or new_session_id()
            if session_id in self._sessions:
                raise SessionStoreError("a session with this id already exists")
            now = self._clock()
            self._sessions[session_id] = Session(
                id=session_id,
                created_at=now,
                updated_at=now,
                turn_count=0,
                turns=[],
                max_cost_usd=max_cost_usd,
                expires_at=self._expiry(now),
                owner=owner,
                grants=list(grants),
            )
            if turns or usage is not None:
                self._append_locked(self._sessions[session_id], turns, usage)
            owned = [s for s in self._sessions.values() if s.owner == owner]
            for excess in sorted(owned, key=lambda s: s.updated_at)[
                : max(0, len(owned) - self._limits.max_sessions_per_owner)
            ]:
                del self._sessions[excess.id]
            while len(self._sessions) > self._limits.max_sessions:
                oldest = min(self._sessions.values(), key=lambda s: s.updated_at)
                del self._sessions[oldest.id]
            return session_id

    async def get(
        self, session_id: str, *, latest: int | None = None, before: int | None = None
    ) -> Session | None:
        async with self._lock:
            self._expire()
            session = self._sessions.get(session_id)
            if session is None:
                return None
            # A deep copy: callers must not be able to change the stored session behind the lock's back.
            first = session.dropped_turns
            turns = [t.model_copy(update={"seq": first + i}) for i, t in enumerate(session.turns)]
            turns = window(turns, latest, before)
            return session.model_copy(update={"turns": turns, "memos": dict(session.memos)})

    async def info(self, session_id: str) -> SessionInfo | None:
        session = await self.get(session_id)
        return None if session is None else session.info()

    async def append(self, session_id: str, turns: Sequence[Turn], *, usage: Usage | None = None) -> None:
        async with self._lock:
            self._expire()
            session = self._sessions.get(session_id)
            if session is None:
                raise unknown_session()
            self._append_locked(session, turns, usage)

    def _append_locked(self, session: Session, turns: Sequence[Turn], usage: Usage | None) -> None:
        session.turns.extend(clip(turns, self._limits))
        excess = len(session.turns) - self._limits.max_turns
        if excess > 0:
            del session.turns[:excess]
            session.dropped_turns += excess
        session.turn_count = len(session.turns)
        if usage is not None:
            session.usage = add_usage(session.usage, usage)
        session.updated_at = self._clock()
        session.expires_at = self._expiry(session.updated_at)

    async def save_memo(self, session_id: str, memo: ContextMemo) -> None:
        async with self._lock:
            session = self._sessions.get(session_id)
            if session is not None:
                session.memos[memo.kind] = memo

    async def list_recent(self, limit: int = 20, *, viewer: Principal | None = None) -> list[SessionInfo]:
        async with self._lock:
            self._expire()
            visible = [s for s in self._sessions.values() if s.readable_by(viewer)]
            recent = sorted(visible, key=lambda s: s.updated_at, reverse=True)
            return [s.info() for s in recent[: max(0, limit)]]

    async def delete(self, session_id: str) -> bool:
        async with self._lock:
            return self._sessions.pop(session_id, None) is not None

    def open_now(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    def _expiry(self, updated_at: datetime) -> datetime | None:
        return None if self._limits.ttl_s is None else updated_at + timedelta(seconds=self._limits.ttl_s)

    def _expire(self) -> None:
        now = self._clock()
        stale = [s.id for s in self._sessions.values() if s.expires_at is not None and s.expires_at <= now]
        for session_id in stale:
            del self._sessions[session_id]
