"""Capturing spans in memory, and reading them as a tree.

The OpenTelemetry tracer provider is process-global and can be set only once, so one SDK provider is
installed for the whole test session, the first time a test asks for spans; it keeps spans only while
a `captured_spans()` block is open. Tests that need a process with no provider at all (tracing off)
run in a subprocess.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


class _Capture(SpanProcessor):
    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.active = False

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        if self.active:
            self.exporter.export([span])


_capture: _Capture | None = None


def _processor() -> _Capture:
    global _capture
    if _capture is None:
        provider = trace.get_tracer_provider()
        if not isinstance(provider, TracerProvider):
            provider = TracerProvider()
            trace.set_tracer_provider(provider)
        _capture = _Capture()
        provider.add_span_processor(_capture)
    return _capture


@contextlib.contextmanager
def captured_spans() -> Iterator[InMemorySpanExporter]:
    """Spans that end inside the block (read them with `get_finished_spans()`)."""
    capture = _processor()
    capture.exporter.clear()
    capture.active = True
    try:
        yield capture.exporter
    finally:
        capture.active = False


def kind(span: ReadableSpan) -> str:
    return str((span.attributes or {}).get("openinference.span.kind", "-"))


def roots(spans: Sequence[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def children(spans: Sequence[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    """`parent`'s children in the order they started (ties by name, for concurrent members)."""
    found = [s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id]
    return sorted(found, key=lambda s: (s.start_time or 0, s.name))


def tree(spans: Sequence[ReadableSpan], root: ReadableSpan, *, by_name: bool = False) -> list[str]:
    """`root` and its descendants as indented `name [KIND]` lines.

    Children are listed in start order; `by_name` sorts them by name instead, where concurrent
    siblings (ensemble members) may start in either order.
    """
    lines: list[str] = []

    def walk(span: ReadableSpan, depth: int) -> None:
        lines.append(f"{'  ' * depth}{span.name} [{kind(span)}]")
        below = children(spans, span)
        if by_name:
            below = sorted(below, key=lambda s: s.name)
        for child in below:
            walk(child, depth + 1)

    walk(root, 0)
    return lines


def one(spans: Sequence[ReadableSpan], name: str, **attributes: Any) -> ReadableSpan:
    """The one span named `name` whose attributes include `attributes` (dots as `__`)."""
    wanted = {k.replace("__", "."): v for k, v in attributes.items()}
    found = [
        s
        for s in spans
        if s.name == name and all((s.attributes or {}).get(k) == v for k, v in wanted.items())
    ]
    assert len(found) == 1, f"{len(found)} spans named {name!r} with {wanted}: {[s.name for s in spans]}"
    return found[0]


def attributes(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


@contextlib.contextmanager
def otlp_collector() -> Iterator[tuple[str, list[bytes]]]:
    """An OTLP/HTTP receiver on loopback: the bodies POSTed to /v1/traces."""
    bodies: list[bytes] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.path == "/v1/traces":
                bodies.append(body)
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", bodies
    finally:
        server.shutdown()
        server.server_close()
