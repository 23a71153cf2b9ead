from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from chorus_mcp.strategies.core.errors import UserInputError
from chorus_mcp.strategies.evaluation.datasets import load_dataset, options_in, unlist
from tests.strategies.evaluation.fixtures import toy_rows, write_routerbench_csv


def test_routerbench_csv_is_read_with_list_like_strings_unwrapped(tmp_path: Path) -> None:
    data = load_dataset(write_routerbench_csv(tmp_path / "toy.csv", toy_rows(4)))
    assert data.name == "toy" and len(data) == 4
    assert data.models == ("cheap-a", "cheap-b", "cheap-c", "strong")
    first = data.questions[0]
    assert first.id == "toy.0" and first.task == "toy-mc"
    assert first.prompt.startswith("Question number 0?\nA) yes")
    assert first.choices == ("A", "B", "C", "D")
    outcome = first.outcomes["cheap-b"]
    assert outcome.response == "A\n" and outcome.cost_usd == Decimal("0.0002") and outcome.correct is True
    assert data.questions[1].outcomes["cheap-b"].correct is False


def test_unlist_joins_list_items_and_leaves_other_text_alone() -> None:
    assert unlist("['B\\n']") == "B\n"
    assert unlist("['one', 'two']") == "one\ntwo"
    assert unlist("[not python") == "[not python"
    assert unlist("plain") == "plain"


def test_options_are_read_from_lettered_lines() -> None:
    assert options_in("Q?\nA) x\nB) y") == ("A", "B")
    assert options_in("def f(): return 1") == ()


def test_empty_grades_and_costs_are_unknown_not_zero(tmp_path: Path) -> None:
    path = write_routerbench_csv(tmp_path / "toy.csv", toy_rows(2))
    text = path.read_text().splitlines()
    header = text[0].split(",")
    cells = text[1].split(",")
    cells[header.index("cheap-a")] = ""
    cells[header.index("cheap-a|total_cost")] = ""
    path.write_text("\n".join([text[0], ",".join(cells), *text[2:]]) + "\n")
    outcome = load_dataset(path).questions[0].outcomes["cheap-a"]
    assert outcome.correct is None and outcome.cost_usd is None


def test_split_is_deterministic_disjoint_and_independent_of_row_order(tmp_path: Path) -> None:
    rows = toy_rows(40)
    data = load_dataset(write_routerbench_csv(tmp_path / "a.csv", rows))
    shuffled = load_dataset(write_routerbench_csv(tmp_path / "b.csv", list(reversed(rows))))
    cal, rep = data.split(0.5, seed=3)
    assert len(cal) == 20 and len(rep) == 20
    assert not {q.id for q in cal.questions} & {q.id for q in rep.questions}
    assert {q.id for q in shuffled.split(0.5, seed=3)[0].questions} == {q.id for q in cal.questions}
    assert {q.id for q in data.split(0.5, seed=4)[0].questions} != {q.id for q in cal.questions}
    with pytest.raises(UserInputError):
        data.split(1.0, seed=0)


def _jsonl(path: Path, records: list[dict[str, object]]) -> Path:
    path.write_text("# my log\n" + "\n".join(json.dumps(r) for r in records) + "\n\n")
    return path


def test_jsonl_groups_calls_by_question(tmp_path: Path) -> None:
    path = _jsonl(
        tmp_path / "log.jsonl",
        [
            {
                "id": "q1",
                "prompt": "Q?\nA) x\nB) y",
                "model": "m1",
                "response": "A",
                "cost_usd": 0.001,
                "latency_s": 0.5,
                "correct": True,
                "task": "t",
                "gold": "A",
            },
            {"id": "q1", "prompt": "Q?\nA) x\nB) y", "model": "m2", "response": "B", "correct": False},
            {"prompt": "Free text?", "model": "m1", "response": "hello"},
        ],
    )
    data = load_dataset(path)
    assert len(data) == 2 and data.models == ("m1", "m2")
    q1 = data.questions[0]
    assert q1.gold == "A" and q1.task == "t" and q1.choices == ("A", "B")
    assert q1.outcomes["m1"].latency_s == 0.5 and q1.outcomes["m1"].cost_usd == Decimal("0.001")
    assert q1.outcomes["m2"].cost_usd is None and q1.outcomes["m2"].latency_s is None
    assert data.questions[1].id == "Free text?" and data.questions[1].choices == ()


@pytest.mark.parametrize(
    ("records", "message"),
    [
        ([{"prompt": "p", "model": "m"}], r"log.jsonl:2: missing required field 'response'"),
        ([{"prompt": "p", "model": "m", "response": "r", "cost_usd": True}], "must be a number"),
        (
            [{"prompt": "p", "model": "m", "response": "r"}, {"prompt": "p", "model": "m", "response": "s"}],
            r"log.jsonl:3: model 'm' is recorded twice for this question \(also line 2\)",
        ),
        (
            [
                {"id": 1, "prompt": "p", "model": "m", "response": "r"},
                {"id": 1, "prompt": "q", "model": "n", "response": "r"},
            ],
            "different prompt",
        ),
        ([{"prompt": "p", "model": "m", "response": "r", "latency_s": -1}], "must not be negative"),
    ],
)
def test_jsonl_errors_name_the_line(tmp_path: Path, records: list[dict[str, object]], message: str) -> None:
    with pytest.raises(UserInputError, match=message):
        load_dataset(_jsonl(tmp_path / "log.jsonl", records))


def test_bad_paths_and_formats_are_clear(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="does not exist"):
        load_dataset(tmp_path / "none.csv")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(UserInputError, match="unknown format"):
        load_dataset(tmp_path / "x.txt")
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(UserInputError, match="not a RouterBench CSV"):
        load_dataset(tmp_path / "bad.csv")
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    with pytest.raises(UserInputError, match=r"bad.jsonl:1: not valid JSON"):
        load_dataset(tmp_path / "bad.jsonl")
