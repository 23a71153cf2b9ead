"""Building the MCP server: state made once at start-up, tools and resources registered."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from mcp.server.mcpserver import MCPServer

from config.schema import ChorusConfig
from server.auth import auth_options
from server.limits import cap_output_tokens, guard_tool_calls
from server.resources import register_resources
from server.session_tools import register_session_tools
from server.state import ChorusState, build_state, start_provider_warm_up
from server.tools import register_tools
from strategies.catalog import ClientFactory

INSTRUCTIONS = (
    "Chorus asks several language models and returns one answer with the evidence: who answered what, "
    "votes, confidence, cost and latency. Use ensemble_vote for questions worth a second opinion, "
    "cascade_ask to save cost, route_specialist to pick a specialist, run_pipeline for multi-stage work."
)


def build_server(config: ChorusConfig, factory: ClientFactory | None = None) -> MCPServer[ChorusState]:
    """The Chorus MCP server for `config`. `factory` replaces the litellm clients (tests, replay)."""
    state = build_state(config, cap_output_tokens(factory, config.limits.max_output_tokens))

    @asynccontextmanager
    async def lifespan(_server: MCPServer[Any]) -> AsyncIterator[ChorusState]:
        if factory is None:
            start_provider_warm_up()
        async with state.running():
            yield state

    server: MCPServer[ChorusState] = MCPServer(
        "chorus",
        instructions=INSTRUCTIONS,
        version=_version(),
        lifespan=lifespan,
        log_level=config.log_level,
        **auth_options(config),
    )
    register_tools(server)
    register_resources(server, state)
    register_session_tools(server, state)
    guard_tool_calls(server, config)
    return server


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("chorus-mcp")
    except PackageNotFoundError:
        return "0.0.0"
