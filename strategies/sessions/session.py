"""Sessions: conversations several tools and models share across calls.

`SessionStore` is the one protocol every backend implements (`strategies.sessions.stores`: memory,
SQLite — the default — and Redis for several replicas); one test suite runs against all of them.
It is shaped for durable backends: every method is async, turns are *appended* atomically (an
`INSERT` in one transaction, one Redis script — never a read-modify-write of the whole session),
`list_recent` and `info` return metadata without the turns, and all values are plain pydantic models
that serialise to JSON.

A session also carries what its calls cost (`usage`, charged for every call, answered or not), an
optional cost cap across all its calls (`max_cost_usd`), and the cached summaries that context
passing (`strategies.engine.context_passing`) makes of its older turns (`memos`).

Session ids are random (`new_session_id`) and checked (`validate_session_id`) before any store sees
them, so an id can never smuggle a path, a key pattern or a query into a backend.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from chorus_mcp.strategies.core.completion import CompletionRequest, Message, Usage
from chorus_mcp.strategies.core.errors import ChorusError, UserInputError
from chorus_mcp.strategies.core.inputs import InputRef
from chorus_mcp.strategies.core.result import StrategyResult
from chorus_mcp.strategies.core.templates import latest_user_text
from chorus_mcp.strategies.sessions.ownership import LOCAL, Principal

SESSION_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,64}")
"""URL-safe base64 alphabet only: safe in a file name, a Redis key, a URI (`session://{id}`)."""

ContextMode = Literal["full", "summary", "extract", "none"]
"""How a session's history reaches a model: every turn, a summary of the older turns plus the latest
ones, the key facts only, or nothing. Whatever is chosen is trimmed to the model's context window."""

MemoKind = Literal["summary", "facts"]


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


class SessionStoreError(ChorusError):
    """The session store could not be reached or failed (a broken file, Redis down): not the caller's
    fault."""


def unknown_session() -> UserInputError:
    return UserInputError("unknown session_id: it never existed, has expired or was deleted")


def utc_now() -> datetime:
    return datetime.now(UTC)


# -- values ----------------------------------------------------------------------------------------


class Turn(BaseModel):
    """One message of a session: the user's request or an assistant's answer."""

    model_config = ConfigDict(frozen=True)

    role: Literal["user", "assistant"]
    content: str
    model: str | None = None
    """For an assistant turn: the model that produced the answer (None when unknown)."""
    at: datetime
    """When the turn was recorded (UTC)."""
    strategy: str | None = None
    """For an assistant turn: the strategy (tool) that answered."""
    usage: Usage | None = None
    """For an assistant turn: what the whole tool call that produced it cost (every model call in it)."""
    seq: int | None = None
    """Position in the session since it began (0-based), set by the store when read; it keeps counting
    when old turns are dropped by the size cap."""
    inputs: list[InputRef] = Field(default_factory=list)
    """For a user turn: the files and images attached to it, by reference and hash (never the bytes)."""

    def message(self) -> Message:
        """The turn as history: an earlier turn's attachments are named, not sent again."""
        if not self.inputs:
            return Message(role=self.role, content=self.content)
        named = "; ".join(i.described() for i in self.inputs)
        return Message(role=self.role, content=f"{self.content}\n[attached then, not shown again: {named}]")


class ContextMemo(BaseModel):
    """A cached digest of a session's turns (a summary, or the key facts), made by a cheap model."""

    kind: MemoKind
    through_seq: int
    """The digest covers every turn up to and including this `seq`."""
    text: str
    model: str | None = None
    at: datetime


class SessionInfo(BaseModel):
    """A session's metadata and usage, without its turns (what a listing shows)."""

    id: str
    created_at: datetime
    updated_at: datetime
    turn_count: int
    """Turns kept in the store now."""
    dropped_turns: int = 0
    """Oldest turns removed by the `max_turns` cap."""
    usage: Usage = Field(default_factory=Usage)
    """Tokens and cost of every model call made in this session, answered or not."""
    max_cost_usd: Decimal | None = None
    """Cost cap across all the session's calls; None means no cap."""
    expires_at: datetime | None = None
    """When the session is deleted if nothing happens in it (None: never)."""
    owner: str = LOCAL
    """The principal that created it (`strategies.sessions.ownership`); `@local` for the local user and
    for sessions stored before ownership existed."""
    grants: list[str] = Field(default_factory=list)
    """Principals (and `team:<name>`s) the owner shared it with: they may read and continue it."""

    def readable_by(self, viewer: Principal | None) -> bool:
        """Whether `viewer` may read and continue it (None: the store's own caller, who sees all)."""
        return viewer is None or viewer.may_read(self.owner, self.grants)

    def cost_left_usd(self) -> Decimal | None:
        """What the session may still spend (never negative); None when it has no cap."""
        if self.max_cost_usd is None:
            return None
        return max(Decimal(0), self.max_cost_usd - self.usage.cost_usd)


