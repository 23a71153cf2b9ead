"""Tools that manage sessions themselves: start one with a budget, end one (deleting it)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from chorus_mcp.server.mcp.state import ChorusState
from chorus_mcp.strategies.core.errors import ChorusError
from chorus_mcp.strategies.sessions.session import validate_session_id

_CREATES = ToolAnnotations(readOnlyHint=False, destructiveHint=False, openWorldHint=False)
_DELETES = ToolAnnotations(readOnlyHint=False, destructiveHint=True, idempotentHint=True, openWorldHint=False)


def register_session_tools(server: MCPServer[Any], state: ChorusState) -> None:
    @server.tool(annotations=_CREATES)
    async def start_session(
        max_cost_usd: Annotated[
            float | None, Field(description="Cost cap in USD across all calls of the session.", ge=0)
        ] = None,
    ) -> dict[str, Any]:
        """Start an empty session (optionally with a total cost cap); pass its session_id to other tools."""
        try:
            cap = state.config.sessions.max_cost_usd if max_cost_usd is None else Decimal(str(max_cost_usd))
            session_id = await state.sessions.create(max_cost_usd=cap)
        except ChorusError as exc:
            raise ToolError(exc.message) from None
        return {
            "session_id": session_id,
            "max_cost_usd": None if cap is None else str(cap),
            "resource": f"session://{session_id}",
        }

    @server.tool(annotations=_DELETES)
    async def end_session(
        session_id: Annotated[str, Field(description="The session to end; its history is deleted.")],
    ) -> dict[str, Any]:
        """End a session and delete its history and cached summaries."""
        try:
            validate_session_id(session_id)
            deleted = await state.sessions.delete(session_id)
        except ChorusError as exc:
            raise ToolError(exc.message) from None
        return {"session_id": session_id, "deleted": deleted}
