"""One evaluation run: split, train routers, calibrate, then report on the held-out split.

The calibration side (a seeded share of one file, or a whole train file: `heldout`) is used for
router and predictor training and for choosing calibrated settings, and for nothing else; every
figure in the report is measured on the report side (the rest of the file, or the test file), which
neither saw, with any question duplicating a calibration one excluded (or the run refused).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from chorus_mcp.strategies.core.spec import Step
from chorus_mcp.strategies.evaluation.calibration import Calibration, calibrate
from chorus_mcp.strategies.evaluation.config import EvalConfig, with_router_paths
from chorus_mcp.strategies.evaluation.datasets import Dataset
from chorus_mcp.strategies.evaluation.engine import Evaluator, Progress, Score, virtual_time, with_cost_shares
from chorus_mcp.strategies.evaluation.heldout import Overlap, OverlapPolicy, file_sides, limited, seeded_sides
from chorus_mcp.strategies.evaluation.live import RecordMode, open_live


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
    overlap: Overlap = field(default_factory=lambda: Overlap("exclude"))
    """Report questions that duplicated calibration ones, and what was done about them."""
    source: str = ""
    """How the sides were made: `seeded split of X (seed s)` or `train X, test Y`."""


def run_suite(
    config: EvalConfig,
    dataset: Dataset,
    out_dir: Path,
    progress: Progress | None = None,
    limit: int | None = None,
    test: Dataset | None = None,
    overlap: OverlapPolicy | None = None,
    record: RecordMode = "replay",
    base_dir: Path = Path("."),
) -> SuiteReport:
    """Run everything `config` asks for; trained routers are written under `out_dir`.

    With `test`, `dataset` is the train file: all of it calibrates and `test` reports. Without, the
    config's seeded split of `dataset` does. `overlap` overrides the config's overlap policy.
    `record` says whether the config's live models are replayed from their recordings or asked
    (`live`); their relative recording paths are relative to `base_dir` (the evaluation file's folder).
    """
    policy = overlap or config.overlap
    if test is None:
        sides = seeded_sides(dataset, config.calibration_share, config.seed, policy)
    else:
        sides = file_sides(dataset, test, policy)
    sides = limited(sides, limit)
    calibration, report = sides.calibration, sides.report
    trained = _train_routers(config, calibration, out_dir / "routers")
    trained |= _train_predictors(config, calibration, out_dir / "predictors")
    named: dict[str, Step] = {
        name: with_router_paths(step, trained) for name, step in config.strategies.items()
    }
    live = open_live(config.live, base_dir, record)
    evaluator = Evaluator(sides.recorded, config.seed, config.deadline_s, config.models, named, live)

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
            dataset=report.name.removesuffix(":report") if test is not None else dataset.name,
            seed=config.seed,
            calibration_questions=len(calibration),
            report_questions=len(report),
            reference=reference,
            oracle=oracle,
            scores=scores,
            calibration_reference=calibration_reference,
            calibrations=calibrations,
            routers=trained,
            overlap=sides.overlap,
            source=sides.source,
        )

    try:
        result: SuiteReport = virtual_time(work)
    finally:
        live.close()
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
