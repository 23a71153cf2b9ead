"""The connected MCP client's own model, as a `ModelClient` (MCP sampling).

A model entry `{model: mcp/sampling}` is answered by the model of whichever client called the tool —
the one the user already pays for. `mcp/sampling/<hint>` passes `<hint>` to the client as a model
preference (e.g. `mcp/sampling/claude-sonnet`); the client decides.

The strategies know nothing of MCP, and neither does this module. The server puts a `Sampler` for the
current tool call into a context variable for the duration of that call (`sampler_for_this_call`);
this client asks it. Tasks started inside the call (ensemble members run in a task group) inherit the
variable, so every model call of the run reaches the same client. Outside a tool call (the `eval`
command, a script) there is no client to ask and the call fails as data — `SamplingUnavailable` — so a
fallback answers instead.

A request's `seed` and `response_schema` are not passed on: MCP sampling has no field for either (the
client picks the model and how it samples), so what the prompt says in words is all the client's model
gets; a strategy that reads structured answers (a review's verdict) must read them from free text.

What the client's model costs is the client's business: the cost is unknown (None), never 0, and so
are the token counts, which sampling does not report.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol

from chorus_mcp.strategies.core.completion import Completion, CompletionRequest
from chorus_mcp.strategies.core.errors import ModelError
from chorus_mcp.strategies.models.catalog import ModelEntry

SAMPLING_MODEL = "mcp/sampling"


def is_sampling_model(model_id: str) -> bool:
    """Whether a provider model id names the client's own model (`mcp/sampling` or `mcp/sampling/<hint>`)."""
    return model_id == SAMPLING_MODEL or model_id.startswith(SAMPLING_MODEL + "/")


class SamplingUnavailable(ModelError):
    """There is no client model to ask: not inside a tool call, or the client does not offer sampling.

    Not retryable: asking again cannot help, a fallback can."""


class SamplingRefused(ModelError):
    """The client (or its user) declined this sampling request."""


@dataclass(frozen=True)
class SamplingQuestion:
    """What one model call asks the client's model."""

    model: str
    """The alias the strategy called (for error messages and records)."""
    request: CompletionRequest
    max_tokens: int
    """Sampling requires a bound: the request's own `max_tokens`, else the entry's `max_output_tokens`."""
    hint: str | None = None
    """A model name the client may prefer (`mcp/sampling/<hint>`)."""


@dataclass(frozen=True)
class Sampled:
    """The client model's answer."""

    text: str
    model: str
    """The model the client says answered."""
    stop_reason: str | None = None


class Sampler(Protocol):
    """Asks the connected client's model; the server provides one per tool call.

    Raises a `ModelError` (typically `SamplingUnavailable`, `SamplingRefused` or `MalformedResponse`)
    when no answer comes back."""

    async def sample(self, question: SamplingQuestion) -> Sampled: ...


_current: ContextVar[Sampler | None] = ContextVar("chorus_sampler", default=None)


@contextmanager
def sampler_for_this_call(sampler: Sampler) -> Iterator[None]:
    """Make `sampler` answer every sampling model call made inside this block (and tasks it starts)."""
    token = _current.set(sampler)
    try:
        yield
    finally:
        _current.reset(token)


class SamplingClient:
    """A `ModelClient` answered by the connected MCP client's own model, through the current `Sampler`."""

    def __init__(self, alias: str, entry: ModelEntry) -> None:
        if not is_sampling_model(entry.model):
            raise ValueError(f"{alias}: {entry.model!r} is not a sampling model id")
        self.name = alias
        self._entry = entry
        hint = entry.model[len(SAMPLING_MODEL) + 1 :]
        self._hint = hint or None

    async def complete(self, request: CompletionRequest) -> Completion:
        sampler = _current.get()
        if sampler is None:
            raise SamplingUnavailable(
                self.name, "the client's own model can only answer inside an MCP tool call (no client here)"
            )
        question = SamplingQuestion(
            model=self.name,
            request=request,
            max_tokens=request.max_tokens or self._entry.max_output_tokens,
            hint=self._hint,
        )
        started = time.monotonic()
        sampled = await sampler.sample(question)
        return Completion(
            text=sampled.text,
            model=sampled.model,
            latency_s=time.monotonic() - started,
            finish_reason=sampled.stop_reason,
        )
