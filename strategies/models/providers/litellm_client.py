"""`LiteLLMClient`: real providers, spoken to through litellm.

This is the only module that imports litellm, and it does so lazily — on the first call, in a worker
thread — because the import takes seconds and the server must start (and stay responsive) without
waiting for it. Models whose provider speaks OpenAI's protocol skip litellm altogether
(`openai_compat.OpenAICompatClient`; `provider_client` chooses); this path serves every other provider.

A request's `seed` goes as litellm's `seed` (dropped for providers without one), its `reasoning_effort`
as litellm's (which maps it per provider), and its
`response_schema` as a strict `json_schema` `response_format` only when litellm's model map says the
model supports one (`translation.response_format`, the same rule as the fast path). A capped call
(`enforce_max_tokens`) is streamed and cut off at its reservation, as on the fast path (`streaming`); the
usage litellm makes up when a provider streams none is dropped, so both paths report the same.

Everything litellm raises is translated here, once, into `strategies.core.errors`, in the same words as the
fast path (`translation` has the table). litellm hides the facts under its own exception classes, so
the cause chain is read first, top to bottom:

    what is found (first match wins)                              → via `translation`
    ───────────────────────────────────────────────────────────   ──────────────────────────────────
    an HTTP status error from the openai SDK (OpenAI-shaped        http_error(status, the provider's
      providers: the status, body and headers it kept)               message, headers, error code)
    ContextWindowExceededError                                     ContextWindowExceeded
    a transport time-out (httpx / aiohttp / openai APITimeoutError) timed_out(the call's time-out)
    a JSON decode error                                            unparseable
    "Missing credentials" (no key found anywhere)                  no_credentials
    a connect failure (refused, DNS, TLS)                          could_not_connect
    any other transport error, or APIConnectionError               broke_off
    otherwise, litellm's class and status code (other providers):
      Timeout → ModelTimeout; RateLimitError → RateLimited; AuthenticationError, PermissionDenied →
      AuthenticationFailed; BadRequest, NotFound, Unprocessable → BadRequest; APIResponseValidation →
      MalformedResponse; any status → http_error(status, litellm's message); else ProviderServerError

litellm reports a refused or reset connection, an unparseable body and a missing key as
`InternalServerError` (HTTP 500), which is why the cause is consulted before the status code.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import anyio
import httpx

from chorus_mcp.strategies.core.completion import Completion, CompletionRequest, Message
from chorus_mcp.strategies.core.errors import (
    AuthenticationFailed,
    BadRequest,
    MalformedResponse,
    ModelError,
    ModelTimeout,
    ProviderServerError,
    RateLimited,
    redact,
    register_secret,
)
from chorus_mcp.strategies.models.catalog import ModelEntry
from chorus_mcp.strategies.models.client import ModelClient
from chorus_mcp.strategies.models.providers import streaming, translation
from chorus_mcp.strategies.models.providers.openai_compat import TOP_LOGPROBS
from chorus_mcp.strategies.models.providers.pricing import estimate_cost_usd

_OFFLINE_ENV = {
    # Without these litellm fetches its price map from GitHub at import and may try a model hub for
    # tokenizers: a token count can hang ~23 s offline.
    "LITELLM_OFFLINE_MODE": "true",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
}
_FOREIGN_PACKAGES = frozenset({"litellm", "openai", "httpx", "aiohttp"})

_litellm: Any = None
_load_lock = threading.Lock()


def load_litellm() -> Any:
    """Import and configure litellm once. Blocking (seconds the first time); safe from any thread.

    The server may call it in a worker thread at start-up to warm up; otherwise the first call does.
    """
    global _litellm
    if _litellm is None:
        with _load_lock:
            if _litellm is None:
                for name, value in _OFFLINE_ENV.items():
                    os.environ.setdefault(name, value)
                import litellm

                # litellm prints a "Give Feedback / Get Help" banner to *stdout* on every failed call,
                # which would corrupt the stdio MCP transport.
                litellm.suppress_debug_info = True
                # litellm falls back to provider keys from the environment (OPENAI_API_KEY...) when a
                # model has no api_key_env; make sure those are redacted too.
                for name, value in os.environ.items():
                    if name.endswith("_API_KEY"):
                        register_secret(value)
                # litellm logs every call at INFO; a call is already recorded in our results.
                for logger_name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy"):
                    logging.getLogger(logger_name).setLevel(logging.WARNING)
                _warm_call_path(litellm)
                _litellm = litellm
    return _litellm


def preload_in_background() -> threading.Thread | None:
    """Start importing litellm in a daemon thread; returns it (None when litellm is already loaded).

    Call at server start-up: otherwise the import (3-20 s, depending on the machine) happens inside
    the first model call and counts against that call's time-out.
    """
    if _litellm is not None:
        return None
    thread = threading.Thread(target=load_litellm, name="litellm-import", daemon=True)
    thread.start()
    return thread


def _warm_call_path(litellm: Any) -> None:
    """Run one offline mock completion, so litellm's lazy imports (about a second of them, done on the
    event loop during the first real call) happen here, in the warm-up thread, instead."""
    try:
        litellm.completion(
            model="openai/chorus-warm-up",
            messages=[{"role": "user", "content": "warm-up"}],
            mock_response="ok",
            api_key="not-a-key",
        )
    except Exception:  # a warm-up that fails costs only the speed it was meant to save
        logging.getLogger("chorus").debug("litellm warm-up call failed", exc_info=True)


class LiteLLMClient:
    """A `ModelClient` for one configured model, calling its provider through `litellm.acompletion`."""

    def __init__(self, name: str, entry: ModelEntry) -> None:
        self.name = name
        """The alias: what strategies, results and errors call this model."""
        self.entry = entry

    def __repr__(self) -> str:
        return f"LiteLLMClient({self.name!r}, model={self.entry.model!r})"

    async def ready(self) -> None:
        """Import litellm (seconds, once) in a worker thread; callers keep this out of the call's time-out."""
        if _litellm is None:
            await anyio.to_thread.run_sync(load_litellm, abandon_on_cancel=True)

    def estimate_cost_usd(self, request: CompletionRequest) -> Decimal | None:
        """The most the call may cost (see `pricing.estimate_cost_usd`); None when the price is unknown."""
        return estimate_cost_usd(self.entry, request)

    async def complete(self, request: CompletionRequest) -> Completion:
        # The first call imports litellm in a worker thread (seconds), abandoned on cancel so that a
        # deadline still cuts it short; the import finishes in the background for the next call.
        litellm = _litellm or await anyio.to_thread.run_sync(load_litellm, abandon_on_cancel=True)
        arguments = self._arguments(request)
        streamed = streaming.streams(request)
        if streamed:  # a capped call: streamed, and cut off at its reservation (see `streaming`)
            arguments.update(stream=True, stream_options=streaming.STREAM_OPTIONS)
        started = time.perf_counter()
        try:
            response = await litellm.acompletion(**arguments)
            if streamed:
                answer = await _read_stream(
                    self.name, response, streaming.StreamedAnswer(self.name, self.entry, request)
                )
        except Exception as exc:
            if not _is_foreign(exc):
                raise  # our own bug: let it surface as one, not as a provider failure
            raise translate_error(self.name, exc, self.entry, arguments["timeout"]) from _scrubbed(exc)
        latency_s = time.perf_counter() - started
        if streamed:
            return answer.completion(latency_s)
        return translation.to_completion(self.name, self.entry, response, latency_s)

    def _arguments(self, request: CompletionRequest) -> dict[str, Any]:
        entry = self.entry
        arguments: dict[str, Any] = {
            "model": entry.model,
            "messages": [{"role": m.role, "content": m.openai_content()} for m in request.messages],
            "timeout": request.timeout_s or entry.timeout_s,
            # Retries belong to the core (visible, traced, budgeted), never hidden inside litellm.
            "max_retries": 0,
            "num_retries": 0,
            # A parameter a provider does not support (logprobs on Anthropic, temperature on o1) is
            # dropped rather than failing the call; missing logprobs show up as `logprobs=None`.
            "drop_params": True,
        }
        if entry.api_base:
            arguments["api_base"] = entry.api_base
        # The configured variable (which must be set), else the provider's usual one; when neither has
        # a key, litellm looks further (cloud credentials) or reports missing credentials.
        key = translation.api_key(self.name, entry)
        if key is not None:
            arguments["api_key"] = key
        if request.max_tokens is not None:
            arguments["max_tokens"] = request.max_tokens
        if request.temperature is not None:
            arguments["temperature"] = request.temperature
        if request.logprobs:
            arguments["logprobs"] = True
            arguments["top_logprobs"] = TOP_LOGPROBS  # as the fast path asks: per-option probabilities
        if request.seed is not None:
            arguments["seed"] = request.seed  # dropped by litellm for providers without one (drop_params)
        if request.reasoning_effort is not None:
            # litellm maps it per provider: OpenAI's `reasoning_effort`, an Anthropic `thinking` budget,
            # a Gemini `thinkingConfig` budget (THINKING_BUDGET_TOKENS).
            arguments["reasoning_effort"] = request.reasoning_effort
        response_format = translation.response_format(entry, request)
        if response_format is not None:
            arguments["response_format"] = response_format
        return arguments


