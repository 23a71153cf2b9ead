"""What a model is asked (`CompletionRequest`) and what it answers (`Completion`)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from chorus_mcp.strategies.core.errors import redact, secret_spans
from chorus_mcp.strategies.core.inputs import Attached, ImagePart

Role = Literal["system", "user", "assistant"]
ReasoningEffort = Literal["low", "medium", "high"]
"""How hard a reasoning model thinks before it answers: OpenAI's `reasoning_effort`, an Anthropic or Gemini
(2.5) thinking budget, as litellm maps it (`THINKING_BUDGET_TOKENS`)."""
THINKING_BUDGET_TOKENS: dict[str, int] = {"low": 1024, "medium": 2048, "high": 4096}
"""The thinking budget litellm gives Anthropic and Gemini 2.5 models for each effort (its defaults): what
a call may spend reasoning on top of its answer, for the cost cap's reservation."""


class Message(BaseModel):
    model_config = ConfigDict(frozen=True)

    role: Role
    content: str
    images: tuple[ImagePart, ...] = ()
    """Images sent with the text (a user message; only to a model that reads them, `core.inputs`)."""

    def openai_content(self) -> str | list[dict[str, Any]]:
        """The content as OpenAI's chat format has it: the text, or text and image parts."""
        if not self.images:
            return self.content
        parts: list[dict[str, Any]] = [{"type": "text", "text": self.content}]
        parts.extend({"type": "image_url", "image_url": {"url": i.data_url()}} for i in self.images)
        return parts


class CompletionRequest(BaseModel):
    """One request to one model. Strategies build these; clients send them."""

    model_config = ConfigDict(frozen=True)

    messages: tuple[Message, ...]
    max_tokens: int | None = None
    temperature: float | None = None
    logprobs: bool = False
    """Ask for per-token log-probabilities (used by the logprob confidence estimator)."""
    timeout_s: float | None = None
    """Per-call time-out; the strategy's deadline may cut it shorter."""
    seed: int | None = None
    """Sampling seed, for providers that take one (litellm's `seed`, the `seed` of an OpenAI-compatible
    body, the embedded model's random generator); best effort: a provider may still vary. Part of the
    response-cache key, so one seed's answer is never replayed for another."""
    response_schema: dict[str, Any] | None = None
    """Structured output: a JSON Schema the answer must follow. Sent (as OpenAI's strict `json_schema`
    `response_format`) only to models that litellm's model map says support it; every other client
    ignores it, so a prompt asking for the same shape in words must stand beside it. A `title` in the
    schema names it to the provider. Part of the response-cache key."""
    enforce_max_tokens: bool = False
    """Do not trust the provider to stop at `max_tokens`: stream the answer, count its tokens as they
    arrive, and cut it off (closing the connection) once it goes past `max_tokens`. Set under a cost cap
    (`engine.reservations`), where `max_tokens` is what the call reserved; clients that cannot stream
    leave it to the provider. Not part of the response-cache key: it changes what may be spent, not the
    answer an honest provider gives."""
    reasoning_effort: ReasoningEffort | None = None
    """The reasoning effort asked for; the core sends it only to models that take one
    (`engine.calling`), and clients send it the provider's way. Part of the response-cache key."""
    inputs: Attached | None = None
    """Files and images the caller attached, not yet in the messages: each model is sent its share of
    them (`core.inputs.fit`) just before it is called."""

    @classmethod
    def of(cls, prompt: str, *, system: str | None = None, **settings: Any) -> CompletionRequest:
        """A request with one user message (and a system prompt when given); `settings` are fields."""
        messages = [Message(role="system", content=system)] if system else []
        messages.append(Message(role="user", content=prompt))
        return cls(messages=tuple(messages), **settings)


class TokenLogprob(BaseModel):
    token: str
    logprob: float
    top: dict[str, float] | None = None
    """The likeliest tokens at this position and their log-probabilities (the chosen one among them),
    when the provider returned alternatives (`top_logprobs`): what a multiple-choice answer's
    per-option probabilities are read from."""


