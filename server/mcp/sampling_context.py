"""The seam between a tool call and the client's own model: MCP sampling, in both protocol eras.

The strategies call a `SamplingClient` like any model; it asks the `Sampler` this module puts into a
context variable for the duration of the tool call (`strategies.models.sampling`). The question
always goes through the SDK's `Resolve(Sample)` machinery (`resolve_arguments`), which speaks the
protocol the client negotiated:

- **Handshake era (≤ 2025-11-25)**: `sampling/createMessage` is sent to the client in the middle of
  the call, over the connection's back channel, and the answer comes back as the call goes on. Nothing
  else is needed.
- **2026-07-28 and later**: a server cannot ask the client anything mid-call. It answers the call with
  an `InputRequiredResult` carrying the questions; the client asks its model and calls the tool again
  with the answers. So the run goes in *rounds*: each round runs the strategy as far as it can; a
  sampling call not yet answered waits, and once nothing but such calls is left running (no other model
  call in flight for `SETTLE_S`), the round ends and the questions go out. Every other model's outcome
  (answer or error) is recorded and travels in `request_state` — sealed by the SDK, so the client can
  neither read nor forge it — and the next round replays it instead of calling that model again. A
  round therefore costs nothing twice, and asks the same questions it asked before, in the same words,
  which is what lets it find their answers.

In both eras a client that does not offer sampling gets `SamplingUnavailable` at once, without a
round trip: the call fails as data and the model's fallbacks answer.

Only when the configuration can reach a sampling model does a tool call pay for any of this.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

import anyio
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.resolve import Resolve, Sample, build_resolver_plans, resolve_arguments
from mcp.shared.exceptions import MCPError
from mcp.types import (
    CreateMessageResult,
    InputRequiredResult,
    ModelHint,
    ModelPreferences,
    SamplingMessage,
    TextContent,
)
from mcp_types import MISSING_REQUIRED_CLIENT_CAPABILITY, InputResponseRequestParams
from mcp_types.version import is_version_at_least
from pydantic import BaseModel, ValidationError

from chorus_mcp.strategies.core import errors
from chorus_mcp.strategies.core.completion import Completion, CompletionRequest
from chorus_mcp.strategies.core.errors import MalformedResponse, ModelError
from chorus_mcp.strategies.core.result import StrategyResult
from chorus_mcp.strategies.core.spec import Step, models_in
from chorus_mcp.strategies.engine.context import RunContext
from chorus_mcp.strategies.models.catalog import ModelCatalog, ModelEntry
from chorus_mcp.strategies.models.client import CostEstimator, ModelClient, WarmsUp
from chorus_mcp.strategies.models.sampling import (
    Sampled,
    SamplingQuestion,
    SamplingRefused,
    SamplingUnavailable,
    is_sampling_model,
    sampler_for_this_call,
)

log = logging.getLogger("chorus.sampling")

ROUNDS_FROM_VERSION = "2026-07-28"
"""First protocol revision where a server asks the client through `InputRequiredResult` rounds."""
SETTLE_S = 0.05
"""How long a round must see nothing but waiting sampling calls before it ends."""
_POLL_S = 0.01

Work = Callable[[RunContext], Awaitable[StrategyResult]]


async def run_with_client_model(
    ctx: Context[Any, Any], run: RunContext, step: Step, work: Work
) -> StrategyResult | InputRequiredResult:
    """Run `work(run)` so that sampling models in it are answered by the calling client's own model.

    Returns the strategy's result, or — on a 2026-07-28 connection whose run needs the client's model —
    an `InputRequiredResult` for the tool to return; the client answers and calls the tool again.
    """
    if not _may_sample(run.catalog, step):
        return await work(run)
    if not uses_rounds(ctx.protocol_version):
        with sampler_for_this_call(_BackChannelSampler(ctx)):
            return await work(run)
    rounds = _Round(ctx, _RoundState.decode(ctx.request_state))
    unanswered = await rounds.collect_answers()
    if unanswered is not None:
        return unanswered
    return await rounds.run(work, replace(run, catalog=run.catalog.wrapped(rounds.recording)))


def uses_rounds(protocol_version: str | None) -> bool:
    return protocol_version is not None and is_version_at_least(protocol_version, ROUNDS_FROM_VERSION)


def _may_sample(catalog: ModelCatalog, step: Step) -> bool:
    """Whether any model this call may reach is answered by sampling (configured, or named in the call)."""
    configured = any(is_sampling_model(catalog.entry(alias).model) for alias in catalog.aliases)
    return configured or any(is_sampling_model(name) for name in models_in(step))


# ── asking the client, through Resolve(Sample) ─────────────────────────────────────────────────────


def _sample_marker(question: SamplingQuestion) -> Sample:
    request = question.request
    system = "\n\n".join(m.content for m in request.messages if m.role == "system") or None
    messages = [
        SamplingMessage(role=m.role, content=TextContent(type="text", text=m.content))
        for m in request.messages
        if m.role != "system"
    ]
    hints = ModelPreferences(hints=[ModelHint(name=question.hint)]) if question.hint else None
    return Sample(
        messages,
        max_tokens=question.max_tokens,
        system_prompt=system,
        temperature=request.temperature,
        model_preferences=hints,
    )


def _asker(marker: Sample) -> Callable[[], Sample]:
    # One resolver per question; closures from one factory get stable wire keys `..._asker.<locals>.ask`,
    # `#1`, `#2` in the order given, which is what lets a later round find the answers to its questions.
    def ask() -> Sample:
        return marker

    return ask


async def _ask(
    ctx: Context[Any, Any], questions: list[SamplingQuestion]
) -> list[CreateMessageResult] | InputRequiredResult:
    """Ask the client's model every question, the way the negotiated protocol allows. Raises `ModelError`."""
    resolved = {f"q{i}": (Resolve(_asker(_sample_marker(q))), False) for i, q in enumerate(questions)}
    plans = build_resolver_plans(resolved, set())
    model = questions[0].model
    try:
        outcome = await resolve_arguments(resolved, plans, {}, ctx)
    except MCPError as exc:
        if exc.error.code == MISSING_REQUIRED_CLIENT_CAPABILITY:
            raise SamplingUnavailable(model, "the connected client does not offer sampling") from exc
        raise SamplingRefused(model, f"the client declined: {exc.error.message}") from exc
    except ToolError as exc:
        raise MalformedResponse(model, f"the client's answer was not usable: {exc}") from exc
    except Exception as exc:
        # E.g. no back channel on a stateless connection: the client cannot be asked here.
        log.debug("sampling failed", exc_info=True)
        raise SamplingUnavailable(
            model, f"the client cannot be asked on this connection ({type(exc).__name__})"
        ) from exc
    if isinstance(outcome, InputRequiredResult):
        return outcome
    return [outcome[f"q{i}"] for i in range(len(questions))]


