"""Sessions: conversations several tools and models share across calls.

`SessionStore` is the one protocol every backend implements. `MemorySessionStore` lives in the
process (tests, one-off runs); durable stores (SQLite by default, Redis for several replicas) slot in
behind the same protocol. It is shaped for them: every method is async, turns are *appended*
(an `INSERT` / `RPUSH`, never a read-modify-write of the whole session), `list_recent` returns
summaries without the turns, and all values are plain pydantic models that serialise to JSON.

Session ids are random (`new_session_id`) and checked (`validate_session_id`) before any store sees
them, so an id can never smuggle a path, a key pattern or a query into a backend.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol

import anyio
from pydantic import BaseModel, ConfigDict

from strategies.completion import CompletionRequest, Message
from strategies.errors import UserInputError
from strategies.result import StrategyResult
from strategies.templates import latest_user_text

SESSION_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,64}")
"""URL-safe base64 alphabet only: safe in a file name, a Redis key, a URI (`session://{id}`)."""


def new_session_id() -> str:
    """A fresh random id: 24 URL-safe characters, 144 bits of randomness."""
    return secrets.token_urlsafe(18)


def validate_session_id(value: str) -> str:
    """Return `value` if it is a well-formed session id; raise `UserInputError` otherwise."""
    if not isinstance(value, str) or not SESSION_ID_PATTERN.fullmatch(value):
        # The bad value is not echoed back: it is caller-controlled and may be long or hostile.
        raise UserInputError(
            "session_id is not a valid session id: expected 16-64 characters of A-Z, a-z, 0-9, '_' or '-' "
            "(use an id returned by an earlier call, or omit it to start a new session)"
        )
    return value


def _now() -> datetime:
    return datetime.now(UTC)


class Turn(BaseModel):
    """One message of a session: the user's request or an assistant's answer."""

    model_config = ConfigDict(frozen=True)

    role: Literal["user", "assistant"]
    content: str
    model: str | None = None
    """For an assistant turn: the model that produced the answer (None when unknown)."""
    at: datetime
    """When the turn was recorded (UTC)."""

    def message(self) -> Message:
        return Message(role=self.role, content=self.content)


class SessionInfo(BaseModel):
    """What a listing shows about a session, without its turns."""

    id: str
    created_at: datetime
    updated_at: datetime
    turn_count: int


class Session(BaseModel):
    id: str
    created_at: datetime
    updated_at: datetime
    turns: list[Turn]
    """In the order they were appended; a user turn and its answer are appended together."""

    def messages(self) -> list[Message]:
        return [turn.message() for turn in self.turns]

    def info(self) -> SessionInfo:
        return SessionInfo(
            id=self.id, created_at=self.created_at, updated_at=self.updated_at, turn_count=len(self.turns)
        )


class SessionStore(Protocol):
    """Where sessions live. Every method takes an id already checked by `validate_session_id`."""

    async def create(self) -> str:
        """Start an empty session and return its new id."""
        ...

    async def get(self, session_id: str) -> Session | None:
        """The session, or None when there is none with this id (never existed, expired or deleted)."""
        ...

    async def append(self, session_id: str, turns: Sequence[Turn]) -> None:
        """Add turns at the end, atomically and in order; raise `UserInputError` for an unknown session."""
        ...

    async def list_recent(self, limit: int = 20) -> list[SessionInfo]:
        """The most recently updated sessions first, at most `limit`."""
        ...

    async def delete(self, session_id: str) -> bool:
        """Remove a session; True when it existed."""
        ...


class MemorySessionStore:
    """Sessions in a dict, for one process. Bounded: the least recently updated go first when full."""

    def __init__(
        self,
        *,
        max_sessions: int = 1000,
        ttl_s: float | None = None,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._sessions: dict[str, Session] = {}
        self._lock = anyio.Lock()
        self._max_sessions = max_sessions
        self._ttl = None if ttl_s is None else timedelta(seconds=ttl_s)
        self._clock = clock

    async def create(self) -> str:
        async with self._lock:
            self._expire()
            session_id = new_session_id()
            now = self._clock()
            self._sessions[session_id] = Session(id=session_id, created_at=now, updated_at=now, turns=[])
            while len(self._sessions) > self._max_sessions:
                oldest = min(self._sessions.values(), key=lambda s: s.updated_at)
                del self._sessions[oldest.id]
            return session_id

    async def get(self, session_id: str) -> Session | None:
        async with self._lock:
            self._expire()
            session = self._sessions.get(session_id)
            # A copy: callers must not be able to change the stored session behind the lock's back.
            return None if session is None else session.model_copy(update={"turns": list(session.turns)})

    async def append(self, session_id: str, turns: Sequence[Turn]) -> None:
        async with self._lock:
            self._expire()
            session = self._sessions.get(session_id)
            if session is None:
                raise UserInputError("unknown session_id: it never existed, has expired or was deleted")
            session.turns.extend(turns)
            session.updated_at = self._clock()

    async def list_recent(self, limit: int = 20) -> list[SessionInfo]:
        async with self._lock:
            self._expire()
            recent = sorted(self._sessions.values(), key=lambda s: s.updated_at, reverse=True)
            return [s.info() for s in recent[: max(0, limit)]]

    async def delete(self, session_id: str) -> bool:
        async with self._lock:
            return self._sessions.pop(session_id, None) is not None

    def _expire(self) -> None:
        if self._ttl is None:
            return
        cutoff = self._clock() - self._ttl
        for stale in [s.id for s in self._sessions.values() if s.updated_at < cutoff]:
            del self._sessions[stale]


def with_history(session: Session, request: CompletionRequest) -> CompletionRequest:
    """The request with the session's turns before it; system messages stay first."""
    system = [m for m in request.messages if m.role == "system"]
    rest = [m for m in request.messages if m.role != "system"]
    return request.model_copy(update={"messages": (*system, *session.messages(), *rest)})


def answered_by(result: StrategyResult) -> str | None:
    """The model whose answer became the result's answer, when one call gave exactly that text."""
    for call in reversed(result.calls):
        if call.status == "ok" and call.answer == result.answer:
            return call.model
    return None


async def remember(
    store: SessionStore, session_id: str, request: CompletionRequest, result: StrategyResult
) -> None:
    """Append this exchange to the session: the user's latest message, then the answer if there is one."""
    at = _now()
    turns = [Turn(role="user", content=latest_user_text(request), at=at)]
    if result.answer is not None:
        turns.append(Turn(role="assistant", content=result.answer, model=answered_by(result), at=at))
    await store.append(session_id, turns)
