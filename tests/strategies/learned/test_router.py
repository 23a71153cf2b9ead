from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

pytest.importorskip("numpy")

from chorus_mcp.strategies.core.errors import UserInputError
from chorus_mcp.strategies.evaluation.datasets import Dataset, Question
from chorus_mcp.strategies.evaluation.training import train_router
from chorus_mcp.strategies.learned.router import load_router, question_text
from chorus_mcp.strategies.learned.settings import RouterSettings
from chorus_mcp.strategies.models.replay import RecordedOutcome


def _dataset() -> Dataset:
    """Maths questions only the strong model gets right; spelling questions everyone gets right."""
    questions = []
    for i in range(20):
        maths = i % 2 == 0
        topic = (
            f"compute the integral of polynomial number {i}"
            if maths
            else f"spell the word banana variant {i}"
        )
        prompt = f"Example: shared few-shot prefix.\n\n{topic}\nA) one\nB) two\nAnswer:"
        outcomes = {
            "cheap": RecordedOutcome("B" if maths else "A", cost_usd=Decimal("0.0001"), correct=not maths),
            "strong": RecordedOutcome("A", cost_usd=Decimal("0.01"), correct=True),
        }
        questions.append(Question(f"q{i}", prompt, outcomes, choices=("A", "B")))
    return Dataset("toy", tuple(questions))


def test_question_text_is_the_last_paragraph() -> None:
    assert question_text("shot 1\n\nshot 2\n\nthe question\nA) x") == "the question\nA) x"
    assert question_text("no paragraphs") == "no paragraphs"


@pytest.mark.parametrize("variant", ["chorus", "baseline"])
def test_the_router_sends_hard_questions_to_the_strong_model_and_easy_ones_to_the_cheap(
    tmp_path: Path, variant: str
) -> None:
    router = train_router(_dataset(), RouterSettings(embedder="hashing", k=3, variant=variant, prior=1.0))
    path = router.save(tmp_path / "r.json")
    loaded = load_router(path)
    maths = "Example: shared few-shot prefix.\n\ncompute the integral of polynomial number 99\nA) one\nB) two"
    spelling = "Example: shared few-shot prefix.\n\nspell the word banana variant 99\nA) one\nB) two"
    assert loaded.choose(maths, tradeoff=0.3).model == "strong"
    assert loaded.choose(spelling, tradeoff=0.3).model == "cheap"
    assert loaded.choose(maths, tradeoff=5.0).model == "cheap"  # cost dominates
    assert loaded.accuracy == [0.5, 1.0]


def test_router_files_are_checked(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="does not exist"):
        load_router(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(UserInputError, match="not a valid Chorus router"):
        load_router(tmp_path / "bad.json")
    with pytest.raises(UserInputError, match="not in the dataset"):
        train_router(_dataset(), RouterSettings(embedder="hashing", models=["gpt-9"]))
    with pytest.raises(UserInputError, match="unknown embedder"):
        train_router(_dataset(), RouterSettings(embedder="magic"))


def test_the_bundled_wordllama_model_embeds_offline() -> None:
    pytest.importorskip("wordllama")
    from chorus_mcp.strategies.models.embeddings import embed

    vectors = embed(
        "wordllama", ["a cat sat on the mat", "a kitten sat on a rug", "quarterly tax filing rules"]
    )
    assert vectors.shape == (3, 256)
    assert float(vectors[0] @ vectors[1]) > float(vectors[0] @ vectors[2])


def test_a_training_question_is_never_its_own_neighbour() -> None:
    def question(qid: str, text: str, cheap_right: bool) -> Question:
        outcomes = {
            "cheap": RecordedOutcome(
                "A" if cheap_right else "B", cost_usd=Decimal("0.0001"), correct=cheap_right
            ),
            "strong": RecordedOutcome("A", cost_usd=Decimal("0.01"), correct=True),
        }
        return Question(qid, text, outcomes, choices=("A", "B"))

    data = Dataset(
        "loo",
        (
            question("a", "alpha alpha", True),
            question("b", "alpha alpha beta", False),
            question("c", "gamma delta", False),
        ),
    )
    router = train_router(data, RouterSettings(embedder="hashing", k=1, variant="baseline"))
    # Its own row would say cheap is right; its nearest *other* question says cheap is wrong.
    assert router.choose("alpha alpha", tradeoff=0.0).estimates["cheap"] == 0.0
    # A new prompt close to "a" does see "a".
    assert router.choose("alpha alpha alpha", tradeoff=0.0).estimates["cheap"] == 1.0


def test_learned_route_runs_through_the_strategy_core(tmp_path: Path) -> None:
    pytest.importorskip("trio")
    from chorus_mcp.strategies.core.spec import LearnedRouteSpec
    from chorus_mcp.strategies.evaluation.engine import Evaluator, Score, virtual_time

    data = _dataset()
    path = train_router(data, RouterSettings(embedder="hashing", k=3, prior=1.0)).save(tmp_path / "r.json")
    evaluator = Evaluator(data, aliases={"best": "strong"})
    spec = LearnedRouteSpec(router=str(path), tradeoff=0.3, models={"strong": "best"})

    async def work() -> Score:
        return await evaluator.run("learned", spec)

    score: Score = virtual_time(work)
    assert score.accuracy == 1.0
    assert [o.models for o in score.outcomes[:2]] == [("best",), ("cheap",)]


@pytest.mark.anyio
async def test_learned_route_records_its_decision_and_reports_a_missing_file(tmp_path: Path) -> None:
    from chorus_mcp.strategies.core.completion import CompletionRequest
    from chorus_mcp.strategies.core.spec import LearnedRouteSpec
    from chorus_mcp.strategies.engine.context import RunContext
    from chorus_mcp.strategies.engine.runner import run_strategy
    from chorus_mcp.strategies.models.replay import replay_catalog

    data = _dataset()
    path = train_router(data, RouterSettings(embedder="hashing", k=3, prior=1.0)).save(tmp_path / "r.json")
    ctx = RunContext.starting_now(replay_catalog(data.recording()), 10.0)
    result = await run_strategy(
        LearnedRouteSpec(router=str(path)), CompletionRequest.of(data.questions[0].prompt), ctx
    )
    assert result.ok and result.answer == "A" and result.strategy == "learned_route"
    decision = result.decisions[0]
    assert decision.kind == "route" and decision.route == "strong" and "p(correct)" in decision.reason
    missing = await run_strategy(
        LearnedRouteSpec(router=str(tmp_path / "none.json")), CompletionRequest.of("x"), ctx
    )
    assert not missing.ok and "does not exist" in (missing.error or "")
