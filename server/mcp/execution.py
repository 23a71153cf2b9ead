"""Running one tool call: session history in, strategy run under deadline and budget, progress out."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from decimal import Decimal
from typing import Any

import anyio
from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, InputRequiredResult

from chorus_mcp.server.mcp.client_roots import RootsChannel, names_a_path
from chorus_mcp.server.mcp.inputs import attached_notes, over_http, reader_for
from chorus_mcp.server.mcp.progress import CallProgress
from chorus_mcp.server.mcp.rendering import render
from chorus_mcp.server.mcp.sampling_context import run_with_client_model
from chorus_mcp.server.mcp.shareable import scrub_result
from chorus_mcp.server.mcp.specs import check_models
from chorus_mcp.server.mcp.state import ChorusState
from chorus_mcp.strategies.cache.scope import bypassing
from chorus_mcp.strategies.core.completion import CompletionRequest, ReasoningEffort
from chorus_mcp.strategies.core.errors import UserInputError
from chorus_mcp.strategies.core.result import NoteDecision, StrategyResult, compute_totals
from chorus_mcp.strategies.core.spec import Step
from chorus_mcp.strategies.engine.context import Budget, RunContext
from chorus_mcp.strategies.engine.context_passing import ActiveSession, bound
from chorus_mcp.strategies.engine.runner import run_strategy
from chorus_mcp.strategies.sessions.ownership import current_principal
from chorus_mcp.strategies.sessions.session import (
    ContextMode,
    Session,
    exchange,
    new_session_id,
    remember,
    usage_of,
    validate_session_id,
)


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
    context: ContextMode | None = None,
    cache: bool = True,
    reasoning_effort: ReasoningEffort | None = None,
    files: Sequence[object] | None = None,
) -> CallToolResult | InputRequiredResult:
    """Run `step` on `prompt` within the session `session_id` (a new one when None): its history is
    passed per `context` (default `sessions.context.mode`), the call's cost cap is lowered to what the
    session's own cap has left (shared with the session's other calls in flight), and the exchange and
    its cost are recorded in the session. `cache=False`: no model call of the run reads or writes the
    response cache. `reasoning_effort` overrides each model's configured one (`engine.reasoning`).
    `files`: attached to the prompt (`server.mcp.inputs`), each model sent its share."""
    state = state_of(ctx)
    principal = current_principal()
    defaults = state.config.defaults
    if not prompt.strip():
        raise UserInputError("prompt: must not be empty")
    check_models(step, state.catalog)
    channel = RootsChannel.of(ctx)
    client_roots: list[str] = []
    settings = state.config.inputs
    if settings.client_roots and not over_http(ctx) and names_a_path(files or []):
        asked = await channel.client_roots()
        if isinstance(asked, InputRequiredResult):
            return asked  # 2026-07-28: the client lists its roots, then calls again
        client_roots = asked
    attached = await reader_for(ctx, settings, client_roots).read(files or [])

    with ExitStack() as held:  # the session's shared budget, for the whole call (store write included)
        request = CompletionRequest.of(
            prompt, system=system, reasoning_effort=reasoning_effort, inputs=attached
        )
        created = session_id is None
        parent: Budget | None = None
        session: Session | None = None
        if session_id is not None:
            validate_session_id(session_id)
            # Joined before the session is read: a call on it that ends meanwhile leaves its cost in the
            # shared budget this call will use, not only in the store this call has already read.
            shared = held.enter_context(state.session_budgets.joined(session_id))
            session = await state.sessions.get(session_id)
            if session is None or not session.readable_by(principal):
                # Another client's session reads exactly like one that does not exist: no existence oracle.
                raise UserInputError(
                    f"session_id: no session {session_id!r} (it may have expired); omit it to start one"
                )
            session_cap = session.max_cost_usd
            session_left = session.cost_left_usd()
            if session_left is not None:
                # What the session's other calls in flight have not already spent or reserved.
                parent = shared.budget_for(session_left)
                session_left = parent.left_usd()
        else:
            session_cap = session_left = state.config.sessions.max_cost_usd
            # Stored with its first exchange once the run is done: one write per call instead of two.
            session_id = new_session_id()

        cap = defaults.max_cost_usd if max_cost_usd is None else Decimal(str(max_cost_usd))
        budget_note: NoteDecision | None = None
        day_left = await state.quotas.usd_left(principal)
        allowance = state.quotas.allowance(principal)  # the day, shared with the client's other calls
        if day_left is not None and (cap is None or day_left < cap):
            cap = day_left
            daily = state.quotas.settings.max_usd_per_day
            message = f"cost capped at ${day_left}: what is left of this client's ${daily} for today"
            budget_note = NoteDecision(stage="quota", message=message)
        if session_left is not None:
            if session_left <= 0:
                if parent is not None and parent.reserved_usd > 0:
                    raise UserInputError(
                        f"session_id: what is left of the session's budget of ${session_cap} is held by "
                        "its other calls in progress; retry when they finish"
                    )
                raise UserInputError(
                    f"session_id: the session's budget of ${session_cap} is spent; "
                    "start a new session to go on"
                )
            if cap is None or session_left < cap:
                cap = session_left
                message = f"cost capped at ${session_left}: what is left of the session's ${session_cap}"
                budget_note = NoteDecision(stage="session", message=message)
        mode = context or state.config.sessions.context.mode
        progress = CallProgress(ctx, expected_calls, every_s=defaults.progress_every_s)
        run = RunContext.starting_now(
            state.catalog,
            deadline_s or defaults.deadline_s,
            strategies=state.config.strategies,
            budget=Budget(max_cost_usd=cap, parent=parent, allowance=allowance),
            progress=progress.finished,
            in_flight=progress.in_flight,
            guard=state.guard,
            latency=state.latency,
        )

        async def work(run: RunContext) -> StrategyResult:
            started = anyio.current_time()
            built = await state.context.build(session, request, mode, step, run, state.sessions)
            active = ActiveSession(state.context, session, request, state.sessions)
            with bound(active):
                result = await run_strategy(step, built.request, run, session_id=session_id)
            extra = [*built.calls, *active.calls]
            result.calls[:0] = extra
            noted = [*([budget_note] if budget_note else []), *attached_notes(attached)]
            result.decisions[:0] = [*noted, *built.notes, *active.notes]
            if extra:
                result.totals = compute_totals(result.calls, anyio.current_time() - started)
            return result

        with bypassing(not cache):  # `cache: false`: every model call of this run skips the response cache
            async with progress.beating():
                outcome = await run_with_client_model(channel.for_sampling(), run, step, work)
        if isinstance(outcome, InputRequiredResult):
            # The client's own model must answer first (MCP sampling, 2026-07-28): the client calls again.
            return channel.carry(outcome)
        result = outcome
        result.session_id = session_id
        usage = usage_of(result)
        # Model calls settled their cost into the day as they ended; what else the run cost comes now.
        await state.quotas.charge(principal, usage.cost_usd - (allowance.settled_usd if allowance else 0))
        try:
            if created:
                # Failed attempts are not history (see below), but their cost is charged to the session.
                turns = exchange(request, result, usage) if result.ok else []
                charged = usage if result.ok or usage.calls else None
                await state.sessions.create(
                    max_cost_usd=session_cap,
                    session_id=session_id,
                    turns=turns,
                    usage=charged,
                    owner=principal.id,
                )
            elif result.ok:
                # Only answered turns join the history: a failed attempt would leave the next turn a dangling
                # question. Its cost still counts against the session.
                await remember(state.sessions, session_id, request, result, usage)
            elif usage.calls:
                await state.sessions.append(session_id, [], usage=usage)
        except UserInputError:
            message = "the session was ended or expired during this call; this exchange is not recorded in it"
            result.decisions.append(NoteDecision(stage="session", message=message))
        # Endpoints and paths are the operator's (the log has them), never the client's.
        return render(scrub_result(result))
