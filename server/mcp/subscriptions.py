"""`resources/updated` for sessions, on the 2026-07-28 `subscriptions/listen` streams.

A client that shows a session (`session://{id}`, its cost `session://{id}/usage`, or the list
`session://recent`) can listen for changes instead of polling: once a tool call that wrote a session
returns — a turn landed, a failed attempt's cost was charged, the session was started or ended — an
update for each of those resources goes out on the SDK's subscription bus, and the SDK's listen
handler forwards it to every stream that asked for that URI.

The bus is in-process: with replicas behind a load balancer, a stream hears of the turns its own
replica served. Clients of the handshake era (`resources/subscribe`) are not served: that method is
gone in 2026-07-28 and Chorus never offered it.
"""

from __future__ import annotations

from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.subscriptions import ResourceUpdated, SubscriptionBus
from pydantic import BaseModel

RECENT_URI = "session://recent"


def session_uris(session_id: str) -> list[str]:
    """The resources that change when a session is written."""
    return [f"session://{session_id}", f"session://{session_id}/usage", RECENT_URI]


class SessionUpdates:
    """Server middleware: after a tool call whose result names a session, that session's resources are
    published as updated."""

    def __init__(self, bus: SubscriptionBus) -> None:
        self.bus = bus

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        result = await call_next(ctx)
        if ctx.method == "tools/call":
            await self.published(result)
        return result

    async def published(self, result: object) -> None:
        """Publish the updates for the session `result` names, if any (a task's result, when it ends)."""
        session_id = _session_of(result)
        if session_id is not None:
            for uri in session_uris(session_id):
                await self.bus.publish(ResourceUpdated(uri=uri))


def _session_of(result: object) -> str | None:
    """The `session_id` in a tool result's structured content (every tool that writes a session puts it
    there); None for any other result (an input-required round, a protocol error)."""
    if isinstance(result, BaseModel):
        result = result.model_dump(by_alias=True)
    if not isinstance(result, dict):
        return None
    structured = result.get("structuredContent")
    session_id = structured.get("session_id") if isinstance(structured, dict) else None
    return session_id if isinstance(session_id, str) else None