async def _read_stream(name: str, stream: Any, answer: streaming.StreamedAnswer) -> streaming.StreamedAnswer:
    """Feed `answer` litellm's chunks until the end or the cut, then close the stream (before the end,
    that closes the connection)."""
    try:
        async for chunk in stream:
            answer.chunks += 1
            # litellm puts the id it was asked for in `model`; the provider's own is kept aside.
            hidden = getattr(chunk, "_hidden_params", None) or {}
            answer.add(chunk, model=hidden.get("provider_response_model"))
            if answer.cut:
                break
    except Exception as exc:
        # Chunks came, none with a choice, and no finish reason: litellm calls that a broken stream, but it
        # is an answer without choices, as the fast path reads it (`completion` says so).
        if not (answer.chunks and not answer.choices_seen and _STREAM_ENDED_EARLY.search(str(exc))):
            raise
    finally:
        await stream.aclose()
    if not _provider_reported_usage(stream):
        answer.usage = None  # litellm counted it itself: not the provider's bill
    return answer


_STREAM_ENDED_EARLY = re.compile(r"Stream ended before a finish_reason")


def _provider_reported_usage(stream: Any) -> bool:
    """Whether a stream's usage came from the provider. When it sent none, litellm makes one up at the end
    of the stream by counting the text itself; the chunks it kept (`chunks`, with the provider's usage
    chunk among them) tell the two apart. True when they cannot be read."""
    kept = getattr(stream, "chunks", None)
    if not isinstance(kept, list):
        return True
    return any(getattr(chunk, "usage", None) is not None for chunk in kept)


