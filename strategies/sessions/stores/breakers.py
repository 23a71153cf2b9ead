"""Circuit-breaker state shared by server replicas (through Redis), behind a small `BreakerStore` seam.

The breakers themselves (`strategies.engine.reliability`) are synchronous and in-process: `calling.py` asks
`allow()` before every call and must not wait on a network round trip for it. So sharing is a
background exchange, every `sessions.breaker_sync_s` (0.5 s by default):

- each replica's `SharedBreaker` records what happened locally (a counted failure, a failed probe that
  re-opened the circuit, a success after trouble) in an outbox;
- `SharedCallGuard.sync()` pushes the outbox to the `BreakerStore`, where failures from every replica
  are counted in one sliding window and the circuit opens for all once they reach the threshold;
- then it pulls, for every model it knows, when the shared circuit was opened (or that it is closed)
  and moves its local breaker there: a circuit opened by one replica is open on all of them within
  one sync interval, and a successful probe anywhere closes it everywhere.

Times cross process boundaries as wall-clock epochs; each replica converts them to its own monotonic
clock. Replicas whose clocks disagree by seconds would disagree on the cool-down by as much.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import anyio

from chorus_mcp.strategies.engine.reliability import BreakerSettings, CallGuard, CircuitBreaker

EventKind = Literal["failure", "reopened", "success"]


@dataclass(frozen=True)
class BreakerEvent:
    model: str
    kind: EventKind
    at: float
    """Wall-clock time (epoch seconds)."""


class BreakerStore(Protocol):
    """Where replicas meet to share circuit-breaker state."""

    async def push(self, events: Sequence[BreakerEvent], settings: BreakerSettings) -> None:
        """Apply events in order: count failures in the shared window (opening the circuit at the
        threshold), re-open on a failed probe, close on a success."""
        ...

    async def opened_at(self, models: Sequence[str]) -> dict[str, float | None]:
        """For each model, when its shared circuit opened (epoch seconds), or None when it is closed."""
        ...


@dataclass
class MemoryBreakerStore:
    """The shared state in one process: the reference semantics, and for tests."""

    failures: dict[str, list[float]] = field(default_factory=dict)
    opened: dict[str, float] = field(default_factory=dict)

    async def push(self, events: Sequence[BreakerEvent], settings: BreakerSettings) -> None:
        for event in events:
            if event.kind == "success":
                self.failures.pop(event.model, None)
                self.opened.pop(event.model, None)
            elif event.kind == "reopened":
                self.opened[event.model] = event.at
            else:
                window = [t for t in self.failures.get(event.model, []) if event.at - t < settings.window_s]
                self.failures[event.model] = [*window, event.at]
                if len(self.failures[event.model]) >= settings.failure_threshold:
                    self.opened.setdefault(event.model, event.at)

    async def opened_at(self, models: Sequence[str]) -> dict[str, float | None]:
        return {model: self.opened.get(model) for model in models}


@dataclass
class SharedBreaker(CircuitBreaker):
    """A `CircuitBreaker` that also tells its guard's outbox what happened, for the other replicas."""

    model: str = ""
    outbox: list[BreakerEvent] = field(default_factory=list)
    wall_clock: Callable[[], float] = time.time

    def failure(self) -> None:
        probe_failed = self.probing or self.state == "half_open"
        super().failure()
        kind: EventKind = "reopened" if probe_failed else "failure"
        self.outbox.append(BreakerEvent(self.model, kind, self.wall_clock()))

    def success(self) -> None:
        # A success on a healthy breaker changes nothing anywhere: not worth a round trip.
        troubled = self.opened_at is not None or bool(self.failures)
        super().success()
        if troubled:
            self.outbox.append(BreakerEvent(self.model, "success", self.wall_clock()))


@dataclass
class SharedCallGuard(CallGuard):
    """A `CallGuard` whose breakers are kept in step with a `BreakerStore` by `sync()`."""

    wall_clock: Callable[[], float] = time.time
    _outbox: list[BreakerEvent] = field(default_factory=list, init=False)

    def breaker(self, model: str) -> CircuitBreaker:
        found = self._breakers.get(model)
        if found is None:
            found = self._breakers[model] = SharedBreaker(
                self.settings.breaker,
                self.clock,
                model=model,
                outbox=self._outbox,
                wall_clock=self.wall_clock,
            )
        return found

    async def sync(self, store: BreakerStore) -> None:
        """One exchange: push what happened here, then adopt the shared state of every known model."""
        events = list(self._outbox)
        del self._outbox[:]
        if events:
            try:
                await store.push(events, self.settings.breaker)
            except BaseException:
                self._outbox[:0] = events  # try again next round
                raise
        models = list(self._breakers)
        if not models:
            return
        shared = await store.opened_at(models)
        pending = {event.model for event in self._outbox}
        wall_now, mono_now = self.wall_clock(), self.clock()
        for model, opened_wall in shared.items():
            breaker = self._breakers[model]
            if model in pending:
                continue  # something newer happened here since the pull started; next round decides
            if opened_wall is not None:
                opened = mono_now - (wall_now - opened_wall)
                if breaker.opened_at is None or breaker.opened_at < opened - 0.001:
                    breaker.opened_at = opened
            elif breaker.opened_at is not None:
                # Closed elsewhere (a probe succeeded on another replica).
                breaker.failures.clear()
                breaker.opened_at = None
                breaker.probing = False

    async def run_sync(
        self, store: BreakerStore, interval_s: float, on_error: Callable[[BaseException], None]
    ) -> None:
        """Sync forever, every `interval_s`; a failed round is reported to `on_error` and retried."""
        while True:
            try:
                await self.sync(store)
            except Exception as exc:
                on_error(exc)
            await anyio.sleep(interval_s)