def _require_sampling(ctx: Context[Any, Any], model: str) -> None:
    capabilities = ctx.client_capabilities
    if capabilities is None:
        # Stateless HTTP in the handshake era: no session, so no capabilities and no way back to the client.
        raise SamplingUnavailable(model, "the client cannot be asked on this connection (no session)")
    if capabilities.sampling is None:
        raise SamplingUnavailable(model, "the connected client does not offer sampling (its own model)")


def _sampled(model: str, result: CreateMessageResult) -> Sampled:
    content = result.content
    if not isinstance(content, TextContent):
        raise MalformedResponse(model, f"the client's model answered with {content.type} content, not text")
    return Sampled(text=content.text, model=result.model, stop_reason=result.stop_reason)


class _BackChannelSampler:
    """Handshake era: each question is a `sampling/createMessage` request sent mid-call."""

    def __init__(self, ctx: Context[Any, Any]) -> None:
        self._ctx = ctx

    async def sample(self, question: SamplingQuestion) -> Sampled:
        _require_sampling(self._ctx, question.model)
        answers = await _ask(self._ctx, [question])
        if isinstance(answers, InputRequiredResult):  # pragma: no cover - not in this era
            raise SamplingUnavailable(
                question.model, "the client asked for another round in a handshake-era call"
            )
        return _sampled(question.model, answers[0])


