"""A client side for the MCP tasks extension (2026-07-28), built on the SDK's client extension hooks: the
SDK client does not speak tasks itself. With `TasksClient` in `Client(extensions=[...])`, the client
declares the extension on every request, and a task handle returned for a `tools/call` is polled with
`tasks/get` until the task ends; `call_tool` then returns the task's result as usual."""

from __future__ import annotations

from typing import Any, Literal

import anyio
from mcp.client.extension import ClaimContext, ClientExtension, ResultClaim
from mcp.client.session import ClientSession
from mcp.types import CallToolResult, Request, Result
from pydantic import ConfigDict

from chorus_mcp.server.mcp.tasks import EXTENSION, TaskIdParams

TERMINAL = ("completed", "failed", "cancelled")


class TaskHandle(Result):
    model_config = ConfigDict(extra="allow")
    result_type: Literal["task"] = "task"
    task_id: str
    status: str
    poll_interval_ms: int | None = None


class TaskState(Result):
    model_config = ConfigDict(extra="allow")
    result_type: str = "complete"
    task_id: str
    status: str
    status_message: str | None = None
    created_at: str
    last_updated_at: str
    ttl_ms: int | None = None
    poll_interval_ms: int | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


class GetTask(Request[TaskIdParams, Literal["tasks/get"]]):
    method: Literal["tasks/get"] = "tasks/get"
    name_param = "taskId"


class CancelTask(Request[TaskIdParams, Literal["tasks/cancel"]]):
    method: Literal["tasks/cancel"] = "tasks/cancel"
    name_param = "taskId"


async def get_task(session: ClientSession, task_id: str) -> TaskState:
    return await session.send_request(GetTask(params=TaskIdParams(task_id=task_id)), TaskState)


async def cancel_task(session: ClientSession, task_id: str) -> None:
    await session.send_request(CancelTask(params=TaskIdParams(task_id=task_id)), Result)


async def poll(session: ClientSession, task_id: str) -> TaskState:
    """`tasks/get` until the task ends (at the interval the server asks for)."""
    while True:
        state = await get_task(session, task_id)
        if state.status in TERMINAL:
            return state
        await anyio.sleep((state.poll_interval_ms or 1000) / 1000)


class TasksClient(ClientExtension):
    identifier = EXTENSION

    def __init__(self) -> None:
        self.handles: list[TaskHandle] = []
        self.states: list[TaskState] = []

    def claims(self) -> list[ResultClaim[Any]]:
        return [ResultClaim(result_type="task", model=TaskHandle, resolve=self._resolve)]

    async def _resolve(self, handle: TaskHandle, ctx: ClaimContext) -> CallToolResult:
        self.handles.append(handle)
        state = await poll(ctx.session, handle.task_id)
        self.states.append(state)
        if state.status != "completed" or state.result is None:
            raise RuntimeError(f"task {handle.task_id} ended {state.status}: {state.status_message}")
        return CallToolResult.model_validate(state.result)
