"""The budget of a session while tool calls on it are in flight, shared by those calls.

Each tool call caps its own cost at what the session has left. Two calls on one session at once would
each see the whole remainder and could together spend twice it; so the calls in flight on a session
share one `Budget` (the parent of each call's own), made from what the session store said was left when
the first of them started. It lives while a call on the session runs, within this process: replicas
behind a load balancer each share their own (see README, Sessions).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal

from chorus_mcp.strategies.engine.context import Budget


@dataclass
class SharedSessionBudget:
    calls: int = 0
    """Tool calls on the session in flight."""
    budget: Budget | None = None

    def budget_for(self, left_usd: Decimal) -> Budget:
        """The shared budget: made from `left_usd` by the first call, as it is by the calls that join."""
        if self.budget is None:
            self.budget = Budget(max_cost_usd=left_usd)
        return self.budget


class SessionBudgets:
    def __init__(self) -> None:
        self._open: dict[str, SharedSessionBudget] = {}

    @contextmanager
    def joined(self, session_id: str) -> Iterator[SharedSessionBudget]:
        """For the length of one tool call on `session_id` (including its write to the session store, so a
        call that starts after it sees its cost either in the store or in the shared budget, never in
        neither)."""
        shared = self._open.setdefault(session_id, SharedSessionBudget())
        shared.calls += 1
        try:
            yield shared
        finally:
            shared.calls -= 1
            if shared.calls == 0:
                del self._open[session_id]
