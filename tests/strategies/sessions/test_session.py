from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from chorus_mcp.config.loader import describe_validation_error
from chorus_mcp.strategies.core.completion import CompletionRequest
from chorus_mcp.strategies.core.errors import ConfigError, UserInputError
from chorus_mcp.strategies.core.result import StrategyResult, compute_totals
from chorus_mcp.strategies.core.spec import RouteSpec
from chorus_mcp.strategies.engine.testing import context_of
from chorus_mcp.strategies.kinds.routing import run_route
from chorus_mcp.strategies.models.testing import ScriptedClient
from chorus_mcp.strategies.sessions.session import (
    SessionSettings,
    SessionStore,
    new_session_id,
    remember,
    usage_of,
    validate_session_id,
    with_history,
)
from chorus_mcp.strategies.sessions.stores import default_sqlite_path, open_session_store
from chorus_mcp.strategies.sessions.stores.memory import MemorySessionStore
from chorus_mcp.strategies.sessions.stores.sqlite import SqliteSessionStore

pytestmark = pytest.mark.anyio


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


async def test_remember_records_the_exchange_with_its_cost_and_charges_the_session() -> None:
    store = MemorySessionStore()
    session_id = await store.create()
    ctx = context_of(ScriptedClient("m", "Paris."))
    spec = RouteSpec.model_validate({"routes": [{"name": "r", "target": "m"}], "default": "r"})
    request = CompletionRequest.of("Capital of France?")
    result = await run_route(spec, request, ctx, "route")
    result.totals = compute_totals(result.calls, 0.1)

    await remember(store, session_id, request, result, usage_of(result))
    failed = StrategyResult(strategy="route", ok=False, answer=None)
    await store.append(session_id, [], usage=usage_of(failed))
    session = await store.get(session_id)

    assert session is not None
    answer = session.turns[1]
    assert (answer.model, answer.strategy) == ("m", "route")
    assert answer.usage is not None and answer.usage.cost_usd == Decimal("0.001")
    assert session.usage.calls == 1 and session.usage.cost_usd == Decimal("0.001")


@pytest.mark.parametrize(
    "store", ["sqlite", "memory", "redis", "redis://127.0.0.1:6379/0", "rediss://h:1", "unix:///r.sock"]
)
def test_the_store_setting_accepts_the_named_backends_and_redis_urls(store: str) -> None:
    assert SessionSettings(store=store).store == store


def test_a_bad_store_setting_names_the_field_without_echoing_the_value() -> None:
    secret_url = "postgres://user:hunter2-secret@db/x"
    with pytest.raises(ValidationError) as caught:
        SessionSettings.model_validate({"store": secret_url})
    message = describe_validation_error(caught.value, "c.yaml")

    assert "store: expected 'sqlite'" in message and "hunter2" not in message


def test_the_default_store_is_sqlite_in_the_user_data_directory() -> None:
    store = open_session_store(SessionSettings())

    assert isinstance(store, SqliteSessionStore)
    assert store.path == default_sqlite_path() and store.path.parent.name == "chorus-mcp"


def test_the_sqlite_path_is_configurable(tmp_path: Path) -> None:
    store = open_session_store(SessionSettings(sqlite_path=str(tmp_path / "s.db")))

    assert isinstance(store, SqliteSessionStore) and store.path == tmp_path / "s.db"


def test_store_redis_reads_the_url_from_the_named_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHORUS_TEST_UNSET_REDIS", raising=False)
    with pytest.raises(ConfigError, match="CHORUS_TEST_UNSET_REDIS"):
        open_session_store(SessionSettings(store="redis", redis_url_env="CHORUS_TEST_UNSET_REDIS"))


def test_without_the_redis_package_sqlite_works_and_a_redis_store_says_which_extra_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in [n for n in sys.modules if n == "redis" or n.startswith("redis.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.delitem(sys.modules, "chorus_mcp.strategies.sessions.stores.redis", raising=False)
    monkeypatch.setitem(sys.modules, "redis", None)  # `import redis` now fails, as when it is not installed

    store = open_session_store(SessionSettings(sqlite_path=str(tmp_path / "s.db")))
    with pytest.raises(ConfigError, match=r"pip install 'chorus-mcp\[redis\]'"):
        open_session_store(SessionSettings(store="redis://127.0.0.1:6379/0"))

    assert isinstance(store, SqliteSessionStore)
