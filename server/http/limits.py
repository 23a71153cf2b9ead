"""The operator's bounds on what a tool call may do (`limits:` in config), and on HTTP traffic.

- `ToolCallGuard` looks at every `tools/call` before the SDK validates it: an argument the tool does
  not declare is an error (the SDK would drop it silently, so `api_base` or `headers` would seem to be
  accepted), and so is a value past a limit — a model the call may not name, too many members, a
  prompt too long, too many refine rounds, a cost cap or deadline above the operator's.
- `cap_output_tokens` wraps the model clients so that no call asks for more than
  `limits.max_output_tokens`, wherever the request came from.
- `RateLimiter` (a token bucket per client) and `InFlight` (a global cap that refuses instead of
  queueing) are used by the HTTP gate in `server.http.auth`.

Endpoints, keys and headers are not among the things a tool call may set: no tool declares them, and
the guard refuses undeclared arguments by name.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.types import CallToolResult, TextContent

from chorus_mcp.config.schema import ChorusConfig, Limits
from chorus_mcp.strategies.core.completion import Completion, CompletionRequest
from chorus_mcp.strategies.models.catalog import ClientFactory, ModelEntry
from chorus_mcp.strategies.models.client import ModelClient

log = logging.getLogger("chorus.limits")

TEXT_ARGUMENTS = ("prompt", "input", "system")
"""Arguments bounded by `limits.max_prompt_chars`."""
MODEL_LIST_ARGUMENTS = ("models", "tiers")
"""Arguments that list models: bounded by `limits.max_members`, each checked like `judge`."""
MODEL_ARGUMENTS = ("judge",)
SESSION_WIDE_COST = frozenset({"start_session"})
"""Tools whose `max_cost_usd` caps a session, not one call."""
CONFIG_ONLY = frozenset(
    {"api_base", "base_url", "api_key", "key", "headers", "extra_headers", "endpoint", "url"}
)
"""Names a caller may try in order to redirect the server; the refusal then says where they are set."""
PROVIDER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*/[A-Za-z0-9][A-Za-z0-9_.:@+\-/]*")
"""A raw provider model id (`openai/gpt-4o-mini`): no scheme, no spaces, no query."""


class ModelPolicy:
    """Which model names a tool call may use."""

    def __init__(self, config: ChorusConfig) -> None:
        allowed = config.limits.allowed_models
        self._names = sorted(config.models if allowed is None else allowed)
        self._configured = set(config.models)
        self._raw_ids = config.allow_unlisted_models and allowed is None

    def problem(self, field: str, name: object) -> str | None:
        if not isinstance(name, str):
            return None  # a wrong type is the SDK's to report
        listing = ", ".join(self._names) or "none"
        if name in self._names:
            return None
        if self._raw_ids and "/" in name and name not in self._configured:
            if PROVIDER_ID.fullmatch(name) and "://" not in name:
                return None
            return f"{field}: {_shown(name)} is not a provider model id (like 'openai/gpt-4o-mini')"
        if name in self._configured:
            return f"{field}: model {name!r} may not be named in a tool call here; allowed: {listing}"
        hint = " or a provider id such as 'openai/gpt-4o-mini'" if self._raw_ids else ""
        return f"{field}: unknown model {_shown(name)}: use one of {listing}{hint}"


def check_arguments(
    limits: Limits, models: ModelPolicy, arguments: Mapping[str, Any], *, session_wide: bool = False
) -> str | None:
    """The first limit the arguments break, as a message naming the argument and the limit; else None.

    `session_wide`: the call's `max_cost_usd` caps a whole session (`start_session`), not one call, so
    `limits.max_cost_usd` (a per-call ceiling) does not bound it; each call of the session still is.

    Values of the wrong type are left alone: the SDK's own validation reports them. NaN and infinity
    are refused here: they pass a bounds check (every comparison with NaN is false).
    """
    for field, value in arguments.items():
        if isinstance(value, float) and not math.isfinite(value):
            return f"{field}: must be a finite number, got {value}"
    for field in TEXT_ARGUMENTS:
        value = arguments.get(field)
        if isinstance(value, str) and len(value) > limits.max_prompt_chars:
            return (
                f"{field}: {len(value)} characters; this server accepts at most {limits.max_prompt_chars} "
                "(limits.max_prompt_chars)"
            )
    for field in MODEL_LIST_ARGUMENTS:
        value = arguments.get(field)
        if isinstance(value, list):
            if len(value) > limits.max_members:
                return f"{field}: {len(value)} models; at most {limits.max_members} (limits.max_members)"
            for name in value:
                if problem := models.problem(field, name):
                    return problem
    for field in MODEL_ARGUMENTS:
        if problem := models.problem(field, arguments.get(field)):
            return problem
    iterations = _number(arguments.get("max_iterations"))
    if iterations is not None and iterations > limits.max_pipeline_iterations:
        return (
            f"max_iterations: {iterations}; at most {limits.max_pipeline_iterations} "
            "(limits.max_pipeline_iterations)"
        )
    cost = _number(arguments.get("max_cost_usd"))
    if (
        cost is not None
        and limits.max_cost_usd is not None
        and cost > limits.max_cost_usd
        and not session_wide
    ):
        return f"max_cost_usd: {cost}; at most {limits.max_cost_usd} (limits.max_cost_usd)"
    deadline = _number(arguments.get("deadline_s"))
    if deadline is not None and deadline > Decimal(str(limits.max_deadline_s)):
        return f"deadline_s: {deadline}; at most {limits.max_deadline_s} (limits.max_deadline_s)"
    return None


def _number(value: object) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _shown(value: str) -> str:
    """A caller's string, quoted and cut short, for an error message."""
    return repr(value if len(value) <= 80 else value[:77] + "...")


