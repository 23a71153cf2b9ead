from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import TypeAdapter

from chorus_mcp.strategies.core.errors import UserInputError
from chorus_mcp.strategies.core.spec import CascadeSpec, Step
from chorus_mcp.strategies.evaluation.calibration import (
    CalibrationSpec,
    Target,
    Trial,
    calibrate,
    choose,
    expand,
)
from chorus_mcp.strategies.evaluation.datasets import load_dataset
from chorus_mcp.strategies.evaluation.engine import Evaluator, score_of, virtual_time
from tests.strategies.evaluation.fixtures import toy_rows, write_routerbench_csv

STEP: TypeAdapter[Step] = TypeAdapter(Step)
CASCADE = {
    "kind": "cascade",
    "estimator": "agreement",
    "tiers": [
        {"kind": "ensemble", "members": ["cheap-a", "cheap-b", "cheap-c"], "early_stop": False},
        {"kind": "ensemble", "members": ["strong"]},
    ],
}


def test_the_grid_expands_fields_the_candidate_has() -> None:
    steps = expand([STEP.validate_python(CASCADE), STEP.validate_python("strong")], {"threshold": [0.3, 1.0]})
    thresholds = [s.threshold for s in steps if isinstance(s, CascadeSpec)]
    assert thresholds == [0.3, 1.0] and len(steps) == 3
    with pytest.raises(UserInputError, match="'treshold' is not a field"):
        expand([STEP.validate_python(CASCADE)], {"treshold": [1.0]})
    with pytest.raises(UserInputError, match="invalid"):
        expand([STEP.validate_python(CASCADE)], {"threshold": [7]})


def _trial(name: str, correct: int, cost: str) -> Trial:
    from chorus_mcp.strategies.evaluation.engine import QuestionOutcome

    outcomes = [
        QuestionOutcome(str(i), "", "A", i < correct, True, Decimal(cost) / 10, 0.0, 1, ()) for i in range(10)
    ]
    return Trial(name, STEP.validate_python("strong"), score_of(name, outcomes))


def test_choose_takes_the_cheapest_candidate_that_meets_the_target() -> None:
    trials = [_trial("dear", 10, "5"), _trial("cheap-good", 9, "1"), _trial("cheapest-bad", 5, "0.1")]
    chosen, met = choose(trials, 0.9)
    assert met and chosen.label == "cheap-good"


def test_choose_says_when_the_target_is_missed_and_keeps_the_most_accurate() -> None:
    chosen, met = choose([_trial("a", 7, "1"), _trial("b", 8, "2")], 0.95)
    assert not met and chosen.label == "b"


pytest.importorskip("trio")


def test_calibration_finds_the_threshold_that_matches_the_reference(tmp_path: Path) -> None:
    data = load_dataset(write_routerbench_csv(tmp_path / "toy.csv", toy_rows(12)))
    evaluator = Evaluator(data)
    spec = CalibrationSpec(candidates=[STEP.validate_python(CASCADE)], grid={"threshold": [0.3, 0.6, 1.0]})

    async def work() -> object:
        reference = evaluator.reference("strong")
        return await calibrate("c", spec, evaluator, data.questions, reference)

    found = virtual_time(work)
    assert found.met and found.required_accuracy == 1.0
    # The cheap tier ties three ways on the odd questions: a tie is no answer, so every threshold
    # escalates those and matches the reference; the first (lowest) threshold is chosen.
    assert isinstance(found.chosen.step, CascadeSpec) and found.chosen.step.threshold == 0.3
    assert [round(t.score.accuracy, 2) for t in found.trials] == [1.0, 1.0, 1.0]
    assert "target accuracy 1.0000 met" in found.summary()


def test_a_margin_moves_the_target() -> None:
    assert Target(accuracy=0.9, margin=-0.1).accuracy == 0.9


def test_a_cost_cap_alone_picks_the_most_accurate_affordable_candidate() -> None:
    trials = [_trial("dear", 10, "5"), _trial("mid", 9, "2"), _trial("cheap", 6, "1")]
    chosen, met = choose(trials, None, max_cost_usd=Decimal("2"))
    assert met and chosen.label == "mid"
    chosen, met = choose(trials, 0.95, max_cost_usd=Decimal("2"))
    assert not met and chosen.label == "mid"
    chosen, met = choose(trials, None, max_cost_usd=Decimal("0.5"))
    assert not met and chosen.label == "cheap"


def test_a_target_needs_something_to_aim_at() -> None:
    with pytest.raises(ValueError, match="needs an accuracy"):
        Target(accuracy=None)


def test_upper_hull_and_aiq() -> None:
    from chorus_mcp.strategies.evaluation.report import aiq, upper_hull

    points = [(0.1, 0.5), (0.2, 0.55), (0.5, 0.9), (0.6, 0.8), (1.0, 0.95)]
    assert upper_hull(points) == [(0.1, 0.5), (0.5, 0.9), (1.0, 0.95)]
    assert aiq([(0.0, 0.5), (1.0, 1.0)], 0.0, 1.0) == pytest.approx(0.75)
    assert aiq([(0.5, 0.8)], 0.0, 1.0) == pytest.approx(0.8)
