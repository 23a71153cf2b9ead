"""The server's observability: trace export set up at start-up, and usage exposed as MCP resources.

`usage://summary` — calls, tokens and cost since start-up, in total, by model and by recent session;
`usage://session/{session_id}` — one session's. Both count what this process sent: behind a load
balancer each replica counts its own (a session's stored turns carry its usage wherever it ran).
Both are the caller's own (`server.mcp.usage_scope`): an admin sees the server's, a client its own
calls, and another client's session is not found.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError

from chorus_mcp.server.mcp.state import ChorusState
from chorus_mcp.server.mcp.usage_scope import ScopedUsage
from chorus_mcp.strategies.sessions.ownership import current_principal
from chorus_mcp.strategies.sessions.session import SESSION_ID_PATTERN
from chorus_mcp.strategies.tracing.export import configure
from chorus_mcp.strategies.tracing.settings import TracingSettings
from chorus_mcp.strategies.tracing.usage import UsageLedger


def setup_tracing(
    settings: TracingSettings, *, version: str, ready: Callable[[float], bool] | None = None
) -> str | None:
    """Install the OTLP exporter when `settings` (or the OTEL_* variables) ask for one; the traces URL."""
    return configure(settings, service_version=version, ready=ready)


def register_usage_resources(server: MCPServer[Any], usage: UsageLedger, state: ChorusState) -> None:
    # Static resources get no request context in the SDK, so the ledger is passed in at registration.

    @server.resource(
        "usage://summary",
        name="usage_summary",
        description="Model calls, tokens and cost since the server started: in total, by model, by session.",
        mime_type="application/json",
    )
    async def usage_summary() -> str:
        return _seen(usage).summary().model_dump_json()

    @server.resource(
        "usage://session/{session_id}",
        name="session_usage",
        description="Model calls, tokens and cost of one session (as counted by this server process).",
        mime_type="application/json",
    )
    async def session_usage(session_id: str) -> str:
        info = await state.sessions.info(session_id) if SESSION_ID_PATTERN.fullmatch(session_id) else None
        readable = info is not None and info.readable_by(current_principal())
        found = usage.session(session_id) if readable else None
        if found is None:
            raise ResourceNotFoundError(f"no usage recorded for session {session_id!r} since start-up")
        return found.model_dump_json()


def _seen(usage: UsageLedger) -> UsageLedger:
    return usage.seen_by(current_principal()) if isinstance(usage, ScopedUsage) else usage
