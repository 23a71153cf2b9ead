from __future__ import annotations

from datetime import UTC, datetime, timedelta

import anyio
import pytest

from strategies.completion import CompletionRequest
from strategies.errors import UserInputError
from strategies.routing import run_route
from strategies.sessions import (
    MemorySessionStore,
    SessionStore,
    Turn,
    new_session_id,
    remember,
    validate_session_id,
    with_history,
)
from strategies.spec import RouteSpec
from tests.fakes import ScriptedClient, context_of

pytestmark = pytest.mark.anyio

T0 = datetime(2025, 1, 1, tzinfo=UTC)


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def _pair(i: int) -> list[Turn]:
    return [
        Turn(role="user", content=f"q{i}", at=T0),
        Turn(role="assistant", content=f"a{i}", model="m", at=T0),
    ]


async def test_the_history_of_a_session_is_prepended_on_the_next_turn_after_the_system_prompt() -> None:
    specialist = ScriptedClient("specialist", ["Paris.", "About 2.1 million."])
    ctx = context_of(specialist)
    spec = RouteSpec.model_validate({"routes": [{"name": "geo", "target": "specialist"}], "default": "geo"})
    store: SessionStore = MemorySessionStore()
    session_id = await store.create()

    first = CompletionRequest.of("Capital of France?", system="Be brief.")
    await remember(store, session_id, first, await run_route(spec, first, ctx, "route"))
    session = await store.get(session_id)
    assert session is not None
    second = with_history(session, CompletionRequest.of("And its population?", system="Be brief."))
    result = await run_route(spec, second, ctx, "route")

    assert result.answer == "About 2.1 million."
    sent = specialist.requests[1].messages
    assert [(m.role, m.content) for m in sent] == [
        ("system", "Be brief."),
        ("user", "Capital of France?"),
        ("assistant", "Paris."),
        ("user", "And its population?"),
    ]
    assert [t.model for t in session.turns] == [None, "specialist"]


async def test_concurrent_appends_keep_every_exchange_whole_and_in_arrival_order() -> None:
    store = MemorySessionStore()
    session_id = await store.create()
    arrived: list[int] = []

    async def append(i: int) -> None:
        arrived.append(i)
        await store.append(session_id, _pair(i))

    async with anyio.create_task_group() as tg:
        for i in range(50):
            tg.start_soon(append, i)
    session = await store.get(session_id)

    assert session is not None
    contents = [t.content for t in session.turns]
    assert contents == [text for i in arrived for text in (f"q{i}", f"a{i}")]
    assert sorted(arrived) == list(range(50))


async def test_a_returned_session_is_a_copy_the_caller_cannot_use_to_change_the_store() -> None:
    store = MemorySessionStore()
    session_id = await store.create()
    await store.append(session_id, _pair(1))

    copy = await store.get(session_id)
    assert copy is not None
    copy.turns.clear()

    again = await store.get(session_id)
    assert again is not None and len(again.turns) == 2


async def test_appending_to_an_unknown_or_deleted_session_is_a_user_error() -> None:
    store = MemorySessionStore()
    session_id = await store.create()

    assert await store.delete(session_id) is True
    assert await store.delete(session_id) is False
    assert await store.get(session_id) is None
    with pytest.raises(UserInputError, match="unknown session_id"):
        await store.append(session_id, _pair(1))


async def test_recent_sessions_are_listed_newest_activity_first_without_their_turns() -> None:
    clock = FakeClock()
    store = MemorySessionStore(clock=clock)
    older = await store.create()
    clock.advance(1)
    newer = await store.create()
    clock.advance(1)
    await store.append(older, _pair(1))

    listed = await store.list_recent(limit=5)

    assert [(s.id, s.turn_count) for s in listed] == [(older, 2), (newer, 0)]
    assert [s.id for s in await store.list_recent(limit=1)] == [older]


async def test_sessions_expire_after_their_ttl_of_inactivity_and_the_oldest_go_when_full() -> None:
    clock = FakeClock()
    store = MemorySessionStore(ttl_s=60, max_sessions=2, clock=clock)
    stale = await store.create()
    clock.advance(61)
    kept = await store.create()
    assert await store.get(stale) is None

    clock.advance(1)
    second = await store.create()
    clock.advance(1)
    third = await store.create()

    assert await store.get(kept) is None
    assert {s.id for s in await store.list_recent()} == {second, third}


def test_new_session_ids_are_random_and_valid() -> None:
    ids = {new_session_id() for _ in range(100)}

    assert len(ids) == 100
    assert all(validate_session_id(i) == i for i in ids)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "short",
        "../../etc/passwd-xxxxxxxx",
        "sessions:*:xxxxxxxxxxxxxx",
        "abc def ghi jkl mno",
        "x" * 65,
        "aaaaaaaaaaaaaaaa\n",
        "aaaaaaaaaaaaaaaa/",
        "'; DROP TABLE sessions;--",
    ],
)
def test_malformed_session_ids_are_rejected_without_echoing_them(bad: str) -> None:
    with pytest.raises(UserInputError, match="session_id is not a valid session id") as caught:
        validate_session_id(bad)

    assert bad not in caught.value.message or bad == ""
