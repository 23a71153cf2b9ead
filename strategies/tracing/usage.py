"""Usage over the server's lifetime: calls, tokens and cost by model, and by session.

Filled by the instrumented client, one record per model call actually sent. Cost follows the rule of
every Chorus total: the sum of the known prices, `cost_complete=False` (and `unpriced_calls`) when an
answered call had no known price, and `cost_usd=None` when no answered call had one — never a made-up 0.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import TypeVar

from pydantic import BaseModel, Field

from chorus_mcp.strategies.core.completion import Completion
from chorus_mcp.strategies.tracing.spans import current_session


class Usage(BaseModel):
    """Calls sent, what they used and what they cost."""

    calls: int = 0
    """Calls sent to a provider, whatever became of them."""
    ok: int = 0
    failed: int = 0
    """Ended in an error or a time-out."""
    cancelled: int = 0
    """Cancelled in flight (an early-stopped ensemble, a deadline): tokens and cost unknown."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: Decimal | None = None
    """Sum of the known costs; None when answered calls were made and none had a known price."""
    cost_complete: bool = True
    """False when some answered call's price was unknown: `cost_usd` is then a lower bound."""
    unpriced_calls: int = 0
    """Answered calls whose price is unknown (no price in litellm's map and no override in config)."""
    cache_hits: int = 0
    """Calls answered by the response cache: not sent, not in `calls`, cost 0."""
    cache_misses: int = 0
    """Calls the response cache could have answered but did not have (they were sent)."""
    saved_cost_usd: Decimal = Decimal(0)
    """What the cache hits originally cost (known prices only)."""

    def add(self, status: str, completion: Completion | None) -> None:
        if completion is not None and completion.cached:
            return  # a hit is not a call: `add_cache` counted it
        self.calls += 1
        if completion is None:
            if status == "cancelled":
                self.cancelled += 1
            else:
                self.failed += 1
            return
        self.ok += 1
        self.prompt_tokens += completion.prompt_tokens or 0
        self.completion_tokens += completion.completion_tokens or 0
        if completion.cost_usd is None:
            self.unpriced_calls += 1
            self.cost_complete = False
        else:
            self.cost_usd = (self.cost_usd or Decimal(0)) + completion.cost_usd

    def add_cache(self, hit: bool, saved_cost_usd: Decimal | None) -> None:
        if hit:
            self.cache_hits += 1
            self.saved_cost_usd += saved_cost_usd or Decimal(0)
        else:
            self.cache_misses += 1

    @property
    def shown_cost(self) -> Decimal | None:
        """`cost_usd` as reported: 0 only when nothing answered (so nothing was charged)."""
        if self.cost_usd is None and self.ok == 0:
            return Decimal(0)
        return self.cost_usd


class ModelUsage(Usage):
    model: str
    """The provider's model id the alias stands for."""


class UsageSummary(BaseModel):
    """The `usage://summary` resource."""

    since: datetime
    """When the server started counting (its start-up)."""
    totals: Usage
    models: dict[str, ModelUsage] = Field(default_factory=dict)
    """By model alias."""
    sessions: dict[str, Usage] = Field(default_factory=dict)
    """The most recently active sessions, newest first."""


U = TypeVar("U", bound=Usage)


class UsageLedger:
    """Keeps usage since start-up, by model and by session (the most recent `max_sessions`)."""

    def __init__(self, *, max_sessions: int = 100, clock: Callable[[], float] = time.time) -> None:
        self.since = datetime.fromtimestamp(clock(), UTC)
        self._max_sessions = max_sessions
        self._totals = Usage()
        self._models: dict[str, ModelUsage] = {}
        self._sessions: OrderedDict[str, Usage] = OrderedDict()

    def record(
        self, alias: str, model_id: str, status: str, completion: Completion | None, session_id: str | None
    ) -> None:
        for usage in self._usages(alias, model_id, session_id):
            usage.add(status, completion)

    def record_cache(self, alias: str, model_id: str, hit: bool, saved_cost_usd: Decimal | None) -> None:
        """A response-cache lookup for `alias` (the caching client reports it; see `strategies.cache`)."""
        for usage in self._usages(alias, model_id, current_session()):
            usage.add_cache(hit, saved_cost_usd)

    def _usages(self, alias: str, model_id: str, session_id: str | None) -> list[Usage]:
        """The totals, the model's usage and the session's (now the most recent one) to add a record to."""
        usages: list[Usage] = [self._totals, self._models.setdefault(alias, ModelUsage(model=model_id))]
        if session_id is not None:
            usage = self._sessions.pop(session_id, None) or Usage()
            self._sessions[session_id] = usage
            while len(self._sessions) > self._max_sessions:
                self._sessions.popitem(last=False)
            usages.append(usage)
        return usages

    def session(self, session_id: str) -> Usage | None:
        found = self._sessions.get(session_id)
        return None if found is None else _shown(found)

    def summary(self) -> UsageSummary:
        return UsageSummary(
            since=self.since,
            totals=_shown(self._totals),
            models={alias: _shown(usage) for alias, usage in sorted(self._models.items())},
            sessions={sid: _shown(usage) for sid, usage in reversed(self._sessions.items())},
        )


def _shown(usage: U) -> U:
    return usage.model_copy(update={"cost_usd": usage.shown_cost})