def litellm_client_factory(alias: str, entry: ModelEntry) -> ModelClient:
    """A `LiteLLMClient` for (alias, entry); `provider_client` decides when this path is used."""
    return LiteLLMClient(alias, entry)


def estimate_prompt_tokens(entry: ModelEntry, messages: Sequence[Message]) -> int:
    """How many prompt tokens `messages` cost on `entry`'s model, by litellm's tokenizer for it.

    Offline-safe (bundled tiktoken encodings; no model-hub download). Blocking, and imports litellm
    on first use. Falls back to ~4 characters a token if litellm cannot count for this model.
    """
    payload = [{"role": m.role, "content": m.content} for m in messages]
    try:
        return int(load_litellm().token_counter(model=entry.model, messages=payload))
    except Exception:
        return sum(len(m.content) for m in messages) // 4 + 4 * len(messages)


# -- errors ----------------------------------------------------------------------------------------


def translate_error(
    model: str, exc: Exception, entry: ModelEntry | None = None, timeout_s: float = 0
) -> ModelError:
    """Map one litellm exception to the Chorus error tree (see the module docstring for the order)."""
    litellm = load_litellm()
    import openai  # loaded with litellm, which speaks to every OpenAI-shaped provider through it

    chain = _chain(exc)
    for link in chain:
        # The openai SDK's own status error (litellm's exception classes subclass it: skip those).
        if isinstance(link, openai.APIStatusError) and type(link).__module__.split(".")[0] == "openai":
            body = _body_of(link)
            return translation.http_error(
                model,
                link.status_code,
                translation.provider_message(body),
                link.response.headers,
                translation.error_code(body),
            )
    detail = _detail(exc)
    if isinstance(exc, litellm.ContextWindowExceededError):
        return translation.http_error(model, 400, detail, code="context_length_exceeded")
    timeouts = (httpx.TimeoutException, openai.APITimeoutError, TimeoutError)
    if any(isinstance(link, timeouts) for link in chain[1:]):
        return translation.timed_out(model, timeout_s)
    if any(isinstance(link, json.JSONDecodeError) for link in chain):
        decode_error = next(link for link in chain if isinstance(link, json.JSONDecodeError))
        assert isinstance(decode_error, json.JSONDecodeError)
        return translation.unparseable(model, decode_error)
    if _MISSING_CREDENTIALS.search(detail):
        # The provider SDK found no key (none configured, none in its default variable) and litellm
        # reports that as an HTTP 500; it is an authentication problem, and retrying cannot fix it.
        if entry is not None:
            return translation.no_credentials(model, entry)
        return AuthenticationFailed(model, f"no credentials: {detail}")
    if any(_is_connect_failure(link) for link in chain[1:]):
        return translation.could_not_connect(model)
    if isinstance(exc, litellm.APIConnectionError) or any(
        isinstance(link, httpx.TransportError | ConnectionError) for link in chain[1:]
    ):
        return translation.broke_off(model)
    return _by_litellm_class(litellm, model, exc, detail)


