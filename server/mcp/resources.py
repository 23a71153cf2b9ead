"""Sessions as MCP resources: one conversation by id, its usage so far, and the list of recent ones.

    session://recent               the most recently active sessions (metadata and usage, no turns)
    session://{session_id}         one session: metadata, usage, cached memos and every turn kept
    session://{session_id}/usage   what the session has cost so far, per turn and in total, and its budget

An unknown, expired or malformed id is a not-found error; a malformed id is never echoed back.
"""

from __future__ import annotations

import json
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError

from chorus_mcp.server.mcp.state import ChorusState
from chorus_mcp.strategies.core.errors import UserInputError
from chorus_mcp.strategies.sessions.session import Session, SessionStore, validate_session_id

RECENT_LIMIT = 50


def register_resources(server: MCPServer[Any], state: ChorusState) -> None:
    # Static resources get no request context in the SDK, so the state is passed in at registration.

    @server.resource(
        "session://recent",
        name="recent_sessions",
        description="The most recently active sessions, newest first: metadata and usage, without turns.",
        mime_type="application/json",
    )
    async def recent_sessions() -> str:
        sessions = await state.sessions.list_recent(RECENT_LIMIT)
        return json.dumps({"sessions": [s.model_dump(mode="json") for s in sessions]})

    @server.resource(
        "session://{session_id}",
        name="session",
        description="One session: its turns, metadata, usage so far and cached summaries.",
        mime_type="application/json",
    )
    async def session(session_id: str) -> str:
        return (await _find(state.sessions, session_id)).model_dump_json()

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


async def _find(store: SessionStore, session_id: str) -> Session:
    try:
        validate_session_id(session_id)
    except UserInputError as exc:
        raise ResourceNotFoundError(exc.message) from None
    found = await store.get(session_id)
    if found is None:
        raise ResourceNotFoundError(f"no session {session_id!r} (it never existed, expired or was deleted)")
    return found
