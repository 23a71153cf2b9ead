"""The models a server knows: aliases from config, their settings, and the clients that call them."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from chorus_mcp.strategies.core.errors import UserInputError
from chorus_mcp.strategies.models.client import ModelClient


class ModelEntry(BaseModel):
    """How to reach one model, as configured under `models.<alias>`."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1)
    """The provider's model id in litellm form, e.g. `openai/gpt-4o-mini` or `anthropic/claude-sonnet-4-5`."""
    api_base: str | None = None
    """Endpoint override (a local OpenAI-compatible server, a proxy)."""
    api_key_env: str | None = None
    """Name of the environment variable holding the key; the key itself never appears in config."""
    protocol: Literal["auto", "openai", "litellm"] = "auto"
    """How the provider is reached. `openai`: Chorus's own OpenAI-compatible client (fast; needs an
    `api_base` unless the id starts with `openai/` or `openrouter/`); `litellm`: through litellm;
    `auto`: `openai` for `openai/` and `openrouter/` ids, `litellm` for every other provider."""
    timeout_s: float = Field(default=60.0, gt=0)
    input_cost_per_mtok: Decimal | None = Field(default=None, ge=0)
    """Price override in USD per million prompt tokens (otherwise litellm's price map)."""
    output_cost_per_mtok: Decimal | None = Field(default=None, ge=0)
    weight: float = Field(default=1.0, gt=0)
    """Vote weight in weighted-majority ensembles."""
    fallbacks: list[str] = Field(default_factory=list)
    """Models tried in order when this one fails, wherever it is used."""
    context_fallback: str | None = None
    """A larger-context model to use when a prompt does not fit this one (instead of retrying)."""
    max_output_tokens: int = Field(default=1024, gt=0)
    """Assumed output length for a pre-call cost estimate when the request sets no `max_tokens`."""
    tags: list[str] = Field(default_factory=list)
    description: str | None = None

    @model_validator(mode="after")
    def _openai_protocol_has_an_endpoint(self) -> ModelEntry:
        provider = self.model.split("/")[0]
        if self.protocol == "openai" and not self.api_base and provider not in ("openai", "openrouter"):
            raise ValueError("protocol: openai needs an api_base for ids not starting openai/ or openrouter/")
        return self

    def missing_key(self) -> str | None:
        """The environment variable this model needs but that is not set, if any."""
        if self.api_key_env and not os.environ.get(self.api_key_env):
            return self.api_key_env
        return None


ClientFactory = Callable[[str, ModelEntry], ModelClient]
"""Builds the client for (alias, entry). The server uses litellm; tests pass fakes."""


class ModelCatalog:
    """Resolves a model name used in a spec (an alias, or a raw provider id when allowed) to a client."""

    def __init__(
        self,
        entries: Mapping[str, ModelEntry],
        factory: ClientFactory,
        *,
        allow_unlisted: bool = True,
    ) -> None:
        self._entries = dict(entries)
        self._factory = factory
        self._allow_unlisted = allow_unlisted
        self._clients: dict[str, ModelClient] = {}

    @property
    def aliases(self) -> list[str]:
        return sorted(self._entries)

    def entry(self, name: str) -> ModelEntry:
        entry = self._entries.get(name)
        if entry is not None:
            return entry
        if self._allow_unlisted and "/" in name:
            # A raw provider id ("openai/gpt-4o"): litellm knows how to reach it.
            return ModelEntry(model=name)
        known = ", ".join(self.aliases) or "none configured"
        hint = " or a provider id such as 'openai/gpt-4o-mini'" if self._allow_unlisted else ""
        raise UserInputError(f"unknown model {name!r}: use a configured alias ({known}){hint}")

    def client(self, name: str) -> ModelClient:
        client = self._clients.get(name)
        if client is None:
            client = self._factory(name, self.entry(name))
            self._clients[name] = client
        return client

    def wrapped(self, wrap: Callable[[str, ModelEntry, ModelClient], ModelClient]) -> ModelCatalog:
        """The same models, each client seen through `wrap(name, entry, client)` (per-call instrumentation,
        e.g. the rounds of MCP sampling). The underlying clients stay shared with this catalog."""
        return ModelCatalog(
            self._entries,
            lambda name, entry: wrap(name, entry, self.client(name)),
            allow_unlisted=self._allow_unlisted,
        )

    def weight(self, name: str) -> float:
        entry = self._entries.get(name)
        return entry.weight if entry is not None else 1.0

    def context_fallback(self, name: str) -> str | None:
        entry = self._entries.get(name)
        return entry.context_fallback if entry is not None else None

    def fallbacks(self, name: str) -> list[str]:
        entry = self._entries.get(name)
        return list(entry.fallbacks) if entry is not None else []
