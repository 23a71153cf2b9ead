"""Quality scores from recorded outcomes: RouterBench CSV and Chorus JSONL read as the offline evaluation
reads them (checked against it), configured scores winning, and bad files named by line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chorus_mcp.server.cli.eval import default_data_dir
from chorus_mcp.strategies.core.errors import ConfigError
from chorus_mcp.strategies.core.spec import RouteSpec
from chorus_mcp.strategies.evaluation.datasets import load_dataset
from chorus_mcp.strategies.kinds.quality import quality_figures
from tests.strategies.evaluation.fixtures import MODELS, toy_rows, write_routerbench_csv

SHIPPED_ARC = default_data_dir() / "arc_challenge_train.csv"
"""The recorded RouterBench data (`$CHORUS_EVAL_DATA`, else `../shared/data/routerbench` next to the
repository), when it is there."""


def _spec(**fields: Any) -> RouteSpec:
    return RouteSpec.model_validate(
        {"routes": [{"name": "x", "target": "cheap-a"}], "default": "x", "objective": "quality", **fields}
    )


def _accuracy_by_evaluation(path: Path) -> dict[str, tuple[float, int]]:
    graded: dict[str, list[bool]] = {}
    for question in load_dataset(path).questions:
        for model, outcome in question.outcomes.items():
            if outcome.correct is not None:
                graded.setdefault(model, []).append(outcome.correct)
    return {model: (round(sum(g) / len(g), 4), len(g)) for model, g in graded.items()}


def test_a_routerbench_csv_scores_each_model_by_its_share_of_right_answers(tmp_path: Path) -> None:
    path = write_routerbench_csv(tmp_path / "toy.csv", toy_rows(12))

    figures = quality_figures(_spec(quality_data=str(path)), [*MODELS, "unknown"])

    assert {m: (f.score, f.samples) for m, f in figures.items()} == {
        "cheap-a": (0.5, 12),
        "cheap-b": (0.5, 12),
        "cheap-c": (1.0, 12),
        "strong": (1.0, 12),
        "unknown": (None, None),
    }
    assert figures["strong"].source == "recorded in toy.csv"
    assert figures["unknown"].source == "no score configured or recorded in toy.csv"
    assert {m: (f.score, f.samples) for m, f in figures.items() if m != "unknown"} == _accuracy_by_evaluation(
        path
    )


def test_chorus_jsonl_is_scored_from_its_graded_lines(tmp_path: Path) -> None:
    lines = [
        "# recorded from our logs",
        {"prompt": "q1", "model": "m", "response": "A", "correct": True},
        {"prompt": "q2", "model": "m", "response": "B", "correct": False},
        {"prompt": "q3", "model": "m", "response": "C"},
        "",
        {"prompt": "q1", "model": "n", "response": "A", "correct": True},
    ]
    path = tmp_path / "ours.jsonl"
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines))

    figures = quality_figures(_spec(quality_data=str(path)), ["m", "n"])

    assert (figures["m"].score, figures["m"].samples) == (0.5, 2)
    assert (figures["n"].score, figures["n"].samples) == (1.0, 1)
    assert {m: (f.score, f.samples) for m, f in figures.items()} == _accuracy_by_evaluation(path)


def test_recorded_names_score_the_aliases_they_are_mapped_to_and_configured_scores_win(
    tmp_path: Path,
) -> None:
    path = write_routerbench_csv(tmp_path / "toy.csv", toy_rows(4))
    spec = _spec(quality_data=str(path), quality_models={"cheap-c": "mine"}, quality={"strong": 0.25})

    figures = quality_figures(spec, ["mine", "strong", "cheap-c"])

    assert (figures["mine"].score, figures["mine"].samples) == (1.0, 4)
    assert (figures["strong"].score, figures["strong"].source) == (0.25, "configured")
    assert figures["cheap-c"].score is None  # its recorded name now scores `mine`


def test_a_changed_recording_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "ours.jsonl"
    path.write_text(json.dumps({"prompt": "q", "model": "m", "response": "A", "correct": True}))
    assert quality_figures(_spec(quality_data=str(path)), ["m"])["m"].score == 1.0

    path.write_text(json.dumps({"prompt": "q", "model": "m", "response": "A", "correct": False}) + "\n\n")

    assert quality_figures(_spec(quality_data=str(path)), ["m"])["m"].score == 0.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"model": "m", "correct": "yes"}', "ours.jsonl line 1: 'correct' is 'yes'; expected true or false"),
        ('{"correct": true}', "ours.jsonl line 1: needs a 'model'"),
        ("\n{not json", "ours.jsonl line 2: not JSON"),
    ],
)
def test_a_bad_recording_is_refused_naming_the_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "ours.jsonl"
    path.write_text(text)

    with pytest.raises(ConfigError, match=message):
        quality_figures(_spec(quality_data=str(path)), ["m"])


def test_a_missing_recording_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"quality_data: cannot read .*nowhere\.csv"):
        quality_figures(_spec(quality_data=str(tmp_path / "nowhere.csv")), ["m"])


@pytest.mark.skipif(not SHIPPED_ARC.exists(), reason="the recorded RouterBench data is not next to the repo")
def test_the_shipped_arc_recording_scores_models_as_the_offline_evaluation_reads_it() -> None:
    models = ["gpt-4-1106-preview", "claude-v1"]
    figures = quality_figures(_spec(quality_data=str(SHIPPED_ARC)), models)

    by_evaluation = _accuracy_by_evaluation(SHIPPED_ARC)
    assert {m: (figures[m].score, figures[m].samples) for m in models} == {
        m: by_evaluation[m] for m in models
    }
    gpt4 = figures["gpt-4-1106-preview"]
    # The data's README counts its 1,039 questions, ungraded ones as misses: 0.946. Per graded answer: higher.
    right = round((gpt4.score or 0) * (gpt4.samples or 0))
    assert right / 1039 == pytest.approx(0.946, abs=0.0005) and (gpt4.score or 0) > 0.946
