"""The prices a collector that prices spans by model name is given: the ones Chorus charges, named as the
spans name the model, and nothing made up where Chorus does not know a price."""

from __future__ import annotations

from decimal import Decimal

from chorus_mcp.strategies.models.catalog import ModelEntry
from chorus_mcp.strategies.models.providers.pricing import cost_of
from chorus_mcp.strategies.tracing.prices import SpanPrice, per_mtok, span_prices

MILLION = 1_000_000


def test_each_price_is_what_chorus_charges_for_a_million_tokens_of_that_model() -> None:
    entries = {
        "priced": ModelEntry(
            model="openai/alpha", input_cost_per_mtok=Decimal(1), output_cost_per_mtok=Decimal(2)
        ),
        "listed": ModelEntry(model="openai/gpt-4o-mini"),
        "half": ModelEntry(model="openai/gpt-4o-mini-2024-07-18", output_cost_per_mtok=Decimal("0.5")),
        "gateway": ModelEntry(
            model="openrouter/anthropic/claude-x",
            input_cost_per_mtok=Decimal(3),
            output_cost_per_mtok=Decimal(15),
        ),
    }
    for entry in entries.values():
        prompt, completion = per_mtok(entry) or (None, None)
        assert prompt == cost_of(entry, MILLION, 0)
        assert completion == cost_of(entry, 0, MILLION)

    prices = {(p.provider, p.model_name): p for p in span_prices(entries).prices}
    assert prices[("openai", "alpha")] == SpanPrice("alpha", "openai", Decimal(1), Decimal(2), ("priced",))
    # A gateway's model is named on its spans without the gateway's prefix; the gateway is the provider.
    assert prices[("openrouter", "anthropic/claude-x")].input_per_mtok == Decimal(3)
    assert prices[("openai", "gpt-4o-mini-2024-07-18")].output_per_mtok == Decimal("0.5")


def test_a_local_model_is_free_and_a_model_of_unknown_price_is_not_priced_at_all() -> None:
    found = span_prices(
        {"tiny": ModelEntry(model="local/smollm2"), "mystery": ModelEntry(model="openai/not-a-listed-model")}
    )

    assert found.prices == [SpanPrice("smollm2", "local", Decimal(0), Decimal(0), ("tiny",))]
    assert found.unpriced == ["mystery"]  # unknown stays unknown: never a made-up 0


def test_one_model_name_at_two_prices_is_a_conflict_not_a_guess() -> None:
    cheap = ModelEntry(model="openai/qwen", input_cost_per_mtok=Decimal(0), output_cost_per_mtok=Decimal(0))
    dear = ModelEntry(model="openai/qwen", input_cost_per_mtok=Decimal(1), output_cost_per_mtok=Decimal(1))
    same = ModelEntry(model="openai/qwen", input_cost_per_mtok=Decimal(0), output_cost_per_mtok=Decimal(0))

    found = span_prices({"home": cheap, "cloud": dear, "home-2": same})

    assert found.prices == []
    assert found.conflicts == [
        "openai/qwen: cloud at $1/$1 per million tokens; home, home-2 at $0/$0 per million tokens"
    ]
    assert span_prices({"home": cheap, "home-2": same}).prices[0].aliases == ("home", "home-2")
