"""One evaluation run: split, train routers, calibrate, then report on the held-out split.

The calibration split is used for router and predictor training and for choosing calibrated
settings, and for nothing else; every figure in the report is measured on the report split, which neither saw.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from chorus_mcp.strategies.core.spec import Step
from chorus_mcp.strategies.evaluation.calibration import Calibration, calibrate
from chorus_mcp.strategies.evaluation.config import EvalConfig, with_router_paths
from chorus_mcp.strategies.evaluation.datasets import Dataset
from chorus_mcp.strategies.evaluation.engine import Evaluator, Progress, Score, virtual_time, with_cost_shares


@dataclass
class SuiteReport:
    dataset: str
    seed: int
    calibration_questions: int
    report_questions: int
    reference: Score
    """The reference model on the report split."""
    oracle: Score
    scores: list[Score]
    """Every strategy (calibrated winners included) on the report split, in the file's order."""
    calibration_reference: Score
    calibrations: list[Calibration] = field(default_factory=list)
    routers: dict[str, Path] = field(default_factory=dict)


def run_suite(
    config: EvalConfig,
    dataset: Dataset,
    out_dir: Path,
    progress: Progress | None = None,
    limit: int | None = None,
) -> SuiteReport:
    """Run everything `config` asks for on `dataset`; trained routers are written under `out_dir`."""
    calibration, report = dataset.split(config.calibration_share, config.seed)
    if limit is not None:
        calibration = calibration.subset(calibration.questions[:limit], "")
        report = report.subset(report.questions[:limit], "")
    trained = _train_routers(config, calibration, out_dir / "routers")
    trained |= _train_predictors(config, calibration, out_dir / "predictors")
    named: dict[str, Step] = {
        name: with_router_paths(step, trained) for name, step in config.strategies.items()
    }
    evaluator = Evaluator(dataset, config.seed, config.deadline_s, config.models, named)

    async def work() -> SuiteReport:
        calibration_reference = evaluator.reference(config.reference, calibration.questions)
        calibrations: list[Calibration] = []
        for name, spec in config.calibrate.items():
            candidates = [with_router_paths(step, trained) for step in spec.candidates]
            spec = spec.model_copy(update={"candidates": candidates})
            found = await calibrate(
                name, spec, evaluator, calibration.questions, calibration_reference, progress
            )
            calibrations.append(found)
            named[name] = found.chosen.step
        scores = []
        for name, step in named.items():
            scores.append(await evaluator.run(name, step, report.questions, progress))
        reference = evaluator.reference(config.reference, report.questions)
        oracle = evaluator.oracle(report.questions)
        with_cost_shares([*scores, reference, oracle], reference)
        for found in calibrations:
            with_cost_shares([t.score for t in found.trials], calibration_reference)
        return SuiteReport(
            dataset=dataset.name,
            seed=config.seed,
            calibration_questions=len(calibration),
            report_questions=len(report),
            reference=reference,
            oracle=oracle,
            scores=scores,
            calibration_reference=calibration_reference,
            calibrations=calibrations,
            routers=trained,
        )

    result: SuiteReport = virtual_time(work)
    return result


def _train_routers(config: EvalConfig, calibration: Dataset, folder: Path) -> dict[str, Path]:
    if not config.routers:
        return {}
    from chorus_mcp.strategies.evaluation.training import train_router

    trained = {}
    for name, settings in config.routers.items():
        router = train_router(calibration, settings)
        trained[name] = router.save(folder / f"{name}.router.json")
    return trained


def _train_predictors(config: EvalConfig, calibration: Dataset, folder: Path) -> dict[str, Path]:
    if not config.predictors:
        return {}
    from chorus_mcp.strategies.evaluation.training import train_predictor

    recorded = config.models
    trained = {}
    for name, settings in config.predictors.items():
        # The file speaks recorded model names (as a router's does); the config may use its aliases.
        settings = settings.model_copy(
            update={
                "tier": [recorded.get(m, m) for m in settings.tier],
                "models": [recorded.get(m, m) for m in settings.models],
            }
        )
        trained[name] = train_predictor(calibration, settings).save(folder / f"{name}.predictor.json")
    return trained
