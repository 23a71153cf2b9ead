"""How a learned router or correctness predictor is trained and how it decides (saved in its file)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class RouterSettings(BaseModel):
    """How a router is trained and how it routes (`routers:` entries of an evaluation file)."""

    model_config = ConfigDict(extra="forbid")

    embedder: str = "wordllama"
    """`wordllama`, `hashing`, or `litellm/<embedding model>`."""
    variant: Literal["chorus", "baseline"] = "chorus"
    k: int = Field(default=25, ge=1)
    prior: float = Field(default=4.0, ge=0)
    """Pseudo-questions of the model's overall accuracy mixed into each neighbourhood (chorus variant)."""
    tradeoff: float = Field(default=0.3, ge=0)
    models: list[str] = Field(default_factory=list)
    """The models the router may choose from; empty means every recorded model."""


class PredictorSettings(BaseModel):
    """How a correctness predictor is trained (`predictors:` entries; `strategies.learned.predictor`)."""

    model_config = ConfigDict(extra="forbid")

    embedder: str = "wordllama"
    """`wordllama`, `hashing`, or `litellm/<embedding model>`."""
    k: int = Field(default=25, ge=1)
    prior: float = Field(default=4.0, ge=0)
    """Pseudo-questions of a model's overall accuracy mixed into each neighbourhood."""
    tier: list[str] = Field(default_factory=list)
    """The models whose answers the answer head reads (a cascade's cheap tier, or a vote's members);
    empty: a route-only predictor."""
    models: list[str] = Field(default_factory=list)
    """The models the route head covers (the tier is always added); empty means every recorded model."""
    l2: float = Field(default=1.0, gt=0)
    """Ridge penalty of the logistic regressions."""
    folds: int = Field(default=5, ge=2, le=20)
    """Cross-fitting folds: a training question is scored by the model fitted without its fold."""
    seed: int = 0
    """Deals the training questions into folds."""

    @model_validator(mode="after")
    def _check(self) -> PredictorSettings:
        if len(set(self.tier)) != len(self.tier):
            raise ValueError(f"tier lists a model twice: {self.tier}")
        return self
