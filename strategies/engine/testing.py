"""A run context over scripted clients, for testing strategies without the server or a provider."""

from __future__ import annotations

from chorus_mcp.strategies.engine.context import RunContext
from chorus_mcp.strategies.engine.runner import run_step
from chorus_mcp.strategies.models.testing import ScriptedClient, catalog_of


def context_of(*clients: ScriptedClient, deadline_s: float = 10.0, **kwargs: object) -> RunContext:
    """A context whose catalog holds `clients`, `deadline_s` from now; children run through the runner."""
    fallbacks = kwargs.pop("fallbacks", None)
    kwargs.setdefault("step_runner", run_step)
    return RunContext.starting_now(catalog_of(*clients, fallbacks=fallbacks), deadline_s, **kwargs)  # type: ignore[arg-type]
