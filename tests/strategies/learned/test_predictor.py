from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

pytest.importorskip("numpy")

from chorus_mcp.strategies.core.errors import UserInputError
from chorus_mcp.strategies.evaluation.datasets import Dataset, Question
from chorus_mcp.strategies.evaluation.training import train_predictor
from chorus_mcp.strategies.learned.predictor import is_predictor_file, load_predictor
from chorus_mcp.strategies.learned.settings import PredictorSettings
from chorus_mcp.strategies.models.replay import RecordedOutcome

TOPICS = {
    # topic words, and what the two cheap models do on it (the strong model is always right)
    "astronomy": "which planet orbits the star seen through the telescope at night",
    "cooking": "how long should the bread dough rise in the warm oven kitchen",
    "geology": "which rock layer formed from volcanic lava under the ocean floor",
}
COSTS = {"cheap-a": Decimal("0.0001"), "cheap-b": Decimal("0.0002"), "strong": Decimal("0.01")}


def _prompt(topic: str, number: int) -> str:
    return f"{TOPICS[topic]} case {number}?\nA) first\nB) second\nC) third\nD) fourth\nAnswer:"


def _question(topic: str, number: int) -> Question:
    """The planted signal: on astronomy both cheap models are right; on cooking they disagree and
    cheap-b is right; on geology they agree on the same wrong answer."""
    right = "ABCD"[number % 4]
    wrong = "ABCD"[(number + 1) % 4]
    a, b = {"astronomy": (right, right), "cooking": (wrong, right), "geology": (wrong, wrong)}[topic]
    answers = {"cheap-a": a, "cheap-b": b, "strong": right}
    outcomes = {
        model: RecordedOutcome(f"{letter}\n", cost_usd=COSTS[model], correct=letter == right)
        for model, letter in answers.items()
    }
    return Question(f"{topic}.{number}", _prompt(topic, number), outcomes, choices=("A", "B", "C", "D"))


def _dataset(count: int = 60) -> Dataset:
    topics = list(TOPICS)
    return Dataset("planted", tuple(_question(topics[i % 3], i) for i in range(count)))


def _settings(**changes: object) -> PredictorSettings:
    base: dict[str, object] = {"embedder": "hashing", "k": 5, "tier": ["cheap-a", "cheap-b"], "seed": 3}
    return PredictorSettings.model_validate(base | changes)


def test_the_answer_head_learns_who_to_trust_from_agreement_and_neighbours() -> None:
    predictor = train_predictor(_dataset(), _settings())
    # New prompts (not training questions), so the model fitted on everything scores them.
    trusted = predictor.score_answers(_prompt("astronomy", 901), {"cheap-a": "B", "cheap-b": "B"})
    unanimous_but_wrong_before = predictor.score_answers(
        _prompt("geology", 902), {"cheap-a": "B", "cheap-b": "B"}
    )
    split = predictor.score_answers(_prompt("cooking", 903), {"cheap-a": "A", "cheap-b": "C"})
    assert trusted["B"] > 0.8
    # The tier agrees on both, but on geology its neighbours say such agreement was wrong.
    assert unanimous_but_wrong_before["B"] < 0.3
    # When they disagree, cheap-b has been the one to trust.
    assert split["C"] > 0.7 > 0.3 > split["A"]


def test_the_route_head_learns_where_the_cheapest_model_is_right() -> None:
    predictor = train_predictor(_dataset(), _settings())
    on_astronomy = predictor.model_probabilities(_prompt("astronomy", 904))
    on_geology = predictor.model_probabilities(_prompt("geology", 905))
    assert on_astronomy["cheap-a"] > 0.8 and on_geology["cheap-a"] < 0.2
    assert predictor.route(_prompt("astronomy", 904), 0.8).model == "cheap-a"
    assert predictor.route(_prompt("cooking", 906), 0.8).model == "cheap-b"  # cheapest clearing the bar
    assert predictor.route(_prompt("geology", 905), 0.8).model == "strong"
    assert predictor.route(_prompt("geology", 905), 0.0).model == "cheap-a"  # no bar: the cheapest


