"""One suite, every backend: what any `SessionStore` must do (memory, SQLite, Redis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import anyio
import pytest

from chorus_mcp.strategies.core.completion import Usage
from chorus_mcp.strategies.core.errors import UserInputError
from chorus_mcp.strategies.sessions.session import (
    CUT_MARK,
    ContextMemo,
    SessionStoreError,
    StoreLimits,
    Turn,
    new_session_id,
)
from tests.strategies.sessions.stores.conftest import StoreFactory

pytestmark = pytest.mark.anyio

T0 = datetime(2025, 1, 1, tzinfo=UTC)


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def pair(i: int, usage: Usage | None = None) -> list[Turn]:
    return [
        Turn(role="user", content=f"q{i}", at=T0),
        Turn(role="assistant", content=f"a{i}", model="m", strategy="route", usage=usage, at=T0),
    ]


def usage(cost: str | None, tokens: int = 10) -> Usage:
    return Usage(
        calls=1,
        prompt_tokens=tokens,
        completion_tokens=tokens // 2,
        cost_usd=Decimal(cost or 0),
        cost_complete=cost is not None,
    )


async def test_a_new_session_is_empty_and_readable(make_store: StoreFactory) -> None:
    store = make_store()
    session_id = await store.create(max_cost_usd=Decimal("0.50"))

    session = await store.get(session_id)
    info = await store.info(session_id)

    assert session is not None and info is not None
    assert session.id == info.id == session_id
    assert session.turns == [] and session.turn_count == 0 and session.memos == {}
    assert session.usage == Usage()
    assert info.max_cost_usd == Decimal("0.50") and info.cost_left_usd() == Decimal("0.50")


async def test_turns_come_back_in_order_with_their_seq_model_and_cost(make_store: StoreFactory) -> None:
    store = make_store()
    session_id = await store.create()
    await store.append(session_id, pair(1, usage("0.000123")), usage=usage("0.000123"))
    await store.append(session_id, pair(2, usage(None)), usage=usage(None))

    session = await store.get(session_id)

    assert session is not None
    assert [(t.seq, t.role, t.content) for t in session.turns] == [
        (0, "user", "q1"),
        (1, "assistant", "a1"),
        (2, "user", "q2"),
        (3, "assistant", "a2"),
    ]
    answer = session.turns[1]
    assert answer.model == "m" and answer.strategy == "route" and answer.at == T0
    assert answer.usage is not None and answer.usage.cost_usd == Decimal("0.000123")
    assert session.turn_count == 4


async def test_usage_adds_up_exactly_and_an_unknown_price_marks_the_cost_incomplete(
    make_store: StoreFactory,
) -> None:
    store = make_store()
    session_id = await store.create(max_cost_usd=Decimal("0.001"))
    await store.append(session_id, pair(1), usage=usage("0.000123456789"))
    await store.append(session_id, [], usage=usage("0.000000000001"))  # a failed call still costs
    first = await store.info(session_id)
    await store.append(session_id, pair(2), usage=usage(None))
    second = await store.info(session_id)

    assert first is not None and second is not None
    assert first.usage == Usage(
        calls=2, prompt_tokens=20, completion_tokens=10, cost_usd=Decimal("0.00012345679"), cost_complete=True
    )
    assert first.cost_left_usd() == Decimal("0.001") - Decimal("0.00012345679")
    assert second.usage.calls == 3 and second.usage.cost_complete is False
    assert second.turn_count == 4


async def test_a_session_created_with_its_first_exchange_holds_those_turns_and_that_cost(
    make_store: StoreFactory,
) -> None:
    store = make_store()
    chosen = new_session_id()
    session_id = await store.create(
        max_cost_usd=Decimal("0.01"), session_id=chosen, turns=pair(1), usage=usage("0.002")
    )
    await store.append(session_id, pair(2), usage=usage("0.001"))

    session = await store.get(session_id)

    assert session_id == chosen and session is not None
    assert [(t.seq, t.content) for t in session.turns] == [(0, "q1"), (1, "a1"), (2, "q2"), (3, "a2")]
    assert session.usage.calls == 2 and session.usage.cost_usd == Decimal("0.003")
    assert session.cost_left_usd() == Decimal("0.007")


async def test_creating_a_session_with_an_id_in_use_fails_and_leaves_that_session_alone(
    make_store: StoreFactory,
) -> None:
    store = make_store()
    session_id = await store.create(turns=pair(1), usage=usage("0.002"))

    with pytest.raises(SessionStoreError):
        await store.create(session_id=session_id)

    session = await store.get(session_id)
    assert session is not None and session.turn_count == 2 and session.usage.calls == 1


async def test_unknown_and_deleted_sessions_are_gone_everywhere(make_store: StoreFactory) -> None:
    store = make_store()
    session_id = await store.create()
    await store.append(session_id, pair(1))

    assert await store.delete(session_id) is True
    assert await store.delete(session_id) is False
    assert await store.get(session_id) is None
    assert await store.info(session_id) is None
    assert session_id not in [s.id for s in await store.list_recent()]
    with pytest.raises(UserInputError, match="unknown session_id"):
        await store.append(session_id, pair(2))
    await store.save_memo(session_id, ContextMemo(kind="summary", through_seq=1, text="x", at=T0))
    assert await store.get(session_id) is None


async def test_recent_sessions_are_listed_newest_activity_first_without_their_turns(
    make_store: StoreFactory,
) -> None:
    clock = FakeClock()
    store = make_store(clock=clock)
    older = await store.create()
    clock.advance(1)
    newer = await store.create()
    clock.advance(1)
    await store.append(older, pair(1), usage=usage("0.01"))

    listed = await store.list_recent(limit=5)

    assert [(s.id, s.turn_count) for s in listed] == [(older, 2), (newer, 0)]
    assert listed[0].usage.cost_usd == Decimal("0.01") and not hasattr(listed[0], "turns")
    assert [s.id for s in await store.list_recent(limit=1)] == [older]


async def test_sessions_expire_after_their_ttl_of_inactivity(make_store: StoreFactory) -> None:
    clock = FakeClock()
    store = make_store(StoreLimits(ttl_s=60), clock=clock)
    idle = await store.create()
    busy = await store.create()
    clock.advance(50)
    await store.append(busy, pair(1))
    info = await store.info(busy)
    clock.advance(20)

    assert info is not None and info.expires_at == clock.now - timedelta(seconds=20) + timedelta(seconds=60)
    assert await store.get(idle) is None
    assert await store.get(busy) is not None
    assert [s.id for s in await store.list_recent()] == [busy]
    with pytest.raises(UserInputError):
        await store.append(idle, pair(2))


async def test_the_least_recently_active_sessions_go_when_there_are_too_many(
    make_store: StoreFactory,
) -> None:
    clock = FakeClock()
    store = make_store(StoreLimits(max_sessions=2), clock=clock)
    first = await store.create()
    clock.advance(1)
    second = await store.create()
    clock.advance(1)
    await store.append(first, pair(1))  # first is now the most recently active
    clock.advance(1)
    third = await store.create()

    assert await store.get(second) is None
    assert {s.id for s in await store.list_recent()} == {first, third}


async def test_the_oldest_turns_are_dropped_beyond_max_turns_and_seq_keeps_counting(
    make_store: StoreFactory,
) -> None:
    store = make_store(StoreLimits(max_turns=4))
    session_id = await store.create()
    for i in range(3):
        await store.append(session_id, pair(i))

    session = await store.get(session_id)

    assert session is not None
    assert [(t.seq, t.content) for t in session.turns] == [(2, "q1"), (3, "a1"), (4, "q2"), (5, "a2")]
    assert session.turn_count == 4 and session.dropped_turns == 2


async def test_an_overlong_message_is_stored_cut_and_marked(make_store: StoreFactory) -> None:
    store = make_store(StoreLimits(max_turn_chars=200))
    session_id = await store.create()
    await store.append(session_id, [Turn(role="user", content="x" * 1000, at=T0)])

    session = await store.get(session_id)

    assert session is not None
    content = session.turns[0].content
    assert len(content) == 200 and content.endswith(CUT_MARK)


async def test_memos_are_cached_replaced_by_kind_and_do_not_count_as_activity(
    make_store: StoreFactory,
) -> None:
    clock = FakeClock()
    store = make_store(clock=clock)
    session_id = await store.create()
    await store.append(session_id, pair(1))
    clock.advance(5)
    for kind, seq, text in [("summary", 1, "old"), ("summary", 3, "new"), ("facts", 1, "- a fact")]:
        await store.save_memo(session_id, ContextMemo(kind=kind, through_seq=seq, text=text, at=T0))

    session = await store.get(session_id)

    assert session is not None
    assert {k: (m.through_seq, m.text) for k, m in session.memos.items()} == {
        "summary": (3, "new"),
        "facts": (1, "- a fact"),
    }
    assert session.updated_at == T0


async def test_fifty_concurrent_appends_to_one_session_all_land_each_exchange_whole(
    make_store: StoreFactory,
) -> None:
    store = make_store()
    session_id = await store.create()

    async def append(i: int) -> None:
        await store.append(session_id, pair(i), usage=usage("0.001"))

    async with anyio.create_task_group() as tg:
        for i in range(50):
            tg.start_soon(append, i)
    session = await store.get(session_id)

    assert session is not None
    contents = [t.content for t in session.turns]
    questions = [c for c in contents if c.startswith("q")]
    # Each exchange is whole: its answer directly follows its question.
    assert contents == [text for q in questions for text in (q, f"a{q[1:]}")]
    assert sorted(int(q[1:]) for q in questions) == list(range(50))
    assert [t.seq for t in session.turns] == list(range(100))
    assert session.usage.calls == 50 and session.usage.cost_usd == Decimal("0.050")


async def test_two_stores_on_the_same_backend_see_the_same_sessions(make_store: StoreFactory) -> None:
    """What a restarted process (SQLite) or another replica (Redis) sees."""
    writer = make_store()
    session_id = await writer.create()
    await writer.append(session_id, pair(1), usage=usage("0.002"))
    await writer.aclose()
    reader = make_store()

    session = await reader.get(session_id)

    assert session is not None and [t.content for t in session.turns] == ["q1", "a1"]
    assert session.usage.cost_usd == Decimal("0.002")
    await reader.append(session_id, pair(2))
    assert (await reader.info(session_id)).turn_count == 4  # type: ignore[union-attr]
