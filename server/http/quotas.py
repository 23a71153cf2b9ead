"""Per-client quotas (`limits.per_client`): what one client may hold and spend, so that a client
flooding the server is refused while the others go on.

- open transport sessions and requests per minute: counted by the HTTP gate (`server.http.auth`);
- tool calls in progress: `ToolCallQuota` (server middleware, so stdio counts too);
- USD per day: a shared budget per client, like a session's. `Quotas.usd_left` lowers a tool call's cost
  cap to what the client has left today (neither spent nor held by its calls in progress), and every model
  call of the run holds its reservation against the day before it starts (`DailyAllowance`, the run
  budget's `allowance`; atomic in Redis) and settles what it cost when it ends. So a client's calls at
  once, on one replica or several, cannot together pass its day, while another client's day is its own.
  `Quotas.charge` adds what a run cost outside model calls (an embedding), at its end.

Counts live in Redis when sessions do (every replica counts the same), in this process otherwise
(`strategies.sessions.stores.quotas`). A client is its principal (`server.http.principals`); an
unauthenticated HTTP client on loopback is counted by address for transport sessions and requests.
A quota store that fails refuses the request (with the reason): a spending cap that cannot be checked
is not enforced by letting everything through.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from decimal import Decimal
from typing import Any

import anyio
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.streamable_http_manager import DEFAULT_SESSION_IDLE_TIMEOUT
from mcp.types import CallToolResult, TextContent

from chorus_mcp.config.schema import ClientQuotas
from chorus_mcp.strategies.core.errors import BudgetExceeded, ChorusError, UserInputError
from chorus_mcp.strategies.sessions.ownership import Principal, current_principal
from chorus_mcp.strategies.sessions.stores.quotas import QuotaStore

log = logging.getLogger("chorus.quotas")

SESSION_LEASE_S = float(DEFAULT_SESSION_IDLE_TIMEOUT)
"""An open transport session counts until this long after its last request: the SDK's idle time-out."""


def bucket(kind: str, client: str) -> str:
    """A quota's key for one client; the name is hashed, so any characters it has stay out of keys."""
    return f"{kind}:{hashlib.sha256(client.encode()).hexdigest()[:32]}"


class Quotas:
    def __init__(self, settings: ClientQuotas, store: QuotaStore, *, call_lease_s: float) -> None:
        self.settings = settings
        self.store = store
        self._call_lease_s = call_lease_s

    # -- tool calls -------------------------------------------------------------------------------

    async def enter_call(self, principal: Principal) -> str | None:
        """Take a tool-call slot for `principal`: the lease to give back, or None when not limited.
        `UserInputError` when the client has as many calls in progress as it may."""
        limit = self.settings.max_concurrent_tool_calls
        if limit <= 0:
            return None
        lease = uuid.uuid4().hex
        if not await self.store.take_lease(bucket("calls", principal.id), lease, limit, self._call_lease_s):
            raise UserInputError(
                f"too many tool calls in progress for client {principal.id!r}: {limit} at once "
                "(limits.per_client.max_concurrent_tool_calls); retry when one finishes"
            )
        return lease

    async def leave_call(self, principal: Principal, lease: str) -> None:
        await self.store.release_lease(bucket("calls", principal.id), lease)

    # -- spending ---------------------------------------------------------------------------------

    async def usd_left(self, principal: Principal) -> Decimal | None:
        """What `principal` may still spend today, neither spent nor held by its calls in progress; None
        when there is no daily cap. `UserInputError` when nothing is left."""
        cap = self.settings.max_usd_per_day
        if cap is None:
            return None
        key = bucket("usd", principal.id)
        spent = await self.store.spent_today(key)
        held = await self.store.held_today(key)
        left = cap - spent - held
        if left <= 0:
            if spent < cap:
                raise UserInputError(
                    f"client {principal.id!r} may spend ${cap} today (limits.per_client.max_usd_per_day) "
                    "and what is left of it is held by its other calls in progress; retry when they finish"
                )
            raise UserInputError(
                f"client {principal.id!r} has spent its ${cap} for today "
                "(limits.per_client.max_usd_per_day); it resets at 00:00 UTC"
            )
        return left

    def allowance(self, principal: Principal) -> DailyAllowance | None:
        """The client's day as a run's shared allowance (None when there is no daily cap)."""
        cap = self.settings.max_usd_per_day
        return None if cap is None else DailyAllowance(self.store, principal, cap)

    async def charge(self, principal: Principal, usd: Decimal) -> None:
        """Add what a finished call cost. Never fails the call: its answer is already paid for."""
        if self.settings.max_usd_per_day is None or usd <= 0:
            return
        try:
            await self.store.spend_today(bucket("usd", principal.id), usd)
        except ChorusError as exc:
            log.warning("a call's cost could not be added to client %r's day: %s", principal.id, exc.message)

    # -- HTTP -------------------------------------------------------------------------------------

    async def rate_refusal(self, client: str) -> tuple[str, float] | None:
        """(message, seconds to wait) when `client` is past its requests per minute, else None."""
        per_minute = self.settings.requests_per_minute
        if per_minute <= 0:
            return None
        wait = await self.store.take_rate(bucket("rate", client), per_minute)
        if wait is None:
            return None
        message = f"rate limited: client {client!r} sent more than {per_minute} requests this minute "
        message += "(limits.per_client.requests_per_minute)"
        return message, wait

    async def open_session(self, client: str) -> str | None:
        """A provisional lease for a transport session `client` is opening (see `session_opened`);
        None when the client holds as many open sessions as it may."""
        limit = self.settings.max_transport_sessions
        lease = "opening:" + uuid.uuid4().hex
        if limit > 0 and not await self.store.take_lease(bucket("sessions", client), lease, limit, 120.0):
            return None
        return lease

    async def session_opened(self, client: str, provisional: str, session_id: str | None) -> None:
        """The opening request is answered: the session (when one was established) takes the lease."""
        key = bucket("sessions", client)
        if session_id is not None and self.settings.max_transport_sessions > 0:
            await self.store.take_lease(key, session_id, 2**31, SESSION_LEASE_S)
        await self.store.release_lease(key, provisional)

    def session_refusal(self, client: str) -> str:
        limit = self.settings.max_transport_sessions
        return (
            f"too many open sessions for client {client!r}: {limit} "
            "(limits.per_client.max_transport_sessions); end some (HTTP DELETE) or let idle ones expire"
        )

    async def session_used(self, client: str, session_id: str) -> None:
        await self.store.renew_lease(bucket("sessions", client), session_id, SESSION_LEASE_S)

    async def session_closed(self, client: str, session_id: str) -> None:
        await self.store.release_lease(bucket("sessions", client), session_id)


