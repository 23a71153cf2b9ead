"""Every backend: a page of a session's turns (the latest N, or the N before a seq) is read alone."""

from __future__ import annotations

import pytest

from chorus_mcp.strategies.sessions.session import StoreLimits, Turn, utc_now
from tests.strategies.sessions.stores.conftest import StoreFactory

pytestmark = pytest.mark.anyio


def turns(n: int) -> list[Turn]:
    return [Turn(role="user", content=f"t{i}", at=utc_now()) for i in range(n)]


async def seqs(make_store: StoreFactory, **window: int) -> list[int | None]:
    store = make_store(StoreLimits(max_turns=8))
    session_id = await store.create(turns=turns(10))  # seq 0-1 dropped by max_turns: 2..9 kept
    session = await store.get(session_id, **window)
    assert session is not None and session.turn_count == 8
    return [t.seq for t in session.turns]


async def test_without_a_window_every_kept_turn_is_read(make_store: StoreFactory) -> None:
    assert await seqs(make_store) == list(range(2, 10))


async def test_latest_reads_only_the_last_turns(make_store: StoreFactory) -> None:
    assert await seqs(make_store, latest=3) == [7, 8, 9]


async def test_before_reads_the_turns_below_a_seq(make_store: StoreFactory) -> None:
    assert await seqs(make_store, latest=3, before=7) == [4, 5, 6]
    assert await seqs(make_store, before=5) == [2, 3, 4]


async def test_a_window_past_the_oldest_kept_turn_is_short_or_empty(make_store: StoreFactory) -> None:
    assert await seqs(make_store, latest=5, before=4) == [2, 3]
    assert await seqs(make_store, latest=5, before=2) == []
    assert await seqs(make_store, latest=0) == []
