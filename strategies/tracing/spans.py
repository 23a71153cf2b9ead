"""The orchestration's spans, opened by the runner: one for the run, one per step, one per decision.

The runner is the only caller: every strategy composes through `run_step`, so a span per step needs no
code in the strategies. Decisions (`StrategyResult.decisions`) become spans when the step that made
them returns, placed in time where they happened: a route between the step's start and its target's
start, a confidence or review verdict at the end of the step it judged, a vote at the end of the last
member, a fallback at the end of the failed attempt. Notes become events on the step's span.

Spans go through the global OpenTelemetry API: with no SDK installed they are no-ops and nothing
below runs beyond the no-op span itself (see `is_recording`).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field

import anyio
from openinference.semconv.trace import SpanAttributes
from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

from chorus_mcp.strategies.core.errors import ChorusError
from chorus_mcp.strategies.core.result import (
    ConfidenceDecision,
    Decision,
    FallbackDecision,
    NoteDecision,
    ReviewDecision,
    RouteDecision,
    StrategyResult,
    VoteDecision,
)
from chorus_mcp.strategies.tracing import attributes as attrs

TRACER_NAME = "chorus"
log = logging.getLogger("chorus.runner")

_session: ContextVar[str | None] = ContextVar("chorus_session", default=None)
_frame: ContextVar[Frame | None] = ContextVar("chorus_frame", default=None)


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME)


def current_session() -> str | None:
    """The session of the run in progress (the usage ledger files each call under it)."""
    return _session.get()


@dataclass
class Attempt:
    """A model call made while a step was current (recorded by the instrumented client)."""

    model: str
    ended_ns: int
    ok: bool


@dataclass
class _Run:
    """What the frames of one run share: when each stage started and ended, and decisions already shown."""

    starts: dict[str, int] = field(default_factory=dict)
    ends: dict[str, int] = field(default_factory=dict)
    shown: dict[int, Decision] = field(default_factory=dict)
    """Decisions already turned into spans, by id (kept alive here, so an id is never reused)."""


@dataclass
class Frame:
    """One step's span while it runs."""

    span: Span
    stage: str
    run: _Run
    started_ns: int
    attempts: list[Attempt] = field(default_factory=list)

    def record_attempt(self, model: str, ok: bool) -> None:
        self.attempts.append(Attempt(model, time.time_ns(), ok))

    def finish(self, result: StrategyResult) -> None:
        """Put the step's outcome on its span and show the decisions it made."""
        self.span.set_attributes(attrs.step_result(result))
        if result.ok:
            self.span.set_status(Status(StatusCode.OK))
        else:
            self.span.set_status(Status(StatusCode.ERROR, attrs.text(result.error or "no answer")))
        for decision in result.decisions:
            if id(decision) in self.run.shown:
                continue  # a child step already showed it
            self.run.shown[id(decision)] = decision
            self._show(decision)

    def _show(self, decision: Decision) -> None:
        now = time.time_ns()
        if isinstance(decision, NoteDecision):
            self.span.add_event(
                "note", {"chorus.stage": decision.stage, "chorus.note": attrs.text(decision.message)}
            )
            return
        start, end = self._when(decision, now)
        parent = trace.set_span_in_context(self.span)
        span = tracer().start_span(attrs.decision_name(decision), context=parent, start_time=start)
        span.set_attributes(attrs.decision(decision))
        span.end(end_time=end)

    def _when(self, decision: Decision, now: int) -> tuple[int, int]:
        """(start, end) of a decision's span: when it was made, as far as the frames tell."""
        run = self.run
        match decision:
            case RouteDecision():
                # From the route step's start (rules, classifier) to the start of the chosen target.
                target = f"{decision.stage}/{decision.route}"
                starts = [t for s, t in run.starts.items() if s == target or s.startswith(target + "/")]
                return self.started_ns, min(starts, default=now)
            case ConfidenceDecision() | ReviewDecision():
                at = run.ends.get(decision.stage, now)
                return at, at
            case VoteDecision():
                prefix = decision.stage + "/"
                members = [
                    end
                    for stage, end in run.ends.items()
                    if stage.startswith(prefix) and "/" not in stage[len(prefix) :]
                ]
                at = max(members, default=now)
                return at, at
            case FallbackDecision():
                failed = [a.ended_ns for a in self.attempts if a.model == decision.from_model and not a.ok]
                at = max(failed, default=now)
                return at, at
        return now, now


