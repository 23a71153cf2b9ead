"""Choosing a strategy's settings on a calibration split, to meet a target at the lowest cost.

A calibration entry lists candidate strategies, optionally expanded over a grid of field values
(`grid: {threshold: [0.5, 0.67, 1.0]}` sets `threshold` on every candidate that has that field).
Each candidate is evaluated on the calibration questions only. The winner is the cheapest candidate
whose accuracy reaches the target; ties on cost go to the more accurate. When none reaches it, the
most accurate candidate wins and the result says the target was missed — it is never silently
relaxed. The winner is then reported on the held-out questions, which calibration never saw.

The target is an accuracy — a number, or `reference` (the reference model's accuracy on the same
calibration questions), plus `margin` (e.g. 0.005 to aim half a point above, as a cushion for the
split-to-split noise) — and/or a cost cap `max_cost_share` (a share of the reference model's cost).
With only a cap, the most accurate candidate within it wins: "the best we can do for 25%".
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from chorus_mcp.strategies.core.errors import UserInputError
from chorus_mcp.strategies.core.spec import Step
from chorus_mcp.strategies.evaluation.datasets import Question
from chorus_mcp.strategies.evaluation.engine import Evaluator, Progress, Score

_STEP: TypeAdapter[Step] = TypeAdapter(Step)


class Target(BaseModel):
    model_config = ConfigDict(extra="forbid")

    accuracy: float | Literal["reference"] | None = "reference"
    """The accuracy to reach on the calibration split: a number in [0, 1], the reference model's, or
    None for no accuracy target (then the most accurate candidate within `max_cost_share` wins)."""
    margin: float = Field(default=0.0, ge=-1, le=1)
    """Added to the accuracy target (negative: accept that much less)."""
    max_cost_share: float | None = Field(default=None, gt=0)
    """A cost cap, as a share of the reference model's cost on the calibration split (0.25 = 25%)."""

    @model_validator(mode="after")
    def _check(self) -> Target:
        if self.accuracy is None and self.max_cost_share is None:
            raise ValueError("a target needs an accuracy, a max_cost_share, or both")
        return self


class CalibrationSpec(BaseModel):
    """One `calibrate:` entry of an evaluation file."""

    model_config = ConfigDict(extra="forbid")

    target: Target = Field(default_factory=Target)
    minimise: Literal["cost", "latency"] = "cost"
    candidates: list[Step] = Field(min_length=1)
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    """Field name → values; every candidate with that field is tried with each value."""


@dataclass
class Trial:
    label: str
    step: Step
    score: Score


@dataclass
class Calibration:
    name: str
    required_accuracy: float | None
    max_cost_share: float | None
    met: bool
    chosen: Trial
    trials: list[Trial] = field(default_factory=list)

    def summary(self) -> str:
        parts = []
        if self.required_accuracy is not None:
            parts.append(f"accuracy {self.required_accuracy:.4f}")
        if self.max_cost_share is not None:
            parts.append(f"cost <= {100 * self.max_cost_share:g}% of the reference")
        goal = " and ".join(parts)
        verdict = "met" if self.met else "NOT met (kept the most accurate affordable candidate)"
        return (
            f"{self.name}: target {goal} {verdict}; chosen "
            f"{self.chosen.label} (calibration accuracy {self.chosen.score.accuracy:.4f}, "
            f"cost ${self.chosen.score.cost_usd:.4f}) out of {len(self.trials)} candidates"
        )


def describe(step: Step) -> str:
    """A compact one-line rendering of a spec, used as a candidate's label."""
    dumped = _STEP.dump_python(step, mode="json", exclude_defaults=True)
    return json.dumps(dumped, separators=(",", ":"), sort_keys=True)


def expand(candidates: Sequence[Step], grid: Mapping[str, Sequence[Any]]) -> list[Step]:
    """Every candidate with every combination of the grid values for the fields it has (deduplicated)."""
    for key in grid:
        if not any(key in type(c).model_fields for c in candidates):
            raise UserInputError(f"grid field {key!r} is not a field of any candidate")
    expanded: list[Step] = []
    seen: set[str] = set()
    for candidate in candidates:
        keys = [key for key in grid if key in type(candidate).model_fields]
        for values in itertools.product(*(grid[key] for key in keys)):
            data = _STEP.dump_python(candidate, mode="python")
            data.update(zip(keys, values, strict=True))
            try:
                step = _STEP.validate_python(data)
            except ValidationError as exc:
                raise UserInputError(
                    f"grid values {dict(zip(keys, values, strict=True))} are invalid: {exc}"
                ) from exc
            label = describe(step)
            if label not in seen:
                seen.add(label)
                expanded.append(step)
    return expanded


def required_accuracy(target: Target, reference: Score) -> float | None:
    if target.accuracy is None:
        return None
    base = reference.accuracy if target.accuracy == "reference" else float(target.accuracy)
    return base + target.margin


def choose(
    trials: Sequence[Trial],
    required: float | None,
    minimise: str = "cost",
    max_cost_usd: Decimal | None = None,
) -> tuple[Trial, bool]:
    """The winner and whether it meets the target.

    With an accuracy target: the cheapest (or fastest) trial reaching it within the cost cap.
    Without one: the most accurate trial within the cost cap. Missed: the most accurate trial within
    the cap if any is, else the cheapest trial.
    """
    if not trials:
        raise UserInputError("nothing to calibrate: no candidates")

    def accuracy_first(t: Trial) -> tuple[float, float]:
        return t.score.accuracy, -float(t.score.cost_usd)

    affordable = [t for t in trials if max_cost_usd is None or t.score.cost_usd <= max_cost_usd]
    if required is None:
        if affordable:
            return max(affordable, key=accuracy_first), True
        return min(trials, key=lambda t: t.score.cost_usd), False
    feasible = [t for t in affordable if t.score.accuracy >= required - 1e-12]
    if feasible:

        def price(t: Trial) -> tuple[float, float]:
            spent = float(t.score.cost_usd) if minimise == "cost" else t.score.mean_latency_s
            return spent, -t.score.accuracy

        return min(feasible, key=price), True
    if affordable:
        return max(affordable, key=accuracy_first), False
    return min(trials, key=lambda t: t.score.cost_usd), False


async def calibrate(
    name: str,
    spec: CalibrationSpec,
    evaluator: Evaluator,
    questions: Sequence[Question],
    reference: Score,
    progress: Progress | None = None,
) -> Calibration:
    """Evaluate every candidate on `questions` (the calibration split) and choose one."""
    trials: list[Trial] = []
    candidates = expand(spec.candidates, spec.grid)
    for number, step in enumerate(candidates, start=1):
        label = describe(step)
        score = await evaluator.run(f"{name} [{number}/{len(candidates)}]", step, questions, progress)
        trials.append(Trial(label, step, score))
    required = required_accuracy(spec.target, reference)
    cap = spec.target.max_cost_share
    max_cost = None if cap is None else reference.cost_usd * Decimal(str(cap))
    chosen, met = choose(trials, required, spec.minimise, max_cost)
    return Calibration(
        name=name, required_accuracy=required, max_cost_share=cap, met=met, chosen=chosen, trials=trials
    )
