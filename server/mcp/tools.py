"""The MCP tools. Each one is thin: arguments → a strategy spec → `execute` → a rendered result.

Descriptions are kept short on purpose: clients put every tool definition into the model's context.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, get_args

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, InputRequiredResult, ToolAnnotations
from pydantic import BaseModel, Field, WithJsonSchema

from chorus_mcp.config.schema import ChorusConfig
from chorus_mcp.server.mcp.execution import execute, state_of
from chorus_mcp.server.mcp.footprint import publish_output_schema
from chorus_mcp.server.mcp.rendering import Detail, shaped
from chorus_mcp.server.mcp.specs import build, named, with_overrides
from chorus_mcp.strategies.core.completion import ReasoningEffort
from chorus_mcp.strategies.core.errors import ChorusError
from chorus_mcp.strategies.core.result import StrategyResult
from chorus_mcp.strategies.core.spec import (
    Aggregation,
    AnswerFormat,
    CascadeSpec,
    EnsembleSpec,
    Estimator,
    Objective,
    PipelineSpec,
    RouteSpec,
    Step,
)
from chorus_mcp.strategies.models.availability import check_models
from chorus_mcp.strategies.models.catalog import map_version_text
from chorus_mcp.strategies.sessions.session import ContextMode

# Bounds set by the operator (`limits:` in config) are not written here: `server.mcp.arguments` publishes
# and enforces them from the config, so the schema an agent reads is the one the server applies.
Prompt = Annotated[str, Field(description="The question or task.", min_length=1, pattern=r"\S")]
StrategyName = Annotated[str | None, Field(description="A configured strategy (see list_strategies).")]
Models = Annotated[list[str] | None, Field(description="Model aliases or provider ids.")]
SessionId = Annotated[str | None, Field(description="Continue this session (history is passed on).")]
ContextChoice = Annotated[ContextMode | None, Field(description="How session history is passed.")]
System = Annotated[str | None, Field(description="System prompt for every model.")]
DeadlineS = Annotated[float | None, Field(description="Return by then, partial if need be.", gt=0)]
MaxCost = Annotated[float | None, Field(description="Cost cap in USD for this call.", ge=0)]
UseCache = Annotated[bool, Field(description="false: do not read or write the response cache.")]
# A bare enum, no type or description: ~15 tokens a tool (the allotment for the four is 60).
Effort = Annotated[ReasoningEffort | None, WithJsonSchema({"enum": list(get_args(ReasoningEffort))})]
# Items are checked by `server.mcp.inputs` (each shape named in its errors): a typed union here would
# cost ~50 schema tokens a tool, read by the agent's model on every turn.
Files = Annotated[list[Any] | None, Field(description="File paths or MCP image/resource content to attach.")]
DetailChoice = Annotated[Detail, Field(description="summary: answers cut to excerpts; full: everything.")]

ToolResult = CallToolResult | InputRequiredResult
"""Tools build their own result (short text + structured record); `StrategyResult` is published as their
outputSchema by `register_tools` (`server.mcp.footprint.publish_output_schema`).
On a 2026-07-28 connection a call that needs the client's own model first returns an `InputRequiredResult`
(server/mcp/sampling_context.py); the SDK keeps it out of the schema."""

_READ_ONLY = ToolAnnotations(readOnlyHint=True, openWorldHint=False)
_CALLS_MODELS = ToolAnnotations(readOnlyHint=False, destructiveHint=False, openWorldHint=True)


def _guard(error: ChorusError) -> ToolError:
    """A caller or config mistake becomes an isError result with a message naming the field."""
    return ToolError(error.message)


ORCHESTRATION_TOOLS = ("ensemble_vote", "cascade_ask", "route_specialist", "run_pipeline")
"""The tools that run a strategy and return a `StrategyResult`."""
STRATEGY_ARGUMENTS: dict[str, tuple[str, type[BaseModel]]] = {
    "ensemble_vote": ("strategy", EnsembleSpec),
    "cascade_ask": ("strategy", CascadeSpec),
    "route_specialist": ("strategy", RouteSpec),
    "run_pipeline": ("pipeline", PipelineSpec),
}
"""Each orchestration tool's argument naming a configured strategy, and the kind it must be: the names
it accepts are published as that argument's `enum` (`server.mcp.arguments.publish_strategy_names`)."""


