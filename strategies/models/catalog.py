"""The models a server knows: aliases from config, their settings, what each can do, and the clients that
call them.

What a model can do (`capabilities(entry) -> ModelFacts`: context window, most output tokens, vision, tool
calling, reasoning, prices) comes from litellm's bundled model map (`models.model_map`), so it follows
the installed litellm instead of a table kept here; what the configuration says about the model wins
over the map, and the embedded models' facts are their runtime's. Each figure names its source, and a
model the map does not know is said to be unknown to it — nothing is guessed from its name.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from chorus_mcp.strategies.core.completion import THINKING_BUDGET_TOKENS, CompletionRequest, ReasoningEffort
from chorus_mcp.strategies.core.errors import UserInputError
from chorus_mcp.strategies.models import model_map
from chorus_mcp.strategies.models.client import ModelClient

EMBEDDED_PREFIX = "local/"
EMBEDDED_CONTEXT_TOKENS = 4096
"""Context window of each sequence of an embedded model (prompt + answer): the runtime is started with it
(`providers/local.py`), so it is that model's window, whatever the GGUF file could take."""
CLIENT_MODEL = "mcp/sampling"


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
    vision: bool | None = None
    """Whether the model reads images, overriding the model map (None: the map says)."""
    reasoning: bool | None = None
    """Whether the model takes a reasoning effort, overriding the model map (None: the map says)."""
    reasoning_effort: ReasoningEffort | None = None
    """The reasoning effort sent with every call to this model unless the call asks for another one;
    not sent (and said so in the call record) to a model that takes none."""
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


def output_allowance(entry: ModelEntry, request: CompletionRequest) -> int:
    """The output tokens a call may spend when it sets no `max_tokens`: the entry's `max_output_tokens`,
    plus the thinking budget of the reasoning effort it is sent with (billed as output)."""
    effort = request.reasoning_effort
    return entry.max_output_tokens + (THINKING_BUDGET_TOKENS[effort] if effort else 0)


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
        windows: Mapping[str, int] | None = None,
    ) -> None:
        self._entries = dict(entries)
        self._factory = factory
        self._allow_unlisted = allow_unlisted
        self._windows = dict(windows or {})
        """Configured context windows by alias (`sessions.context.windows`), which win over the map's."""
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
            windows=self._windows,
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

    def capabilities(self, name: str) -> ModelFacts:
        """What the model `name` (an alias, or a raw provider id when allowed) can do: see `capabilities`."""
        return capabilities(self.entry(name), window=self._windows.get(name))


# ── what a model can do ──────────────────────────────────────────────────────────────────────────────

FactSource = Literal["config", "model map", "embedded model"]
"""Where a figure comes from: the model's entry in the configuration, litellm's bundled model map (see
`ModelFacts.map_version`), or the embedded runtime's own settings."""
_MILLION = Decimal(1_000_000)


class ModelFacts(BaseModel):
    """What one configured model can do and costs. A None figure is unknown, never a guess."""

    model_config = ConfigDict(frozen=True)

    model: str
    """The provider's model id."""
    known_to_map: bool
    """Whether litellm's model map has an entry for the model."""
    context_window: int | None = None
    """Prompt tokens the model takes."""
    max_output: int | None = None
    """Most tokens one answer may have (from config: the `max_output_tokens` the entry sets)."""
    vision: bool | None = None
    """Reads images."""
    tools: bool | None = None
    """Takes tool (function) definitions."""
    reasoning: bool | None = None
    """Takes a reasoning effort (and may spend reasoning tokens, billed as output)."""
    input_usd_per_mtok: Decimal | None = None
    output_usd_per_mtok: Decimal | None = None
    sources: dict[str, FactSource] = Field(default_factory=dict)
    """Each known figure's source, by field name."""
    map_version: str | None = None
    """Which model map was read, e.g. `litellm 1.110.2 (map 1a2b3c4d5e6f of 2026-12-03)`."""
    note: str | None = None
    """Why figures are missing: `unknown to the map`, or the calling client's own model."""

    @property
    def supports(self) -> list[str]:
        """The abilities known to be there, of vision, tools and reasoning."""
        return [name for name in ("vision", "tools", "reasoning") if getattr(self, name) is True]

    def listing(self) -> dict[str, Any]:
        """The facts in a few keys, for `list_models`: the known figures, what the model supports (when
        the source says), the price per million tokens, and where the figures come from."""
        listed: dict[str, Any] = {}
        if self.context_window is not None:
            listed["context_window"] = self.context_window
        if self.max_output is not None:
            listed["max_output"] = self.max_output
        if any(getattr(self, name) is not None for name in ("vision", "tools", "reasoning")):
            listed["supports"] = self.supports
        if self.input_usd_per_mtok is not None or self.output_usd_per_mtok is not None:
            listed["usd_per_mtok"] = {
                side: float(rate)
                for side, rate in (("in", self.input_usd_per_mtok), ("out", self.output_usd_per_mtok))
                if rate is not None
            }
        listed["facts_from"] = self.provenance()
        return listed

    def provenance(self) -> str:
        """Where the figures come from in words: the main source, then the fields the config sets, e.g.
        `model map; config: max_output` or `config: max_output; unknown to the map`."""
        by_source: dict[str, list[str]] = {}
        for name, source in self.sources.items():
            by_source.setdefault(source, []).append(_SHORT_NAMES.get(name, name))
        parts = [
            source if source != "config" else f"config: {', '.join(dict.fromkeys(names))}"
            for source, names in sorted(by_source.items(), key=lambda item: item[0] == "config")
        ]
        if self.note:
            parts.append(self.note)
        return "; ".join(parts)


