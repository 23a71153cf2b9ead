"""Progress notifications for one tool call: one as each model call ends, and a heartbeat in between.

Clients cut a call off when nothing arrives for a while (60 s is common, whatever their configuration
says); many reset that clock on every progress notification. A model answering in 40 s would leave the
call silent for 40 s, so while a call runs, a notification goes out whenever `every_s` passed without
one, saying how long the call has run, what it is waiting on (each model call under way, with its
stage) and how many calls are done:

    alpha ok (ensemble/member-1); waiting on beta (ensemble/member-2)
    12s: waiting on beta (ensemble/member-2); 1 of 3 calls done

Only when the client asked for progress (a `progressToken` in the request's `_meta`): without one the
SDK would drop every notification anyway, and no heartbeat task is started.

A call run as a task (server/mcp/tasks.py) sends no progress notifications (the tasks extension forbids
them): its messages become the task's status message instead (`reporting_to`).

Progress values only grow, as the protocol requires: `done` after each finished call, and in between a
fraction that approaches the next whole number (`done + n/(n+1)` for the n-th heartbeat).
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from typing import Any

import anyio
from mcp.server.mcpserver import Context

from chorus_mcp.strategies.core.result import CallRecord
from chorus_mcp.strategies.engine.context import CallsInFlight

StatusSink = Callable[[str], None]
_status_sink: ContextVar[StatusSink | None] = ContextVar("chorus_status_sink", default=None)


@contextmanager
def reporting_to(sink: StatusSink) -> Iterator[None]:
    """While a call runs as a task: its progress messages go to `sink`, none to the client."""
    token = _status_sink.set(sink)
    try:
        yield
    finally:
        _status_sink.reset(token)


def running_as_task() -> bool:
    """Whether this call runs as a task (`reporting_to` is on): no round trip to the client comes back."""
    return _status_sink.get() is not None


class CallProgress:
    """What one tool call tells its client while it runs (`finished` is the run's `ProgressSink`)."""

    def __init__(self, ctx: Context[Any, Any], expected_calls: int | None, *, every_s: float) -> None:
        self._ctx = ctx
        self._expected = expected_calls
        self._every_s = every_s
        self.in_flight = CallsInFlight()
        """Given to the run (`RunContext.in_flight`): the calls the heartbeat says it waits on."""
        self._done = 0
        self._beats = 0
        self._started = anyio.current_time()
        self._last_sent = self._started
        self._lock = anyio.Lock()  # values leave in the order they were computed, so they only grow
        self._sink = _status_sink.get()
        meta = ctx.request_context.meta or {}
        self.wanted = self._sink is None and meta.get("progress_token") is not None
        """The client sent a progress token (and the call is not a task): anything else would be dropped."""

    async def finished(self, record: CallRecord) -> None:
        async with self._lock:
            self._done += 1
            self._beats = 0
            message = f"{record.model} {record.status} ({record.stage})"
            waiting = self._waiting()
            message = f"{message}; {waiting}" if waiting else message
            if self._sink is not None:
                self._sink(message)
                return
            await self._send(float(self._done), message)

    @asynccontextmanager
    async def beating(self) -> AsyncIterator[None]:
        """For the duration of the run: a heartbeat whenever `every_s` passed without a notification."""
        if not self.wanted:
            yield
            return
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._beat)
            try:
                yield
            finally:
                tg.cancel_scope.cancel()

    async def _beat(self) -> None:
        while True:
            await anyio.sleep(max(0.0, self._last_sent + self._every_s - anyio.current_time()))
            async with self._lock:
                if anyio.current_time() - self._last_sent < self._every_s:
                    continue  # a call finished meanwhile: that was the notification
                self._beats += 1
                elapsed = anyio.current_time() - self._started
                waiting = self._waiting() or "between model calls"
                done = f"{self._done} of {self._expected}" if self._expected else str(self._done)
                value = self._done + self._beats / (self._beats + 1)
                await self._send(value, f"{elapsed:.0f}s: {waiting}; {done} calls done")

    def _waiting(self) -> str:
        calls = self.in_flight.now()
        return "waiting on " + ", ".join(f"{model} ({stage})" for model, stage in calls) if calls else ""

    async def _send(self, value: float, message: str) -> None:
        self._last_sent = anyio.current_time()
        total = float(max(self._expected, math.ceil(value))) if self._expected else None
        await self._ctx.report_progress(value, total, message)
