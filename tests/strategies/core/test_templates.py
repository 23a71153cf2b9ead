from __future__ import annotations

import pytest

from chorus_mcp.strategies.core.completion import CompletionRequest, Message
from chorus_mcp.strategies.core.errors import UserInputError
from chorus_mcp.strategies.core.templates import (
    check_fields,
    fields_of,
    latest_user_text,
    render,
    with_prompt,
)


def test_plain_fields_are_filled_and_doubled_braces_are_literal() -> None:
    rendered = render(
        "Plan for {input}: {plan} {{not a field}}", {"input": "X", "plan": "P"}, where="stage 'a'"
    )

    assert rendered == "Plan for X: P {not a field}"


@pytest.mark.parametrize(
    ("template", "why"),
    [
        ("{input.__class__}", "attribute access"),
        ("{input[0]}", "indexing"),
        ("{0}", "positional"),
        ("{}", "positional"),
        ("{input!r}", "conversions"),
        ("{input:>10}", "format specs"),
        ("{input.__class__.__mro__}", "attribute access"),
    ],
)
def test_format_string_features_beyond_a_plain_name_are_rejected(template: str, why: str) -> None:
    with pytest.raises(UserInputError, match=why) as caught:
        render(template, {"input": "x"}, where="stage 'draft'")

    assert "stage 'draft'" in caught.value.message


@pytest.mark.parametrize("template", ["a { b", "a } b", "{input", "input}"])
def test_a_lone_brace_is_rejected_with_the_escape_hint(template: str) -> None:
    with pytest.raises(UserInputError, match=r"unmatched .*\{\{"):
        render(template, {"input": "x"}, where="stage 'draft'")


def test_values_containing_braces_are_inserted_literally_and_never_parsed_again() -> None:
    hostile = "{plan} {input.__class__} {{x}} {0!r}"

    rendered = render("<{input}> then {plan}", {"input": hostile, "plan": "P"}, where="stage 'a'")

    assert rendered == f"<{hostile}> then P"


def test_an_unknown_field_names_the_place_the_field_and_the_names_available() -> None:
    with pytest.raises(UserInputError) as caught:
        render("{input} and {plna}", {"input": "x", "plan": "P"}, where="pipeline: stage 'write'")

    message = caught.value.message
    assert "stage 'write'" in message and "{plna}" in message and "available: input, plan" in message


def test_fields_are_listed_once_in_order_of_first_use_and_checked_against_a_name_list() -> None:
    assert fields_of("{b} {a} {b} {{c}}", where="t") == ["b", "a"]
    check_fields("{input} {plan}", ["input", "plan"], where="t")
    with pytest.raises(UserInputError, match="unknown template field"):
        check_fields("{later}", ["input"], where="t")


def test_the_prompt_replaces_only_the_latest_user_message() -> None:
    request = CompletionRequest(
        messages=(
            Message(role="system", content="be brief"),
            Message(role="user", content="first"),
            Message(role="assistant", content="answer"),
            Message(role="user", content="second"),
        )
    )

    changed = with_prompt(request, "rendered")

    assert latest_user_text(request) == "second"
    assert [m.content for m in changed.messages] == ["be brief", "first", "answer", "rendered"]
