"""The response cache between tenants: answers are kept per principal (or team), per credential, and a
model whose key variable is unset never answers from the cache."""

from __future__ import annotations

import pytest

from chorus_mcp.strategies.cache.response_cache import ResponseCache
from chorus_mcp.strategies.cache.settings import CacheSettings
from chorus_mcp.strategies.cache.stores.memory import MemoryCacheStore
from chorus_mcp.strategies.core.completion import Completion, CompletionRequest
from chorus_mcp.strategies.models.catalog import ModelEntry
from chorus_mcp.strategies.sessions.ownership import Principal, acting_as

pytestmark = pytest.mark.anyio

PROMPT = CompletionRequest.of("What did alice ask?")
ALICE = Principal("alice", teams=frozenset({"eng"}))
BOB = Principal("bob", teams=frozenset({"eng"}))
CAROL = Principal("carol")
KEY_ENV = "CHORUS_TENANCY_TEST_KEY"


def entry(api_key_env: str = KEY_ENV) -> ModelEntry:
    return ModelEntry(model="openai/m", api_base="http://127.0.0.1:9/v1", api_key_env=api_key_env)


def cache(scope: str = "principal") -> ResponseCache:
    return ResponseCache(CacheSettings(scope=scope), MemoryCacheStore())  # type: ignore[arg-type]


async def store_as(responses: ResponseCache, who: Principal, model: ModelEntry) -> None:
    with acting_as(who):
        lookup = await responses.lookup(model, PROMPT)
        assert lookup.status == "miss"
        await responses.save(lookup, Completion(text="alice's answer", model="openai/m"))


async def status_for(responses: ResponseCache, who: Principal, model: ModelEntry) -> str:
    with acting_as(who):
        return (await responses.lookup(model, PROMPT)).status


@pytest.fixture(autouse=True)
def _key_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-tenancy-0123456789")


async def test_by_default_a_client_never_gets_another_clients_cached_answer() -> None:
    responses = cache()
    await store_as(responses, ALICE, entry())

    assert await status_for(responses, ALICE, entry()) == "hit"
    assert await status_for(responses, BOB, entry()) == "miss"
    assert await status_for(responses, CAROL, entry()) == "miss"


async def test_with_team_scope_members_share_answers_and_others_do_not() -> None:
    responses = cache("team")
    await store_as(responses, ALICE, entry())

    assert await status_for(responses, BOB, entry()) == "hit"
    assert await status_for(responses, CAROL, entry()) == "miss"


async def test_with_shared_scope_every_client_shares_answers() -> None:
    responses = cache("shared")
    await store_as(responses, ALICE, entry())

    assert await status_for(responses, CAROL, entry()) == "hit"


async def test_an_answer_paid_with_one_key_variable_is_not_served_to_a_model_keyed_by_another(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CHORUS_TENANCY_OTHER_KEY", "sk-other-0123456789")
    responses = cache()
    await store_as(responses, ALICE, entry())

    assert await status_for(responses, ALICE, entry(api_key_env="CHORUS_TENANCY_OTHER_KEY")) == "miss"


async def test_a_model_whose_key_variable_is_unset_does_not_answer_from_the_cache(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    responses = cache()
    await store_as(responses, ALICE, entry())
    monkeypatch.delenv(KEY_ENV)

    assert await status_for(responses, ALICE, entry()) == "no_key"
