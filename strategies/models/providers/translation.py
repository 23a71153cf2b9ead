"""What both provider paths share: reading an OpenAI-shaped answer into a `Completion`, and saying what
went wrong in the same words.

`OpenAICompatClient` gets the raw HTTP response; `LiteLLMClient` gets litellm's `ModelResponse` or one
of its exceptions, and digs out the same facts (the provider's HTTP status, its error message, its
headers, or the transport fault underneath). Both then call these functions, so a fault reads the same
whichever path met it::

    what happened                               → Chorus error: message after "<model>: "
    ─────────────────────────────────────────   ───────────────────────────────────────────────────────
    HTTP 429                                    RateLimited: rate limited (HTTP 429): <msg>
    HTTP 401, 403                               AuthenticationFailed: authentication failed (HTTP s): <msg>
    HTTP 400/413/422 saying the prompt is too   ContextWindowExceeded: prompt does not fit the context
      long (or code context_length_exceeded)      window: <msg>
    HTTP 408, 504                               ModelTimeout: timed out (HTTP s): <msg>
    any other HTTP 4xx                          BadRequest: request rejected (HTTP s): <msg>
    HTTP 5xx                                    ProviderServerError: provider error (HTTP s): <msg>
    no answer within the call's time-out        ModelTimeout: timed out: no answer within <t>s
    could not connect (refused, DNS, TLS)       ProviderUnavailable: connection failed: could not connect
    connection broke off mid-response           ProviderUnavailable: connection failed: the connection
                                                  broke off before the answer was complete
    a body that is not JSON                     MalformedResponse: unparseable response: <json error>
    no choices, or no text                      MalformedResponse: the provider answered with no ...
    no API key anywhere                         AuthenticationFailed: no credentials: ...

Both paths also ask for structured output the same way (`response_format`).

`<msg>` is the provider's own message (`error.message` of OpenAI's error body, or what else the body
says), on one line, at most 400 characters, with secrets redacted (`ChorusError` redacts every message).
"""

from __future__ import annotations

import email.utils
import json
import math
import os
import re
import time
from collections.abc import Mapping
from typing import Any

from chorus_mcp.strategies.core.completion import Completion, CompletionRequest, TokenLogprob
from chorus_mcp.strategies.core.errors import (
    AuthenticationFailed,
    BadRequest,
    ContextWindowExceeded,
    MalformedResponse,
    ModelError,
    ModelTimeout,
    ProviderServerError,
    ProviderUnavailable,
    RateLimited,
    register_secret,
)
from chorus_mcp.strategies.models.catalog import ModelEntry
from chorus_mcp.strategies.models.providers.pricing import cost_of, supports_response_schema

DETAIL_LIMIT = 400

DEFAULT_KEY_ENV = {
    "openai": "OPENAI_API_KEY",
    "openrouter": "OPENROUTER_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "gemini": "GEMINI_API_KEY",
    "groq": "GROQ_API_KEY",
    "mistral": "MISTRAL_API_KEY",
    "deepseek": "DEEPSEEK_API_KEY",
    "together_ai": "TOGETHERAI_API_KEY",
    "xai": "XAI_API_KEY",
}
"""The variable a provider's key is read from when a model sets no `api_key_env` (as litellm does)."""

# What providers (and litellm's own detection) say when a prompt is too long for the model.
_CONTEXT_WINDOW = re.compile(
    r"(?i)context[ _-]length|context window|maximum context|prompt is too long|too many (?:input )?tokens"
    r"|input tokens exceed|longer than the model's context|exceeds? the (?:model's )?(?:maximum|context)"
)


# -- answers ---------------------------------------------------------------------------------------


