"""Sessions as MCP resources: one conversation by id, its usage so far, and the list of recent ones.

    session://recent                       the caller's most recently active sessions (no turns)
    session://{session_id}                 one session: metadata, usage, memos and its latest turns
    session://{session_id}?before=S&limit=N   the N turns before turn `seq` S (the page before)
    session://{session_id}/usage           what the session has cost so far, per turn and in total

Every resource is scoped to the caller (`strategies.sessions.ownership`): a client sees its own
sessions and those shared with it; an admin sees all. Another client's session, an unknown, expired or
malformed id are all the same not-found error; a malformed id is never echoed back.

A page holds at most `limit` turns (default `PAGE_TURNS`) and about `PAGE_CHARS` characters of them
(at least one turn): a long session is read page by page, never as one huge document. `page.before`
is the cursor for the page before, None at the first turn kept.
"""

from __future__ import annotations

import json
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError

from chorus_mcp.server.mcp.state import ChorusState
from chorus_mcp.strategies.core.errors import UserInputError
from chorus_mcp.strategies.sessions.ownership import current_principal
from chorus_mcp.strategies.sessions.session import Session, SessionStore, Turn, validate_session_id

RECENT_LIMIT = 50
PAGE_TURNS = 20
MAX_PAGE_TURNS = 100
PAGE_CHARS = 256_000
"""Characters of turn text a page holds at most (beyond its first turn, which is always shown)."""


def register_resources(server: MCPServer[Any], state: ChorusState) -> None:
    # Static resources get no request context in the SDK, so the state is passed in at registration.

    @server.resource(
        "session://recent",
        name="recent_sessions",
        description="Your most recently active sessions, newest first: metadata and usage, without turns.",
        mime_type="application/json",
    )
    async def recent_sessions() -> str:
        sessions = await state.sessions.list_recent(RECENT_LIMIT, viewer=current_principal())
        return json.dumps({"sessions": [s.model_dump(mode="json") for s in sessions]})

    @server.resource(
        "session://{session_id}{?before,limit}",
        name="session",
        description="One session: metadata, usage, cached summaries and its latest turns "
        "(?before=<seq> for the page before, ?limit=N turns per page).",
        mime_type="application/json",
    )
    async def session(session_id: str, before: str | None = None, limit: str | None = None) -> str:
        page_size = _number("limit", limit, low=1, high=MAX_PAGE_TURNS) or PAGE_TURNS
        cursor = _number("before", before, low=0, high=2**62)
        found = await _find(state.sessions, session_id, latest=page_size, before=cursor)
        shown = _fit(found)
        first = shown[0].seq if shown else None
        more = first is not None and first > found.dropped_turns
        body = found.model_copy(update={"turns": shown}).model_dump(mode="json")
        body["page"] = {
            "turns": len(shown),
            "before": first if more else None,
            "next": f"session://{found.id}?before={first}&limit={page_size}" if more else None,
        }
        return json.dumps(body)

    @server.resource(
        "session://{session_id}/usage",
        name="session_cost",
        description="What one session has cost so far: per answered turn, in total, and its budget left.",
        mime_type="application/json",
    )
    async def session_usage(session_id: str) -> str:
        found = await _find(state.sessions, session_id)
        left = found.cost_left_usd()
        return json.dumps(
            {
                "session_id": found.id,
                "usage": found.usage.model_dump(mode="json"),
                "max_cost_usd": None if found.max_cost_usd is None else str(found.max_cost_usd),
                "cost_left_usd": None if left is None else str(left),
                "turns": [
                    {
                        "seq": t.seq,
                        "at": t.at.isoformat(),
                        "model": t.model,
                        "strategy": t.strategy,
                        **t.usage.model_dump(mode="json"),
                    }
                    for t in found.turns
                    if t.usage is not None
                ],
            }
        )


def _fit(session: Session) -> list[Turn]:
    """The newest of the page's turns that fit in `PAGE_CHARS` (always the newest one)."""
    kept: list[Turn] = []
    size = 0
    for turn in reversed(session.turns):
        size += len(turn.content)
        if kept and size > PAGE_CHARS:
            break
        kept.append(turn)
    return kept[::-1]


def _number(name: str, value: str | None, *, low: int, high: int) -> int | None:
    if value is None or value == "":
        return None
    if not value.isdigit() or not low <= int(value) <= high:
        raise ResourceError(f"{name}: expected a whole number from {low} to {high}")
    return int(value)


async def _find(
    store: SessionStore, session_id: str, *, latest: int | None = None, before: int | None = None
) -> Session:
    """The caller's session (or one shared with it); not-found for anything else, without saying which."""
    try:
        validate_session_id(session_id)
    except UserInputError as exc:
        raise ResourceNotFoundError(exc.message) from None
    found = await store.get(session_id, latest=latest, before=before)
    if found is None or not found.readable_by(current_principal()):
        raise ResourceNotFoundError(f"no session {session_id!r} (it never existed, expired or was deleted)")
    return found
