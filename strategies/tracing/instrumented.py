"""`InstrumentedClient`: any `ModelClient`, with an OpenInference LLM span and a usage record per call.

Installed around every client by wrapping the catalog's factory (`instrument`), so each call the core
makes — a member, a judge, a classifier, a retry, a fallback — is one LLM span, wherever it comes
from. The wrapper sees exactly the provider call: warm-up and waiting for a concurrency slot happen
outside `complete`, so the span's duration is the call's latency.
"""

from __future__ import annotations

import logging
import math

import anyio
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from chorus_mcp.strategies.core.completion import Completion, CompletionRequest
from chorus_mcp.strategies.core.errors import ModelError
from chorus_mcp.strategies.models.catalog import ClientFactory, ModelEntry
from chorus_mcp.strategies.models.client import ModelClient
from chorus_mcp.strategies.models.wrappers import ClientWrapper, wrap
from chorus_mcp.strategies.tracing import attributes as attrs
from chorus_mcp.strategies.tracing.prices import per_mtok
from chorus_mcp.strategies.tracing.spans import current_frame, current_session, tracer
from chorus_mcp.strategies.tracing.usage import UsageLedger

log = logging.getLogger("chorus.calls")


class InstrumentedClient(ClientWrapper):
    def __init__(
        self,
        inner: ModelClient,
        entry: ModelEntry,
        usage: UsageLedger | None = None,
        max_output_tokens: int | None = None,
    ) -> None:
        super().__init__(inner)
        self._entry = entry
        self._usage = usage
        self._max_output_tokens = max_output_tokens
        """The server's output-token cap, applied by a wrapper inside this one (`server.http.limits`)."""

    async def complete(self, request: CompletionRequest) -> Completion:
        answered = False
        try:
            with tracer().start_as_current_span(
                span_name(self.name),
                kind=SpanKind.CLIENT,
                record_exception=False,
                set_status_on_exception=False,
            ) as span:
                completion = await self._call(request, span)
                answered = True
                return completion
        finally:
            # Once the span has ended: a decision placed at the end of this attempt then follows it.
            frame = current_frame()
            if frame is not None:
                frame.record_attempt(self.name, answered)

    async def _call(self, request: CompletionRequest, span: Span) -> Completion:
        recording = span.is_recording()
        if recording:
            sent = attrs.output_capped(request, self._max_output_tokens)
            span.set_attributes(attrs.llm_request(self.name, self._entry.model, sent))
        deadline = anyio.current_effective_deadline()  # the call's time-out, or the run's deadline
        try:
            completion = await self.inner.complete(request)
        except ModelError as exc:
            self._record(exc.status, None)
            if recording:
                span.set_attributes(
                    {
                        "chorus.call.status": exc.status,
                        "error.type": type(exc).__name__,
                        "chorus.error": attrs.text(exc.message),
                    }
                )
                span.set_status(Status(StatusCode.ERROR, attrs.text(exc.message)))
            log.info(
                "model call failed",
                extra={"model": self.name, "status": exc.status, "error": exc.message},
            )
            raise
        except BaseException as exc:
            status = _interrupted(exc, deadline)
            self._record(status, None)
            if recording:
                span.set_attribute("chorus.call.status", status)
                if status == "cancelled":
                    # Not an error (an early-stopped ensemble, a deadline), and not an answer: said in the
                    # name, so the trace tree shows it, and in `chorus.call.status`, to filter on.
                    span.update_name(f"{span_name(self.name)} (cancelled)")
                    span.set_attribute("chorus.cancelled", True)
                else:
                    span.set_attribute("error.type", type(exc).__qualname__)
                    span.set_status(Status(StatusCode.ERROR, status))
            raise
        self._record("ok", completion)
        if recording:
            span.set_attributes(attrs.llm_response(completion, per_mtok(self._entry)))
            if completion.cached:
                span.update_name(f"{span_name(self.name)} (cached)")
            span.set_status(Status(StatusCode.OK))
        return completion

    def _record(self, status: str, completion: Completion | None) -> None:
        if self._usage is not None:
            self._usage.record(self.name, self._entry.model, status, completion, current_session())


def span_name(alias: str) -> str:
    """`llm <alias>`; a cancelled call's span adds ` (cancelled)`, a cache hit's ` (cached)`."""
    return f"llm {alias}"


def _interrupted(exc: BaseException, deadline: float) -> str:
    """How a call that ended without an answer or a `ModelError` is reported."""
    if not isinstance(exc, anyio.get_cancelled_exc_class()):
        return "error"  # a bug in the client: the core reports it as such
    # Cut by its time-out or the run's deadline, or cancelled outright (an ensemble's early stop).
    # (A deadline of -inf: the call began inside a scope already cancelled.)
    return "timeout" if math.isfinite(deadline) and anyio.current_time() >= deadline else "cancelled"


def instrumented(
    client: ModelClient,
    entry: ModelEntry,
    usage: UsageLedger | None = None,
    max_output_tokens: int | None = None,
) -> InstrumentedClient:
    """`client` wrapped, keeping the optional capabilities the core checks for (warm-up, cost estimate).

    `max_output_tokens`: the output-token cap `client` applies inside, so the span shows `max_tokens` as
    sent."""
    return wrap(InstrumentedClient, client, entry, usage, max_output_tokens)


def instrument(
    factory: ClientFactory, usage: UsageLedger | None = None, *, max_output_tokens: int | None = None
) -> ClientFactory:
    """A factory whose clients are `factory`'s, instrumented."""

    def build(alias: str, entry: ModelEntry) -> ModelClient:
        return instrumented(factory(alias, entry), entry, usage, max_output_tokens)

    return build
