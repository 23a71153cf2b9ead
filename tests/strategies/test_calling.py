from __future__ import annotations

import pytest

from strategies.calling import run_model
from strategies.completion import CompletionRequest
from strategies.errors import ProviderServerError
from strategies.spec import ModelStep
from tests.fakes import ScriptedClient, context_of

pytestmark = pytest.mark.anyio


async def test_a_failing_model_falls_back_to_the_next_in_its_chain_and_says_why() -> None:
    broken = ScriptedClient("primary", ProviderServerError("primary", "HTTP 500 from provider", 500))
    healthy = ScriptedClient("backup", "42")
    ctx = context_of(broken, healthy, fallbacks={"primary": ["backup"]})

    outcome = await run_model(ModelStep(model="primary"), CompletionRequest.of("6*7?"), ctx, "model")

    assert outcome.result.ok and outcome.result.answer == "42"
    assert [(c.model, c.status) for c in outcome.result.calls] == [
        ("primary", "error"),
        ("primary", "error"),
        ("primary", "error"),
        ("backup", "ok"),
    ]
    assert "attempt 1, retrying in" in (outcome.result.calls[0].error or "")
    fallback = outcome.result.decisions[0]
    assert fallback.kind == "fallback" and fallback.to_model == "backup" and "500" in fallback.reason


async def test_when_every_model_fails_the_error_names_each_model_and_reason() -> None:
    a = ScriptedClient("a", ProviderServerError("a", "HTTP 503", 503))
    b = ScriptedClient("b", "late", delay_s=5)
    ctx = context_of(a, b, deadline_s=0.2)

    outcome = await run_model(ModelStep(model="a", fallbacks=["b"]), CompletionRequest.of("q"), ctx, "model")

    assert not outcome.result.ok and outcome.result.answer is None
    assert outcome.result.error is not None
    assert "a (error)" in outcome.result.error and "b (timeout)" in outcome.result.error
