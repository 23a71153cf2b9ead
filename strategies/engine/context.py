"""Everything a strategy run needs besides its spec: models, deadline, budget, progress."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

import anyio

from chorus_mcp.strategies.core.completion import CompletionRequest
from chorus_mcp.strategies.core.result import CallRecord, StrategyResult
from chorus_mcp.strategies.engine.latency import LatencyStats
from chorus_mcp.strategies.engine.reliability import CallGuard
from chorus_mcp.strategies.models.catalog import ModelCatalog

if TYPE_CHECKING:
    from chorus_mcp.strategies.core.spec import Step

ProgressSink = Callable[[CallRecord], Awaitable[None]]
"""Told about every model call as it finishes (the server turns this into MCP progress)."""
StepRunner = Callable[["Step", CompletionRequest, "RunContext", str], Awaitable[StrategyResult]]
"""Runs any step in a context under a stage label: the runner's `run_step`."""


class SharedAllowance(Protocol):
    """Spending shared with other runs, maybe in other processes: a model call holds its worst case here
    before it starts and settles what it cost when it ends, so calls at once cannot together pass it."""

    async def hold(self, model: str, amount_usd: Decimal, ttl_s: float) -> str:
        """Hold `amount_usd` for a call about to start; returns the hold's name. `BudgetExceeded` (saying
        why) when it does not fit."""
        ...

    async def settle(self, hold: str, cost_usd: Decimal) -> None:
        """Give back the hold and count what the call cost; never fails the call."""
        ...


@dataclass
class Budget:
    """A cost cap shared by every call of one run.

    A call reserves its worst-case cost before it starts and settles it when it ends, so calls running in
    parallel (ensemble members) cannot together break the cap that each of them alone would respect.
    A call whose price is unknown reserves nothing: it is allowed while the cap is not yet spent.

    A budget may have a `parent` that every reservation and charge also goes to: the budget of a session
    that several tool calls share at once, so together they respect the session's cap as each of them
    respects its own.
    """

    max_cost_usd: Decimal | None = None
    spent_usd: Decimal = Decimal(0)
    reserved_usd: Decimal = Decimal(0)
    """Worst-case cost of the calls in flight."""
    parent: Budget | None = None
    allowance: SharedAllowance | None = None
    """A limit beyond this process that each model call also holds its reservation against before it
    starts (a client's USD per day, counted in Redis across replicas); see `engine.reservations`."""

    def allows(self, estimate_usd: Decimal | None = None) -> bool:
        if self.parent is not None and not self.parent.allows(estimate_usd):
            return False
        if self.max_cost_usd is None:
            return True
        return self.spent_usd + self.reserved_usd + (estimate_usd or Decimal(0)) <= self.max_cost_usd

    def left_usd(self) -> Decimal | None:
        """What may still be spent (never negative); None when there is no cap."""
        parent_left = None if self.parent is None else self.parent.left_usd()
        if self.max_cost_usd is None:
            return parent_left
        left = max(Decimal(0), self.max_cost_usd - self.spent_usd - self.reserved_usd)
        return left if parent_left is None else min(left, parent_left)

    def reserve(self, estimate_usd: Decimal | None) -> bool:
        """Hold `estimate_usd` for a call about to start; False (nothing held) when it would break the cap."""
        if not self.allows(estimate_usd):
            return False
        self._hold(estimate_usd or Decimal(0))
        return True

    def _hold(self, amount: Decimal) -> None:
        self.reserved_usd += amount
        if self.parent is not None:
            self.parent._hold(amount)

    def release(self, estimate_usd: Decimal | None) -> None:
        """Give back what `reserve` held, once the call has ended (then `charge` what it really cost)."""
        self.reserved_usd = max(Decimal(0), self.reserved_usd - (estimate_usd or Decimal(0)))
        if self.parent is not None:
            self.parent.release(estimate_usd)

    def charge(self, cost_usd: Decimal | None) -> None:
        if cost_usd is not None:
            self.spent_usd += cost_usd
            if self.parent is not None:
                self.parent.charge(cost_usd)


@dataclass
class CallsInFlight:
    """The model calls of a run started and not yet ended, with their stages: what it is waiting on now
    (the server says so in its progress notifications while a long call goes on)."""

    _calls: dict[int, tuple[str, str]] = field(default_factory=dict)
    _started: int = 0

    @contextmanager
    def call(self, model: str, stage: str) -> Iterator[None]:
        """While a call to `model` for `stage` is under way (however it ends, cancelled included)."""
        self._started += 1
        key = self._started
        self._calls[key] = (model, stage)
        try:
            yield
        finally:
            del self._calls[key]

    def now(self) -> list[tuple[str, str]]:
        """(model, stage) of every call under way, in the order they started."""
        return list(self._calls.values())


@dataclass
class RunContext:
    catalog: ModelCatalog
    deadline: float
    """Absolute time (`anyio.current_time()` clock) by which the run must return."""
    strategies: Mapping[str, object] = field(default_factory=dict)
    """Named strategies from config (values are `strategies.core.spec.Step`)."""
    budget: Budget = field(default_factory=Budget)
    progress: ProgressSink | None = None
    guard: CallGuard = field(default_factory=CallGuard)
    """Retries, circuit breakers and concurrency caps; the server shares one across all runs."""
    latency: LatencyStats = field(default_factory=LatencyStats)
    """Every model's measured latencies (`strategies.engine.latency`); the server shares one across runs."""
    in_flight: CallsInFlight = field(default_factory=CallsInFlight)
    """The run's model calls under way (shared by its children)."""
    depth: int = 0
    """Nesting depth of named-strategy references, to stop a strategy that refers to itself."""
    step_runner: StepRunner | None = None
    """How a child step is run; the runner puts itself here (`run_strategy`), so that a strategy kind
    runs its children without importing the runner, which imports every kind."""

    @classmethod
    def starting_now(cls, catalog: ModelCatalog, deadline_s: float, **kwargs: object) -> RunContext:
        return cls(catalog=catalog, deadline=anyio.current_time() + deadline_s, **kwargs)  # type: ignore[arg-type]

    async def run_child(self, step: Step, request: CompletionRequest, stage: str) -> StrategyResult:
        """Run a child step in this context: how every strategy kind composes."""
        if self.step_runner is None:
            raise RuntimeError("this RunContext has no step runner: run strategies through run_strategy")
        return await self.step_runner(step, request, self, stage)

    def time_left(self) -> float:
        return max(0.0, self.deadline - anyio.current_time())

    async def report(self, record: CallRecord) -> None:
        if self.progress is not None:
            await self.progress(record)