class Completion(BaseModel):
    """A successful answer from one model, with what it cost."""

    text: str
    model: str
    """The model id that actually answered (the provider's name for it)."""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    reasoning_tokens: int | None = None
    """Of `completion_tokens`, those the model spent reasoning (when the provider says); billed as output."""
    cost_usd: Decimal | None = None
    """Best-effort cost in USD; None when the price is unknown, never a made-up 0."""
    latency_s: float = 0.0
    finish_reason: str | None = None
    logprobs: list[TokenLogprob] | None = None
    """Per-token log-probabilities of the answer when the provider returned them."""
    choice_probs: dict[str, float] | None = None
    """For a multiple-choice question whose options the caller knew (an evaluation's live tiers): each
    option's probability at the answer's position, normalised over the options. The `logprob`
    confidence estimator then reads the margin between the two likeliest options."""
    cached: bool = False
    """True when the answer came from the response cache (`strategies.cache`): no provider call was made,
    `cost_usd` is 0 and `latency_s` is the lookup's own."""
    similarity: float | None = None
    """On a semantic cache hit: cosine similarity between this prompt and the cached one (exact hit: None)."""
    saved_cost_usd: Decimal | None = None
    """On a cache hit: what the original call cost, now saved (None when its price was unknown)."""
    truncated: str | None = None
    """Set when the answer was cut off as it streamed because the provider went past the `max_tokens` it
    was sent (`CompletionRequest.enforce_max_tokens`): what was kept and why. The text is what arrived
    before the cut, and the tokens and cost are what arrived (prompt tokens estimated: a stream cut off
    carries no usage)."""

    def redacted(self) -> Completion:
        """This completion with every secret `redact` knows removed from what the provider wrote: the
        text, the model id it reported, the finish reason, and the log-probability tokens (a token that
        is part of a secret becomes `[REDACTED]`; its log-probability stays). Itself when nothing changes.

        Applied where an answer comes back from the provider (`translation.to_completion`) and again
        where the core receives it from any client (`engine.calling`), so neither the response cache, the
        session store nor a result ever holds a key that a provider echoed back (spans redact their own
        attributes as well)."""
        updates: dict[str, Any] = {}
        for name in ("text", "model", "finish_reason"):
            value = getattr(self, name)
            if isinstance(value, str) and (clean := redact(value)) != value:
                updates[name] = clean
        if self.logprobs:
            tokens = _redacted_tokens(self.logprobs)
            if tokens is not None:
                updates["logprobs"] = tokens
        return self.model_copy(update=updates) if updates else self

    @property
    def total_tokens(self) -> int | None:
        if self.prompt_tokens is None and self.completion_tokens is None:
            return None
        return (self.prompt_tokens or 0) + (self.completion_tokens or 0)


def _redacted_tokens(logprobs: list[TokenLogprob]) -> list[TokenLogprob] | None:
    """The tokens with every one that overlaps a secret in their joined text replaced; None if none does."""
    joined = "".join(t.token for t in logprobs)
    spans = secret_spans(joined)
    if not spans:
        return None
    result, position = [], 0
    for token in logprobs:
        start, end = position, position + len(token.token)
        position = end
        if any(start < until and since < end for since, until in spans):
            token = token.model_copy(update={"token": "[REDACTED]"})
        result.append(token)
    return result


class Usage(BaseModel):
    """Tokens and cost added up over many calls. Cost stays None-aware: any unknown price makes it partial."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: Decimal = Field(default=Decimal(0))
    """Sum of the known costs."""
    cost_complete: bool = True
    """False when at least one call had an unknown price, so `cost_usd` is a lower bound."""

    def add(self, completion: Completion) -> Usage:
        return Usage(
            calls=self.calls + 1,
            prompt_tokens=self.prompt_tokens + (completion.prompt_tokens or 0),
            completion_tokens=self.completion_tokens + (completion.completion_tokens or 0),
            cost_usd=self.cost_usd + (completion.cost_usd or Decimal(0)),
            cost_complete=self.cost_complete and completion.cost_usd is not None,
        )
