"""Every backend: sessions have an owner and grants, listings are per principal, eviction per owner."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import anyio
import pytest

from chorus_mcp.strategies.sessions.ownership import LOCAL, LOCAL_USER, Principal
from chorus_mcp.strategies.sessions.session import StoreLimits, Turn, utc_now
from chorus_mcp.strategies.sessions.stores.sqlite import SqliteSessionStore
from tests.strategies.sessions.stores.conftest import StoreFactory

pytestmark = pytest.mark.anyio

ALICE = Principal("alice")
BOB = Principal("bob", teams=frozenset({"eng"}))
CAROL = Principal("carol")
ADMIN = Principal("ops", admin=True)


async def ids(store: object, viewer: Principal | None, limit: int = 50) -> list[str]:
    found = await store.list_recent(limit, viewer=viewer)  # type: ignore[attr-defined]
    return [info.id for info in found]


async def test_owner_and_grants_are_stored_with_the_session(make_store: StoreFactory) -> None:
    store = make_store()
    session_id = await store.create(owner="alice", grants=["bob", "team:eng"])

    session = await store.get(session_id)
    info = await store.info(session_id)

    assert session is not None and info is not None
    assert (session.owner, session.grants) == ("alice", ["bob", "team:eng"])
    assert (info.owner, info.grants) == ("alice", ["bob", "team:eng"])
    assert session.readable_by(BOB) and not session.readable_by(CAROL)


async def test_a_session_created_without_an_owner_is_the_local_users(make_store: StoreFactory) -> None:
    store = make_store()
    session_id = await store.create()

    info = await store.info(session_id)

    assert info is not None and info.owner == LOCAL
    assert info.readable_by(LOCAL_USER) and not info.readable_by(ALICE)


async def test_a_listing_shows_a_principal_its_own_and_its_granted_sessions_only(
    make_store: StoreFactory,
) -> None:
    store = make_store()
    mine = await store.create(owner="alice")
    await anyio.sleep(0.002)
    shared = await store.create(owner="alice", grants=["carol"])
    await anyio.sleep(0.002)
    teams = await store.create(owner="alice", grants=["team:eng"])
    await anyio.sleep(0.002)
    bobs = await store.create(owner="bob")

    assert await ids(store, ALICE) == [teams, shared, mine]
    assert await ids(store, BOB) == [bobs, teams]
    assert await ids(store, CAROL) == [shared]
    assert await ids(store, ADMIN) == [bobs, teams, shared, mine]
    assert await ids(store, None) == [bobs, teams, shared, mine]
    assert await ids(store, Principal("nobody")) == []


async def test_a_principals_listing_is_ordered_by_activity_and_limited(make_store: StoreFactory) -> None:
    store = make_store()
    first = await store.create(owner="alice")
    await anyio.sleep(0.002)
    second = await store.create(owner="alice")
    await anyio.sleep(0.002)
    await store.append(first, [Turn(role="user", content="again", at=utc_now())])

    assert await ids(store, ALICE) == [first, second]
    assert await ids(store, ALICE, limit=1) == [first]


async def test_one_owner_past_its_cap_loses_its_own_oldest_sessions_never_anothers(
    make_store: StoreFactory,
) -> None:
    store = make_store(StoreLimits(max_sessions=100, max_sessions_per_owner=3))
    bobs = await store.create(owner="bob")
    flood = []
    for _ in range(6):
        await anyio.sleep(0.002)
        flood.append(await store.create(owner="alice"))

    assert await store.get(bobs) is not None
    assert await ids(store, ALICE) == flood[:2:-1]
    for gone in flood[:3]:
        assert await store.get(gone) is None


async def test_a_version_1_sqlite_file_migrates_its_sessions_to_the_local_user(tmp_path: Path) -> None:
    path = tmp_path / "sessions.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.executescript(
            """
            CREATE TABLE sessions (id TEXT PRIMARY KEY, created_at REAL NOT NULL, updated_at REAL NOT NULL,
                max_cost_usd TEXT, next_seq INTEGER NOT NULL DEFAULT 0, dropped INTEGER NOT NULL DEFAULT 0,
                usage TEXT NOT NULL, memos TEXT NOT NULL DEFAULT '{}');
            CREATE TABLE turns (session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
                seq INTEGER NOT NULL, data TEXT NOT NULL, PRIMARY KEY (session_id, seq)) WITHOUT ROWID;
            PRAGMA user_version=1;
            """
        )
        now = utc_now().timestamp()
        conn.execute(
            "INSERT INTO sessions (id, created_at, updated_at, usage) VALUES (?, ?, ?, ?)",
            ("old-session-0123456789", now, now, '{"calls": 0}'),
        )
    store = SqliteSessionStore(path)
    try:
        info = await store.info("old-session-0123456789")
        assert info is not None and info.owner == LOCAL and info.grants == []
        assert await ids(store, LOCAL_USER) == ["old-session-0123456789"]
        assert await ids(store, ALICE) == []
        created = await store.create(owner="alice")
        assert await ids(store, ALICE) == [created]
    finally:
        await store.aclose()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (2,)


async def test_a_redis_session_stored_before_ownership_is_listed_for_the_local_user(
    make_store: StoreFactory,
) -> None:
    if make_store.backend != "redis":
        pytest.skip("a Redis hash without owner fields is the Redis upgrade path")
    store = make_store()
    session_id = await store.create(owner=LOCAL)
    redis = store.redis  # type: ignore[attr-defined]
    key = f"{make_store.prefix}session:{session_id}"  # type: ignore[attr-defined]
    await redis.hdel(key, "owner", "grants", "indexes")
    await redis.delete(store._owned(LOCAL))  # type: ignore[attr-defined]

    assert await ids(store, LOCAL_USER) == [session_id]
    assert await ids(store, ALICE) == []
    await store.append(session_id, [Turn(role="user", content="still works", at=utc_now())])
    info = await store.info(session_id)
    assert info is not None and info.owner == LOCAL and info.turn_count == 1