_SHORT_NAMES = {"input_usd_per_mtok": "price", "output_usd_per_mtok": "price"}


def map_version_text() -> str | None:
    """Which model map `capabilities` reads, in words (None when litellm is not installed)."""
    version = model_map.map_version()
    if version.litellm is None:
        return None
    where = " ".join(f for f in (version.revision, version.file_date and f"of {version.file_date}") if f)
    return f"litellm {version.litellm}" + (f" (map {where})" if where else "")


def capabilities(entry: ModelEntry, *, window: int | None = None) -> ModelFacts:
    """What `entry`'s model can do and costs: the configuration first (the entry's settings, and `window`,
    the alias's `sessions.context.windows` figure), then (for an embedded model) its runtime's, then
    litellm's bundled model map. Reads the map on first use (~0.1 s, then cached)."""
    facts: dict[str, Any] = {}
    sources: dict[str, FactSource] = {}

    def fill(name: str, value: Any, source: FactSource) -> None:
        if value is not None and name not in facts:
            facts[name] = value
            sources[name] = source

    for name, value in _configured(entry, window).items():
        fill(name, value, "config")
    note = None
    known = False
    if entry.model.startswith(EMBEDDED_PREFIX):
        for name, value in _EMBEDDED.items():
            fill(name, value, "embedded model")
    elif entry.model == CLIENT_MODEL or entry.model.startswith(CLIENT_MODEL + "/"):
        note = "the calling client's own model: known only to the client"
    else:
        info = model_map.lookup(entry.model)
        known = info is not None
        if info is None:
            note = "unknown to the map"
        else:
            for name, value in _mapped(info).items():
                fill(name, value, "model map")
    return ModelFacts(
        model=entry.model,
        known_to_map=known,
        sources=sources,
        map_version=map_version_text() if known else None,
        note=note,
        **facts,
    )


_EMBEDDED: dict[str, Any] = {
    "context_window": EMBEDDED_CONTEXT_TOKENS,
    "max_output": EMBEDDED_CONTEXT_TOKENS,
    "vision": False,
    "tools": False,
    "reasoning": False,
    "input_usd_per_mtok": Decimal(0),
    "output_usd_per_mtok": Decimal(0),
}
"""The bundled embedded models (and a GGUF file of the user's own, as Chorus runs it): text only, no
tool calls, no reasoning effort, nothing billed."""


def _configured(entry: ModelEntry, window: int | None) -> dict[str, Any]:
    configured: dict[str, Any] = {
        "context_window": window,
        "vision": entry.vision,
        "reasoning": entry.reasoning,
        "input_usd_per_mtok": entry.input_cost_per_mtok,
        "output_usd_per_mtok": entry.output_cost_per_mtok,
    }
    # The default (1024) is only an assumption for cost estimates; a value written in the config is a fact.
    if "max_output_tokens" in entry.model_fields_set:
        configured["max_output"] = entry.max_output_tokens
    return configured


def _mapped(info: dict[str, Any]) -> dict[str, Any]:
    def count(key: str) -> int | None:
        value = info.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None

    def flag(key: str) -> bool:
        # The map writes only what a model has; a missing flag means the map does not list it.
        return info.get(key) is True

    def per_mtok(key: str) -> Decimal | None:
        value = info.get(key)
        if not isinstance(value, int | float) or isinstance(value, bool):
            return None
        # str() first: Decimal(1.5e-07) would carry the float's binary noise; then no trailing zeros.
        rate = Decimal(str(value)) * _MILLION
        return rate.quantize(Decimal(1)) if rate == rate.to_integral_value() else rate.normalize()

    return {
        "context_window": count("max_input_tokens"),
        "max_output": count("max_output_tokens"),
        "vision": flag("supports_vision"),
        "tools": flag("supports_function_calling"),
        "reasoning": flag("supports_reasoning"),
        "input_usd_per_mtok": per_mtok("input_cost_per_token"),
        "output_usd_per_mtok": per_mtok("output_cost_per_token"),
    }
