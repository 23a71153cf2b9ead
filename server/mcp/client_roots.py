"""Asking the client for its MCP roots, in both protocol eras, for the `files` of one tool call.

The question goes through the SDK's `Resolve(ListRoots)` machinery, as sampling does
(`sampling_context`), so it speaks whichever protocol the client negotiated:

- **Handshake era (≤ 2025-11-25)**: `roots/list` is sent to the client mid-call over the back channel.
- **2026-07-28**: the server cannot ask mid-call. The call answers with an `InputRequiredResult` asking
  for the roots; the client lists them and calls again with the answer. The roots the client gave then
  travel in `request_state` (sealed by the SDK: the client can neither read nor forge it) beside the
  sampling rounds' own state, so a run that also needs the client's model asks for the roots once.

The client is asked only when it declares the roots capability, the call names a file by path (inline
content needs no root), the call came over stdio or in-process (over HTTP the client's folders are not
the server's), and `inputs.client_roots` is on. A client that declares roots and cannot list them adds
none: the operator's roots alone apply.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import anyio
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.resolve import ListRoots, Resolve, build_resolver_plans, resolve_arguments
from mcp.types import InputRequiredResult, ListRootsResult
from mcp_types import InputResponseRequestParams
from pydantic import BaseModel, ConfigDict, ValidationError

from chorus_mcp.server.mcp.progress import running_as_task
from chorus_mcp.server.mcp.sampling_context import uses_rounds

log = logging.getLogger("chorus.inputs")

ROOTS_TIMEOUT_S = 5.0
"""How long a handshake-era client has to list its roots before the call goes on without them."""


def _ask_roots() -> ListRoots:
    # A module-level resolver: its wire key (`module:qualname`) is the same in every round and replica.
    return ListRoots()


_RESOLVED = {"roots": (Resolve(_ask_roots), False)}
_PLANS = build_resolver_plans(_RESOLVED, set())


class Carried(BaseModel):
    """What a 2026-07-28 call that asked for the client's roots carries from round to round."""

    model_config = ConfigDict(extra="forbid")

    chorus: Literal["roots-v1"]
    """Required, so the sampling rounds' own state (which has none) never reads as this."""
    roots: list[str] | None = None
    """The client's root URIs, once it has answered."""
    asked: str | None = None
    """The SDK's state for the roots question while it is unanswered."""
    run: str | None = None
    """The sampling rounds' own `request_state` (`sampling_context`), once the run asked its model."""


@dataclass
class RootsChannel:
    """One call's share of the round-trip state: the roots part, and the rest for the sampling rounds."""

    ctx: Context[Any, Any]
    carried: Carried | None
    """None when this call carries no roots state (the first round, or a call that never asked)."""

    @classmethod
    def of(cls, ctx: Context[Any, Any]) -> RootsChannel:
        state = ctx.request_state if uses_rounds(ctx.protocol_version) else None
        if not state:
            return cls(ctx, None)
        try:
            return cls(ctx, Carried.model_validate_json(state))
        except ValidationError:
            return cls(ctx, None)  # the sampling rounds' own state: theirs to read

    async def client_roots(self) -> list[str] | InputRequiredResult:
        """The client's root folders (paths), or, in the 2026-07-28 era, the question to send it first."""
        if self.carried is not None and self.carried.roots is not None:
            return _folders(self.carried.roots)
        ctx = self.ctx
        capabilities = ctx.client_capabilities
        if capabilities is None or capabilities.roots is None:
            return []
        if not uses_rounds(ctx.protocol_version):
            return await self._over_back_channel()
        if running_as_task():
            return []  # a task cannot hand the client a question and be called again: operator roots only
        asked = self.carried.asked if self.carried is not None else None
        scoped = Context(
            request_context=ctx.request_context,
            mcp_server=ctx.mcp_server,
            input_params=InputResponseRequestParams(input_responses=ctx.input_responses, request_state=asked),
        )
        try:
            outcome = await resolve_arguments(_RESOLVED, _PLANS, {}, scoped)
        except Exception as exc:  # an answer of the wrong shape: no roots from this client
            log.info("the client's roots could not be read: %s", type(exc).__name__)
            self.carried = Carried(chorus="roots-v1", roots=[], run=self._run_state())
            return []
        if isinstance(outcome, InputRequiredResult):
            carried = Carried(chorus="roots-v1", asked=outcome.request_state, run=self._run_state())
            return InputRequiredResult(
                input_requests=outcome.input_requests, request_state=carried.model_dump_json()
            )
        uris = _uris(outcome["roots"])
        self.carried = Carried(chorus="roots-v1", roots=uris, run=self._run_state())
        return _folders(uris)

    async def _over_back_channel(self) -> list[str]:
        ctx = self.ctx
        if not ctx.session.can_send_request:
            return []
        try:
            with anyio.fail_after(ROOTS_TIMEOUT_S), warnings.catch_warnings():
                # Roots are deprecated from 2026-07-28 on; in this era they are the way to ask.
                warnings.simplefilter("ignore")
                outcome = await resolve_arguments(_RESOLVED, _PLANS, {}, ctx)
        except Exception as exc:  # declared, and cannot list them: no roots from this client
            log.info("the client's roots could not be listed: %s", type(exc).__name__)
            return []
        if isinstance(outcome, InputRequiredResult):  # pragma: no cover - not in this era
            return []
        return _folders(_uris(outcome["roots"]))

    def _run_state(self) -> str | None:
        if self.carried is not None:
            return self.carried.run
        return None

    def for_sampling(self) -> Context[Any, Any]:
        """The context the sampling rounds see: their own `request_state`, without the roots' share."""
        if self.carried is None:
            return self.ctx
        ctx = self.ctx
        return Context(
            request_context=ctx.request_context,
            mcp_server=ctx.mcp_server,
            input_params=InputResponseRequestParams(
                input_responses=ctx.input_responses, request_state=self.carried.run
            ),
        )

    def carry(self, outcome: InputRequiredResult) -> InputRequiredResult:
        """The sampling rounds' next question, with the client's roots carried along to the next round."""
        if self.carried is None:
            return outcome
        carried = self.carried.model_copy(update={"run": outcome.request_state, "asked": None})
        state = carried.model_dump_json()
        return InputRequiredResult(input_requests=outcome.input_requests, request_state=state)


def names_a_path(files: Sequence[object]) -> bool:
    """Whether any item of `files` is read from a path (a string, or a resource link), so needs a root."""
    return any(
        isinstance(item, str) or (isinstance(item, dict) and item.get("type") == "resource_link")
        for item in files
    )


def _uris(result: object) -> list[str]:
    if not isinstance(result, ListRootsResult):
        return []
    return [str(root.uri) for root in result.roots]


def _folders(uris: Sequence[str]) -> list[str]:
    """The local folders of the `file://` roots (any other scheme names nothing on this machine)."""
    parts = [urlsplit(uri) for uri in uris]
    return [unquote(p.path) for p in parts if p.scheme == "file" and p.netloc in ("", "localhost")]
