"""Tools that manage sessions themselves: start one with a budget (and, optionally, shared), end one.

A session belongs to the client that started it. `share_with` grants other clients (token names, OAuth
subjects) or teams (`team:<name>`, from `auth.teams`) the right to read and continue it; the grant is
fixed when the session starts. Only the owner (or an admin) may end it; to anyone else with no grant,
another client's session id is "not found", exactly like an id that never existed.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from chorus_mcp.server.mcp.state import ChorusState
from chorus_mcp.strategies.core.errors import ChorusError, UserInputError
from chorus_mcp.strategies.sessions.ownership import check_grants, current_principal
from chorus_mcp.strategies.sessions.session import validate_session_id

_CREATES = ToolAnnotations(readOnlyHint=False, destructiveHint=False, openWorldHint=False)
_DELETES = ToolAnnotations(readOnlyHint=False, destructiveHint=True, idempotentHint=True, openWorldHint=False)


def register_session_tools(server: MCPServer[Any], state: ChorusState) -> None:
    @server.tool(annotations=_CREATES)
    async def start_session(
        max_cost_usd: Annotated[
            float | None, Field(description="Cost cap in USD across all calls of the session.", ge=0)
        ] = None,
        share_with: Annotated[
            list[str] | None,
            Field(description="Clients or 'team:<name>' that may read and continue it.", max_length=32),
        ] = None,
    ) -> dict[str, Any]:
        """Start an empty session (optionally with a total cost cap); pass its session_id to other tools."""
        try:
            cap = state.config.sessions.max_cost_usd if max_cost_usd is None else Decimal(str(max_cost_usd))
            grants = check_grants(share_with or [])
            for i, grant in enumerate(grants):
                if not state.principals.known_grant(grant):
                    kind = "team (auth.teams)" if grant.startswith("team:") else "client (auth.tokens)"
                    raise UserInputError(f"share_with[{i}]: {grant!r} is not a configured {kind}")
            owner = current_principal().id
            session_id = await state.sessions.create(max_cost_usd=cap, owner=owner, grants=grants)
        except ChorusError as exc:
            raise ToolError(exc.message) from None
        return {
            "session_id": session_id,
            "max_cost_usd": None if cap is None else str(cap),
            "resource": f"session://{session_id}",
            **({"shared_with": grants} if grants else {}),
        }

    @server.tool(annotations=_DELETES)
    async def end_session(
        session_id: Annotated[str, Field(description="The session to end; its history is deleted.")],
    ) -> dict[str, Any]:
        """End a session and delete its history and cached summaries."""
        principal = current_principal()
        try:
            validate_session_id(session_id)
            info = await state.sessions.info(session_id)
            if info is None or not info.readable_by(principal):
                # What ending an id that never existed says: another client's session is not revealed.
                return {"session_id": session_id, "deleted": False}
            if not principal.may_end(info.owner):
                raise UserInputError(
                    "session_id: this session was shared with you; only its owner may end it"
                )
            deleted = await state.sessions.delete(session_id)
        except ChorusError as exc:
            raise ToolError(exc.message) from None
        return {"session_id": session_id, "deleted": deleted}
