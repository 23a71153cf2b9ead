"""Numeric flags refused as they are parsed, in the voice of every other bad value."""

from __future__ import annotations

import argparse

import pytest

from chorus_mcp.server.cli.flags import number, port


@pytest.mark.parametrize("text", ["abc", "0", "-2", "nan", "inf"])
def test_a_number_flag_refuses_what_is_not_a_finite_number_above_its_bound(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as caught:
        number("a number of seconds more than 0", above=0)(text)
    assert str(caught.value) == f"{text!r}; expected a number of seconds more than 0"


def test_a_number_flag_accepts_its_bound_when_inclusive() -> None:
    assert number("0 or more", at_least=0)("0") == 0.0 and number("more than 0", above=0)("0.5") == 0.5


@pytest.mark.parametrize("text", ["x", "-1", "65536", "80.5"])
def test_a_port_flag_refuses_what_is_not_a_port(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="expected a port number from 0 to 65535"):
        port(text)
    assert port("8765") == 8765
