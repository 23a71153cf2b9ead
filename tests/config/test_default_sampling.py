"""The bundled default and MCP sampling (deprecated in protocol 2026-07-28): the `client` seat is kept
for clients that still offer it, and nothing in the default depends on it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import pytest
from mcp import Client
from pydantic import BaseModel

from chorus_mcp.config.loader import load_config
from chorus_mcp.server.app import build_server
from chorus_mcp.strategies.core.spec import ModelStep
from chorus_mcp.strategies.models.availability import Endpoint, check_models, provider_client, use_available
from chorus_mcp.strategies.models.sampling import is_sampling_model
from chorus_mcp.strategies.models.testing import ScriptedClient

pytestmark = pytest.mark.anyio


def _nothing_local(url: str) -> Endpoint:
    return Endpoint(None, "nothing answers")


def test_every_default_model_that_may_sample_has_a_model_after_it_that_does_not() -> None:
    config = load_config(None)
    sampling = {alias for alias, entry in config.models.items() if is_sampling_model(entry.model)}
    assert sampling == {"client"}
    for alias, entry in config.models.items():
        chain = [alias, *entry.fallbacks]
        if "client" in chain:
            after = chain[chain.index("client") + 1 :] or config.models["client"].fallbacks
            assert any(name not in sampling for name in after), (alias, chain)


def test_with_one_hosted_key_every_seat_of_the_clients_model_falls_back_to_a_hosted_one() -> None:
    config = load_config(None)
    statuses = check_models(config.models, env={"OPENAI_API_KEY": "sk-test"}, probe=_nothing_local)
    steered, _ = use_available(config, statuses)
    seats = [step for step in _model_steps(steered.strategies.values()) if step.model == "client"]
    assert seats  # the ensembles keep their members distinct with it, where the client offers sampling
    assert all(step.fallbacks and step.fallbacks[0] in ("fast", "strong") for step in seats)


async def test_every_default_tool_answers_for_a_client_that_offers_no_sampling() -> None:
    config = load_config(None)
    statuses = check_models(config.models, env={"OPENAI_API_KEY": "sk-test"}, probe=_nothing_local)
    steered, _ = use_available(config, statuses)
    # One answer for every role: a choice, a confidence (the cascade), a verdict (the pipeline's review).
    answer = 'B\nConfidence: 95%\n{"approved": true, "issues": []}'
    answers = {"fast": answer, "strong": answer}

    def factory(alias: str, entry: Any) -> Any:
        if is_sampling_model(entry.model):
            return provider_client(alias, entry)  # the real one: it asks the calling client
        return ScriptedClient(alias, answers.get(alias, answer))

    calls = {
        "ensemble_vote": {"prompt": "A) x B) y?"},
        "cascade_ask": {"prompt": "A) x B) y?"},
        "route_specialist": {"prompt": "hello"},
        "run_pipeline": {"input": "say B"},
    }
    async with Client(build_server(steered, factory)) as client:  # the SDK client offers no sampling
        for tool, arguments in calls.items():
            result = await client.call_tool(tool, arguments)
            assert not result.is_error, (tool, result.content)
            records = (result.structured_content or {})["calls"]
            assert all(r["model"] != "client" for r in records if r["status"] == "ok"), (tool, records)
            for record in records:
                if record["model"] == "client":
                    assert record["status"] == "error" and "does not offer sampling" in record["error"]


def _model_steps(steps: Iterable[object]) -> Iterator[ModelStep]:
    for step in steps:
        if isinstance(step, ModelStep):
            yield step
        elif isinstance(step, BaseModel):
            for value in step.__dict__.values():
                yield from _model_steps(value if isinstance(value, list) else [value])
