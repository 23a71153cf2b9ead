"""The configuration file's schema. `chorus-mcp config schema` prints it as JSON Schema for editors."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from strategies.catalog import ModelEntry
from strategies.reliability import ReliabilitySettings
from strategies.spec import Step, StrategyRef, models_in


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Defaults(_Section):
    """What a tool uses when the call does not say."""

    deadline_s: float = Field(default=45.0, gt=0, le=3600)
    """Every tool run returns by then, with a partial answer if need be. Keep it below your client's
    time-out (many clients give up at 60 s)."""
    max_cost_usd: Decimal | None = Field(default=None, ge=0)
    """Cost cap per tool call; None means no cap."""
    ensemble: str = "ensemble"
    """The named strategy `ensemble_vote` runs when the call names no models."""
    cascade: str = "cascade"
    route: str = "route"
    pipeline: str = "pipeline"


class HttpSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=0, le=65535)
    path: str = "/mcp"
    stateless: bool = False
    """Stateless streamable HTTP (for replicas behind a load balancer); progress notifications need
    a stateful session or an SSE response."""
    json_response: bool = False


class ChorusConfig(_Section):
    """A Chorus configuration file (YAML)."""

    models: dict[str, ModelEntry] = Field(default_factory=dict)
    """Model aliases (`fast`, `strong`, `coder`, ...) and how to reach each."""
    strategies: dict[str, Step] = Field(default_factory=dict)
    """Named strategies, usable by name in any tool call and from other strategies."""
    defaults: Defaults = Field(default_factory=Defaults)
    allow_unlisted_models: bool = True
    """Let tool calls name provider model ids that are not configured aliases (e.g. `openai/gpt-4o`)."""
    http: HttpSettings = Field(default_factory=HttpSettings)
    reliability: ReliabilitySettings = Field(default_factory=ReliabilitySettings)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @model_validator(mode="after")
    def _references_resolve(self) -> ChorusConfig:
        for alias, entry in self.models.items():
            for fallback in [*entry.fallbacks, *([entry.context_fallback] if entry.context_fallback else [])]:
                if fallback not in self.models and not (self.allow_unlisted_models and "/" in fallback):
                    raise ValueError(f"models.{alias}.fallbacks: {fallback!r} is not a configured model")
        for name, step in self.strategies.items():
            for model in models_in(step):
                if model not in self.models and not (self.allow_unlisted_models and "/" in model):
                    raise ValueError(f"strategies.{name}: model {model!r} is not a configured model alias")
            for ref in _references(step):
                if ref not in self.strategies:
                    raise ValueError(f"strategies.{name}: refers to unknown strategy {ref!r}")
        return self


def _references(step: object) -> list[str]:
    """Names of strategies a spec refers to, at any depth."""
    if isinstance(step, StrategyRef):
        return [step.name]
    found: list[str] = []
    if isinstance(step, BaseModel):
        for value in step.__dict__.values():
            items = value if isinstance(value, list) else [value]
            for item in items:
                if isinstance(item, BaseModel):
                    found.extend(_references(item))
    return found