def to_completion(name: str, entry: ModelEntry, response: Any, latency_s: float) -> Completion:
    """Turn an OpenAI-shaped chat completion (a parsed JSON dict, or litellm's `ModelResponse`) into a
    `Completion`, with secrets redacted (`Completion.redacted`: a provider that echoes the key it was sent
    must not reach the cache, which wraps this client); `MalformedResponse` if it holds no answer."""
    choices = field(response, "choices")
    if not choices or not isinstance(choices, list | tuple):
        raise MalformedResponse(name, "the provider answered with no choices")
    choice = choices[0]
    finish_reason = field(choice, "finish_reason")
    text = field(field(choice, "message"), "content")
    if not isinstance(text, str) or not text.strip():
        raise MalformedResponse(name, f"the provider answered with no text (finish_reason={finish_reason})")
    usage = field(response, "usage")
    prompt_tokens, completion_tokens = usage_of(usage)
    reasoning_tokens = reasoning_tokens_of(usage) if completion_tokens is not None else None
    return Completion(
        text=text,
        model=str(field(response, "model") or entry.model),
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        reasoning_tokens=reasoning_tokens,
        cost_usd=cost_of(entry, prompt_tokens, completion_tokens, reasoning_tokens),
        latency_s=latency_s,
        finish_reason=None if finish_reason is None else str(finish_reason),
        logprobs=logprobs_of(field(choice, "logprobs")),
    ).redacted()


_SCHEMA_NAME = re.compile(r"[^A-Za-z0-9_-]+")


def response_format(entry: ModelEntry, request: CompletionRequest) -> dict[str, Any] | None:
    """OpenAI's strict `json_schema` response format for `request.response_schema`, or None: when the request
    has no schema, or when litellm's model map does not say `entry`'s model supports one (see
    `pricing.supports_response_schema`). The schema's `title`, made a valid name, names it (else `answer`)."""
    schema = request.response_schema
    if schema is None or not supports_response_schema(entry.model):
        return None
    title = schema.get("title")
    name = _SCHEMA_NAME.sub("_", title).strip("_")[:64] if isinstance(title, str) else ""
    return {
        "type": "json_schema",
        "json_schema": {"name": name or "answer", "schema": schema, "strict": True},
    }


def field(obj: Any, name: str) -> Any:
    """Attribute or key: litellm hands back pydantic objects, JSON gives dicts."""
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def usage_of(usage: Any) -> tuple[int | None, int | None]:
    """(prompt, completion) tokens as the provider reported them; (None, None) when it did not."""
    prompt = field(usage, "prompt_tokens")
    completion = field(usage, "completion_tokens")
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None, None
    # When the provider sends no `usage`, litellm fills in zeros. No real call has a zero-token
    # prompt, so 0/0 means "not reported" — never count it (or price it) as free.
    if prompt == 0 and completion == 0:
        return None, None
    return prompt, completion


def reasoning_tokens_of(usage: Any) -> int | None:
    """The reasoning tokens within the completion tokens (`completion_tokens_details.reasoning_tokens`, as
    OpenAI reports them and litellm reports Anthropic's thinking and Gemini's thoughts); None when unsaid."""
    tokens = field(field(usage, "completion_tokens_details"), "reasoning_tokens")
    return tokens if isinstance(tokens, int) and not isinstance(tokens, bool) and tokens > 0 else None


def logprobs_of(raw: Any) -> list[TokenLogprob] | None:
    """Each answer token's log-probability, with the alternatives at its position when the provider
    sent them (`top_logprobs`, asked for with `logprobs`)."""
    content = field(raw, "content")
    if not content:
        return None
    return [
        TokenLogprob(token=str(field(t, "token")), logprob=float(field(t, "logprob")), top=alternatives_of(t))
        for t in content
    ]


def alternatives_of(token: Any) -> dict[str, float] | None:
    """A token's `top_logprobs` as {token: logprob}; None when there are none. Two token ids that read
    the same (e.g. a byte-level duplicate) are one alternative holding both's probability."""
    listed = field(token, "top_logprobs")
    if not listed or not isinstance(listed, list | tuple):
        return None
    top: dict[str, float] = {}
    for alternative in listed:
        text, logprob = field(alternative, "token"), field(alternative, "logprob")
        if text is None or not isinstance(logprob, int | float):
            continue
        text = str(text)
        top[text] = float(logprob) if text not in top else _logaddexp(top[text], float(logprob))
    return top or None


def _logaddexp(a: float, b: float) -> float:
    high, low = max(a, b), min(a, b)
    return high + math.log1p(math.exp(low - high))


# -- faults ----------------------------------------------------------------------------------------


