"""Reading a fan-out's list from a model's answer: JSON arrays wherever they sit, lines without their
list markers, and a reason (never an exception) when there is no list."""

from __future__ import annotations

import pytest

from chorus_mcp.strategies.kinds.items import read_items


def test_the_longest_json_array_is_the_list_even_after_prose_and_a_short_bracket() -> None:
    text = 'As noted [1], the sections are:\n```json\n["Tides", " Waves ", ""]\n```\nThanks.'

    read = read_items(text, "json")

    assert read.items == ["Tides", "Waves"] and read.how == "a JSON array" and read.problem is None


def test_objects_and_numbers_in_an_array_become_compact_json_items() -> None:
    read = read_items('[{"title": "Tides", "depth": 2}, 7]', "auto")

    assert read.items == ['{"title": "Tides", "depth": 2}', "7"]


def test_lines_lose_their_bullets_and_numbers_and_code_fences_are_dropped() -> None:
    text = "```\n1. Tides\n  - Waves\n(3) Currents\n2) Storm surge\n\n* Estuaries\n```"

    read = read_items(text, "lines")

    assert read.items == ["Tides", "Waves", "Currents", "Storm surge", "Estuaries"] and read.how == "lines"


def test_auto_reads_lines_when_the_answer_holds_no_json_array() -> None:
    assert read_items("Tides\nWaves", "auto").items == ["Tides", "Waves"]


@pytest.mark.parametrize(
    ("text", "parse", "problem"),
    [
        ("Sure! Tides and waves.", "json", "no JSON array (its answer began 'Sure! Tides and waves.')"),
        ("", "json", "no JSON array (its answer began empty)"),
        ('["", "  "]', "auto", "a JSON array with no items"),
        ("  \n\n", "lines", "no non-empty line"),
    ],
)
def test_no_list_is_a_reason_not_an_exception(text: str, parse: str, problem: str) -> None:
    read = read_items(text, parse)  # type: ignore[arg-type]

    assert read.items == [] and read.problem == problem


def test_a_long_answer_opening_is_cut_in_the_reason() -> None:
    read = read_items("word " * 100, "json")

    assert read.problem is not None and read.problem.endswith("...')") and len(read.problem) < 100
