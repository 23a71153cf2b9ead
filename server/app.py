"""Building the MCP server: state made once at start-up, tools and resources registered."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.subscriptions import InMemorySubscriptionBus

from chorus_mcp.config.schema import ChorusConfig
from chorus_mcp.server.http.auth import auth_options
from chorus_mcp.server.http.limits import cap_output_tokens, guard_tool_calls
from chorus_mcp.server.http.principals import PrincipalScope
from chorus_mcp.server.http.quotas import ToolCallQuota
from chorus_mcp.server.mcp.arguments import check_tool_arguments
from chorus_mcp.server.mcp.footprint import compact_tools
from chorus_mcp.server.mcp.icons import SERVER_ICONS, add_icons
from chorus_mcp.server.mcp.prompts import register_prompts
from chorus_mcp.server.mcp.resources import register_resources
from chorus_mcp.server.mcp.session_tools import register_session_tools
from chorus_mcp.server.mcp.state import ChorusState, build_state, default_client_factory
from chorus_mcp.server.mcp.subscriptions import SessionUpdates
from chorus_mcp.server.mcp.tasks import TaskRunner, TasksExtension
from chorus_mcp.server.mcp.telemetry import ToolCallSpans, register_usage_resources, setup_tracing
from chorus_mcp.server.mcp.tools import register_tools
from chorus_mcp.server.mcp.usage_scope import ScopedUsage
from chorus_mcp.server.mcp.warmup import WARM_UP_AT_MOST_S, Handshake
from chorus_mcp.strategies.cache.client import with_cache
from chorus_mcp.strategies.cache.response_cache import open_response_cache
from chorus_mcp.strategies.models.catalog import ClientFactory
from chorus_mcp.strategies.sessions.tasks import open_task_store
from chorus_mcp.strategies.tracing import export as trace_export
from chorus_mcp.strategies.tracing import instrument

INSTRUCTIONS = (
    "Chorus asks several language models and returns one answer with the evidence: who answered what, "
    "votes, confidence, cost and latency. Use ensemble_vote for questions worth a second opinion, "
    "cascade_ask to save cost, route_specialist to pick a specialist, run_pipeline for multi-stage work."
)


def build_server(config: ChorusConfig, factory: ClientFactory | None = None) -> MCPServer[ChorusState]:
    """The Chorus MCP server for `config`. `factory` replaces the litellm clients (tests, replay)."""
    setup_tracing(config.tracing, version=version())
    usage = ScopedUsage()
    clients = cap_output_tokens(factory, config.limits.max_output_tokens) or default_client_factory()
    # Every client sits behind the response cache, inside the instrumentation: a hit is still an LLM
    # span and a usage record (a hit, not a call), wherever the call is made.
    cache = open_response_cache(config.cache, config.sessions)
    # The spans show `max_tokens` as sent, after the output-token cap inside them.
    calls = instrument(
        with_cache(clients, cache, usage), usage, max_output_tokens=config.limits.max_output_tokens
    )
    state = build_state(config, calls, cache=cache)
    # A read-only or corrupt store file stops the start-up here, naming the file and the fix.
    state.sessions.open_now()
    if cache is not None:
        cache.store.open_now()

    bus = InMemorySubscriptionBus()  # subscriptions/listen (2026-07-28): sessions' resources/updated
    updates = SessionUpdates(bus)
    tasks = TaskRunner(config, open_task_store(config.sessions), updates.published)  # long calls as tasks
    handshake = Handshake()  # the warm-up starts once the client has listed the tools

    @asynccontextmanager
    async def lifespan(_server: MCPServer[Any]) -> AsyncIterator[ChorusState]:
        if factory is None:
            from chorus_mcp.strategies.models.availability import warm_up

            warm_up(config.models.values(), after=handshake.done, wait_at_most_s=WARM_UP_AT_MOST_S)
        try:
            async with state.running(), tasks.running():
                yield state
        finally:
            if trace_export.installed():  # send the last spans before the process goes
                await anyio.to_thread.run_sync(trace_export.flush)

    server: MCPServer[ChorusState] = MCPServer(
        "chorus",
        instructions=INSTRUCTIONS,
        version=version(),
        icons=SERVER_ICONS,
        subscriptions=bus,
        extensions=[TasksExtension(tasks)],
        lifespan=lifespan,
        log_level=config.log_level,
        **auth_options(config),
    )
    register_tools(server)
    register_resources(server, state)
    register_session_tools(server, state)
    register_usage_resources(server, usage, state)
    # Outermost of ours: the guard (quotas) and every handler see the request's principal.
    server.middleware.append(PrincipalScope(state.principals))
    server.middleware.append(ToolCallSpans())  # outside the checks below: a refused call is shown too
    check_tool_arguments(server, config)  # before the guard: its refusals are the ones callers see
    register_prompts(server, state)
    server.middleware.append(ToolCallQuota(state.quotas))
    guard_tool_calls(server, config)
    server.middleware.append(handshake)
    server.middleware.append(updates)
    add_icons(server)
    compact_tools(server)  # last: every tool's published schema, whoever registered it
    return server


def version() -> str:
    """Chorus's installed version (0.0.0 when run from a source tree that is not installed)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed_version

    try:
        return installed_version("chorus-mcp")
    except PackageNotFoundError:
        return "0.0.0"
