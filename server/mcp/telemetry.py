"""The server's observability: trace export set up at start-up, the tool-call spans made readable, and usage
exposed as MCP resources.

The MCP SDK opens one server span per `tools/call`: the root of the call's trace, the row a trace list
(Phoenix's) shows. `ToolCallSpans` gives it what that row needs: the prompt as its input, the answer (or
the error) as its output, OK or ERROR, and the run's totals (`strategies.tracing.attributes.tool_call_*`).

`usage://summary` — calls, tokens and cost since start-up, in total, by model and by recent session;
`usage://session/{session_id}` — one session's. Both count what this process sent: behind a load
balancer each replica counts its own (a session's stored turns carry its usage wherever it ran).
Both are the caller's own (`server.mcp.usage_scope`): an admin sees the server's, a client its own
calls, and another client's session is not found.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError
from mcp.types import CallToolResult, TextContent
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from chorus_mcp.server.mcp.state import ChorusState
from chorus_mcp.server.mcp.usage_scope import ScopedUsage
from chorus_mcp.strategies.sessions.ownership import current_principal
from chorus_mcp.strategies.sessions.session import SESSION_ID_PATTERN
from chorus_mcp.strategies.tracing import attributes as attrs
from chorus_mcp.strategies.tracing.export import configure
from chorus_mcp.strategies.tracing.settings import TracingSettings
from chorus_mcp.strategies.tracing.usage import UsageLedger


def setup_tracing(
    settings: TracingSettings, *, version: str, ready: Callable[[float], bool] | None = None
) -> str | None:
    """Install the OTLP exporter when `settings` (or the OTEL_* variables) ask for one; the traces URL."""
    return configure(settings, service_version=version, ready=ready)


class ToolCallSpans:
    """Server middleware: puts the call's input, output, status and totals on the SDK's `tools/call` span.

    Runs inside the SDK's OpenTelemetry middleware, so the current span is that one. The SDK itself marks
    an error result ERROR (after this, without a description: `chorus.error` keeps the reason) and leaves
    every other result's status unset, which a trace list shows as "Unset": OK is set here."""

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        span = trace.get_current_span()
        if ctx.method != "tools/call" or not span.is_recording():
            return await call_next(ctx)
        params = ctx.params or {}
        tool = params.get("name")
        arguments = params.get("arguments")
        span.set_attributes(
            attrs.tool_call_request(
                tool if isinstance(tool, str) else "?", arguments if isinstance(arguments, dict) else {}
            )
        )
        result = await call_next(ctx)
        shown = _shown(result)
        if shown is not None:
            structured, message, is_error = shown
            span.set_attributes(attrs.tool_call_result(structured, message, is_error))
            if is_error:
                span.set_status(Status(StatusCode.ERROR, attrs.text(message or "error")))
            else:
                span.set_status(Status(StatusCode.OK))
        return result


def _shown(result: HandlerResult) -> tuple[object, str | None, bool] | None:
    """(structured content, first text, is_error) of a tool result; None for anything else (an input
    request: the call is not over, the client calls again)."""
    if isinstance(result, CallToolResult):
        texts = [c.text for c in result.content if isinstance(c, TextContent)]
        return result.structured_content, texts[0] if texts else None, bool(result.is_error)
    if isinstance(result, dict) and "content" in result:
        content = result.get("content")
        parts: list[object] = (
            [c.get("text") for c in content if isinstance(c, dict)] if isinstance(content, list) else []
        )
        first = next((t for t in parts if isinstance(t, str)), None)
        return result.get("structuredContent"), first, result.get("isError") is True
    return None


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