@dataclass(frozen=True)
class _Run:
    """What every orchestration tool passes on to `execute` unchanged."""

    system: str | None
    session_id: str | None
    context: ContextMode | None
    deadline_s: float | None
    max_cost_usd: float | None
    cache: bool
    reasoning_effort: ReasoningEffort | None = None
    files: list[Any] | None = None


async def _orchestrate(
    ctx: Context[Any, Any], spec_for: Callable[[ChorusConfig], Step], prompt: str, run: _Run, detail: Detail
) -> ToolResult:
    """The one shape of the four orchestration tools: the spec from the config and the call's arguments,
    then `execute`, then the result shaped to `detail`; a caller or config mistake becomes an isError
    result naming the field."""
    try:
        spec = spec_for(state_of(ctx).config)
        expected = len(spec.members) + (1 if spec.judge else 0) if isinstance(spec, EnsembleSpec) else None
        result = await execute(
            ctx,
            spec,
            prompt,
            system=run.system,
            session_id=run.session_id,
            context=run.context,
            deadline_s=run.deadline_s,
            max_cost_usd=run.max_cost_usd,
            expected_calls=expected,
            cache=run.cache,
            reasoning_effort=run.reasoning_effort,
            files=run.files,
        )
        return shaped(result, detail)
    except ChorusError as exc:
        raise _guard(exc) from None


