"""Usage per client: the server-wide ledger, and one ledger per principal beside it.

`usage://summary` shows a client its own calls, tokens and cost since start-up; an admin sees the
server's. Every model call is recorded twice — in the server-wide ledger and in the ledger of the
principal the call runs for (`strategies.sessions.ownership.current_principal`).
"""

from __future__ import annotations

from collections import OrderedDict
from decimal import Decimal

from chorus_mcp.strategies.core.completion import Completion
from chorus_mcp.strategies.sessions.ownership import Principal, current_principal
from chorus_mcp.strategies.tracing import UsageLedger

MAX_PRINCIPALS = 1_000
"""Ledgers kept for that many clients, the most recently active; an older one starts again from zero."""


class ScopedUsage(UsageLedger):
    def __init__(self) -> None:
        super().__init__()
        self._by: OrderedDict[str, UsageLedger] = OrderedDict()

    def _mine(self) -> UsageLedger:
        principal = current_principal().id
        ledger = self._by.pop(principal, None) or UsageLedger()
        self._by[principal] = ledger
        while len(self._by) > MAX_PRINCIPALS:
            self._by.popitem(last=False)
        return ledger

    def record(
        self, alias: str, model_id: str, status: str, completion: Completion | None, session_id: str | None
    ) -> None:
        super().record(alias, model_id, status, completion, session_id)
        self._mine().record(alias, model_id, status, completion, session_id)

    def record_cache(self, alias: str, model_id: str, hit: bool, saved_cost_usd: Decimal | None) -> None:
        super().record_cache(alias, model_id, hit, saved_cost_usd)
        self._mine().record_cache(alias, model_id, hit, saved_cost_usd)

    def seen_by(self, principal: Principal) -> UsageLedger:
        """What `principal` may see: everything for an admin, else its own calls."""
        if principal.admin:
            return self
        found = self._by.get(principal.id)
        if found is None:
            found = UsageLedger()
            found.since = self.since
        return found
