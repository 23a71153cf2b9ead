"""Long tool calls as tasks: the MCP extension `io.modelcontextprotocol/tasks` (protocol 2026-07-28).

A client that declares the extension on a `tools/call` may get a task handle (`resultType: "task"`)
instead of the result: the run goes on in the server, and the client polls `tasks/get` until the task
is `completed` (its `result` is the tool result, `isError` or not), `failed` (a protocol error) or
`cancelled` (`tasks/cancel`). The server decides: an orchestration tool runs as a task when its deadline
is above `tasks.after_deadline_s` (50 s by default; clients cut calls off at about 60 s), so a call that
asks for a long deadline outlives the client's time-out. Nothing changes for a client that does not
declare the extension, or for the handshake era (2025-11-25): the SDK speaks neither form of tasks as a
client, and the 2025-11-25 experimental form is not offered.

Tasks are kept in the task store beside the sessions (strategies/sessions/tasks.py): a restarted server,
or another replica sharing Redis, answers a poll for a finished task. A task is its creator's: another
principal polling or cancelling it is told there is no such task. A working task's runner refreshes it
every few seconds (with the run's latest progress message as its status message); a working task
nobody has refreshed for `STALE_S` lost its server, and reads as failed. `tasks/cancel` stops the run
where it runs (another replica sees the request on its next refresh).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import anyio
from anyio.abc import TaskGroup
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.extension import Extension, MethodBinding
from mcp.server.mcpserver.server import require_client_extension
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolRequestParams, CallToolResult, InputRequiredResult, RequestParams
from mcp_types import INTERNAL_ERROR, INVALID_PARAMS
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel, ConfigDict, Field

from chorus_mcp.config.schema import ChorusConfig
from chorus_mcp.server.mcp.progress import reporting_to
from chorus_mcp.server.mcp.tools import ORCHESTRATION_TOOLS
from chorus_mcp.strategies.sessions.ownership import current_principal
from chorus_mcp.strategies.sessions.tasks import TERMINAL, TaskRecord, TaskStore

log = logging.getLogger("chorus.tasks")

EXTENSION = "io.modelcontextprotocol/tasks"
REFRESH_S = 5.0
"""How often a running task's record is refreshed (its status message, and a cancel asked elsewhere)."""
STALE_S = 6 * REFRESH_S
"""A working task not refreshed for this long has no runner left."""


def principal_of() -> str:
    """Who is calling: the request's principal (server/http/principals.py sets it for every request: a
    bearer token's name, an OAuth subject, or the local user over stdio and unauthenticated loopback)."""
    return current_principal().id


class TaskIdParams(RequestParams):
    model_config = ConfigDict(populate_by_name=True, extra="allow")
    task_id: str = Field(alias="taskId", min_length=1, max_length=200)