def unknown_arguments(tool: str, given: Mapping[str, Any], declared: set[str]) -> str | None:
    unknown = sorted(key for key in given if key not in declared)
    if not unknown:
        return None
    names = ", ".join(_shown(key) for key in unknown[:5]) + (", ..." if len(unknown) > 5 else "")
    message = f"unknown argument{'s' if len(unknown) > 1 else ''} {names} for {tool}; it accepts: "
    message += ", ".join(sorted(declared))
    if any(key.lower() in CONFIG_ONLY for key in unknown):
        message += ". Endpoints, keys and headers come from the server's configuration, never from a call"
    return message


class ToolCallGuard:
    """Server middleware: refuses a `tools/call` with undeclared arguments or values past the limits.

    The refusal is an `isError` tool result naming the argument, like any other bad argument.
    """

    def __init__(self, server: MCPServer[Any], config: ChorusConfig) -> None:
        self._server = server
        self._limits = config.limits
        self._models = ModelPolicy(config)
        self._declared: dict[str, set[str]] | None = None

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        params = ctx.params
        if ctx.method == "tools/call" and isinstance(params, Mapping):
            problem = await self._problem(params)
            if problem is not None:
                log.info("tool call refused: %s", problem)
                return CallToolResult(content=[TextContent(type="text", text=problem)], is_error=True)
        return await call_next(ctx)

    async def _problem(self, params: Mapping[str, Any]) -> str | None:
        name, arguments = params.get("name"), params.get("arguments")
        if not isinstance(name, str) or not isinstance(arguments, Mapping):
            return None  # malformed: the SDK's validation answers it
        if self._declared is None:
            tools = await self._server.list_tools()
            self._declared = {tool.name: set(tool.input_schema.get("properties", {})) for tool in tools}
        declared = self._declared.get(name)
        if declared is None:
            return None  # an unknown tool: the SDK says so
        unknown = unknown_arguments(name, arguments, declared)
        session_wide = name in SESSION_WIDE_COST
        return unknown or check_arguments(self._limits, self._models, arguments, session_wide=session_wide)


def guard_tool_calls(server: MCPServer[Any], config: ChorusConfig) -> None:
    """Install the `ToolCallGuard` (call once, after the tools are registered)."""
    server.middleware.append(ToolCallGuard(server, config))


# -- model calls ----------------------------------------------------------------------------------


def capped(request: CompletionRequest, limit: int) -> CompletionRequest:
    if request.max_tokens is not None and request.max_tokens <= limit:
        return request
    return request.model_copy(update={"max_tokens": limit})


class OutputTokenCap:
    """A client whose requests ask for at most `limit` output tokens; everything else is the inner one's."""

    def __init__(self, inner: ModelClient, limit: int) -> None:
        self.inner = inner
        self.name = inner.name
        self._limit = limit

    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not set yet (half-built instance): do not recurse
            raise AttributeError(name)
        found = getattr(self.inner, name)
        if name == "estimate_cost_usd":  # estimate the call as it will be made
            return lambda request: found(capped(request, self._limit))
        return found

    async def complete(self, request: CompletionRequest) -> Completion:
        return await self.inner.complete(capped(request, self._limit))


def cap_output_tokens(factory: ClientFactory | None, limit: int | None) -> ClientFactory | None:
    """`factory` with every client capped at `limit` output tokens (unchanged when there is no limit)."""
    if limit is None:
        return factory
    if factory is None:
        from chorus_mcp.server.mcp.state import default_client_factory

        factory = default_client_factory()
    inner = factory

    def build(alias: str, entry: ModelEntry) -> ModelClient:
        return OutputTokenCap(inner(alias, entry), limit)

    return build


# -- HTTP traffic ---------------------------------------------------------------------------------


class RateLimiter:
    """A token bucket per client: `burst` requests at once, refilled at `per_minute`."""

    def __init__(
        self,
        per_minute: int,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = 10_000,
    ) -> None:
        self._rate = per_minute / 60.0
        self._burst = float(burst)
        self._clock = clock
        self._max_clients = max_clients
        self._buckets: dict[str, tuple[float, float]] = {}
        """client → (tokens left, when counted)"""

    def take(self, client: str) -> float | None:
        """Spend one request for `client`: None when allowed, else the seconds until one is."""
        now = self._clock()
        tokens, then = self._buckets.get(client, (self._burst, now))
        tokens = min(self._burst, tokens + (now - then) * self._rate)
        if tokens < 1:
            self._buckets[client] = (tokens, now)
            return (1 - tokens) / self._rate
        if client not in self._buckets and len(self._buckets) >= self._max_clients:
            self._forget_idle(now)
        self._buckets[client] = (tokens - 1, now)
        return None

    def _forget_idle(self, now: float) -> None:
        """Drop clients whose bucket has refilled: forgetting them changes nothing."""
        full = [
            key
            for key, (tokens, then) in self._buckets.items()
            if tokens + (now - then) * self._rate >= self._burst
        ]
        for key in full:
            del self._buckets[key]

    @staticmethod
    def retry_after(wait_s: float) -> int:
        return max(1, math.ceil(wait_s))


class InFlight:
    """A global cap on requests in progress that refuses at once instead of queueing."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0

    def try_enter(self) -> bool:
        if self.count >= self.limit:
            return False
        self.count += 1
        return True

    def leave(self) -> None:
        self.count -= 1
