"""Observability: one OpenTelemetry trace per tool call, with OpenInference attributes Phoenix renders.

    tools/call ensemble_vote          the MCP SDK's server span (when export is on)
    └── chorus ensemble               AGENT: the run — strategy, session, totals   (spans.run_span)
        ├── member-1                  CHAIN: one per step, named by its stage      (spans.step_span)
        │   └── llm cheap             LLM: one per model call                      (instrumented)
        ├── member-2 …
        └── vote                      CHAIN: one per decision (vote, confidence, route, review, fallback)

Modules: `settings` (the `tracing:` config section), `attributes` (what goes on a span), `spans` (the
runner's spans), `instrumented` (the client wrapper), `usage` (cost and tokens by model and session),
`prices` (each model's price, named as its spans name it, for a collector that prices spans itself),
`export` (the SDK and OTLP exporter, only loaded when export is on).
"""

from __future__ import annotations

from chorus_mcp.strategies.tracing.instrumented import InstrumentedClient, instrument, instrumented
from chorus_mcp.strategies.tracing.settings import TracingSettings
from chorus_mcp.strategies.tracing.spans import current_session, run_span, step_span
from chorus_mcp.strategies.tracing.usage import ModelUsage, Usage, UsageLedger, UsageSummary

__all__ = [
    "InstrumentedClient",
    "ModelUsage",
    "TracingSettings",
    "Usage",
    "UsageLedger",
    "UsageSummary",
    "current_session",
    "instrument",
    "instrumented",
    "run_span",
    "step_span",
]
