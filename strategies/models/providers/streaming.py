"""Streaming a capped call's answer, and cutting it off at what the call reserved.

Under a cost cap every call sends `max_tokens` equal to the output it reserved (`engine.reservations`).
An honest provider stops there; one that ignores `max_tokens` would otherwise answer (and bill) as much as
it likes, and the cap would learn of it only afterwards. So a capped call
(`CompletionRequest.enforce_max_tokens`) is streamed, both provider paths alike, and read here:

- each content delta's tokens are counted as it arrives, by the project's offline tokenizer
  (`models.tokenizer`, `cl100k_base`), delta by delta (which counts a little more than the whole text
  would: no merges across chunks);
- once the count goes past `max_tokens` the stream is cut off: the reader stops and the caller closes the
  response, which closes the connection (a half-read HTTP/1.1 response cannot be reused), so the provider
  stops generating;
- an answer cut off keeps the text that arrived, is marked `truncated` ("cut off at its reservation of N
  output tokens ..."), and reports the output tokens received and the prompt's over-estimate
  (`pricing.estimate_prompt_tokens`) — a stream cut off never gets to its usage chunk — priced as any call;
- an answer that runs to its end reports the provider's usage (asked for with `stream_options`), which is
  its bill, even when it says more than was received;
- the cost of what has arrived so far is kept on the call's meter (`models.metering`), so a stream that
  breaks off, or a call cancelled mid-answer, is still charged for it.

A single event that grows past `MAX_EVENT_BYTES` without ending (a provider batching a whole long answer
into one chunk) is cut off too, its bytes counted as the worst case (`pricing.prompt_token_bound`).
"""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from chorus_mcp.strategies.core.completion import Completion, CompletionRequest
from chorus_mcp.strategies.core.errors import MalformedResponse
from chorus_mcp.strategies.models.catalog import ModelEntry
from chorus_mcp.strategies.models.metering import current_meter
from chorus_mcp.strategies.models.providers import translation
from chorus_mcp.strategies.models.providers.pricing import cost_of, estimate_prompt_tokens, prompt_token_bound
from chorus_mcp.strategies.models.tokenizer import text_tokens

MAX_EVENT_BYTES = 64 * 1024
"""The most one server-sent event may hold before it ends: a provider's chunk is a few tokens (a few
hundred bytes, a few KB with log-probabilities)."""

STREAM_OPTIONS = {"include_usage": True}
"""Asked for with `stream: true`, so a stream that runs to its end says what it billed."""


def streams(request: CompletionRequest) -> bool:
    """Whether `request` is to be streamed and cut off at its `max_tokens`."""
    return request.enforce_max_tokens and request.max_tokens is not None


