"""Each configured model's price per token, named the way its LLM spans name the model.

A collector that prices spans itself needs these to reach Chorus's totals. Phoenix is one: it ignores the
cost on a span (`llm.cost.*`) and prices every LLM span as its token counts times the price it has for
the span's `llm.model_name` (and `llm.provider`), from its own table. A model priced in Chorus's config,
a local model (free) or a gateway's model id is not in that table, or not at Chorus's price. Told these
prices (`server.ops.phoenix_prices`), Phoenix prices each span as Chorus does.

Chorus prices a call as prompt tokens × the prompt rate + completion tokens × the completion rate
(`strategies.models.providers.pricing`); the rates here are the same ones. What a table by model name
cannot say, and is left out or reported as a conflict:
- a model whose price Chorus does not know (its cost is unknown, never 0: nothing is registered);
- two aliases of one model name and provider at different prices (a collector cannot tell their spans
  apart);
- a long-context tier (a higher rate for every token once a prompt passes 128k or 200k tokens): the
  base rates are registered.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from chorus_mcp.strategies.models.catalog import ModelEntry
from chorus_mcp.strategies.models.providers.pricing import rates
from chorus_mcp.strategies.tracing.attributes import bare_model, provider_of

_MILLION = Decimal(1_000_000)
LOCAL_PREFIX = "local/"
"""The embedded provider's ids: it runs on this machine, and its calls cost exactly 0."""


@dataclass(frozen=True)
class SpanPrice:
    """The price of one model name on LLM spans."""

    model_name: str
    """`llm.model_name` on the model's spans: its id without litellm's provider prefix."""
    provider: str | None
    """`llm.provider` on its spans (None when the id has no provider prefix)."""
    input_per_mtok: Decimal
    output_per_mtok: Decimal
    aliases: tuple[str, ...]
    """The configured aliases with this name, provider and price."""


@dataclass(frozen=True)
class SpanPrices:
    prices: list[SpanPrice]
    unpriced: list[str]
    """Aliases whose price Chorus does not know: their cost is unknown, and left so."""
    conflicts: list[str]
    """One line per model name that aliases price differently (left to the collector's own table)."""


def per_mtok(entry: ModelEntry) -> tuple[Decimal, Decimal] | None:
    """(prompt, completion) USD per million tokens as Chorus charges `entry`'s calls; None when unknown."""
    if entry.model.startswith(LOCAL_PREFIX):
        return Decimal(0), Decimal(0)
    prompt, completion = entry.input_cost_per_mtok, entry.output_cost_per_mtok
    if prompt is None or completion is None:
        mapped = rates(entry.model, 0)
        if mapped is None:
            return None
        prompt = mapped[0] * _MILLION if prompt is None else prompt
        completion = mapped[1] * _MILLION if completion is None else completion
    return prompt.normalize(), completion.normalize()


def span_prices(entries: Mapping[str, ModelEntry]) -> SpanPrices:
    """The prices of the configured models, one per (model name, provider) on their spans."""
    by_name: dict[tuple[str, str | None], dict[tuple[Decimal, Decimal], list[str]]] = {}
    unpriced: list[str] = []
    for alias, entry in sorted(entries.items()):
        price = per_mtok(entry)
        if price is None:
            unpriced.append(alias)
            continue
        key = (bare_model(entry.model), provider_of(entry.model))
        by_name.setdefault(key, {}).setdefault(price, []).append(alias)
    prices: list[SpanPrice] = []
    conflicts: list[str] = []
    for (name, provider), found in sorted(by_name.items(), key=lambda item: (item[0][0], item[0][1] or "")):
        if len(found) > 1:
            shown = "; ".join(
                f"{', '.join(aliases)} at ${p}/${c} per million tokens" for (p, c), aliases in found.items()
            )
            conflicts.append(f"{provider + '/' if provider else ''}{name}: {shown}")
            continue
        ((prompt, completion), aliases), *_ = found.items()
        prices.append(SpanPrice(name, provider, prompt, completion, tuple(aliases)))
    return SpanPrices(prices, unpriced, conflicts)
