"""The predictor wired into the strategy core: `learned_vote`, `learned_route` with a predictor file,
the evaluation file's `predictors:` and `chorus-mcp eval train-predictor`."""

from __future__ import annotations

import argparse
from decimal import Decimal
from pathlib import Path

import pytest

pytest.importorskip("numpy")
pytest.importorskip("trio")

from pydantic import ValidationError

from chorus_mcp.strategies.core.completion import CompletionRequest
from chorus_mcp.strategies.core.result import ConfidenceDecision
from chorus_mcp.strategies.core.spec import LearnedRouteSpec, LearnedVoteSpec
from chorus_mcp.strategies.engine.context import RunContext
from chorus_mcp.strategies.engine.runner import run_strategy
from chorus_mcp.strategies.evaluation.config import EvalConfig
from chorus_mcp.strategies.evaluation.datasets import Dataset
from chorus_mcp.strategies.evaluation.engine import Evaluator, Score, virtual_time
from chorus_mcp.strategies.evaluation.training import train_predictor
from chorus_mcp.strategies.learned.settings import PredictorSettings
from chorus_mcp.strategies.models.replay import replay_catalog
from tests.strategies.learned.test_predictor import TOPICS, _question

SETTINGS = PredictorSettings(embedder="hashing", k=5, tier=["cheap-a", "cheap-b"], seed=3)


def _split() -> tuple[Dataset, Dataset, Dataset]:
    """(everything, training part, new questions): the predictor is trained on the first 60 only."""
    topics = list(TOPICS)
    training = [_question(topics[i % 3], i) for i in range(60)]
    new = [_question(topics[i % 3], i) for i in range(300, 312)]
    every = Dataset("planted", (*training, *new))
    return every, every.subset(training, ":train"), every.subset(new, ":new")


def _trained(tmp_path: Path) -> tuple[Dataset, Dataset, Path]:
    every, training, new = _split()
    return every, new, train_predictor(training, SETTINGS).save(tmp_path / "p.json")


def _run(every: Dataset, new: Dataset, spec: LearnedVoteSpec | LearnedRouteSpec) -> Score:
    evaluator = Evaluator(every, aliases={"best": "strong"})

    async def work() -> Score:
        return await evaluator.run("learned", spec, new.questions)

    score: Score = virtual_time(work)
    return score


def _by_topic(score: Score, what: str) -> dict[str, set[object]]:
    """Each topic's set of `what` (an outcome field) over all its questions."""
    found: dict[str, set[object]] = {}
    for outcome in score.outcomes:
        found.setdefault(outcome.question_id.split(".")[0], set()).add(getattr(outcome, what))
    return found


def test_a_learned_cascade_accepts_trusted_answers_and_escalates_the_rest(tmp_path: Path) -> None:
    every, new, path = _trained(tmp_path)
    spec = LearnedVoteSpec(predictor=str(path), threshold=0.7, escalate="best")
    score = _run(every, new, spec)
    assert score.accuracy == 1.0
    asked = _by_topic(score, "models")
    assert asked["astronomy"] == {("cheap-a", "cheap-b")}  # they agree, and agreement was right there
    assert asked["cooking"] == {("cheap-a", "cheap-b")}  # a split, where cheap-b has been right
    assert asked["geology"] == {("cheap-a", "cheap-b", "best")}  # agreement was wrong there
    strong_alone = sum(q.outcomes["strong"].cost_usd or Decimal(0) for q in new.questions)
    assert score.cost_usd < strong_alone


def test_a_learned_vote_without_escalation_takes_the_likeliest_answer(tmp_path: Path) -> None:
    every, new, path = _trained(tmp_path)
    score = _run(every, new, LearnedVoteSpec(predictor=str(path)))
    # On a 1-1 split a plain majority would fall back to the first member (cheap-a, wrong there).
    assert _by_topic(score, "correct") == {"astronomy": {True}, "cooking": {True}, "geology": {False}}


@pytest.mark.anyio
async def test_learned_vote_records_its_judgement_and_reports_a_missing_file(tmp_path: Path) -> None:
    every, new, path = _trained(tmp_path)
    ctx = RunContext.starting_now(replay_catalog(every.recording()), 10.0)
    geology = next(q for q in new.questions if q.id.startswith("geology"))
    spec = LearnedVoteSpec(predictor=str(path), threshold=0.7, escalate="strong")
    result = await run_strategy(spec, CompletionRequest.of(geology.prompt), ctx)
    assert result.ok and result.strategy == "learned_vote"
    assert result.answer is not None and result.answer.strip() == geology.outcomes["strong"].response.strip()
    judged = [d for d in result.decisions if isinstance(d, ConfidenceDecision)]
    assert len(judged) == 1 and judged[0].estimator == "learned" and judged[0].escalate
    assert judged[0].confidence is not None and judged[0].confidence < 0.7
    assert "escalating" in judged[0].reason
    assert [c.model for c in result.calls] == ["cheap-a", "cheap-b", "strong"]
    missing = await run_strategy(
        LearnedVoteSpec(predictor=str(tmp_path / "none.json")), CompletionRequest.of("x"), ctx
    )
    assert not missing.ok and "does not exist" in (missing.error or "")


