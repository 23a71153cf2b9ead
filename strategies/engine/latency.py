"""How fast each model has been answering: a rolling window of measured call latencies per model.

The engine records every call that tells something about a model's speed (`strategies.engine.calling`):

- a successful, uncached call, at the latency its client measured (a cache hit says nothing about the
  provider, so it is never recorded);
- a call that timed out, at the time waited for it (the true latency is at least that): otherwise a model
  that never answers would stay unmeasured, and be explored again and again, until its breaker opens.

Other failures (a 400, a 500 sent at once) are not recorded: their latency is not the model's answer time.

Each model keeps its last `WINDOW` samples, each with the wall-clock time it was taken; a figure is a
percentile (`percentile`: linear interpolation between the closest ranks, so the median of 1, 2, 3, 4 is
2.5) of the window's samples younger than the reader's `max_age_s`. Ageing is what lets routing come back
to a model it left: the model that stopped being chosen stops being measured, so without it one slow spell
(or one cold first call) would be its figure forever; with it the old samples stop counting, the model is
unmeasured again, and the router explores it anew (`strategies.kinds.objective`). A window rather than an
exponential average because replicas can share it exactly: each appends its samples to one list per model
(`LatencyStore`, in Redis when the sessions are there: `strategies.sessions.stores.redis_latency`), and
every replica reads the same window back, whatever order the samples arrived in.

Recording is synchronous and never waits on the network (it sits on every call's path): samples wait in an
outbox that a background loop (`run_sync`) pushes to the shared store, and reading the figures pushes the
outbox first, so a replica always sees its own samples. When the shared store cannot be reached, the
figures come from this process's own samples, and the reader is told so.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

import anyio

from chorus_mcp.strategies.core.errors import redact

WINDOW = 50
"""Samples kept per model: enough for a stable median, few enough to follow a provider that slows down."""
SHARED_READ_TIMEOUT_S = 1.0
"""Longest a routing decision waits for the shared figures before using this process's own."""


class Sample(NamedTuple):
    """One measured call: when it ended (Unix seconds, comparable across replicas) and how long it took."""

    at: float
    seconds: float


class LatencyStore(Protocol):
    """Where replicas keep each model's latest latency samples."""

    async def add(self, samples: Mapping[str, Sequence[Sample]]) -> None:
        """Append each model's samples (oldest first), keeping its latest `WINDOW`."""
        ...

    async def windows(self, models: Sequence[str]) -> dict[str, list[Sample]]:
        """Each model's kept samples (an empty list for a model never measured)."""
        ...


@dataclass
class MemoryLatencyStore:
    """The samples of one process: the reference semantics, and the store when there are no replicas."""

    window: int = WINDOW
    _samples: dict[str, deque[Sample]] = field(default_factory=dict)

    def append(self, model: str, sample: Sample) -> None:
        kept = self._samples.get(model)
        if kept is None:
            kept = self._samples[model] = deque(maxlen=self.window)
        kept.append(sample)

    def window_of(self, model: str) -> list[Sample]:
        return list(self._samples.get(model, ()))

    async def add(self, samples: Mapping[str, Sequence[Sample]]) -> None:
        for model, values in samples.items():
            for value in values:
                self.append(model, value)

    async def windows(self, models: Sequence[str]) -> dict[str, list[Sample]]:
        return {model: self.window_of(model) for model in models}


@dataclass(frozen=True)
class LatencyFigure:
    """A model's measured latency: a percentile of its recent samples, and how many samples that rests on."""

    seconds: float | None
    """None: never measured, or every sample is older than the reader's limit."""
    samples: int
    aged_out: int = 0
    """Samples still in the window but too old to count."""


def percentile(values: Sequence[float], p: float) -> float:
    """The `p`th percentile (0 < p <= 100) of `values`, interpolating linearly between the closest ranks."""
    if not values:
        raise ValueError("the percentile of no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass
class LatencyStats:
    """The latency figures one server uses: recorded by every run, shared through `shared` when set."""

    shared: LatencyStore | None = None
    window: int = WINDOW
    clock: Callable[[], float] = time.time
    """Wall-clock time, not the event loop's: samples are compared across replicas and restarts."""
    _local: MemoryLatencyStore = field(init=False)
    _outbox: dict[str, list[Sample]] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self._local = MemoryLatencyStore(self.window)

    def record(self, model: str, latency_s: float) -> None:
        """One call's latency (never waits: a shared store gets it at the next push)."""
        sample = Sample(self.clock(), latency_s)
        self._local.append(model, sample)
        if self.shared is not None:
            self._outbox.setdefault(model, []).append(sample)

    async def push(self) -> None:
        """Send the outbox to the shared store (kept for the next round when that fails)."""
        if self.shared is None or not self._outbox:
            return
        pending, self._outbox = self._outbox, {}
        try:
            await self.shared.add(pending)
        except BaseException:
            for model, values in pending.items():  # before anything recorded meanwhile: oldest first
                self._outbox[model] = [*values, *self._outbox.get(model, [])]
            raise

    async def figures(
        self,
        models: Sequence[str],
        p: float = 50,
        max_age_s: float | None = None,
        last: int | None = None,
    ) -> tuple[dict[str, LatencyFigure], str | None]:
        """Each model's `p`th-percentile latency over its `last` samples (None: the whole window) that are
        younger than `max_age_s` (None: any age); and a note when the shared figures could not be read
        (then they are this process's own)."""
        windows: Mapping[str, list[Sample]] | None = None
        note = None
        if self.shared is not None:
            try:
                with anyio.fail_after(SHARED_READ_TIMEOUT_S):
                    await self.push()
                    windows = await self.shared.windows(models)
            except Exception as exc:  # a store that fails must never fail the request: say so instead
                reason = "no answer in time" if isinstance(exc, TimeoutError) else redact(str(exc))[:200]
                note = f"shared latency figures unavailable ({reason}); this replica's own samples used"
        if windows is None:
            windows = {model: self._local.window_of(model) for model in models}
        oldest = None if max_age_s is None else self.clock() - max_age_s
        kept = {model: windows.get(model, [])[-last:] if last else windows.get(model, []) for model in models}
        return {model: _figure(kept[model], p, oldest) for model in models}, note

    async def run_sync(self, interval_s: float, on_error: Callable[[BaseException], None]) -> None:
        """Push the outbox every `interval_s`, forever; a failed round is reported and retried."""
        while True:
            try:
                await self.push()
            except Exception as exc:
                on_error(exc)
            await anyio.sleep(interval_s)


def _figure(samples: Sequence[Sample], p: float, oldest: float | None) -> LatencyFigure:
    young = [s.seconds for s in samples if oldest is None or s.at >= oldest]
    aged_out = len(samples) - len(young)
    if not young:
        return LatencyFigure(None, 0, aged_out)
    return LatencyFigure(round(percentile(young, p), 4), len(young), aged_out)
