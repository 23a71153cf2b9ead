"""`OpenAICompatClient`: the fast path, for providers that speak OpenAI's chat-completions protocol.

OpenAI, OpenRouter, vLLM, Ollama, llama.cpp, LM Studio, Groq, Together and most gateways accept the
same `POST {base}/chat/completions`. For them Chorus needs none of litellm's machinery (seconds of
import, ~6-14 ms of work per call here): one JSON body out, one JSON body back. Every client of this
kind shares ONE connection pool per event loop (`http_pool.OriginPool`), so concurrent calls reuse warm
keep-alive connections instead of opening new ones. An endpoint the environment says to reach through
a proxy (`HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY`, minus `NO_PROXY`, as httpx and litellm read them) is
called through one shared `httpx.AsyncClient` instead, which speaks to proxies; the pool does not.

Which models take this path is decided in `strategies.models.providers.provider_client` (see there); this
module only speaks the protocol. It returns exactly what `LiteLLMClient` returns for the same exchange
— the same `Completion` (usage, cost from `pricing`, logprobs, finish reason) and the same error types
and messages (`translation`) — which `tests/strategies/models/providers/test_clients.py` checks by running one
suite against both clients.

What is sent, as litellm sends it for `openai/` and `openrouter/` models:

- the model id without its provider prefix (`openai/gpt-4.1-mini` → `gpt-4.1-mini`,
  `openrouter/anthropic/claude-sonnet-4.5` → `anthropic/claude-sonnet-4.5`);
- `max_tokens`, `temperature`, `logprobs` when the request sets them — except for OpenAI's reasoning
  models (`o1`, `o3`, `o4-mini`, `gpt-5*` but not `gpt-5-chat*`): `max_completion_tokens` instead of
  `max_tokens`, and `temperature` (unless 1) and `logprobs` left out, since those models reject them.
  (litellm also rewrites system messages as user messages for `o3`/`o4-mini`; OpenAI accepts system
  messages there, so they are sent as they are.);
- with `logprobs`, `top_logprobs: TOP_LOGPROBS`: the likeliest alternatives at each answer position,
  from which a multiple-choice answer's per-option probabilities are read
  (`strategies.evaluation.options`); without it OpenAI and vLLM send none;
- `seed` when the request sets one (OpenAI, OpenRouter, vLLM, Ollama and llama.cpp all take it);
- `reasoning_effort` when the request carries one (the core sends it only to models that may take it);
- `response_format: {type: json_schema, json_schema: {name, schema, strict: true}}` when the request
  carries a `response_schema` and litellm's model map says the model supports one
  (`translation.response_format`); never to a model the map does not know, such as most models behind
  an `api_base`, since a server that rejects an unknown parameter would fail the call;
- to OpenRouter, `usage: {include: true}`, so the answer reports its token usage;
- for a capped call (`enforce_max_tokens`), `stream: true` with `stream_options: {include_usage: true}`:
  the answer is read as it streams and cut off at its reservation (`streaming`), the connection closed;
  a stream read to its end leaves its connection in the pool. A server that answers in one body anyway
  is read as an unstreamed answer.

The key is read from the entry's `api_key_env` (else the provider's usual variable, `OPENAI_API_KEY`
or `OPENROUTER_API_KEY`), registered for redaction, and sent only in the `Authorization` header. A
model with an `api_base` and no key anywhere is called without one (local servers need none).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
import urllib.request
import weakref
from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx
import sniffio

from chorus_mcp.strategies.core.completion import Completion, CompletionRequest
from chorus_mcp.strategies.models.catalog import ModelEntry
from chorus_mcp.strategies.models.providers import streaming, translation
from chorus_mcp.strategies.models.providers.pricing import estimate_cost_usd

if TYPE_CHECKING:
    from chorus_mcp.strategies.models.providers.http_pool import OriginPool

DEFAULT_BASES = {
    # (the default base URL, environment variables that override it — litellm reads the same ones)
    "openai": ("https://api.openai.com/v1", ("OPENAI_BASE_URL", "OPENAI_API_BASE")),
    "openrouter": ("https://openrouter.ai/api/v1", ("OPENROUTER_API_BASE",)),
}
"""Providers whose models take the fast path without an `api_base`."""

_REASONING = re.compile(r"^(?:o[1-9]|gpt-5(?!-chat))")
MAX_IDLE_PER_PROVIDER = 32
"""Idle keep-alive connections kept per provider: the `CallGuard`'s default cap on calls at once (what
limits concurrency per provider is that cap, not the pool)."""

USER_AGENT = "chorus-mcp"
TOP_LOGPROBS = 10
"""Alternatives asked per answer token with `logprobs` (OpenAI allows up to 20): every option letter of
a multiple-choice question and its spaced variants fit beside the chosen token, as on the embedded path."""

_pools: weakref.WeakKeyDictionary[Any, OriginPool] = weakref.WeakKeyDictionary()


def shared_pool() -> OriginPool:
    """The one connection pool of the running event loop (connections cannot cross loops). Made by the
    first call on a loop: cheap (no TLS work; `http_pool.tls_context` is made by the warm-up).

    Calls go to the pool directly, not through an `httpx.AsyncClient`: the client's per-request work
    (merging URLs, default headers, cookies, auth and redirect hooks, none of which this path uses) was
    ~12 % of the server's CPU in an `ensemble_vote`, and what a call needs of it is two headers."""
    loop = _running_loop()
    pool = _pools.get(loop)
    if pool is None or pool.closed:
        # Imported here: httpcore (~0.15 s) stays off the server's start-up path; the warm-up loads it.
        from chorus_mcp.strategies.models.providers.http_pool import OriginPool

        pool = _pools[loop] = OriginPool(max_idle_per_origin=MAX_IDLE_PER_PROVIDER)
    return pool


