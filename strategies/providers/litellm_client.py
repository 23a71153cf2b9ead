"""`LiteLLMClient`: real providers, spoken to through litellm.

This is the only module that imports litellm, and it does so lazily — on the first call, in a worker
thread — because the import takes seconds and the server must start (and stay responsive) without
waiting for it. Everything litellm raises is translated here, once, into `strategies.errors`:

    litellm exception (or what it wraps)                 → Chorus error
    ────────────────────────────────────────────────────   ────────────────────────────────────────
    Timeout                                                ModelTimeout
    ContextWindowExceededError (a BadRequestError: first)  ContextWindowExceeded
    RateLimitError                                         RateLimited(retry_after from Retry-After)
    AuthenticationError, PermissionDeniedError, 401/403    AuthenticationFailed
    BadRequestError, NotFoundError, UnprocessableEntity    BadRequest
    anything caused by a read/connect timeout              ModelTimeout
    anything caused by a JSON decode error                 MalformedResponse
    "Missing credentials" (no key found anywhere)          AuthenticationFailed
    APIConnectionError, or caused by a transport error
      (connection refused or reset, DNS, TLS)              ProviderUnavailable
    APIResponseValidationError                             MalformedResponse
    any other error with status 429 / 408 / 4xx            RateLimited / ModelTimeout / BadRequest
    InternalServerError, ServiceUnavailable, BadGateway,
      any other 5xx                                        ProviderServerError(status_code)
    any other litellm, openai or httpx exception           ProviderServerError(status_code=None)
    a response with no choices, or no text                 MalformedResponse

The checks run top to bottom. Order matters: litellm reports a refused or reset connection, an
unparseable body and a missing key as `InternalServerError` (HTTP 500), so the wrapped cause is
consulted before the status code.
"""

from __future__ import annotations

import contextlib
import email.utils
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

from strategies.catalog import ModelEntry
from strategies.client import ModelClient
from strategies.completion import Completion, CompletionRequest, Message, TokenLogprob
from strategies.errors import (
    AuthenticationFailed,
    BadRequest,
    ContextWindowExceeded,
    MalformedResponse,
    ModelError,
    ModelTimeout,
    ProviderServerError,
    ProviderUnavailable,
    RateLimited,
    redact,
    register_secret,
)

