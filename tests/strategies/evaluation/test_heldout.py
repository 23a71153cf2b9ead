from __future__ import annotations

from pathlib import Path

import pytest

from chorus_mcp.strategies.core.errors import UserInputError
from chorus_mcp.strategies.evaluation.datasets import load_dataset
from chorus_mcp.strategies.evaluation.heldout import file_sides, find_overlaps, question_key, seeded_sides
from tests.strategies.evaluation.fixtures import mc_prompt, toy_rows, write_routerbench_csv


def _files(tmp_path: Path, train_count: int = 10, test_ids: range = range(10, 16)) -> tuple[Path, Path]:
    rows = toy_rows(train_count + 20)
    train = write_routerbench_csv(tmp_path / "train.csv", rows[:train_count])
    test = write_routerbench_csv(tmp_path / "test.csv", [rows[i] for i in test_ids])
    return train, test


def test_two_files_calibrate_on_all_of_train_and_report_on_all_of_test(tmp_path: Path) -> None:
    train, test = _files(tmp_path)
    sides = file_sides(load_dataset(train), load_dataset(test))
    assert len(sides.calibration) == 10 and len(sides.report) == 6
    assert sides.overlap.count == 0 and sides.source == "train train, test test"
    assert len(sides.recorded) == 16


def test_a_test_question_duplicating_a_train_one_is_excluded_and_counted(tmp_path: Path) -> None:
    rows = toy_rows(12)
    sample, prompt, answers = rows[3]
    # The same question under another id, with a different few-shot prefix and spacing: still a duplicate.
    twin = ("other.99", "Example: 1+1?\nA) 2\nB) 3\nAnswer: A\n\n" + prompt.replace("\n", " \n"), answers)
    train = write_routerbench_csv(tmp_path / "train.csv", rows[:6])
    test = write_routerbench_csv(tmp_path / "test.csv", [*rows[6:], twin])
    sides = file_sides(load_dataset(train), load_dataset(test))
    assert sides.overlap.pairs == ((sample, "other.99"),)
    assert sides.overlap.excluded == ("other.99",)
    assert "other.99" not in {q.id for q in sides.report.questions}
    assert len(sides.report) == 6
    assert "1 report question(s) duplicate calibration ones (other.99 = toy.3); 1 excluded" in (
        sides.overlap.summary()
    )


def test_the_fail_policy_refuses_a_duplicated_question_naming_it(tmp_path: Path) -> None:
    rows = toy_rows(8)
    train = write_routerbench_csv(tmp_path / "train.csv", rows[:5])
    test = write_routerbench_csv(tmp_path / "test.csv", rows[4:])
    with pytest.raises(UserInputError, match=r"toy\.4 = toy\.4.*leak"):
        file_sides(load_dataset(train), load_dataset(test), "fail")


def test_a_shared_id_with_another_prompt_counts_as_an_overlap(tmp_path: Path) -> None:
    train = write_routerbench_csv(tmp_path / "train.csv", [("q.1", mc_prompt("First?"), _all("A"))])
    test = write_routerbench_csv(tmp_path / "test.csv", [("q.1", mc_prompt("Second?"), _all("B"))])
    assert find_overlaps(load_dataset(train), load_dataset(test)) == [("q.1", "q.1")]


def test_files_recording_different_models_are_refused(tmp_path: Path) -> None:
    rows = toy_rows(6)
    train = write_routerbench_csv(tmp_path / "train.csv", rows[:3])
    fewer = [(i, p, {m: a[m] for m in ("cheap-a", "strong")}) for i, p, a in rows[3:]]
    test = write_routerbench_csv(tmp_path / "test.csv", fewer, models=("cheap-a", "strong"))
    with pytest.raises(UserInputError, match=r"only in train: cheap-b, cheap-c; only in test: none"):
        file_sides(load_dataset(train), load_dataset(test))


def test_the_seeded_split_is_checked_for_overlaps_too(tmp_path: Path) -> None:
    rows = toy_rows(20)
    # Every question twice under a second id: whichever side each copy lands on, a pair straddling
    # the split is a duplicate the report must not keep.
    doubled = rows + [(f"copy.{i}", prompt, answers) for i, (_id, prompt, answers) in enumerate(rows)]
    data = load_dataset(write_routerbench_csv(tmp_path / "d.csv", doubled))
    sides = seeded_sides(data, 0.5, seed=1)
    assert sides.overlap.count > 0
    calibration = {question_key(q.prompt) for q in sides.calibration.questions}
    assert not calibration & {question_key(q.prompt) for q in sides.report.questions}
    assert sides.source == "seeded split of d (seed 1)"


def _all(letter: str) -> dict[str, str]:
    return {m: letter for m in ("cheap-a", "cheap-b", "cheap-c", "strong")}
