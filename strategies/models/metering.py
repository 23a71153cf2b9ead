"""What a call in progress has already been sent, so that a call that fails or is cancelled mid-answer is
still charged for it.

A streamed answer (`providers.streaming`) is paid for token by token as it arrives: a provider that sends
half an answer and then breaks the connection, or a call cut off by the deadline or an early stop, has
still cost what arrived. The core opens a meter around each call (`metering`, in `engine.calling`) and
charges its `spent_usd` when no completion comes back; the streaming reader keeps it up to date.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from decimal import Decimal


@dataclass
class SpendMeter:
    """The cost of what one call has received so far."""

    output_tokens: int = 0
    """Output tokens received (counted as they arrived)."""
    spent_usd: Decimal | None = None
    """Their cost with the prompt's (over-)estimate; None while nothing arrived or the price is unknown."""


_current: ContextVar[SpendMeter | None] = ContextVar("chorus_spend_meter", default=None)


@contextmanager
def metering() -> Iterator[SpendMeter]:
    """A fresh meter for the call made inside the block (the block's task and its awaits)."""
    meter = SpendMeter()
    token = _current.set(meter)
    try:
        yield meter
    finally:
        _current.reset(token)


def current_meter() -> SpendMeter | None:
    """The meter of the call being made, if the core opened one."""
    return _current.get()
