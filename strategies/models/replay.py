"""Replaying recorded model outcomes: a `ModelClient` that answers from a recording, with no network.

A `Recording` holds, per original prompt and model, what that model answered, what the call cost and
(when known) how long it took. `ReplayClient` serves those answers through the ordinary client
protocol, so any strategy (ensembles, cascades, routes) runs on recorded data through the same core
as a live tool call. The readers for recording files (RouterBench CSV, Chorus JSONL) are in
`strategies.evaluation.datasets`.

Keying. A recording is keyed on the *original user prompt*: the content of the first user message of
the request. Strategies may reword what they send (a cascade's `self_report` estimator appends a
confidence instruction, a step may set a system prompt), so when the first user message is not
recorded verbatim, the longest recorded prompt it *starts with* is used (an instruction appended to
the question still replays the question's answer). System messages and later turns are ignored: a
step's own system prompt does not change the replayed answer. Anything else — a model, or a prompt,
that is not in the recording — raises `NotRecorded`: a replay never answers with some other model's
or some other question's outcome. Strategies whose calls carry information the recording cannot
have (a synthesis judge reading the members' answers, pipeline stages, an LLM route classifier) are
refused before they run by `strategies.evaluation.engine.replay_problems`.

`NotRecorded` is a `UserInputError`, not a `ModelError`, on purpose: a `ModelError` is what a live
model failure looks like, so a fallback chain would quietly move on to the next model and the
evaluation would measure something other than the strategy as written. A `UserInputError` stops the
step's fallback chain (the call is recorded as `skipped` with this message), and the evaluation
runner refuses results that contain one.

What a recording cannot replay: it holds one answer per model and prompt, without self-reported
confidence or log-probabilities. Sampling a model several times returns the same answer each time
(and is charged each time); the `self_report` and `logprob` confidence estimators find nothing to read.
Agreement *between different models* (an ensemble tier in an `agreement` cascade) is what recorded
data can measure faithfully. Confidence a model produces itself — log-probabilities, repeated samples —
comes from *live* models, which an evaluation asks (or replays from their own recording of every
request, samples and logprobs included) beside the replayed ones: `strategies.evaluation.live`,
passed in here as `live` catalog entries. A request's `seed` and `response_schema` are ignored: the
recorded answer was given once, however it was sampled and in whatever shape.

Latency. A recorded latency is used as is. Otherwise it is estimated as
`OVERHEAD_S + prompt_tokens / PREFILL_TOKENS_PER_S + answer_tokens / DECODE_TOKENS_PER_S`, counting a
token as `CHARS_PER_TOKEN` characters — a rough, model-independent figure, good for comparing
strategy shapes (one call vs. three in parallel vs. two in sequence), not for comparing providers.
With `jitter_seed` set, each (model, prompt) latency is scaled by a deterministic factor in
[1 - JITTER, 1 + JITTER], so that simultaneous finishes, and hence early stops and finishing orders,
are reproducible given the seed but not artificially tied. With `simulate_latency`, the client sleeps
for the latency (evaluation runs on a virtual clock, so this costs no real time).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

import anyio

from chorus_mcp.strategies.core.completion import Completion, CompletionRequest
from chorus_mcp.strategies.core.errors import UserInputError
from chorus_mcp.strategies.models.catalog import ModelCatalog, ModelEntry
from chorus_mcp.strategies.models.client import ModelClient

OVERHEAD_S = 0.4
"""Fixed time per call: connection, queueing and time to first token."""
PREFILL_TOKENS_PER_S = 4000.0
DECODE_TOKENS_PER_S = 50.0
CHARS_PER_TOKEN = 4.0
JITTER = 0.1


@dataclass(frozen=True)
class RecordedOutcome:
    """What one model did with one prompt."""

    response: str
    """The model's answer text."""
    cost_usd: Decimal | None = None
    """What the call cost; None when the recording does not say (never a made-up 0)."""
    latency_s: float | None = None
    """The recorded latency; None when the recording has none (the replay then estimates one)."""
    correct: bool | None = None
    """The recorded grade of this answer; None when it was not graded."""


class NotRecorded(UserInputError):
    """A model or a prompt that the recording does not hold: replay cannot answer it."""

    def __init__(self, model: str, message: str) -> None:
        self.model = model
        super().__init__(f"{model}: {message}")


def original_prompt(request: CompletionRequest) -> str:
    """The content of the request's first user message: what a recording is keyed on."""
    for message in request.messages:
        if message.role == "user":
            return message.content
    raise UserInputError("a replayed request needs a user message (the recording is keyed on it)")


def estimate_latency(prompt: str, response: str) -> float:
    """The documented estimate (see the module docstring) for a call without a recorded latency."""
    prompt_tokens = len(prompt) / CHARS_PER_TOKEN
    answer_tokens = max(1.0, len(response) / CHARS_PER_TOKEN)
    return OVERHEAD_S + prompt_tokens / PREFILL_TOKENS_PER_S + answer_tokens / DECODE_TOKENS_PER_S


def jitter_factor(seed: int, model: str, prompt: str) -> float:
    """A factor in [1 - JITTER, 1 + JITTER] fixed by (seed, model, prompt)."""
    digest = hashlib.sha256(f"{seed}\0{model}\0{prompt}".encode()).digest()
    unit = int.from_bytes(digest[:8], "big") / 2**64
    return 1 - JITTER + 2 * JITTER * unit