def test_a_training_question_is_scored_by_the_fold_model_that_never_saw_it() -> None:
    data = _dataset()
    predictor = train_predictor(data, _settings())
    training = data.questions[0]
    slot = predictor._slot(predictor.keys[0])
    assert slot == predictor.folds[0] < predictor.settings.folds
    assert predictor._slot("not a training key") == predictor.settings.folds
    # Fold models differ from the full one, so the cross-fitted score is not the in-sample one.
    assert not (predictor.answer_weights[slot] == predictor.answer_weights[-1]).all()
    assert predictor.score_answers(training.prompt, {"cheap-a": "A", "cheap-b": "A"})


def test_predictor_files_round_trip(tmp_path: Path) -> None:
    predictor = train_predictor(_dataset(), _settings())
    path = predictor.save(tmp_path / "p.json")
    assert is_predictor_file(path)
    loaded = load_predictor(path)
    prompt = _prompt("cooking", 907)
    answers = {"cheap-a": "A", "cheap-b": "C"}
    assert loaded.score_answers(prompt, answers) == predictor.score_answers(prompt, answers)
    assert loaded.model_probabilities(prompt) == predictor.model_probabilities(prompt)
    assert (loaded.tier, loaded.models, loaded.folds) == (predictor.tier, predictor.models, predictor.folds)


def test_training_is_deterministic_given_the_seed() -> None:
    first = train_predictor(_dataset(), _settings())
    again = train_predictor(_dataset(), _settings())
    other = train_predictor(_dataset(), _settings(seed=4))
    assert first.folds == again.folds
    assert (first.answer_weights == again.answer_weights).all()
    assert (first.route_weights == again.route_weights).all()
    assert first.folds != other.folds


def test_predictor_files_are_checked(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match=r"does not exist.*train-predictor"):
        load_predictor(tmp_path / "none.json")
    (tmp_path / "other.json").write_text(json.dumps({"format": "chorus-router/1"}))
    with pytest.raises(UserInputError, match="not a valid Chorus predictor: format"):
        load_predictor(tmp_path / "other.json")
    assert not is_predictor_file(tmp_path / "other.json")
    payload = json.loads(train_predictor(_dataset(), _settings()).save(tmp_path / "p.json").read_text())
    payload["answer_weights"] = payload["answer_weights"][:2]
    (tmp_path / "cut.json").write_text(json.dumps(payload))
    with pytest.raises(UserInputError, match=r"cut\.json.*answer_weights has shape"):
        load_predictor(tmp_path / "cut.json")
    (tmp_path / "text.json").write_text("not json")
    with pytest.raises(UserInputError, match="not a valid Chorus predictor"):
        load_predictor(tmp_path / "text.json")


def test_bad_training_input_is_a_clear_error() -> None:
    with pytest.raises(UserInputError, match=r"predictor models \['gpt-9'\] are not in the dataset"):
        train_predictor(_dataset(), _settings(tier=["cheap-a", "gpt-9"]))
    with pytest.raises(UserInputError, match="5 folds on 6 questions"):
        train_predictor(_dataset(6), _settings())
    with pytest.raises(ValueError, match="tier lists a model twice"):
        _settings(tier=["cheap-a", "cheap-a"])
    predictor = train_predictor(_dataset(), _settings())
    with pytest.raises(UserInputError, match="cannot read answers of \\['strong'\\]"):
        predictor.score_answers(_prompt("cooking", 1), {"strong": "A"})


def test_without_numpy_the_predictor_says_which_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib
    import sys

    # A fresh import with numpy unavailable (the modules already loaded are restored afterwards).
    monkeypatch.setitem(sys.modules, "numpy", None)
    for name in ("chorus_mcp.strategies.learned.predictor", "chorus_mcp.strategies.learned.router"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    with pytest.raises(UserInputError, match=r"needs numpy: install chorus-mcp\[eval\]"):
        importlib.import_module("chorus_mcp.strategies.learned.predictor")