class DailyAllowance:
    """One client's USD per day as a run's shared allowance (`strategies.engine.context.SharedAllowance`):
    each model call holds its reservation against the day in the quota store, atomically, and settles
    what it cost."""

    def __init__(self, store: QuotaStore, principal: Principal, cap: Decimal) -> None:
        self._store = store
        self._principal = principal
        self._cap = cap
        self._bucket = bucket("usd", principal.id)
        self.settled_usd = Decimal(0)
        """What the run's model calls have added to the day so far."""

    async def hold(self, model: str, amount_usd: Decimal, ttl_s: float) -> str:
        name = uuid.uuid4().hex
        try:
            taken = await self._store.hold_today(self._bucket, name, amount_usd, self._cap, ttl_s)
        except ChorusError as exc:  # a spending cap that cannot be checked is not treated as no cap
            raise BudgetExceeded(f"budget: {model} was not started: {exc.message}") from exc
        if not taken:
            raise BudgetExceeded(
                f"budget: {model} could cost up to ${amount_usd:.6f}, more than client "
                f"{self._principal.id!r} has left of its ${self._cap} for today once its other calls in "
                "progress are counted "
                "(limits.per_client.max_usd_per_day), so it was not started"
            )
        return name

    async def settle(self, hold: str, cost_usd: Decimal) -> None:
        try:
            await self._store.settle_today(self._bucket, hold, cost_usd)
        except ChorusError as exc:  # the hold expires by itself; the cost is added at the run's end
            log.warning(
                "a call's cost could not be added to client %r's day: %s", self._principal.id, exc.message
            )
            return
        self.settled_usd += cost_usd


def _refusal(message: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=message)], is_error=True)


class ToolCallQuota:
    """Server middleware: a tool call takes one of its client's slots for as long as it runs."""

    def __init__(self, quotas: Quotas) -> None:
        self._quotas = quotas

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method != "tools/call":
            return await call_next(ctx)
        principal = current_principal()
        try:
            lease = await self._quotas.enter_call(principal)
        except ChorusError as exc:
            log.info("tool call refused: %s", exc.message)
            return _refusal(exc.message)
        try:
            return await call_next(ctx)
        finally:
            if lease is not None:
                with anyio.CancelScope(shield=True):  # a cancelled call still gives its slot back
                    try:
                        await self._quotas.leave_call(principal, lease)
                    except ChorusError as exc:  # the lease expires by itself
                        log.warning("a tool-call slot could not be given back: %s", exc.message)