_proxied_clients: weakref.WeakKeyDictionary[Any, httpx.AsyncClient] = weakref.WeakKeyDictionary()


def proxied_client() -> httpx.AsyncClient:
    """The running loop's client for endpoints behind a proxy (httpx reads the proxy variables itself)."""
    loop = _running_loop()
    client = _proxied_clients.get(loop)
    if client is None or client.is_closed:
        client = _proxied_clients[loop] = httpx.AsyncClient(trust_env=True, timeout=None)
    return client


def uses_proxy(url: httpx.URL) -> bool:
    """Whether the environment routes `url` through a proxy (its scheme's or ALL_PROXY, unless NO_PROXY
    names the host)."""
    proxies = urllib.request.getproxies_environment()
    if not (proxies.get(url.scheme) or proxies.get("all")):
        return False
    return not _bypassed(url.host.lower(), proxies.get("no", ""))


def _bypassed(host: str, no_proxy: str) -> bool:
    """NO_PROXY as curl and httpx read it: `*`, or hosts that match exactly or as a domain suffix."""
    for entry in (part.strip().lower() for part in no_proxy.split(",")):
        name = entry.split(":")[0].lstrip(".") if entry.count(":") <= 1 else entry  # an IPv6 host has colons
        if entry == "*" or (name and (host == name or host.endswith("." + name))):
            return True
    return False


def _running_loop() -> Any:
    if sniffio.current_async_library() == "asyncio":
        import asyncio

        return asyncio.get_running_loop()
    import trio

    return trio.lowlevel.current_root_task()


async def close_shared_pool() -> None:
    """Close the running loop's pool (at server shutdown; the next call opens a new one)."""
    pool = _pools.pop(_running_loop(), None)
    if pool is not None:
        await pool.aclose()
    client = _proxied_clients.pop(_running_loop(), None)
    if client is not None:
        await client.aclose()


def base_url(entry: ModelEntry) -> str | None:
    """Where the entry's chat completions are posted from: its `api_base`, else its provider's default."""
    if entry.api_base:
        return entry.api_base.rstrip("/")
    default = DEFAULT_BASES.get(entry.model.partition("/")[0])
    if default is None:
        return None
    url, variables = default
    for variable in variables:
        if os.environ.get(variable):
            return os.environ[variable].rstrip("/")
    return url


def wire_model(entry: ModelEntry) -> str:
    """The model id the provider knows: the litellm id without its provider prefix."""
    provider, _, rest = entry.model.partition("/")
    return rest or provider


