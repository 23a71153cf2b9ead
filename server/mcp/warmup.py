"""When the provider warm-up may start: after the client's handshake, not during it.

Importing litellm (3-20 s) in a background thread holds the GIL much of the time, so while it runs
every request is slower — and the first requests are the client's `initialize` and `tools/list`,
which is what a user waits for when their client starts the server. `Handshake` is a server
middleware that tells the warm-up thread when the client has listed the tools (or has made its first
tool call, if it skips listing); the thread starts loading then, or after `WARM_UP_AT_MOST_S` at the
latest. A tool call that needs litellm before that loads it itself, outside the call's time-out.
"""

from __future__ import annotations

import threading
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext

WARM_UP_AT_MOST_S = 10.0


class Handshake:
    """Server middleware: `done` is set once a client has listed the tools or called one."""

    def __init__(self) -> None:
        self.done = threading.Event()

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method == "tools/call":
            self.done.set()
        result = await call_next(ctx)
        if ctx.method == "tools/list":
            self.done.set()
        return result
