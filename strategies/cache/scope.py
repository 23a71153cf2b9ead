"""Per-call cache state, carried by context variables (copied into every child task a run starts).

- `bypassing()`: a tool call with `cache: false` neither reads nor writes the cache, for every model call
  it makes (members, judges, summaries, retries).
- `sample(n)`: the calls made inside are the n-th independent sample of a request. An ensemble that lists
  the same model twice wants two answers, not one answer counted twice: its second copy runs as sample 1,
  which is a different cache key (`strategies.cache.keys`), so a repeated ensemble replays each copy's
  own answer and a first run still asks the provider once per copy.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_bypass: ContextVar[bool] = ContextVar("chorus_cache_bypass", default=False)
_sample: ContextVar[int] = ContextVar("chorus_cache_sample", default=0)


@contextmanager
def bypassing(active: bool = True) -> Iterator[None]:
    token = _bypass.set(active)
    try:
        yield
    finally:
        _bypass.reset(token)


def bypassed() -> bool:
    return _bypass.get()


@contextmanager
def sample(index: int) -> Iterator[None]:
    token = _sample.set(index)
    try:
        yield
    finally:
        _sample.reset(token)


def current_sample() -> int:
    return _sample.get()
