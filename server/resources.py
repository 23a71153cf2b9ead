"""Sessions as MCP resources: one conversation by id, and the list of recent ones."""

from __future__ import annotations

import json
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError

from server.state import ChorusState
from strategies.errors import UserInputError
from strategies.sessions import validate_session_id

RECENT_LIMIT = 50


def register_resources(server: MCPServer[Any], state: ChorusState) -> None:
    # Static resources get no request context in the SDK, so the state is passed in at registration.

    @server.resource(
        "session://recent",
        name="recent_sessions",
        description="The most recently active sessions, newest first.",
        mime_type="application/json",
    )
    async def recent_sessions() -> str:
        sessions = await state.sessions.list_recent(RECENT_LIMIT)
        return json.dumps({"sessions": [s.model_dump(mode="json") for s in sessions]})

    @server.resource(
        "session://{session_id}",
        name="session",
        description="One session's history and metadata.",
        mime_type="application/json",
    )
    async def session(session_id: str) -> str:
        try:
            validate_session_id(session_id)
        except UserInputError as exc:
            raise ResourceNotFoundError(exc.message) from None
        found = await state.sessions.get(session_id)
        if found is None:
            raise ResourceNotFoundError(f"no session {session_id!r} (it may have expired)")
        return found.model_dump_json()
