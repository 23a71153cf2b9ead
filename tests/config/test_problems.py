"""The one voice for bad values: how a given value is shown and where it is said to be."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field, ValidationError

from chorus_mcp.config.problems import SHOWN_CHARS, dotted, problems_of, shown


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "null"),
        (True, "true"),
        (0, "0"),
        (-2.5, "-2.5"),
        (float("nan"), "nan"),
        ("", "'' (empty)"),
        ("abc", "'abc'"),
        ([1, 2], "a list of 2"),
        ({"api_key": "x"}, "a mapping"),
        (10**100, "a number of 101 digits"),
    ],
)
def test_a_given_value_is_shown_as_json_would_say_it(value: object, text: str) -> None:
    assert shown(value) == text


def test_a_long_text_is_cut_and_a_key_in_it_removed() -> None:
    text = shown("sk-" + "k" * 30 + " and then a great deal more " * 10)
    assert len(text) <= SHOWN_CHARS + 2 and text.endswith("...'") and "kkkkkkkk" not in text


def test_a_location_reads_as_a_key_path_with_indexes() -> None:
    assert dotted(("strategies", "vote", "members", 0, "model")) == "strategies.vote.members[0].model"


class _Call(BaseModel):
    deadline_s: float = Field(gt=0)
    models: list[str] = Field(max_length=2)
    name: str = Field(min_length=1)


def test_each_pydantic_error_becomes_one_line_naming_what_was_given_and_what_is_accepted() -> None:
    with pytest.raises(ValidationError) as caught:
        _Call.model_validate({"deadline_s": 0, "models": ["a", "b", "c"]})
    assert problems_of(caught.value) == [
        "deadline_s: 0; expected more than 0",
        "models: 3 items; expected at most 2 items",
        "name: missing; required",
    ]