def test_a_threshold_without_an_escalation_step_is_refused() -> None:
    with pytest.raises(ValidationError, match="'threshold' needs 'escalate'"):
        LearnedVoteSpec(predictor="p.json", threshold=0.9)


def test_learned_route_routes_with_a_predictor_file_by_its_bar(tmp_path: Path) -> None:
    every, new, path = _trained(tmp_path)
    score = _run(
        every, new, LearnedRouteSpec(router=str(path), min_probability=0.8, models={"strong": "best"})
    )
    assert _by_topic(score, "models") == {
        "astronomy": {("cheap-a",)},
        "cooking": {("cheap-b",)},
        "geology": {("best",)},
    }
    assert score.accuracy == 1.0


@pytest.mark.anyio
async def test_a_predictor_file_without_a_bar_is_a_clear_error(tmp_path: Path) -> None:
    every, _new, path = _trained(tmp_path)
    ctx = RunContext.starting_now(replay_catalog(every.recording()), 10.0)
    result = await run_strategy(LearnedRouteSpec(router=str(path)), CompletionRequest.of("x"), ctx)
    assert not result.ok and "routes by 'min_probability'" in (result.error or "")


def test_an_evaluation_file_trains_its_predictors_on_the_calibration_split(tmp_path: Path) -> None:
    from chorus_mcp.strategies.evaluation.suite import run_suite
    from chorus_mcp.strategies.learned.predictor import load_predictor

    every, _training, _new = _split()
    config = EvalConfig.model_validate(
        {
            "reference": "strong",
            "seed": 5,
            "models": {"a": "cheap-a", "b": "cheap-b"},
            "predictors": {"pair": {"embedder": "hashing", "k": 5, "tier": ["a", "b"]}},
            "strategies": {"learned": {"kind": "learned_vote", "predictor": "pair"}},
            "calibrate": {
                "learned-cascade": {
                    "candidates": [{"kind": "learned_vote", "predictor": "pair", "escalate": "strong"}],
                    "grid": {"threshold": [0.5, 0.99]},
                }
            },
        }
    )
    report = run_suite(config, every, tmp_path)
    trained = load_predictor(tmp_path / "predictors" / "pair.predictor.json")
    assert trained.tier == ["cheap-a", "cheap-b"]  # aliases resolved to the recorded names
    assert trained.trained_on == f"planted:calibration ({report.calibration_questions} questions)"
    assert [s.name for s in report.scores] == ["learned", "learned-cascade"]


def test_names_shared_by_a_router_and_a_predictor_are_refused() -> None:
    with pytest.raises(ValidationError, match="both under 'routers' and 'predictors'"):
        EvalConfig.model_validate(
            {
                "reference": "strong",
                "strategies": {"s": "strong"},
                "routers": {"x": {}},
                "predictors": {"x": {"tier": ["a"]}},
            }
        )


def test_train_predictor_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from chorus_mcp.server.cli.eval import add_eval_parser
    from tests.strategies.evaluation.fixtures import toy_rows, write_routerbench_csv

    write_routerbench_csv(tmp_path / "toy.csv", toy_rows(40))

    def main(*argv: str) -> int:
        parser = argparse.ArgumentParser(prog="chorus-mcp")
        add_eval_parser(parser.add_subparsers())
        args = parser.parse_args(list(argv))
        code: int = args.handler(args)
        return code

    out = tmp_path / "p.json"
    common = ("eval", "train-predictor", "toy.csv", "--data-dir", str(tmp_path), "--out", str(out))
    assert main(*common, "--embedder", "hashing", "--tier", "cheap-a", "cheap-b") == 0
    printed = capsys.readouterr().out
    assert "held out: 20 questions" in printed and "kind: learned_vote" in printed
    assert out.is_file()
    assert main(*common, "--embedder", "hashing", "--tier", "gpt-9") == 2
    assert "predictor models ['gpt-9'] are not in the dataset" in capsys.readouterr().err
