from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter

from chorus_mcp.strategies.core.errors import UserInputError
from chorus_mcp.strategies.core.spec import Step
from chorus_mcp.strategies.evaluation.datasets import Dataset, load_dataset
from chorus_mcp.strategies.evaluation.engine import (
    Evaluator,
    ReplayIncomplete,
    Score,
    replay_problems,
    virtual_time,
)
from chorus_mcp.strategies.models.replay import estimate_latency, jitter_factor
from tests.strategies.evaluation.fixtures import toy_rows, write_routerbench_csv

pytest.importorskip("trio")

STEP: TypeAdapter[Step] = TypeAdapter(Step)
CHEAP = ["cheap-a", "cheap-b", "cheap-c"]
CASCADE = {
    "kind": "cascade",
    "estimator": "agreement",
    "threshold": 1.0,
    "tiers": [
        {"kind": "ensemble", "members": CHEAP, "early_stop": False},
        {"kind": "ensemble", "members": ["strong"]},
    ],
}


@pytest.fixture
def dataset(tmp_path: Path) -> Dataset:
    return load_dataset(write_routerbench_csv(tmp_path / "toy.csv", toy_rows(12)))


def run(evaluator: Evaluator, spec: Any, name: str = "s") -> Score:
    async def work() -> Score:
        return await evaluator.run(name, STEP.validate_python(spec))

    result: Score = virtual_time(work)
    return result


def test_a_single_model_scores_its_recorded_grades_costs_and_estimated_latency(dataset: Dataset) -> None:
    score = run(Evaluator(dataset, seed=5), "cheap-b")
    assert score.questions == 12 and score.correct == 6 and score.accuracy == 0.5
    assert score.cost_usd == Decimal("0.0002") * 12
    first = dataset.questions[0]
    expected = estimate_latency(first.prompt, "A\n") * jitter_factor(5, "cheap-b", first.prompt)
    assert score.outcomes[0].latency_s == pytest.approx(expected, abs=1e-3)


def test_ensemble_members_run_in_parallel_and_a_cascade_in_sequence(dataset: Dataset) -> None:
    evaluator = Evaluator(dataset, seed=1)
    single = {m: run(evaluator, m) for m in [*CHEAP, "strong"]}
    ensemble = run(evaluator, {"kind": "ensemble", "members": CHEAP, "early_stop": False})
    for i, outcome in enumerate(ensemble.outcomes):
        slowest = max(single[m].outcomes[i].latency_s for m in CHEAP)
        assert outcome.latency_s == pytest.approx(slowest, abs=1e-3)
    cascade = run(evaluator, CASCADE)
    escalated = cascade.outcomes[1]
    assert escalated.models == ("cheap-a", "cheap-b", "cheap-c", "strong")
    tier_one = max(single[m].outcomes[1].latency_s for m in CHEAP)
    assert escalated.latency_s == pytest.approx(tier_one + single["strong"].outcomes[1].latency_s, abs=1e-3)


def test_agreement_cascade_escalates_only_on_disagreement(dataset: Dataset) -> None:
    score = run(Evaluator(dataset), CASCADE)
    assert score.accuracy == 1.0
    assert [o.calls for o in score.outcomes] == [3, 4] * 6
    assert score.cost_usd == Decimal("0.0006") * 12 + Decimal("0.01") * 6


def test_the_same_seed_gives_the_same_run_and_another_seed_other_latencies(dataset: Dataset) -> None:
    spec = {"kind": "ensemble", "members": [*CHEAP, "strong"]}
    first = run(Evaluator(dataset, seed=3), spec)
    again = run(Evaluator(dataset, seed=3), spec)
    other = run(Evaluator(dataset, seed=4), spec)
    assert first.outcomes == again.outcomes
    assert [o.latency_s for o in first.outcomes] != [o.latency_s for o in other.outcomes]


def test_early_stop_cancels_slow_members_and_does_not_charge_them(dataset: Dataset) -> None:
    stopped = run(
        Evaluator(dataset, seed=2), {"kind": "ensemble", "members": ["cheap-a", "strong", "cheap-b"]}
    )
    full = run(
        Evaluator(dataset, seed=2),
        {"kind": "ensemble", "members": ["cheap-a", "strong", "cheap-b"], "early_stop": False},
    )
    assert stopped.cost_usd < full.cost_usd


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ({"kind": "ensemble", "members": CHEAP, "aggregation": "synthesis", "judge": "strong"}, "synthesis"),
        ({"kind": "pipeline", "stages": [{"name": "a", "prompt": "{input}", "step": "strong"}]}, "pipeline"),
        (
            {
                "kind": "route",
                "classifier": "cheap-a",
                "default": "x",
                "routes": [{"name": "x", "target": "strong"}],
            },
            "LLM classifier",
        ),
        (
            {
                "kind": "cascade",
                "tiers": [
                    {"kind": "ensemble", "members": CHEAP, "aggregation": "synthesis", "judge": "strong"},
                    "strong",
                ],
            },
            "synthesis",
        ),
    ],
)
def test_strategies_a_recording_cannot_answer_faithfully_are_refused(
    dataset: Dataset, spec: dict[str, Any], reason: str
) -> None:
    assert any(reason in p for p in replay_problems(STEP.validate_python(spec), {}))
    with pytest.raises(ReplayIncomplete, match=reason):
        run(Evaluator(dataset), spec)


def test_unknown_models_are_named_before_running(dataset: Dataset) -> None:
    with pytest.raises(UserInputError, match=r"not in the recording: gpt-9"):
        run(Evaluator(dataset), {"kind": "ensemble", "members": ["cheap-a", "gpt-9"]})


def test_aliases_name_recorded_models(dataset: Dataset) -> None:
    score = run(Evaluator(dataset, aliases={"fast": "cheap-c"}), "fast")
    assert score.accuracy == 1.0 and score.outcomes[0].models == ("fast",)


def test_reference_and_oracle_come_from_the_recording(dataset: Dataset) -> None:
    evaluator = Evaluator(dataset)
    reference = evaluator.reference("strong")
    assert reference.accuracy == 1.0 and reference.cost_usd == Decimal("0.01") * 12
    oracle = evaluator.oracle()
    assert oracle.accuracy == 1.0 and oracle.cost_usd == Decimal("0.0001") * 6 + Decimal("0.0003") * 6
    with pytest.raises(UserInputError, match="reference model 'nope'"):
        evaluator.reference("nope")
