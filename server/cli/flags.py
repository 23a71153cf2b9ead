"""Command-line values checked as they are parsed, refused in the voice of every other bad value
(`config.problems`): argparse prints `argument --deadline: 'abc'; expected a number of seconds`."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def number(
    accepted: str, *, above: float | None = None, at_least: float | None = None
) -> Callable[[str], float]:
    """A converter for a numeric flag: a finite number, above or at least a bound; `accepted` says what."""

    def convert(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if (
            not math.isfinite(value)
            or (above is not None and value <= above)
            or (at_least is not None and value < at_least)
        ):
            raise argparse.ArgumentTypeError(f"{text!r}; expected {accepted}")
        return value

    return convert


def port(text: str) -> int:
    """A TCP port number (0: any free one)."""
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r}; expected a port number from 0 to 65535")
    return int(text)
