"""The evaluation file (`chorus-mcp eval run FILE.yaml`): what to evaluate, on what, against what.

```yaml
dataset: arc_challenge_train.csv   # a path; relative paths are tried against the data directory
                                   # (--data-dir) first, then against this file's folder
test: arc_challenge_test.csv       # optional: a held-out file; then all of `dataset` calibrates and
                                   # all of `test` reports (no split; `calibration_share` is unused)
overlap: exclude                   # report questions duplicating calibration ones: exclude (and count)
                                   # or fail
reference: gpt-4-1106-preview      # cost is reported as a share of this model's; also the default target
seed: 7                            # fixes the split and the latency jitter
calibration_share: 0.5             # this share of the questions calibrates; the rest is the report split
deadline_s: 120                    # per question, in (virtual) seconds
models: {}                         # optional aliases usable in specs: alias -> recorded model name
live:                              # optional: models asked live, their answers kept in a recording
  qwen-small: {model: local/qwen2.5-0.5b, recording: recordings/arc.jsonl, usd_per_hour: 0.05}
strategies:                        # named strategies (the Step spec of config files), reported in order
  gpt-4: gpt-4-1106-preview
  cheap-vote: {kind: ensemble, members: [...], early_stop: false}
routers:                           # learned routers trained on the calibration split of this run;
  knn: {embedder: wordllama, k: 25}  # a learned_route spec names one with `router: knn`
predictors:                        # correctness predictors, likewise trained on the calibration split;
  cheap3: {tier: [yi, mixtral, claude-instant]}  # a learned_vote names one with `predictor: cheap3`
calibrate:                         # strategies whose settings are chosen on the calibration split
  agreement-cascade:
    target: {accuracy: reference, margin: 0.0}
    candidates: [{kind: cascade, estimator: agreement, tiers: [...]}]
    grid: {threshold: [0.67, 1.0]}
```

Strategies may refer to each other with `{kind: strategy, name: ...}`, calibrated ones included (by
their entry name, once chosen).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from chorus_mcp.strategies.core.errors import UserInputError
from chorus_mcp.strategies.core.spec import LearnedRouteSpec, LearnedVoteSpec, Step
from chorus_mcp.strategies.evaluation.calibration import CalibrationSpec
from chorus_mcp.strategies.evaluation.heldout import OverlapPolicy
from chorus_mcp.strategies.evaluation.live import LiveModel
from chorus_mcp.strategies.learned.settings import PredictorSettings, RouterSettings


class EvalConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: str | None = None
    test: str | None = None
    """A held-out test file: the report side, with all of `dataset` as the calibration side."""
    overlap: OverlapPolicy = "exclude"
    """What to do with report questions that duplicate calibration ones (see `heldout`)."""
    reference: str
    seed: int = 0
    calibration_share: float = Field(default=0.5, gt=0, lt=1)
    deadline_s: float = Field(default=120.0, gt=0)
    models: dict[str, str] = Field(default_factory=dict)
    live: dict[str, LiveModel] = Field(default_factory=dict)
    """Models asked live beside the replayed ones, with their recording (`strategies.evaluation.live`)."""
    strategies: dict[str, Step] = Field(default_factory=dict)
    routers: dict[str, RouterSettings] = Field(default_factory=dict)
    predictors: dict[str, PredictorSettings] = Field(default_factory=dict)
    calibrate: dict[str, CalibrationSpec] = Field(default_factory=dict)
    description: str = ""

    @model_validator(mode="after")
    def _check(self) -> EvalConfig:
        if not self.strategies and not self.calibrate:
            raise ValueError("nothing to evaluate: give 'strategies' and/or 'calibrate'")
        clash = set(self.strategies) & set(self.calibrate)
        if clash:
            raise ValueError(f"names used both under 'strategies' and 'calibrate': {sorted(clash)}")
        clash = set(self.live) & set(self.models)
        if clash:
            raise ValueError(f"names used both under 'models' and 'live': {sorted(clash)}")
        clash = set(self.routers) & set(self.predictors)
        if clash:
            raise ValueError(f"names used both under 'routers' and 'predictors': {sorted(clash)}")
        return self


def load_eval_config(path: str | Path) -> EvalConfig:
    path = Path(path)
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserInputError(f"evaluation file {str(path)!r} does not exist") from None
    except yaml.YAMLError as exc:
        raise UserInputError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise UserInputError(f"{path}: expected a mapping at the top level")
    try:
        return EvalConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or '(top level)'}: {error['msg']}"
            for error in exc.errors()
        )
        raise UserInputError(f"{path}: {problems}") from None


def resolve_dataset(config: EvalConfig, config_path: Path, override: str | None, data_dir: Path) -> Path:
    """The dataset (the train file when there is a test file): `override` if given, else the config's,
    looked up in `data_dir`, then by the config."""
    name = override or config.dataset
    if not name:
        raise UserInputError("no dataset: set 'dataset' in the evaluation file or pass --dataset / --train")
    return _locate(name, config_path, bool(override), data_dir)


def resolve_test(config: EvalConfig, config_path: Path, override: str | None, data_dir: Path) -> Path | None:
    """The held-out test file, found like the dataset; None when there is none (a seeded split)."""
    name = override or config.test
    return None if not name else _locate(name, config_path, bool(override), data_dir)


def _locate(name: str, config_path: Path, overridden: bool, data_dir: Path) -> Path:
    candidate = Path(name).expanduser()
    if candidate.is_absolute() or overridden:
        return candidate
    for base in (data_dir, config_path.parent):
        if (base / candidate).is_file():
            return base / candidate
    return data_dir / candidate


def with_router_paths(step: Step, trained: dict[str, Path]) -> Step:
    """`step` with each `learned_route` / `learned_vote` naming a trained router or predictor pointing
    at its file."""
    if isinstance(step, LearnedRouteSpec):
        if step.router in trained:
            return step.model_copy(update={"router": str(trained[step.router])})
        return step
    if isinstance(step, LearnedVoteSpec) and step.predictor in trained:
        step = step.model_copy(update={"predictor": str(trained[step.predictor])})
    if not isinstance(step, BaseModel):
        return step
    updates: dict[str, Any] = {}
    for key, value in step.__dict__.items():
        if isinstance(value, list):
            new = [_child(item, trained) for item in value]
            if any(a is not b for a, b in zip(new, value, strict=True)):
                updates[key] = new
        elif isinstance(value, BaseModel):
            child = _child(value, trained)
            if child is not value:
                updates[key] = child
    return step.model_copy(update=updates) if updates else step


def _child(value: Any, trained: dict[str, Path]) -> Any:
    if not isinstance(value, BaseModel):
        return value
    if hasattr(value, "kind"):
        return with_router_paths(value, trained)  # type: ignore[arg-type]
    # A container such as a Route or Stage: rewrite the steps inside it.
    updates = {k: _child(v, trained) for k, v in value.__dict__.items() if isinstance(v, BaseModel)}
    changed = {k: v for k, v in updates.items() if v is not value.__dict__[k]}
    return value.model_copy(update=changed) if changed else value
