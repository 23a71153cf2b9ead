"""The task store on every backend: a task written is read back (in another store object too, as after a
restart), an expired one is gone, an unknown one is None."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chorus_mcp.strategies.sessions.session import SessionSettings
from chorus_mcp.strategies.sessions.tasks import TaskRecord, open_task_store
from tests.strategies.sessions.stores.backends import delete_prefix, fresh_prefix, redis_url_or_skip

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["sqlite", "redis"])
async def settings(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SessionSettings]:
    if request.param == "sqlite":
        yield SessionSettings(store="sqlite", sqlite_path=str(tmp_path / "sessions.sqlite3"))
        return
    url, prefix = redis_url_or_skip(), fresh_prefix()
    try:
        yield SessionSettings(store=url, key_prefix=prefix)
    finally:
        delete_prefix(url, prefix)


def _record(task_id: str, **fields: object) -> TaskRecord:
    now = time.time()
    base: dict[str, object] = {"owner": "local", "tool": "run_pipeline", "created_at": now, "updated_at": now}
    return TaskRecord.model_validate({"task_id": task_id, **base, **fields})


async def test_a_finished_task_is_read_back_by_a_new_store_as_after_a_restart(
    settings: SessionSettings,
) -> None:
    result = {"content": [{"type": "text", "text": "B"}], "isError": False}
    first = open_task_store(settings)
    await first.put(_record("t1", ttl_s=600))
    await first.put(_record("t1", ttl_s=600, status="completed", result=result))
    await first.aclose()

    second = open_task_store(settings)
    try:
        found = await second.get("t1")
        assert found is not None and found.status == "completed" and found.result == result
        assert await second.get("unknown") is None
    finally:
        await second.aclose()


async def test_an_expired_task_is_gone(settings: SessionSettings) -> None:
    store = open_task_store(settings)
    try:
        await store.put(_record("old", ttl_s=1, created_at=time.time() - 10))
        assert await store.get("old") is None
    finally:
        await store.aclose()


async def test_the_memory_store_keeps_tasks_for_its_process() -> None:
    store = open_task_store(SessionSettings(store="memory"))
    await store.put(_record("m1"))
    found = await store.get("m1")
    assert found is not None and found.status == "working"