class Session(SessionInfo):
    turns: list[Turn]
    """In the order they were appended; a user turn and its answer are appended together."""
    memos: dict[str, ContextMemo] = Field(default_factory=dict)
    """Cached digests by kind (`summary`, `facts`)."""

    def messages(self) -> list[Message]:
        return [turn.message() for turn in self.turns]

    def info(self) -> SessionInfo:
        return SessionInfo.model_validate(self.model_dump(exclude={"turns", "memos"}))


def add_usage(a: Usage, b: Usage) -> Usage:
    return Usage(
        calls=a.calls + b.calls,
        prompt_tokens=a.prompt_tokens + b.prompt_tokens,
        completion_tokens=a.completion_tokens + b.completion_tokens,
        cost_usd=a.cost_usd + b.cost_usd,
        cost_complete=a.cost_complete and b.cost_complete,
    )


def usage_of(result: StrategyResult) -> Usage:
    """What a strategy run cost, as a session counts it."""
    totals = result.totals
    return Usage(
        calls=totals.calls,
        prompt_tokens=totals.prompt_tokens,
        completion_tokens=totals.completion_tokens,
        cost_usd=totals.cost_usd or Decimal(0),
        cost_complete=totals.cost_complete and (totals.cost_usd is not None or totals.calls == 0),
    )


# -- settings --------------------------------------------------------------------------------------


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ContextSettings(_Settings):
    """How session history is passed to models (`sessions.context`)."""

    mode: ContextMode = "full"
    """Used when a call does not choose: full | summary | extract | none."""
    summary_model: str | None = None
    """The (cheap) model that writes summaries and extracts facts; default: the first model of the
    strategy being run."""
    keep_recent_turns: int = Field(default=6, ge=0)
    """With `summary`: the latest turns passed verbatim after the summary of the older ones."""
    summary_max_tokens: int = Field(default=400, gt=0)
    default_window_tokens: int = Field(default=8192, gt=0)
    """Context window assumed for a model whose window litellm does not know (and that `windows` omits)."""
    windows: dict[str, int] = Field(default_factory=dict)
    """Context window (prompt tokens) per model alias, overriding litellm's model info."""


REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


class SessionSettings(_Settings):
    """Where sessions live and how big they may grow (`sessions`)."""

    store: str = "sqlite"
    """`sqlite` (default: a file in the user's data directory), `memory` (lost on exit), `redis` (the URL
    is read from the variable named by `redis_url_env`), or a `redis://` / `rediss://` / `unix://` URL."""
    sqlite_path: str | None = None
    """The SQLite file; default `<user data dir>/chorus-mcp/sessions.sqlite3`."""
    redis_url_env: str = "CHORUS_REDIS_URL"
    """With `store: redis`: the environment variable holding the URL (so a password stays out of config)."""
    key_prefix: str = Field(default="chorus:", pattern=r"^[A-Za-z0-9:_\-.]{0,64}$")
    """Prefix of every Redis key Chorus writes (one Redis may serve several deployments)."""
    ttl_s: float | None = Field(default=30 * 24 * 3600.0, gt=0)
    """A session untouched this long is deleted; None keeps sessions until deleted."""
    max_sessions: int = Field(default=10_000, ge=1)
    """When there are more, the least recently active are deleted."""
    max_sessions_per_owner: int = Field(default=1_000, ge=1)
    """When one client owns more, its own least recently active are deleted: one client starting
    sessions in a loop never pushes out another's."""
    max_turns: int = Field(default=500, ge=2)
    """Turns kept per session; older ones are dropped (the summary memo still covers them)."""
    max_turn_chars: int = Field(default=200_000, ge=100)
    """A longer message is stored cut to this length, marked as cut."""
    max_cost_usd: Decimal | None = Field(default=None, ge=0)
    """Default cost cap across all the calls of a new session; None means no cap."""
    share_breakers: bool = True
    """With Redis: circuit-breaker state is shared by every replica."""
    breaker_sync_s: float = Field(default=0.5, gt=0, le=60)
    """How often a replica exchanges circuit-breaker state with Redis."""
    context: ContextSettings = Field(default_factory=ContextSettings)

    @model_validator(mode="before")
    @classmethod
    def _store_is_known(cls, data: Any) -> Any:
        # Checked here rather than on the field, so a bad value — possibly a URL with a password — is
        # never echoed into an error message.
        store = data.get("store") if isinstance(data, dict) else None
        named = ("sqlite", "memory", "redis")
        if isinstance(store, str) and store not in named and not store.startswith(REDIS_SCHEMES):
            raise ValueError(
                "store: expected 'sqlite', 'memory', 'redis' or a redis:// (rediss://, unix://) URL"
            )
        return data

    @property
    def uses_redis(self) -> bool:
        return self.store == "redis" or self.store.startswith(REDIS_SCHEMES)

    def limits(self) -> StoreLimits:
        return StoreLimits(
            ttl_s=self.ttl_s,
            max_sessions=self.max_sessions,
            max_sessions_per_owner=self.max_sessions_per_owner,
            max_turns=self.max_turns,
            max_turn_chars=self.max_turn_chars,
        )