# ── rounds (2026-07-28) ─────────────────────────────────────────────────────────────────────────────


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _request_key(request: CompletionRequest) -> str:
    # The per-call time-out depends on the time left, so it is not part of what was asked.
    return _digest(request.model_dump(mode="json", exclude={"timeout_s"}))


class _Question(BaseModel):
    key: str
    model: str
    request: CompletionRequest
    max_tokens: int
    hint: str | None = None

    def to_question(self) -> SamplingQuestion:
        return SamplingQuestion(
            model=self.model, request=self.request, max_tokens=self.max_tokens, hint=self.hint
        )


class _Recorded(BaseModel):
    """One model call's outcome in an earlier round: its completion, or the error it ended with."""

    completion: Completion | None = None
    error_type: str | None = None
    error_message: str | None = None
    retry_after: float | None = None

    def replay(self, model: str) -> Completion:
        if self.completion is not None:
            return self.completion
        kind = getattr(errors, self.error_type or "", None)
        cls = kind if isinstance(kind, type) and issubclass(kind, ModelError) else ModelError
        error = cls(model, self.error_message or "failed")
        if isinstance(error, errors.RateLimited):
            error.retry_after = self.retry_after
        raise error

    @classmethod
    def of_error(cls, model: str, error: ModelError) -> _Recorded:
        message = str(error).removeprefix(f"{model}: ")
        return cls(
            error_type=type(error).__name__,
            error_message=message,
            retry_after=getattr(error, "retry_after", None),
        )


class _RoundState(BaseModel):
    """What travels from one round to the next in `request_state` (sealed by the SDK)."""

    v: int = 1
    questions: list[_Question] = []
    """Every question asked so far, in the order first asked (the order fixes their wire keys)."""
    sdk: str | None = None
    """The SDK's own state for those questions (their recorded answers)."""
    memo: dict[str, _Recorded] = {}
    """Outcomes of the other model calls, keyed by model, request and occurrence."""
    started: float | None = None
    """Wall-clock time (epoch seconds) the first round began: the run's latency spans every round."""

    @classmethod
    def decode(cls, text: str | None) -> _RoundState:
        if not text:
            return cls()
        try:
            state = cls.model_validate_json(text)
        except ValidationError:
            return cls()
        return state if state.v == 1 else cls()


