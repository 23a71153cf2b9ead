"""Telling a Phoenix the prices Chorus charges, so its cost columns add up to Chorus's totals.

Phoenix prices each LLM span itself (token counts × the price of the span's model name, from its model
table) and ignores the cost a span carries. Its supported way to price a model it does not know, or to
price one differently, is a custom model: a name pattern, an optional provider and a price per million
prompt and completion tokens, which wins over the built-in table. This module keeps one custom model per
configured model name, named `chorus: <provider>/<name>`, at the price Chorus uses
(`strategies.tracing.prices`), through Phoenix's GraphQL API: created when missing, updated when the
price changed, left alone when it is right. A custom model someone else made for the same name is theirs:
it is kept and reported.

Phoenix reads its model table every 5 s (`GenerativeModelStore`) and prices a span once, when it arrives:
spans sent right after a price changed would be priced by the old one, so the first export waits for
`SETTLE_S` after a change (see `LocalPhoenix.ready`).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx

from chorus_mcp.strategies.tracing.prices import SpanPrice, SpanPrices

log = logging.getLogger("chorus.phoenix")

NAME_PREFIX = "chorus: "
SETTLE_S = 7.0
"""How long Phoenix may take to use a price it was just given: its model table is re-read every 5 s."""
REQUEST_TIMEOUT_S = 10.0

_MODELS = """
query ChorusModels {
  generativeModels(first: 10000) {
    edges { node { id name provider namePattern kind tokenPrices { tokenType kind costPerMillionTokens } } }
  }
}
"""
_CREATE = """
mutation ChorusCreateModel($input: CreateModelMutationInput!) { createModel(input: $input) { model { id } } }
"""
_UPDATE = """
mutation ChorusUpdateModel($input: UpdateModelMutationInput!) { updateModel(input: $input) { model { id } } }
"""


class PhoenixPricesError(Exception):
    """Phoenix refused or did not answer a request about its model prices."""


@dataclass
class PriceReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    kept_theirs: list[str] = field(default_factory=list)
    """Names priced by a custom model that Chorus did not make (left as it is)."""

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated)


def model_name(price: SpanPrice) -> str:
    return f"{NAME_PREFIX}{price.provider + '/' if price.provider else ''}{price.model_name}"


def name_pattern(price: SpanPrice) -> str:
    """Exactly the span's model name (Phoenix matches its patterns with `re.search`)."""
    return f"^{re.escape(price.model_name)}$"


def register_prices(url: str, prices: SpanPrices) -> PriceReport:
    """Make the custom models of the Phoenix at `url` price `prices` as Chorus does."""
    report = PriceReport()
    with httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT_S) as client:
        existing = _custom_models(client)
        for price in prices.prices:
            name = model_name(price)
            ours = existing.get(("name", name))
            same_pattern = existing.get(("pattern", name_pattern(price), price.provider or ""))
            if same_pattern is not None and same_pattern["name"] != name:
                report.kept_theirs.append(name)
                continue
            wanted = _input(price)
            if ours is None:
                _graphql(client, _CREATE, {"input": wanted})
                report.created.append(name)
            elif _prices_of(ours) != (price.input_per_mtok, price.output_per_mtok) or (
                ours.get("provider") or ""
            ) != (price.provider or ""):
                _graphql(client, _UPDATE, {"input": {"id": ours["id"], **wanted, "startTime": None}})
                report.updated.append(name)
            else:
                report.unchanged.append(name)
    return report


def _input(price: SpanPrice) -> dict[str, Any]:
    return {
        "name": model_name(price),
        "provider": price.provider,
        "namePattern": name_pattern(price),
        "costs": [
            {"tokenType": "input", "kind": "PROMPT", "costPerMillionTokens": float(price.input_per_mtok)},
            {
                "tokenType": "output",
                "kind": "COMPLETION",
                "costPerMillionTokens": float(price.output_per_mtok),
            },
        ],
    }


def _custom_models(client: httpx.Client) -> dict[tuple[str, ...], dict[str, Any]]:
    """Phoenix's custom models, by ("name", name) and by ("pattern", pattern, provider)."""
    data = _graphql(client, _MODELS, {})
    found: dict[tuple[str, ...], dict[str, Any]] = {}
    for edge in data["generativeModels"]["edges"]:
        node = edge["node"]
        if node.get("kind") != "CUSTOM":
            continue
        found[("name", node["name"])] = node
        found[("pattern", node["namePattern"], node.get("provider") or "")] = node
    return found


def _prices_of(node: dict[str, Any]) -> tuple[Decimal | None, Decimal | None]:
    by_type = {p["tokenType"]: p["costPerMillionTokens"] for p in node.get("tokenPrices") or []}

    def rate(token_type: str) -> Decimal | None:
        value = by_type.get(token_type)
        return None if value is None else Decimal(str(value)).normalize()

    return rate("input"), rate("output")


def _graphql(client: httpx.Client, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    try:
        response = client.post("/graphql", json={"query": query, "variables": variables})
    except httpx.HTTPError as exc:
        raise PhoenixPricesError(f"Phoenix did not answer at {client.base_url}: {exc}") from exc
    if response.status_code != 200:
        raise PhoenixPricesError(f"Phoenix answered HTTP {response.status_code}: {response.text[:200]}")
    try:
        body = response.json()
    except ValueError as exc:
        raise PhoenixPricesError("Phoenix's answer is not JSON") from exc
    errors = body.get("errors") if isinstance(body, dict) else None
    if errors:
        messages = "; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors)
        raise PhoenixPricesError(f"Phoenix refused: {messages}")
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        raise PhoenixPricesError("Phoenix's answer has no data")
    return data