def _by_litellm_class(litellm: Any, model: str, exc: Exception, detail: str) -> ModelError:
    """Providers litellm reaches with its own HTTP code: its exception class and status say what happened."""
    status = _status_code(exc)
    if isinstance(exc, litellm.Timeout):
        return ModelTimeout(model, f"timed out: {detail}")
    if isinstance(exc, litellm.RateLimitError):
        return RateLimited(model, f"rate limited (HTTP 429): {detail}", retry_after=_retry_after(exc))
    if isinstance(exc, (litellm.AuthenticationError, litellm.PermissionDeniedError)):
        return AuthenticationFailed(model, f"authentication failed (HTTP {status}): {detail}")
    if isinstance(exc, (litellm.BadRequestError, litellm.NotFoundError, litellm.UnprocessableEntityError)):
        return BadRequest(model, f"request rejected (HTTP {status}): {detail}")
    if isinstance(exc, litellm.APIResponseValidationError):
        return MalformedResponse(model, f"unusable response: {detail}")
    if status is not None and status >= 400:
        headers = _headers_of(exc)
        return translation.http_error(model, status, detail, headers)
    return ProviderServerError(model, f"{type(exc).__name__}: {detail}")


def _body_of(error: Any) -> bytes | str | None:
    """The error response's body as the provider sent it (the openai SDK keeps the response)."""
    try:
        content = error.response.content
    except Exception:  # a synthetic response without a body
        content = None
    if content:
        return bytes(content)
    body = getattr(error, "body", None)
    return json.dumps({"error": body}) if isinstance(body, dict) else str(getattr(error, "message", "") or "")


def _is_connect_failure(link: BaseException) -> bool:
    if isinstance(link, httpx.ConnectError | ConnectionRefusedError):
        return True
    # aiohttp's (litellm's default transport), matched by name: aiohttp is not our dependency.
    return type(link).__name__.startswith("ClientConnector")


def _status_code(exc: Exception) -> int | None:
    # litellm reports every InternalServerError as 500 but keeps the provider's own code beside it.
    for attribute in ("provider_status_code", "status_code"):
        value = getattr(exc, attribute, None)
        if isinstance(value, int):
            return value
    return None


def _headers_of(exc: Exception) -> dict[str, str]:
    headers: dict[str, str] = {}
    response = getattr(exc, "response", None)
    for source in (getattr(response, "headers", None), getattr(exc, "headers", None)):
        if source:
            headers.update({str(k).lower(): str(v) for k, v in dict(source).items()})
    return headers


def _retry_after(exc: Exception) -> float | None:
    """Seconds from `Retry-After` / `retry-after-ms` (on the error's response or its own headers)."""
    return translation.retry_after(_headers_of(exc))


_MISSING_CREDENTIALS = re.compile(r"(?i)missing credentials|api_key client option must be set")
_PREFIX = re.compile(r"^(?:litellm\.\w+:\s*|\w+ ?Error:\s*|\w+Exception\s*-\s*)+")


def _detail(exc: BaseException) -> str:
    """The provider's message without litellm's repeated class-name prefixes, on one line, bounded."""
    text = str(getattr(exc, "message", None) or exc) or type(exc).__name__
    text = _PREFIX.sub("", " ".join(text.split()))
    return translation.bounded(text) or type(exc).__name__


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and not any(current is s for s in seen):
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _is_foreign(exc: BaseException) -> bool:
    """Raised by litellm or the HTTP stack under it (as opposed to a bug in this module)."""
    return any(cls.__module__.split(".")[0] in _FOREIGN_PACKAGES for cls in type(exc).__mro__)


def _scrubbed(exc: BaseException) -> BaseException:
    """Redact secrets in place along the cause chain we attach, so tracebacks and logs cannot leak them."""
    for link in _chain(exc):
        link.args = tuple(redact(a) if isinstance(a, str) else a for a in link.args)
        message = getattr(link, "message", None)
        if isinstance(message, str):
            with contextlib.suppress(AttributeError):  # a read-only property on some classes
                link.message = redact(message)  # type: ignore[attr-defined]
    return exc
