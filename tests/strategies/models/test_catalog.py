"""What a configured model can do: the config wins over litellm's model map, every figure names its source,
and a model the map does not know is said to be unknown rather than guessed."""

from __future__ import annotations

from decimal import Decimal

from chorus_mcp.strategies.models.catalog import (
    EMBEDDED_CONTEXT_TOKENS,
    ModelCatalog,
    ModelEntry,
    capabilities,
    map_version_text,
)
from chorus_mcp.strategies.models.testing import ScriptedClient


def test_a_mapped_model_gets_every_figure_from_the_map() -> None:
    facts = capabilities(ModelEntry(model="openai/gpt-4o-mini"))

    assert facts.known_to_map and facts.note is None
    assert (facts.context_window, facts.max_output) == (128_000, 16_384)
    assert facts.supports == ["vision", "tools"]
    assert (facts.input_usd_per_mtok, facts.output_usd_per_mtok) == (Decimal("0.15"), Decimal("0.6"))
    assert set(facts.sources.values()) == {"model map"}
    assert facts.map_version == map_version_text()
    assert facts.listing()["facts_from"] == "model map"


def test_configured_prices_output_and_window_win_over_the_map_and_say_so() -> None:
    entry = ModelEntry(
        model="openai/gpt-4o-mini",
        input_cost_per_mtok=Decimal(1),
        max_output_tokens=300,
        vision=False,
    )

    facts = capabilities(entry, window=32_000)

    assert facts.input_usd_per_mtok == Decimal(1) and facts.sources["input_usd_per_mtok"] == "config"
    assert facts.output_usd_per_mtok == Decimal("0.6") and facts.sources["output_usd_per_mtok"] == "model map"
    assert facts.max_output == 300 and facts.sources["max_output"] == "config"
    assert facts.context_window == 32_000 and facts.sources["context_window"] == "config"
    assert facts.vision is False and facts.sources["vision"] == "config"
    assert facts.provenance() == "model map; config: context_window, vision, price, max_output"


def test_the_default_max_output_is_an_estimate_not_a_fact() -> None:
    facts = capabilities(ModelEntry(model="openai/gpt-4o-mini"))

    assert facts.max_output == 16_384 and facts.sources["max_output"] == "model map"


def test_a_model_the_map_does_not_know_is_listed_as_unknown_with_no_guessed_figure() -> None:
    facts = capabilities(ModelEntry(model="openai/llama3.2", api_base="http://127.0.0.1:11434/v1"))

    assert facts.known_to_map is False
    assert facts.note == "unknown to the map"
    assert facts.context_window is facts.max_output is facts.vision is facts.reasoning is None
    assert facts.input_usd_per_mtok is None and facts.map_version is None
    assert facts.listing() == {"facts_from": "unknown to the map"}


def test_a_name_that_only_resembles_a_mapped_model_is_not_matched() -> None:
    # The map knows gpt-4o-mini under OpenAI; under another provider it is a different model.
    assert capabilities(ModelEntry(model="anthropic/gpt-4o-mini")).note == "unknown to the map"


def test_an_embedded_model_has_its_runtimes_facts_and_costs_nothing() -> None:
    facts = capabilities(ModelEntry(model="local/qwen2.5-coder-1.5b", max_output_tokens=256))

    assert facts.context_window == EMBEDDED_CONTEXT_TOKENS
    assert facts.max_output == 256 and facts.sources["max_output"] == "config"
    assert facts.supports == []
    assert facts.input_usd_per_mtok == facts.output_usd_per_mtok == Decimal(0)
    assert facts.sources["context_window"] == "embedded model"
    assert facts.listing()["facts_from"] == "embedded model; config: max_output"


def test_the_clients_own_model_is_known_only_to_the_client() -> None:
    facts = capabilities(ModelEntry(model="mcp/sampling"))

    assert facts.known_to_map is False and facts.context_window is None
    assert facts.note is not None and "client" in facts.note


def test_the_catalog_answers_for_an_alias_with_its_configured_window() -> None:
    entries = {"small": ModelEntry(model="openai/gpt-4o-mini")}
    catalog = ModelCatalog(entries, lambda name, _e: ScriptedClient(name, ["x"]), windows={"small": 8_000})

    assert catalog.capabilities("small").context_window == 8_000
    assert catalog.capabilities("openai/o3-mini").reasoning is True  # a raw provider id, when allowed
    assert catalog.wrapped(lambda _n, _e, client: client).capabilities("small").context_window == 8_000


def test_the_map_version_names_litellm_and_the_files_revision() -> None:
    text = map_version_text()

    assert text is not None and text.startswith("litellm ") and "(map " in text