@dataclass
class StreamedAnswer:
    """An answer as its chunks arrive (parsed JSON dicts, or litellm's chunk objects)."""

    name: str
    entry: ModelEntry
    request: CompletionRequest
    parts: list[str] = field(default_factory=lambda: [])
    logprobs: list[Any] = field(default_factory=lambda: [])
    output_tokens: int = 0
    """Output tokens received, counted delta by delta."""
    unread_tokens: int = 0
    """The worst case of an event too large to read (`MAX_EVENT_BYTES`)."""
    finish_reason: Any = None
    model: Any = None
    usage: Any = None
    choices_seen: bool = False
    chunks: int = 0
    """Chunks read (litellm's path counts them)."""
    cut: bool = False

    @property
    def limit(self) -> int | None:
        return self.request.max_tokens if self.request.enforce_max_tokens else None

    def add(self, chunk: Any, *, model: Any = None) -> bool:
        """Take one chunk; False once the answer has gone past its limit and the stream must be cut off.
        `model`: the provider's model id when the chunk's own `model` field is not it (litellm's)."""
        model = model or translation.field(chunk, "model")
        if model and not self.model:  # the first chunk's (litellm's last, made up by itself, says less)
            self.model = model
        usage = translation.field(chunk, "usage")
        if usage is not None:
            self.usage = usage
        choices = translation.field(chunk, "choices")
        if choices:
            self.choices_seen = True
            choice = choices[0]
            content = translation.field(translation.field(choice, "delta"), "content")
            if isinstance(content, str) and content:
                self.parts.append(content)
                self._count(text_tokens(content))
            logprobs = translation.field(translation.field(choice, "logprobs"), "content")
            if logprobs:
                self.logprobs.extend(logprobs)
            finish_reason = translation.field(choice, "finish_reason")
            if finish_reason is not None:
                self.finish_reason = finish_reason
        limit = self.limit
        if limit is not None and self.output_tokens > limit:
            self.cut = True
        return not self.cut

    def too_large(self, unread: bytes) -> None:
        """An event grew past `MAX_EVENT_BYTES` without ending: cut off, counting its bytes as the worst
        case of what they held."""
        self.cut = True
        self.unread_tokens = prompt_token_bound(unread.decode(errors="replace"))
        self._count(0)

    def _count(self, tokens: int) -> None:
        self.output_tokens += tokens
        meter = current_meter()
        if meter is not None:
            meter.output_tokens = self.output_tokens + self.unread_tokens
            meter.spent_usd = self.spent_usd()

    @functools.cached_property
    def prompt_tokens(self) -> int:
        """The prompt's over-estimate (`pricing.estimate_prompt_tokens`), counted once: a long prompt takes
        milliseconds, and the meter prices what has arrived at every chunk."""
        return estimate_prompt_tokens(self.request)

    def spent_usd(self) -> Decimal | None:
        """What has arrived, priced: the prompt's over-estimate plus the output received."""
        return cost_of(self.entry, self.prompt_tokens, self.output_tokens + self.unread_tokens)

    def completion(self, latency_s: float) -> Completion:
        """The answer as a `Completion` (`MalformedResponse` when it holds no answer, as unstreamed)."""
        text = "".join(self.parts) if self.parts else None
        choice = {
            "message": {"content": text},
            "finish_reason": self.finish_reason,
            "logprobs": {"content": self.logprobs} if self.logprobs else None,
        }
        body = {"model": self.model, "usage": None if self.cut else self.usage}
        body["choices"] = [choice] if self.choices_seen else []
        if not self.cut:
            return translation.to_completion(self.name, self.entry, body, latency_s)
        received = self.output_tokens + self.unread_tokens
        reason = (
            f"cut off at its reservation of {self.limit} output tokens: the provider went past the "
            f"max_tokens it was sent ({received} received)"
        )
        if text is None or not text.strip():
            raise MalformedResponse(self.name, f"no text before the answer was {reason}")
        prompt_tokens = self.prompt_tokens
        completion = translation.to_completion(self.name, self.entry, body, latency_s)
        return completion.model_copy(
            update={
                "prompt_tokens": prompt_tokens,
                "completion_tokens": received,
                "cost_usd": cost_of(self.entry, prompt_tokens, received),
                "finish_reason": "length",
                "truncated": reason,
            }
        )


async def read_events(name: str, body: AsyncIterator[bytes], answer: StreamedAnswer) -> None:
    """Feed `answer` the server-sent events of `body` until `[DONE]`, the end of the body, or the cut.
    `MalformedResponse` for an event that is not JSON."""
    buffer = b""
    done = False
    async for part in body:
        if done:
            # Read to the end of the body (the chunked encoding's last chunk), so that the connection
            # goes back to the pool instead of being closed; a body that goes on is cut off after all.
            buffer += part
            if len(buffer) > MAX_EVENT_BYTES:
                return
            continue
        buffer += part.replace(b"\r\n", b"\n")
        while b"\n\n" in buffer:
            event, buffer = buffer.split(b"\n\n", 1)
            if not _take(name, event, answer):
                if answer.cut:
                    return
                done, buffer = True, b""
                break
        if not done and len(buffer) > MAX_EVENT_BYTES:
            answer.too_large(buffer)
            return
    if not done and buffer.strip():
        _take(name, buffer, answer)


def _take(name: str, event: bytes, answer: StreamedAnswer) -> bool:
    """One event; False when the stream is over (`[DONE]`) or must be cut off."""
    data = b"\n".join(line[5:].removeprefix(b" ") for line in event.split(b"\n") if line.startswith(b"data:"))
    if not data:
        return True  # a comment (keep-alive) or an event without data
    if data.strip() == b"[DONE]":
        return False
    try:
        chunk = json.loads(data)
    except json.JSONDecodeError as exc:
        raise translation.unparseable(name, exc) from exc
    if isinstance(chunk, dict) and "error" in chunk and not chunk.get("choices"):
        # A provider that fails mid-stream sends its error as an event.
        raise translation.http_error(name, 500, translation.provider_message(json.dumps(chunk)))
    return answer.add(chunk)