class TaskRunner:
    """Runs tool calls as tasks in the server's lifetime, and answers for them."""

    def __init__(
        self,
        config: ChorusConfig,
        store: TaskStore,
        on_result: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
    ) -> None:
        """`on_result`: told of every finished task's tool result (the session updates are published)."""
        self.settings = config.tasks
        self._on_result = on_result
        self._default_deadline_s = config.defaults.deadline_s
        self.store = store
        self._tg: TaskGroup | None = None
        self._live: dict[str, anyio.CancelScope] = {}
        self._messages: dict[str, str] = {}

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """For the server's lifetime: tasks run in here; they are cancelled when the server stops."""
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                yield
                tg.cancel_scope.cancel()
        finally:
            self._tg = None
            with anyio.CancelScope(shield=True):
                await self.store.aclose()

    def wanted(self, params: CallToolRequestParams, ctx: ServerRequestContext[Any, Any]) -> bool:
        """Whether this call runs as a task (the server decides; the client only says it can)."""
        if not self.settings.enabled or self._tg is None or params.name not in ORCHESTRATION_TOOLS:
            return False
        if len(self._live) >= self.settings.max_running:
            return False  # an ordinary call instead, which the limits on requests in progress do count
        if ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS:
            return False
        capabilities = ctx.session.client_capabilities
        if capabilities is None or EXTENSION not in (capabilities.extensions or {}):
            return False
        deadline = (params.arguments or {}).get("deadline_s")
        if not isinstance(deadline, int | float) or isinstance(deadline, bool):
            deadline = self._default_deadline_s
        return float(deadline) > self.settings.after_deadline_s

    async def create(
        self, params: CallToolRequestParams, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> dict[str, Any]:
        now = time.time()
        record = TaskRecord(
            task_id=secrets.token_urlsafe(18),
            owner=principal_of(),
            tool=params.name,
            status_message=f"{params.name} is running",
            created_at=now,
            updated_at=now,
            ttl_s=self.settings.ttl_s,
        )
        await self.store.put(record)  # durable before the client hears of it: its first poll finds it
        assert self._tg is not None
        scope = anyio.CancelScope()
        self._live[record.task_id] = scope
        self._tg.start_soon(self._run, record, scope, ctx, call_next)
        return {"resultType": "task", **self.wire(record)}

    async def _run(
        self,
        record: TaskRecord,
        scope: anyio.CancelScope,
        ctx: ServerRequestContext[Any, Any],
        call_next: CallNext,
    ) -> None:
        task_id = record.task_id
        try:
            with scope:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._refresh, record, scope)
                    try:
                        with reporting_to(lambda message: self._messages.__setitem__(task_id, message)):
                            outcome = await call_next(ctx)
                    finally:
                        tg.cancel_scope.cancel()
                _settle(record, outcome)
                if self._on_result is not None and record.result is not None:
                    await self._on_result(record.result)
            if scope.cancelled_caught:
                record.status, record.status_message = "cancelled", "cancelled at the client's request"
        except MCPError as exc:
            record.status, record.status_message = "failed", exc.error.message
            record.error = exc.error.model_dump(by_alias=True, mode="json", exclude_none=True)
        except Exception as exc:
            log.exception("task %s (%s) failed", task_id, record.tool)
            record.status, record.status_message = "failed", f"internal error: {type(exc).__name__}"
            record.error = {"code": INTERNAL_ERROR, "message": record.status_message}
        finally:
            self._live.pop(task_id, None)
            self._messages.pop(task_id, None)
            record.updated_at = time.time()
            with anyio.CancelScope(shield=True):
                try:
                    await self.store.put(record)
                except Exception:  # the store is down: the poll will say the task lost its runner
                    log.exception("task %s could not be stored", task_id)

    async def _refresh(self, record: TaskRecord, scope: anyio.CancelScope) -> None:
        """While the task runs: keep its record fresh, and stop it if a cancel was asked elsewhere."""
        while True:
            await anyio.sleep(REFRESH_S)
            stored = await self.store.get(record.task_id)
            if stored is not None and stored.cancel_requested:
                scope.cancel()
                return
            record.updated_at = time.time()
            record.status_message = self._messages.get(record.task_id, record.status_message)
            await self.store.put(record)

    async def get(self, task_id: str) -> TaskRecord:
        """The caller's task, or the not-found error (also for someone else's task: its existence is
        not revealed)."""
        record = await self.store.get(task_id)
        if record is None or record.owner != principal_of():
            raise MCPError(code=INVALID_PARAMS, message=f"Failed to retrieve task: no task {task_id!r}")
        if task_id in self._live:
            record.status_message = self._messages.get(task_id, record.status_message)
        elif record.status not in TERMINAL and time.time() - record.updated_at > STALE_S:
            record.status, record.status_message = "failed", "the server running this task stopped first"
            record.error = {"code": INTERNAL_ERROR, "message": record.status_message}
            await self.store.put(record)
        return record

    async def cancel(self, task_id: str) -> None:
        record = await self.get(task_id)
        if record.status in TERMINAL:
            return
        scope = self._live.get(task_id)
        if scope is not None:
            scope.cancel()
            return
        record.cancel_requested = True  # the replica running it stops it on its next refresh
        await self.store.put(record)

    def wire(self, record: TaskRecord) -> dict[str, Any]:
        """`record` as the extension's `Task` (plus `result` or `error` once it has one)."""
        task: dict[str, Any] = {
            "taskId": record.task_id,
            "status": record.status,
            "createdAt": _iso(record.created_at),
            "lastUpdatedAt": _iso(record.updated_at),
            "ttlMs": None if record.ttl_s is None else int(record.ttl_s * 1000),
            "pollIntervalMs": int(self.settings.poll_interval_s * 1000),
        }
        if record.status_message:
            task["statusMessage"] = record.status_message
        if record.status == "completed" and record.result is not None:
            task["result"] = record.result
        if record.status == "failed" and record.error is not None:
            task["error"] = record.error
        return task


def _settle(record: TaskRecord, outcome: HandlerResult) -> None:
    if isinstance(outcome, InputRequiredResult):
        # The run needs the client's own model (sampling rounds): a task cannot ask for it here.
        record.status = "failed"
        record.status_message = (
            "this call needs the client's own model (MCP sampling), which a task cannot ask"
        )
        record.error = {"code": INTERNAL_ERROR, "message": record.status_message}
        return
    result = outcome if isinstance(outcome, BaseModel) else CallToolResult.model_validate(outcome)
    record.status = "completed"
    record.result = result.model_dump(by_alias=True, mode="json", exclude_none=True)
    record.result.pop("_meta", None)
    failed = bool(record.result.get("isError"))
    record.status_message = f"{record.tool} {'returned no answer' if failed else 'answered'}"


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")


class TasksExtension(Extension):
    identifier = EXTENSION

    def __init__(self, runner: TaskRunner) -> None:
        self.runner = runner

    def methods(self) -> list[MethodBinding]:
        versions = frozenset(MODERN_PROTOCOL_VERSIONS)
        return [
            MethodBinding("tasks/get", TaskIdParams, self._get, protocol_versions=versions),
            MethodBinding("tasks/update", TaskIdParams, self._update, protocol_versions=versions),
            MethodBinding("tasks/cancel", TaskIdParams, self._cancel, protocol_versions=versions),
        ]

    async def intercept_tool_call(
        self, params: CallToolRequestParams, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        if not self.runner.wanted(params, ctx):
            return await call_next(ctx)
        return await self.runner.create(params, ctx, call_next)

    async def _get(self, ctx: ServerRequestContext[Any, Any], params: TaskIdParams) -> HandlerResult:
        require_client_extension(ctx, EXTENSION)
        record = await self.runner.get(params.task_id)
        return {"resultType": "complete", **self.runner.wire(record)}

    async def _update(self, ctx: ServerRequestContext[Any, Any], params: TaskIdParams) -> HandlerResult:
        # Chorus's tasks never wait for input: any inputResponses answer nothing outstanding (ignored).
        require_client_extension(ctx, EXTENSION)
        await self.runner.get(params.task_id)
        return {"resultType": "complete"}

    async def _cancel(self, ctx: ServerRequestContext[Any, Any], params: TaskIdParams) -> HandlerResult:
        require_client_extension(ctx, EXTENSION)
        await self.runner.cancel(params.task_id)
        return {"resultType": "complete"}
