"""The price map read as JSON agrees with litellm's own cost calculation."""

from __future__ import annotations

from decimal import Decimal

import pytest

from chorus_mcp.strategies.models.catalog import ModelEntry
from chorus_mcp.strategies.models.providers.litellm_client import load_litellm
from chorus_mcp.strategies.models.providers.pricing import cost_of, model_prices


@pytest.mark.parametrize(
    ("model", "prompt_tokens", "completion_tokens"),
    [
        ("openai/gpt-4o-mini", 1234, 56),
        ("openai/gpt-4.1", 10_000, 2_000),
        ("openai/gpt-5-mini", 300_000, 100),  # above a 272k tier
        ("gemini/gemini-2.5-pro", 10_000, 500),
        ("gemini/gemini-2.5-pro", 250_000, 500),  # above the 200k tier
        ("anthropic/claude-sonnet-4-5", 5_000, 700),
    ],
)
def test_costs_match_litellms_cost_per_token(model: str, prompt_tokens: int, completion_tokens: int) -> None:
    prompt, completion = load_litellm().cost_per_token(
        model=model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
    )

    ours = cost_of(ModelEntry(model=model), prompt_tokens, completion_tokens)

    assert ours is not None
    assert float(ours) == pytest.approx(prompt + completion, rel=1e-9)


@pytest.mark.parametrize("model", ["openrouter/openai/gpt-4o-mini", "openai/house-model"])
def test_a_model_litellm_cannot_price_has_no_price_here_either(model: str) -> None:
    with pytest.raises(Exception, match="isn't mapped"):
        load_litellm().cost_per_token(model=model, prompt_tokens=10, completion_tokens=10)

    assert cost_of(ModelEntry(model=model), 10, 10) is None


def test_a_bare_name_is_found_only_under_its_own_provider() -> None:
    assert model_prices("openai/gpt-4o-mini") is not None
    assert model_prices("gpt-4o-mini") is not None
    assert model_prices("anthropic/gpt-4o-mini") is None
    assert model_prices("openai/no-such-model") is None


def test_overrides_win_and_unknown_usage_costs_unknown() -> None:
    entry = ModelEntry(
        model="openai/gpt-4o-mini", input_cost_per_mtok=Decimal(1), output_cost_per_mtok=Decimal(2)
    )

    assert cost_of(entry, 1_000_000, 1_000_000) == Decimal(3)
    assert cost_of(entry, None, 10) is None
