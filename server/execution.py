"""Running one tool call: session history in, strategy run under deadline and budget, progress out."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, InputRequiredResult

from server.rendering import render
from server.sampling_context import run_with_client_model
from server.specs import check_models
from server.state import ChorusState
from strategies.completion import CompletionRequest
from strategies.context import Budget, RunContext
from strategies.errors import UserInputError
from strategies.result import CallRecord
from strategies.runner import run_strategy
from strategies.sessions import remember, validate_session_id, with_history
from strategies.spec import Step


def state_of(ctx: Context[Any, Any]) -> ChorusState:
    state = ctx.request_context.lifespan_context
    assert isinstance(state, ChorusState)
    return state


async def execute(
    ctx: Context[Any, Any],
    step: Step,
    prompt: str,
    *,
    system: str | None = None,
    session_id: str | None = None,
    deadline_s: float | None = None,
    max_cost_usd: float | None = None,
    expected_calls: int | None = None,
) -> CallToolResult | InputRequiredResult:
    state = state_of(ctx)
    defaults = state.config.defaults
    if not prompt.strip():
        raise UserInputError("prompt: must not be empty")
    check_models(step, state.catalog)

    request = CompletionRequest.of(prompt, system=system)
    created = session_id is None
    if session_id is not None:
        validate_session_id(session_id)
        session = await state.sessions.get(session_id)
        if session is None:
            raise UserInputError(f"session_id: no session {session_id!r} (it may have expired); omit it to start one")
        request = with_history(session, request)
    else:
        session_id = await state.sessions.create()

    cap = defaults.max_cost_usd if max_cost_usd is None else Decimal(str(max_cost_usd))
    done = 0

    async def progress(record: CallRecord) -> None:
        nonlocal done
        done += 1
        total = float(max(expected_calls, done)) if expected_calls else None
        await ctx.report_progress(done, total, f"{record.model} {record.status} ({record.stage})")

    run = RunContext.starting_now(
        state.catalog,
        deadline_s or defaults.deadline_s,
        strategies=state.config.strategies,
        budget=Budget(max_cost_usd=cap),
        progress=progress,
        guard=state.guard,
    )
    outcome = await run_with_client_model(
        ctx, run, step, lambda run: run_strategy(step, request, run, session_id=session_id)
    )
    if isinstance(outcome, InputRequiredResult):
        # The client's own model must answer first (MCP sampling, 2026-07-28): the client calls again.
        if created:
            await state.sessions.delete(session_id)
        return outcome
    result = outcome
    result.session_id = session_id
    if result.ok:
        # Only answered turns join the history: a failed attempt would leave the next turn a dangling question.
        await remember(state.sessions, session_id, request, result)
    return render(result)
