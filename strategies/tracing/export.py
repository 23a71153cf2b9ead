"""Sending spans to a collector: the OpenTelemetry SDK with an OTLP/HTTP exporter, set up once at start-up.

Off (the default) installs nothing: no provider, no exporter, no background thread; the spans the core
opens are the API's no-ops. On, the SDK's provider becomes the global one, so the MCP SDK's own
server spans (`tools/call …`) record too and are the parents of Chorus's: one trace per tool call.
The MCP SDK's spans for other messages (initialize, tools/list, ping…) are dropped: they are not
orchestrations and would bury the traces worth opening.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from opentelemetry import context as otel_context
from opentelemetry import trace

from chorus_mcp.strategies.tracing.attributes import set_capture_content
from chorus_mcp.strategies.tracing.settings import TracingSettings, export_target

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

log = logging.getLogger("chorus.tracing")

MCP_SDK_SCOPE = "mcp-python-sdk"
READY_WAIT_S = 600.0
"""How long the first export waits for a collector that is still starting (a local Phoenix: 10-20 s on
an idle machine, minutes on a loaded one). Spans wait meanwhile, up to the batch queue's size."""

_lock = threading.Lock()
_installed: TracerProvider | None = None


def configure(
    settings: TracingSettings,
    *,
    service_version: str = "0.0.0",
    ready: Callable[[float], bool] | None = None,
    env: Mapping[str, str] | None = None,
) -> str | None:
    """Set up export as `settings` say; returns the traces URL, or None when export is off.

    Idempotent: a second call (another server built in the same process) keeps the first set-up.
    `ready(timeout_s)` — given when the collector is still starting — is waited for before the first
    export, in the exporter's own thread.
    """
    set_capture_content(settings.capture_content)
    url = export_target(settings, env)
    if url is None:
        return None
    global _installed
    with _lock:
        if _installed is not None:
            return url
        # Imported here: with export off, none of this is loaded.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        exporter: SpanExporter = OTLPSpanExporter(endpoint=url)
        if ready is not None:
            exporter = _when_ready(exporter, ready)
        processor = _orchestrations_only(BatchSpanProcessor(exporter))
        current = trace.get_tracer_provider()
        if isinstance(current, TracerProvider):
            provider = current  # set up by the host (e.g. opentelemetry-instrument): add to it
        else:
            resource = Resource.create(
                {
                    "service.name": settings.service_name,
                    "service.version": service_version,
                    "openinference.project.name": settings.project,
                }
            )
            provider = TracerProvider(resource=resource)
            trace.set_tracer_provider(provider)
        provider.add_span_processor(processor)
        _installed = provider
    log.info("exporting traces", extra={"endpoint": url, "project": settings.project})
    return url


def installed() -> bool:
    """Whether `configure` installed an exporter in this process."""
    return _installed is not None


def flush(timeout_s: float = 5.0) -> None:
    """Export what is pending (at shutdown; the SDK also flushes at interpreter exit)."""
    if _installed is not None:
        _installed.force_flush(int(timeout_s * 1000))


def _orchestrations_only(inner: SpanProcessor) -> SpanProcessor:
    from opentelemetry.sdk.trace import SpanProcessor
    from opentelemetry.trace import SpanKind

    class OrchestrationsOnly(SpanProcessor):
        """Passes every span on, except the MCP SDK's server spans for messages other than tools/call."""

        def on_start(self, span: object, parent_context: otel_context.Context | None = None) -> None:
            inner.on_start(span, parent_context)  # type: ignore[arg-type]

        def on_end(self, span: ReadableSpan) -> None:
            scope = span.instrumentation_scope
            if (
                scope is not None
                and scope.name == MCP_SDK_SCOPE
                and span.kind == SpanKind.SERVER
                and (span.attributes or {}).get("mcp.method.name") != "tools/call"
            ):
                return
            inner.on_end(span)

        def shutdown(self) -> None:
            inner.shutdown()

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return inner.force_flush(timeout_millis)

    return OrchestrationsOnly()


def _when_ready(inner: SpanExporter, ready: Callable[[float], bool]) -> SpanExporter:
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    class WhenReady(SpanExporter):
        """Holds exports until the collector is up (runs in the batch processor's thread)."""

        def __init__(self) -> None:
            self._up = False
            self._waited = False

        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            if not self._up:
                # A long wait the first time; later, one look (a collector that came up late is used).
                self._up = ready(1.0 if self._waited else READY_WAIT_S)
                if not self._up and not self._waited:
                    log.warning("the trace collector is not up; spans are dropped until it is")
                self._waited = True
            return inner.export(spans) if self._up else SpanExportResult.FAILURE

        def shutdown(self) -> None:
            inner.shutdown()

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return inner.force_flush(timeout_millis)

    return WhenReady()