def provider_message(body: bytes | str | None) -> str:
    """The provider's own words from an error body: OpenAI's `error.message`, else what the body says."""
    if body is None:
        return ""
    text = body.decode(errors="replace") if isinstance(body, bytes) else body
    try:
        parsed = json.loads(text)
    except ValueError:
        return bounded(text)
    message: Any = parsed
    if isinstance(parsed, dict):
        error = parsed.get("error")
        if isinstance(error, dict):
            message = error.get("message") or error
        elif error:
            message = error
        else:
            message = parsed.get("message") or parsed.get("detail") or parsed
    return bounded(message if isinstance(message, str) else json.dumps(message))


def error_code(body: bytes | str | None) -> str | None:
    """OpenAI's `error.code` (e.g. `context_length_exceeded`), when the body has one."""
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        return None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return str(code) if code is not None else None


def bounded(text: str) -> str:
    """One line, at most `DETAIL_LIMIT` characters."""
    text = " ".join(text.split())
    return text[:DETAIL_LIMIT] + "…" if len(text) > DETAIL_LIMIT else text


def is_context_window(message: str, code: str | None = None) -> bool:
    return code == "context_length_exceeded" or bool(_CONTEXT_WINDOW.search(message))


def http_error(
    model: str, status: int, message: str, headers: Mapping[str, str] | None = None, code: str | None = None
) -> ModelError:
    """The Chorus error for an HTTP error status from the provider (see the table above)."""
    message = message or f"HTTP {status}"
    if status == 429:
        return RateLimited(model, f"rate limited (HTTP 429): {message}", retry_after=retry_after(headers))
    if status in (401, 403):
        return AuthenticationFailed(model, f"authentication failed (HTTP {status}): {message}")
    if status in (400, 413, 422) and is_context_window(message, code):
        return ContextWindowExceeded(model, f"prompt does not fit the context window: {message}")
    if status in (408, 504):
        return ModelTimeout(model, f"timed out (HTTP {status}): {message}")
    if 400 <= status < 500:
        return BadRequest(model, f"request rejected (HTTP {status}): {message}")
    # A 503 (overloaded, in maintenance) may say when to come back, as a 429 does: honoured the same way.
    wait = retry_after(headers)
    return ProviderServerError(
        model, f"provider error (HTTP {status}): {message}", status_code=status, retry_after=wait
    )


def timed_out(model: str, timeout_s: float) -> ModelTimeout:
    return ModelTimeout(model, f"timed out: no answer within {timeout_s:g}s")


def could_not_connect(model: str) -> ProviderUnavailable:
    return ProviderUnavailable(model, "connection failed: could not connect")


def broke_off(model: str) -> ProviderUnavailable:
    message = "connection failed: the connection broke off before the answer was complete"
    return ProviderUnavailable(model, message)


def unparseable(model: str, exc: json.JSONDecodeError) -> MalformedResponse:
    return MalformedResponse(model, f"unparseable response: {exc}")


def no_credentials(model: str, entry: ModelEntry) -> AuthenticationFailed:
    variable = DEFAULT_KEY_ENV.get(entry.model.partition("/")[0])
    where = f"set {variable} or configure api_key_env" if variable else "configure api_key_env"
    return AuthenticationFailed(model, f"no credentials: no API key found ({where})")


def missing_key_variable(model: str, variable: str) -> AuthenticationFailed:
    return AuthenticationFailed(model, f"environment variable {variable} is not set")


def api_key(name: str, entry: ModelEntry) -> str | None:
    """The entry's key: from `api_key_env` (which must then be set), else the provider's usual variable.

    Registered for redaction before it is used. None when neither names a key.
    """
    if entry.api_key_env:
        key = os.environ.get(entry.api_key_env)
        if not key:
            raise missing_key_variable(name, entry.api_key_env)
    else:
        variable = DEFAULT_KEY_ENV.get(entry.model.partition("/")[0])
        key = os.environ.get(variable) if variable else None
    if key:
        register_secret(key)
    return key or None


def retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds from `retry-after-ms` or `Retry-After` (seconds or an HTTP date); None when absent."""
    if not headers:
        return None
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    if "retry-after-ms" in lowered:
        try:
            return max(0.0, float(lowered["retry-after-ms"]) / 1000)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:  # the HTTP-date form
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
