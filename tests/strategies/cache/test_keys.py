"""What identifies a cached answer: everything that changes the answer, and nothing that does not."""

from __future__ import annotations

from typing import Any

from chorus_mcp.strategies.cache.keys import cache_key
from chorus_mcp.strategies.core.completion import CompletionRequest

SCHEMA: dict[str, Any] = {"type": "object", "properties": {"approved": {"type": "boolean"}}}


def _key(**settings: Any) -> tuple[str, str]:
    found = cache_key("openai/m", None, CompletionRequest.of("Q", temperature=0.7, **settings))
    return found.key, found.bucket


def test_a_seeded_sample_never_shares_a_key_with_another_seed_or_an_unseeded_call() -> None:
    keys = {_key(seed=1), _key(seed=2), _key()}

    assert len({key for key, _ in keys}) == 3
    assert len({bucket for _, bucket in keys}) == 3  # nor a semantic neighbourhood
    assert _key(seed=1) == _key(seed=1)


def test_a_structured_request_never_shares_a_key_with_a_free_one_or_another_schema() -> None:
    other = {**SCHEMA, "required": ["approved"]}

    keys = {_key(response_schema=SCHEMA), _key(response_schema=other), _key()}

    assert len({key for key, _ in keys}) == 3
    assert len({bucket for _, bucket in keys}) == 3
    # The same schema written in another key order is the same request.
    assert _key(response_schema=dict(reversed(list(SCHEMA.items())))) == _key(response_schema=SCHEMA)


def test_the_time_out_is_not_part_of_the_key() -> None:
    assert _key(seed=1, timeout_s=3) == _key(seed=1, timeout_s=30)


def test_a_reasoning_effort_never_shares_a_key_with_another_effort_or_none() -> None:
    keys = {_key(reasoning_effort="low"), _key(reasoning_effort="high"), _key()}

    assert len({key for key, _ in keys}) == 3
    assert len({bucket for _, bucket in keys}) == 3