@dataclass(frozen=True)
class StoreLimits:
    """The caps every store enforces."""

    ttl_s: float | None = None
    max_sessions: int = 10_000
    max_sessions_per_owner: int = 1_000
    max_turns: int = 500
    max_turn_chars: int = 200_000


CUT_MARK = "\n[… cut: the message was longer than the session's max_turn_chars]"


def clip(turns: Sequence[Turn], limits: StoreLimits) -> list[Turn]:
    """Turns as stored: without `seq` (the store assigns it) and no longer than `max_turn_chars`."""
    clipped = []
    for turn in turns:
        update: dict[str, Any] = {"seq": None}
        if len(turn.content) > limits.max_turn_chars:
            update["content"] = turn.content[: limits.max_turn_chars - len(CUT_MARK)] + CUT_MARK
        clipped.append(turn.model_copy(update=update))
    return clipped


def window(turns: list[Turn], latest: int | None, before: int | None) -> list[Turn]:
    """Of `turns` (with `seq` set, in order): those below `before`, then the last `latest` of them."""
    if before is not None:
        turns = [t for t in turns if t.seq is not None and t.seq < before]
    if latest is not None:
        turns = turns[len(turns) - latest :] if latest > 0 else []
    return turns


# -- the protocol ----------------------------------------------------------------------------------


class SessionStore(Protocol):
    """Where sessions live. Every method takes an id already checked by `validate_session_id`."""

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
        """Start a session and return its id: `session_id` when given (a fresh `new_session_id()` the
        caller chose, so a run can name its session before storing it; an id already in use raises
        `SessionStoreError`), else a new one. `turns` and `usage`, when given, are its first append, in
        the same write: a tool call that starts a session stores it and its first exchange at once.
        `owner` and `grants` are set once, here, and never change. When `owner` has more than
        `max_sessions_per_owner` sessions, its least recently active are deleted (never another's)."""
        ...

    async def get(
        self, session_id: str, *, latest: int | None = None, before: int | None = None
    ) -> Session | None:
        """The session with its turns, or None when there is none with this id (never existed, expired
        or deleted). `latest`: only the last `latest` turns (of those with `seq` below `before`, when
        given) — what a page of a long session reads, without loading the rest."""
        ...

    async def info(self, session_id: str) -> SessionInfo | None:
        """The session's metadata and usage without its turns, or None."""
        ...

    async def append(self, session_id: str, turns: Sequence[Turn], *, usage: Usage | None = None) -> None:
        """Add turns at the end and `usage` to the session's, atomically and in order (concurrent appends
        to one session all land, each one whole); raise `UserInputError` for an unknown session."""
        ...

    async def save_memo(self, session_id: str, memo: ContextMemo) -> None:
        """Cache a digest of the session's turns (replacing the one of the same kind); a session that is
        gone is ignored. Does not count as activity."""
        ...

    async def list_recent(self, limit: int = 20, *, viewer: Principal | None = None) -> list[SessionInfo]:
        """The most recently updated sessions first, at most `limit`: every session (`viewer` None or an
        admin), else those `viewer` may read (its own and those granted to it or its teams)."""
        ...

    async def delete(self, session_id: str) -> bool:
        """Remove a session; True when it existed."""
        ...

    def open_now(self) -> None:
        """At start-up: open what can be opened ahead (a file), so a read-only or corrupt one stops the
        server with its path and the fix (`ConfigError`) instead of failing the first tool call."""
        ...

    async def aclose(self) -> None:
        """Release connections; the store is not used afterwards."""
        ...


# -- helpers for callers ---------------------------------------------------------------------------


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
    store: SessionStore,
    session_id: str,
    request: CompletionRequest,
    result: StrategyResult,
    usage: Usage | None = None,
) -> None:
    """Append this exchange to the session: the user's latest message, then the answer if there is one;
    and charge the session `usage` (what the run cost) in the same atomic write."""
    await store.append(session_id, exchange(request, result, usage), usage=usage)


def exchange(request: CompletionRequest, result: StrategyResult, usage: Usage | None = None) -> list[Turn]:
    """The turns one answered call adds to its session: the user's latest message, then the answer if
    there is one (carrying what the call cost)."""
    at = utc_now()
    attached = request.inputs.refs() if request.inputs is not None else []
    turns = [Turn(role="user", content=latest_user_text(request), at=at, inputs=attached)]
    if result.answer is not None:
        turns.append(
            Turn(
                role="assistant",
                content=result.answer,
                model=answered_by(result),
                at=at,
                strategy=result.strategy,
                usage=usage,
            )
        )
    return turns