@dataclass
class Recording:
    """Recorded outcomes, by original prompt and then by model."""

    _outcomes: dict[str, dict[str, RecordedOutcome]] = field(default_factory=dict)
    _models: set[str] = field(default_factory=set)
    misses: list[NotRecorded] = field(default_factory=list)
    """Every lookup that failed, in order: strategies record such a call as `skipped` and go on, so an
    evaluation checks this list to refuse results that a replay could not fully answer."""

    def add(self, prompt: str, model: str, outcome: RecordedOutcome) -> None:
        by_model = self._outcomes.setdefault(prompt, {})
        if model in by_model:
            raise UserInputError(f"the recording already holds an outcome of {model!r} for this prompt")
        by_model[model] = outcome
        self._models.add(model)

    @property
    def models(self) -> list[str]:
        return sorted(self._models)

    def __len__(self) -> int:
        return len(self._outcomes)

    def __iter__(self) -> Iterator[str]:
        return iter(self._outcomes)

    def resolve_prompt(self, prompt: str) -> str | None:
        """The recorded prompt `prompt` is, or else the longest recorded prompt it starts with."""
        if prompt in self._outcomes:
            return prompt
        best: str | None = None
        for recorded in self._outcomes:
            if (best is None or len(recorded) > len(best)) and recorded and prompt.startswith(recorded):
                best = recorded
        return best

    def lookup(self, model: str, prompt: str) -> tuple[str, RecordedOutcome]:
        """(the recorded prompt, the outcome) for `model` on `prompt`; raises `NotRecorded`."""
        try:
            return self._lookup(model, prompt)
        except NotRecorded as exc:
            self.misses.append(exc)
            raise

    def _lookup(self, model: str, prompt: str) -> tuple[str, RecordedOutcome]:
        if model not in self._models:
            known = ", ".join(self.models) or "none"
            raise NotRecorded(model, f"this model is not in the recording (recorded models: {known})")
        recorded = self.resolve_prompt(prompt)
        if recorded is None:
            raise NotRecorded(model, f"prompt not in the recording: {_preview(prompt)}")
        outcome = self._outcomes[recorded].get(model)
        if outcome is None:
            raise NotRecorded(
                model, f"the recording has no outcome of this model for the prompt {_preview(prompt)}"
            )
        return recorded, outcome


def _preview(prompt: str, width: int = 80) -> str:
    flat = " ".join(prompt.split())
    return repr(flat if len(flat) <= width else "…" + flat[-width:])


@dataclass
class ReplayClient:
    """A `ModelClient` that answers with `recorded_model`'s recorded outcomes."""

    name: str
    recording: Recording
    recorded_model: str = ""
    """The model's name in the recording; defaults to `name`."""
    simulate_latency: bool = False
    """Sleep for the (recorded or estimated) latency before answering, so time-outs, deadlines and
    early stops behave as they would live. Meant for a virtual clock: see `strategies.evaluation`."""
    jitter_seed: int | None = None
    calls: int = 0

    def __post_init__(self) -> None:
        if not self.recorded_model:
            self.recorded_model = self.name

    async def complete(self, request: CompletionRequest) -> Completion:
        prompt, outcome = self.recording.lookup(self.recorded_model, original_prompt(request))
        latency = outcome.latency_s
        if latency is None:
            latency = estimate_latency(prompt, outcome.response)
            if self.jitter_seed is not None:
                latency *= jitter_factor(self.jitter_seed, self.recorded_model, prompt)
        self.calls += 1
        if self.simulate_latency:
            await anyio.sleep(latency)
        return Completion(
            text=outcome.response,
            model=self.recorded_model,
            cost_usd=outcome.cost_usd,
            latency_s=latency,
            finish_reason="stop",
        )


def replay_catalog(
    recording: Recording,
    *,
    aliases: Mapping[str, str] | None = None,
    simulate_latency: bool = False,
    jitter_seed: int | None = None,
    timeout_s: float = 600.0,
    live: Mapping[str, tuple[ModelEntry, Callable[[], ModelClient]]] | None = None,
) -> ModelCatalog:
    """A catalog whose models answer from `recording`.

    Every recorded model is available under its own name, and under each alias in `aliases`
    (alias → recorded model name). `live` adds models that are not replayed from `recording`:
    alias → (its entry, a builder of its client), e.g. the live tiers of `strategies.evaluation.live`.
    Names that are none of these are unknown models (a `UserInputError`).
    """
    names = {model: model for model in recording.models}
    for alias, recorded in (aliases or {}).items():
        if recorded not in names:
            known = ", ".join(recording.models) or "none"
            raise UserInputError(f"alias {alias!r}: model {recorded!r} is not in the recording ({known})")
        names[alias] = recorded
    entries = {
        name: ModelEntry(model=f"replay/{recorded}", timeout_s=timeout_s) for name, recorded in names.items()
    }
    extra = dict(live or {})
    clash = sorted(set(extra) & set(entries))
    if clash:
        raise UserInputError(f"live models named like recorded ones: {', '.join(clash)}")
    entries |= {name: entry for name, (entry, _build) in extra.items()}

    def factory(name: str, _entry: ModelEntry) -> ModelClient:
        if name in extra:
            return extra[name][1]()
        return ReplayClient(
            name=name,
            recording=recording,
            recorded_model=names[name],
            simulate_latency=simulate_latency,
            jitter_seed=jitter_seed,
        )

    return ModelCatalog(entries, factory, allow_unlisted=False)