_OFFLINE_ENV = {
    # Without these litellm fetches its price map from GitHub at import and may try a model hub for
    # tokenizers: a token count can hang ~23 s offline.
    "LITELLM_OFFLINE_MODE": "true",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
}
_FOREIGN_PACKAGES = frozenset({"litellm", "openai", "httpx", "aiohttp"})
_MILLION = Decimal(1_000_000)
_DETAIL_LIMIT = 400

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

    async def complete(self, request: CompletionRequest) -> Completion:
        # The first call imports litellm in a worker thread (seconds), abandoned on cancel so that a
        # deadline still cuts it short; the import finishes in the background for the next call.
        litellm = _litellm or await anyio.to_thread.run_sync(load_litellm, abandon_on_cancel=True)
        arguments = self._arguments(request)
        started = time.perf_counter()
        try:
            response = await litellm.acompletion(**arguments)
        except Exception as exc:
            if not _is_foreign(exc):
                raise  # our own bug: let it surface as one, not as a provider failure
            raise translate_error(self.name, exc) from _scrubbed(exc)
        latency_s = time.perf_counter() - started
        return to_completion(self.name, self.entry, response, latency_s)

    def estimate_cost_usd(self, request: CompletionRequest) -> Decimal | None:
        """The most `request` can cost (for the budget check before a call): its prompt tokens at the input
        price plus `max_tokens` (else the entry's `max_output_tokens`) at the output price; None when a
        price is unknown. Blocking, and imports litellm on first use: await `ready()` first."""
        max_tokens = request.max_tokens or self.entry.max_output_tokens
        return cost_of(self.entry, estimate_prompt_tokens(self.entry, request.messages), max_tokens)

    def _arguments(self, request: CompletionRequest) -> dict[str, Any]:
        entry = self.entry
        arguments: dict[str, Any] = {
            "model": entry.model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
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
        if entry.api_key_env:
            key = os.environ.get(entry.api_key_env)
            if not key:
                raise AuthenticationFailed(self.name, f"environment variable {entry.api_key_env} is not set")
            register_secret(key)
            arguments["api_key"] = key
        if request.max_tokens is not None:
            arguments["max_tokens"] = request.max_tokens
        if request.temperature is not None:
            arguments["temperature"] = request.temperature
        if request.logprobs:
            arguments["logprobs"] = True
        return arguments


def litellm_client_factory(alias: str, entry: ModelEntry) -> ModelClient:
    """The `ClientFactory` the server gives its `ModelCatalog`."""
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


# -- responses -------------------------------------------------------------------------------------


def to_completion(name: str, entry: ModelEntry, response: Any, latency_s: float) -> Completion:
    """Turn litellm's `ModelResponse` into a `Completion`; `MalformedResponse` if it holds no answer."""
    choices = _field(response, "choices")
    if not choices:
        raise MalformedResponse(name, "the provider answered with no choices")
    choice = choices[0]
    finish_reason = _field(choice, "finish_reason")
    text = _field(_field(choice, "message"), "content")
    if not isinstance(text, str) or not text.strip():
        raise MalformedResponse(name, f"the provider answered with no text (finish_reason={finish_reason})")
    prompt_tokens, completion_tokens = _usage(_field(response, "usage"))
    return Completion(
        text=text,
        model=str(_field(response, "model") or entry.model),
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cost_usd=cost_of(entry, prompt_tokens, completion_tokens),
        latency_s=latency_s,
        finish_reason=None if finish_reason is None else str(finish_reason),
        logprobs=_logprobs(_field(choice, "logprobs")),
    )


def cost_of(entry: ModelEntry, prompt_tokens: int | None, completion_tokens: int | None) -> Decimal | None:
    """USD cost from the entry's price overrides, else litellm's price map; None when either is unknown."""
    if prompt_tokens is None or completion_tokens is None:
        return None
    mapped: tuple[Decimal, Decimal] | None = None
    if entry.input_cost_per_mtok is None or entry.output_cost_per_mtok is None:
        mapped = _price_map_cost(entry.model, prompt_tokens, completion_tokens)
        if mapped is None:
            return None
    prompt_cost = (
        prompt_tokens * entry.input_cost_per_mtok / _MILLION if entry.input_cost_per_mtok is not None
        else mapped[0] if mapped else None
    )
    completion_cost = (
        completion_tokens * entry.output_cost_per_mtok / _MILLION if entry.output_cost_per_mtok is not None
        else mapped[1] if mapped else None
    )
    if prompt_cost is None or completion_cost is None:
        return None
    return prompt_cost + completion_cost


def _price_map_cost(model: str, prompt_tokens: int, completion_tokens: int) -> tuple[Decimal, Decimal] | None:
    try:
        prompt, completion = load_litellm().cost_per_token(
            model=model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
        )
    except Exception:  # litellm raises ModelNotMappedError (or BadRequestError) for unknown models
        return None
    # str() first: Decimal(0.00015) would carry the float's binary noise into every sum.
    return Decimal(str(prompt)), Decimal(str(completion))


def _logprobs(raw: Any) -> list[TokenLogprob] | None:
    content = _field(raw, "content")
    if not content:
        return None
    return [TokenLogprob(token=str(_field(t, "token")), logprob=float(_field(t, "logprob"))) for t in content]


def _field(obj: Any, name: str) -> Any:
    """Attribute or key: litellm hands back pydantic objects, but some providers' parts are plain dicts."""
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def _usage(usage: Any) -> tuple[int | None, int | None]:
    """(prompt, completion) tokens as the provider reported them; (None, None) when it did not."""
    prompt = _field(usage, "prompt_tokens")
    completion = _field(usage, "completion_tokens")
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None, None
    # When the provider sends no `usage`, litellm fills in zeros. No real call has a zero-token
    # prompt, so 0/0 means "not reported" — never count it (or price it) as free.
    if prompt == 0 and completion == 0:
        return None, None
    return prompt, completion


# -- errors ----------------------------------------------------------------------------------------


def translate_error(model: str, exc: Exception) -> ModelError:
    """Map one litellm exception to the Chorus error tree (see the module docstring for the table)."""
    litellm = load_litellm()
    detail = _detail(exc)
    status = _status_code(exc)
    if isinstance(exc, litellm.Timeout):
        return ModelTimeout(model, f"timed out: {detail}")
    if isinstance(exc, litellm.ContextWindowExceededError):
        return ContextWindowExceeded(model, f"prompt does not fit the context window: {detail}")
    if isinstance(exc, litellm.RateLimitError):
        return RateLimited(model, f"rate limited (HTTP 429): {detail}", retry_after=_retry_after(exc))
    if isinstance(exc, (litellm.AuthenticationError, litellm.PermissionDeniedError)) or status in (401, 403):
        return AuthenticationFailed(model, f"authentication failed (HTTP {status}): {detail}")
    if isinstance(exc, (litellm.BadRequestError, litellm.NotFoundError, litellm.UnprocessableEntityError)):
        return BadRequest(model, f"request rejected (HTTP {status}): {detail}")
    if _caused_by(exc, httpx.TimeoutException, TimeoutError):
        return ModelTimeout(model, f"timed out: {detail}")
    if _caused_by(exc, json.JSONDecodeError):
        return MalformedResponse(model, f"unparseable response: {detail}")
    if _MISSING_CREDENTIALS.search(detail):
        # The provider SDK found no key (none configured, none in its default variable) and litellm
        # reports that as an HTTP 500; it is an authentication problem, and retrying cannot fix it.
        return AuthenticationFailed(model, f"no credentials: {detail}")
    if isinstance(exc, litellm.APIConnectionError) or _caused_by(exc, httpx.TransportError, ConnectionError):
        return ProviderUnavailable(model, f"connection failed: {detail}")
    if isinstance(exc, litellm.APIResponseValidationError):
        return MalformedResponse(model, f"unusable response: {detail}")
    if status == 429:
        return RateLimited(model, f"rate limited (HTTP 429): {detail}", retry_after=_retry_after(exc))
    if status == 408:
        return ModelTimeout(model, f"timed out (HTTP 408): {detail}")
    if status is not None and 400 <= status < 500:
        return BadRequest(model, f"request rejected (HTTP {status}): {detail}")
    if status is not None and status >= 500:
        return ProviderServerError(model, f"provider error (HTTP {status}): {detail}", status_code=status)
    return ProviderServerError(model, f"{type(exc).__name__}: {detail}")


def _status_code(exc: Exception) -> int | None:
    # litellm reports every InternalServerError as 500 but keeps the provider's own code beside it.
    for attribute in ("provider_status_code", "status_code"):
        value = getattr(exc, attribute, None)
        if isinstance(value, int):
            return value
    return None


def _retry_after(exc: Exception) -> float | None:
    """Seconds from `Retry-After` / `retry-after-ms` (on the error's response or its own headers)."""
    response = getattr(exc, "response", None)
    headers: dict[str, str] = {}
    for source in (getattr(response, "headers", None), getattr(exc, "headers", None)):
        if source:
            headers.update({str(k).lower(): str(v) for k, v in dict(source).items()})
    if "retry-after-ms" in headers:
        try:
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
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


_MISSING_CREDENTIALS = re.compile(r"(?i)missing credentials|api_key client option must be set")
_PREFIX = re.compile(r"^(?:litellm\.\w+:\s*|\w+Error:\s*|\w+Exception\s*-\s*)+")


def _detail(exc: BaseException) -> str:
    """The provider's message without litellm's repeated class-name prefixes, on one line, bounded."""
    text = str(getattr(exc, "message", None) or exc) or type(exc).__name__
    text = _PREFIX.sub("", " ".join(text.split()))
    if len(text) > _DETAIL_LIMIT:
        text = text[:_DETAIL_LIMIT] + "…"
    return text or type(exc).__name__


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and not any(current is s for s in seen):
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _caused_by(exc: BaseException, *types: type[BaseException]) -> bool:
    return any(isinstance(link, types) for link in _chain(exc)[1:])


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