@contextlib.contextmanager
def step_span(
    kind: str,
    stage: str,
    *,
    model: str | None = None,
    strategy: str | None = None,
    input_text: str | None = None,
) -> Iterator[Frame | None]:
    """A CHAIN span for one step (`kind` is the spec's kind), current while the step runs.

    Yields the frame to `finish` with the step's result, or None when nothing records spans.
    """
    name = stage.rsplit("/", 1)[-1]
    started = time.time_ns()  # the span's own start, so decisions placed by it line up exactly
    with tracer().start_as_current_span(
        name, start_time=started, record_exception=False, set_status_on_exception=False, end_on_exit=False
    ) as span:
        if not span.is_recording():
            yield None
            span.end()
            return
        parent = _frame.get()
        run = parent.run if parent is not None else _Run()
        frame = Frame(span=span, stage=stage, run=run, started_ns=started)
        run.starts[stage] = started
        span.set_attributes({attrs.KIND: attrs.CHAIN, "chorus.step": kind, "chorus.stage": stage})
        if model is not None:
            span.set_attribute("chorus.model", model)
        if strategy is not None:
            span.set_attribute("chorus.strategy", strategy)
        if input_text is not None and attrs.capture_content():
            span.set_attributes(attrs.io_value(SpanAttributes.INPUT_VALUE, input_text))
        token = _frame.set(frame)
        try:
            yield frame
        except BaseException as exc:
            _mark_failure(span, exc)
            raise
        finally:
            _frame.reset(token)
            run.ends[stage] = ended = time.time_ns()
            span.end(end_time=ended)


@contextlib.contextmanager
def run_span(
    strategy: str, kind: str, stage: str, session_id: str | None, input_text: str
) -> Iterator[Frame | None]:
    """The root span of a whole run (AGENT): strategy, session, totals. The top step shares it."""
    session_token = _session.set(session_id)
    try:
        with tracer().start_as_current_span(
            f"chorus {strategy}", record_exception=False, set_status_on_exception=False
        ) as span:
            if not span.is_recording():
                yield None
                return
            frame = Frame(span=span, stage=stage, run=_Run(), started_ns=time.time_ns())
            frame.run.starts[stage] = frame.started_ns
            span.set_attributes(
                {
                    attrs.KIND: attrs.AGENT,
                    "chorus.strategy": strategy,
                    "chorus.step": kind,
                    "chorus.stage": stage,
                }
            )
            if session_id is not None:
                span.set_attribute(SpanAttributes.SESSION_ID, session_id)
            if attrs.capture_content():
                span.set_attributes(attrs.io_value(SpanAttributes.INPUT_VALUE, input_text))
            token = _frame.set(frame)
            try:
                yield frame
            except BaseException as exc:
                _mark_failure(span, exc)
                raise
            finally:
                _frame.reset(token)
    finally:
        _session.reset(session_token)


def current_frame() -> Frame | None:
    return _frame.get()


def _mark_failure(span: Span, exc: BaseException) -> None:
    """A step that ended by an exception: cancelled (early stop, deadline) is not an error; the rest are."""
    if isinstance(exc, anyio.get_cancelled_exc_class()):
        span.set_attribute("chorus.status", "cancelled")
        return
    message = exc.message if isinstance(exc, ChorusError) else f"{type(exc).__name__}: {exc}"
    span.set_attributes({"error.type": type(exc).__qualname__, "chorus.error": attrs.text(message)})
    span.add_event(
        "exception", {"exception.type": type(exc).__qualname__, "exception.message": attrs.text(message)}
    )
    span.set_status(Status(StatusCode.ERROR, attrs.text(message)))