def register_tools(server: MCPServer[Any]) -> None:
    @server.tool(annotations=_CALLS_MODELS)
    async def ensemble_vote(
        prompt: Prompt,
        ctx: Context[Any, Any],
        detail: DetailChoice = "summary",
        models: Models = None,
        strategy: StrategyName = None,
        aggregation: Aggregation | None = None,
        extract: Annotated[AnswerFormat | None, Field(description="How answers are read to vote.")] = None,
        json_field: Annotated[str | None, Field(description="Field voted on if extract=json_field.")] = None,
        judge: Annotated[str | None, Field(description="Model that synthesises the answer.")] = None,
        quorum: Annotated[int | None, Field(description="Minimum members that must answer.", ge=1)] = None,
        system: System = None,
        session_id: SessionId = None,
        context: ContextChoice = None,
        deadline_s: DeadlineS = None,
        max_cost_usd: MaxCost = None,
        cache: UseCache = True,
        reasoning_effort: Effort = None,
        files: Files = None,
    ) -> ToolResult:
        """Ask several models in parallel and vote (or synthesise) one answer, with every vote shown."""

        def spec_for(config: ChorusConfig) -> Step:
            overrides: dict[str, Any] = {
                "aggregation": aggregation,
                "extract": extract,
                "json_field": json_field,
                "judge": judge,
                "quorum": quorum,
            }
            if models:
                overrides["members"] = models
            if models and strategy is None:
                return build(EnsembleSpec, overrides)
            base = named(config, strategy or config.defaults.ensemble, EnsembleSpec)
            assert isinstance(base, EnsembleSpec)
            return with_overrides(base, overrides)

        run = _Run(system, session_id, context, deadline_s, max_cost_usd, cache, reasoning_effort, files)
        return await _orchestrate(ctx, spec_for, prompt, run, detail)

    @server.tool(annotations=_CALLS_MODELS)
    async def cascade_ask(
        prompt: Prompt,
        ctx: Context[Any, Any],
        detail: DetailChoice = "summary",
        tiers: Annotated[list[str] | None, Field(description="Models, cheap first.")] = None,
        strategy: StrategyName = None,
        threshold: Annotated[float | None, Field(description="Confidence to accept.", ge=0, le=1)] = None,
        estimator: Estimator | None = None,
        system: System = None,
        session_id: SessionId = None,
        context: ContextChoice = None,
        deadline_s: DeadlineS = None,
        max_cost_usd: MaxCost = None,
        cache: UseCache = True,
        reasoning_effort: Effort = None,
        files: Files = None,
    ) -> ToolResult:
        """Ask a cheap model first; escalate to stronger ones while its confidence is below the threshold."""

        def spec_for(config: ChorusConfig) -> Step:
            overrides: dict[str, Any] = {"threshold": threshold, "estimator": estimator}
            if tiers:
                overrides["tiers"] = tiers
            if tiers and strategy is None:
                return build(CascadeSpec, overrides)
            base = named(config, strategy or config.defaults.cascade, CascadeSpec)
            assert isinstance(base, CascadeSpec)
            return with_overrides(base, overrides)

        run = _Run(system, session_id, context, deadline_s, max_cost_usd, cache, reasoning_effort, files)
        return await _orchestrate(ctx, spec_for, prompt, run, detail)

    @server.tool(annotations=_CALLS_MODELS)
    async def route_specialist(
        prompt: Prompt,
        ctx: Context[Any, Any],
        detail: DetailChoice = "summary",
        strategy: StrategyName = None,
        objective: Objective | None = None,
        system: System = None,
        session_id: SessionId = None,
        context: ContextChoice = None,
        deadline_s: DeadlineS = None,
        max_cost_usd: MaxCost = None,
        cache: UseCache = True,
        reasoning_effort: Effort = None,
        files: Files = None,
    ) -> ToolResult:
        """Send the request to the specialist that fits it, or by objective: the fastest, cheapest or best."""

        def spec_for(config: ChorusConfig) -> Step:
            base = named(config, strategy or config.defaults.route, RouteSpec)
            assert isinstance(base, RouteSpec)
            return with_overrides(base, {"objective": objective})

        run = _Run(system, session_id, context, deadline_s, max_cost_usd, cache, reasoning_effort, files)
        return await _orchestrate(ctx, spec_for, prompt, run, detail)

    @server.tool(annotations=_CALLS_MODELS)
    async def run_pipeline(
        input: Annotated[
            str, Field(description="The task, available to stages as {input}.", min_length=1, pattern=r"\S")
        ],
        ctx: Context[Any, Any],
        detail: DetailChoice = "summary",
        pipeline: Annotated[str | None, Field(description="A configured pipeline name.")] = None,
        max_iterations: Annotated[int | None, Field(description="Most refine rounds.", ge=0)] = None,
        session_id: SessionId = None,
        context: ContextChoice = None,
        deadline_s: DeadlineS = None,
        max_cost_usd: MaxCost = None,
        cache: UseCache = True,
        reasoning_effort: Effort = None,
        files: Files = None,
    ) -> ToolResult:
        """Run a configured multi-stage pipeline (e.g. plan → code → review → refine until approved)."""

        def spec_for(config: ChorusConfig) -> Step:
            spec = named(config, pipeline or config.defaults.pipeline, PipelineSpec, argument="pipeline")
            assert isinstance(spec, PipelineSpec)
            if max_iterations is not None and spec.refine is not None:
                refine = spec.refine.model_copy(update={"max_iterations": max_iterations})
                spec = spec.model_copy(update={"refine": refine})
            return spec

        run = _Run(None, session_id, context, deadline_s, max_cost_usd, cache, reasoning_effort, files)
        return await _orchestrate(ctx, spec_for, input, run, detail)

    @server.tool(annotations=_READ_ONLY)
    def list_models(ctx: Context[Any, Any]) -> dict[str, Any]:
        """Configured model aliases, their provider ids, and whether each is usable now."""
        state = state_of(ctx)
        # The same check as `chorus-mcp doctor` and start-up steering (sync tools run in a worker thread,
        # so reading litellm's model map the first time, ~0.1 s, does not hold up the event loop).
        statuses = check_models(state.config.models)
        models = {}
        for alias, entry in sorted(state.config.models.items()):
            status = statuses[alias]
            models[alias] = {
                "model": entry.model,
                "usable": status.usable,
                "source": status.source,
                **({"missing": status.detail} if not status.usable else {}),
                **({"fallbacks": entry.fallbacks} if entry.fallbacks else {}),
                **({"tags": entry.tags} if entry.tags else {}),
                **({"reasoning_effort": entry.reasoning_effort} if entry.reasoning_effort else {}),
                **state.catalog.capabilities(alias).listing(),
            }
        return {
            "models": models,
            "model_map": map_version_text() or "litellm is not installed: no model map",
            "unlisted_provider_ids_allowed": state.config.allow_unlisted_models,
        }

    @server.tool(annotations=_READ_ONLY)
    def list_strategies(ctx: Context[Any, Any]) -> dict[str, Any]:
        """Configured strategies by name, with their kind and the models they use."""
        config = state_of(ctx).config
        return {
            "strategies": {
                name: step.model_dump(mode="json", exclude_defaults=True) | {"kind": step.kind}
                for name, step in sorted(config.strategies.items())
            },
            "defaults": {
                "ensemble_vote": config.defaults.ensemble,
                "cascade_ask": config.defaults.cascade,
                "route_specialist": config.defaults.route,
                "run_pipeline": config.defaults.pipeline,
            },
        }

    publish_output_schema(server, ORCHESTRATION_TOOLS, StrategyResult)