@dataclass
class _Round:
    ctx: Context[Any, Any]
    state: _RoundState
    answers: dict[str, Sampled | ModelError] = field(default_factory=dict)
    new_questions: dict[str, _Question] = field(default_factory=dict)
    recorded: dict[str, _Recorded] = field(default_factory=dict)
    occurrences: Counter[str] = field(default_factory=Counter)
    in_flight: int = 0
    waiting: int = 0
    generation: int = 0
    someone_waits: anyio.Event = field(default_factory=anyio.Event)
    began: float = field(default_factory=time.time)

    def _resolver_context(self) -> Context[Any, Any]:
        """The tool's context, with the SDK's share of our `request_state` as its own."""
        params = InputResponseRequestParams(
            input_responses=self.ctx.input_responses, request_state=self.state.sdk
        )
        return Context(
            request_context=self.ctx.request_context, mcp_server=self.ctx.mcp_server, input_params=params
        )

    async def collect_answers(self) -> InputRequiredResult | None:
        """Take the answers to earlier rounds' questions; an `InputRequiredResult` if some are missing."""
        if not self.state.questions:
            return None
        try:
            outcome = await _ask(self._resolver_context(), [q.to_question() for q in self.state.questions])
        except ModelError as exc:
            for question in self.state.questions:
                self.answers[question.key] = exc
            return None
        if isinstance(outcome, InputRequiredResult):
            return self._carry(outcome, self.state.questions)
        for question, result in zip(self.state.questions, outcome, strict=True):
            try:
                self.answers[question.key] = _sampled(question.model, result)
            except ModelError as exc:
                self.answers[question.key] = exc
        return None

    async def run(self, work: Work, run: RunContext) -> StrategyResult | InputRequiredResult:
        result: StrategyResult | None = None
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._end_when_only_sampling_waits, tg.cancel_scope)
            with sampler_for_this_call(self):
                result = await work(run)
            tg.cancel_scope.cancel()
        if result is not None:
            if self.state.started is not None:
                # Replayed calls take no time: the run took as long as all of its rounds (the client's too).
                result.totals.latency_s = max(result.totals.latency_s, time.time() - self.state.started)
            return result
        questions = [*self.state.questions, *self.new_questions.values()]
        outcome = await _ask(self._resolver_context(), [q.to_question() for q in questions])
        if not isinstance(outcome, InputRequiredResult):  # pragma: no cover - new questions are unanswered
            raise RuntimeError("the client answered questions it was not asked")
        return self._carry(outcome, questions)

    def _carry(self, asked: InputRequiredResult, questions: list[_Question]) -> InputRequiredResult:
        state = _RoundState(
            questions=questions,
            sdk=asked.request_state,
            memo={**self.state.memo, **self.recorded},
            started=self.state.started or self.began,
        )
        return InputRequiredResult(input_requests=asked.input_requests, request_state=state.model_dump_json())

    async def _end_when_only_sampling_waits(self, scope: anyio.CancelScope) -> None:
        await self.someone_waits.wait()
        quiet_for = 0.0
        seen = -1
        while True:
            await anyio.sleep(_POLL_S)
            if self.waiting and not self.in_flight and self.generation == seen:
                quiet_for += _POLL_S
                if quiet_for >= SETTLE_S:
                    scope.cancel()
                    return
            else:
                quiet_for = 0.0
                seen = self.generation

    # The Sampler protocol: answered from an earlier round, or wait for the round to end.
    async def sample(self, question: SamplingQuestion) -> Sampled:
        _require_sampling(self.ctx, question.model)
        request_key = _digest([_request_key(question.request), question.max_tokens, question.hint])
        key = f"{request_key}#{self.occurrences[request_key]}"
        self.occurrences[request_key] += 1
        answer = self.answers.get(key)
        if isinstance(answer, Sampled):
            return answer
        if answer is not None:
            raise answer
        self.new_questions.setdefault(
            key,
            _Question(
                key=key,
                model=question.model,
                request=question.request,
                max_tokens=question.max_tokens,
                hint=question.hint,
            ),
        )
        self.waiting += 1
        self.generation += 1
        self.someone_waits.set()
        try:
            await anyio.sleep_forever()
        finally:
            self.waiting -= 1
            self.generation += 1
        raise AssertionError("unreachable")  # pragma: no cover

    def recording(self, _name: str, entry: ModelEntry, client: ModelClient) -> ModelClient:
        """`client`, replaying outcomes recorded in earlier rounds and recording new ones."""
        if is_sampling_model(entry.model):
            return client
        return _RecordingClient(client, self)


class _RecordingClient:
    """A model client seen through a round: what an earlier round got is replayed, never asked again."""

    def __init__(self, inner: ModelClient, round_: _Round) -> None:
        self.name = inner.name
        self._inner = inner
        self._round = round_

    async def ready(self) -> None:
        if isinstance(self._inner, WarmsUp):
            async with self._busy():
                await self._inner.ready()

    def estimate_cost_usd(self, request: CompletionRequest) -> Decimal | None:
        return self._inner.estimate_cost_usd(request) if isinstance(self._inner, CostEstimator) else None

    async def complete(self, request: CompletionRequest) -> Completion:
        round_ = self._round
        request_key = f"{self.name}:{_request_key(request)}"
        key = f"{request_key}#{round_.occurrences[request_key]}"
        round_.occurrences[request_key] += 1
        earlier = round_.state.memo.get(key)
        if earlier is not None:
            return earlier.replay(self.name)
        async with self._busy():
            try:
                completion = await self._inner.complete(request)
            except ModelError as exc:
                round_.recorded[key] = _Recorded.of_error(self.name, exc)
                raise
        round_.recorded[key] = _Recorded(completion=completion)
        return completion

    def _busy(self) -> _InFlight:
        return _InFlight(self._round)


class _InFlight:
    def __init__(self, round_: _Round) -> None:
        self._round = round_

    async def __aenter__(self) -> None:
        self._round.in_flight += 1
        self._round.generation += 1

    async def __aexit__(self, *_exc: object) -> None:
        self._round.in_flight -= 1
        self._round.generation += 1