class OpenAICompatClient:
    """A `ModelClient` for one model behind an OpenAI-compatible endpoint, over the shared HTTP pool."""

    def __init__(self, name: str, entry: ModelEntry) -> None:
        self.name = name
        """The alias: what strategies, results and errors call this model."""
        self.entry = entry
        url = base_url(entry)
        if url is None:
            raise ValueError(f"{entry.model}: an OpenAI-compatible model needs an api_base")
        self.url = f"{url}/chat/completions"
        self._url = httpx.URL(self.url)  # parsed once
        self._model = wire_model(entry)
        self._provider = entry.model.partition("/")[0]
        self._reasoning = self._provider == "openai" and bool(_REASONING.match(self._model))
        self._proxied = uses_proxy(self._url)

    def __repr__(self) -> str:
        return f"OpenAICompatClient({self.name!r}, model={self.entry.model!r})"

    def estimate_cost_usd(self, request: CompletionRequest) -> Decimal | None:
        """The most the call may cost (see `pricing.estimate_cost_usd`); None when the price is unknown."""
        return estimate_cost_usd(self.entry, request)

    async def complete(self, request: CompletionRequest) -> Completion:
        headers = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": USER_AGENT}
        key = translation.api_key(self.name, self.entry)
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        elif not self.entry.api_base:
            raise translation.no_credentials(self.name, self.entry)
        body = self.body(request)
        streamed = streaming.streams(request)
        if streamed:  # a capped call: streamed, and cut off at its reservation (see `streaming`)
            body.update(stream=True, stream_options=streaming.STREAM_OPTIONS)
            headers["Accept"] = "text/event-stream"
        content = json.dumps(body).encode()
        timeout_s = request.timeout_s or self.entry.timeout_s
        started = time.perf_counter()
        request_ = httpx.Request("POST", self._url, content=content, headers=headers)
        request_.extensions["timeout"] = httpx.Timeout(timeout_s).as_dict()
        with self._translated(timeout_s):
            if not streamed:
                if self._proxied:
                    response = await proxied_client().send(request_)
                else:
                    response = await shared_pool().send(request_)
                return self._answer(response, time.perf_counter() - started)
            if self._proxied:
                response = await proxied_client().send(request_, stream=True)
            else:
                response = await shared_pool().handle_async_request(request_)
                response.request = request_
            try:
                if response.status_code >= 400 or "event-stream" not in response.headers.get(
                    "content-type", ""
                ):
                    await response.aread()  # an error, or a server that answers in one body anyway
                    return self._answer(response, time.perf_counter() - started)
                answer = streaming.StreamedAnswer(self.name, self.entry, request)
                await streaming.read_events(self.name, response.aiter_bytes(), answer)
            finally:
                # Before the end of the body (the cut), this closes the connection: the provider stops.
                await response.aclose()
            return answer.completion(time.perf_counter() - started)

    @contextlib.contextmanager
    def _translated(self, timeout_s: float) -> Iterator[None]:
        """httpx's transport errors as the project's (see `translation`)."""
        try:
            yield
        except httpx.TimeoutException as exc:
            raise translation.timed_out(self.name, timeout_s) from exc
        except (httpx.ConnectError, httpx.UnsupportedProtocol) as exc:
            raise translation.could_not_connect(self.name) from exc
        except httpx.TransportError as exc:
            raise translation.broke_off(self.name) from exc

    def _answer(self, response: httpx.Response, latency_s: float) -> Completion:
        """A whole (read) response: the provider's error, or its answer."""
        if response.status_code >= 400:
            error = httpx.HTTPStatusError(
                f"HTTP {response.status_code} from {self.url}", request=response.request, response=response
            )
            raise translation.http_error(
                self.name,
                response.status_code,
                translation.provider_message(response.content),
                response.headers,
                translation.error_code(response.content),
            ) from error
        try:
            parsed = json.loads(response.content)
        except json.JSONDecodeError as exc:
            raise translation.unparseable(self.name, exc) from exc
        return translation.to_completion(self.name, self.entry, parsed, latency_s)

    def body(self, request: CompletionRequest) -> dict[str, Any]:
        """The JSON body for `request` (see the module docstring for what is sent to whom)."""
        body: dict[str, Any] = {
            "model": self._model,
            "messages": [{"role": m.role, "content": m.openai_content()} for m in request.messages],
        }
        if request.max_tokens is not None:
            body["max_completion_tokens" if self._reasoning else "max_tokens"] = request.max_tokens
        if request.temperature is not None and (not self._reasoning or request.temperature == 1):
            body["temperature"] = request.temperature
        if request.logprobs and not self._reasoning:
            body["logprobs"] = True
            body["top_logprobs"] = TOP_LOGPROBS  # each position's alternatives: per-option probabilities
        if request.seed is not None:
            body["seed"] = request.seed
        if request.reasoning_effort is not None:
            body["reasoning_effort"] = request.reasoning_effort  # OpenAI's, and what vLLM/Ollama take
        response_format = translation.response_format(self.entry, request)
        if response_format is not None:
            body["response_format"] = response_format
        if self._provider == "openrouter":
            body["usage"] = {"include": True}
        return body
