"""A fake OpenAI-compatible chat-completions server on loopback, for tests and benchmarks.

It is a real HTTP server (starlette app, uvicorn in a background thread, 127.0.0.1, a free port),
so real clients — litellm, the openai SDK, httpx — talk to it over real sockets, from sync and async
code alike. Nothing leaves the machine.

Serves ``POST /v1/chat/completions`` and ``GET /v1/models``. With ``stream: true`` an answer comes as
server-sent events the way OpenAI sends them: a chunk per word (a word is a token here), a last chunk with
the finish reason, a usage chunk when ``stream_options.include_usage`` asks for one, then ``[DONE]``.

Scripting, per model name (the ``model`` field of the request body, e.g. ``gpt-a`` when litellm is
given ``openai/gpt-a``)::

    fake.script("gpt-a", "Paris")                                 # always answers "Paris"
    fake.script("gpt-b", ["one", "two"])                          # in turn; the last one repeats
    fake.script("gpt-c", lambda req: req.last_user.upper())       # a function of the request
    fake.script("gpt-d", [Fault.rate_limited(retry_after=2), "ok"])  # first request 429, then ok
    fake.script("gpt-e", Fault.hang())                            # never answers (client time-out)
    fake.script("gpt-f", "hi", latency_s=0.2, prompt_tokens=12, completion_tokens=3,
                logprobs=[("hi", -0.05)], response_model="gpt-f-2025-01-01")
    fake.script("*", "default answer")                            # any model not scripted by name
    fake.fail_next(Fault.server_error(), model="gpt-a", times=2)  # one-shot faults, before the script
    fake.script("gpt-g", "long answer", honour_max_tokens=True)   # cut to max_tokens, as providers do
    fake.script("gpt-h", Fault.ignores_max_tokens(200))           # 200 tokens, whatever max_tokens says
    fake.script("gpt-i", Fault.echoes_authorization())            # a 200 answer quoting the API key
    fake.script("gpt-j", Fault.ignores_max_tokens(200), chunk_latency_s=0.01)  # streamed slowly
    fake.script("o3-mini", "42", reasoning_tokens=300)            # 300 reasoning tokens in the usage

A model with no script (and no ``"*"`` script) gets OpenAI's 404 ``model_not_found``.

Every request is recorded (``fake.requests``, ``fake.requests_for(model)``, ``fake.last_request``)
with its model, messages, parsed body, lower-cased headers and raw bytes, so tests can assert on
what was sent — and that no secret was. A streamed answer's record also says how many content chunks
went out and whether the stream ran to its end (``request.stream``): a client that cut it off and
closed the connection leaves it short.

Use it through the ``fake_openai`` pytest fixture (one server per test session, reset before each
test), or directly: ``with FakeOpenAI() as fake: ...``, or as its own process for benchmarks:
``python -m tests.fake_openai --reply Paris`` (prints the base URL, serves until interrupted).
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

FaultKind = Literal[
    "http",
    "hang",
    "reset",
    "malformed_json",
    "empty_content",
    "null_content",
    "no_choices",
    "ignores_max_tokens",
    "echoes_authorization",
]


@dataclass(frozen=True)
class Fault:
    """Something other than a normal answer. Build one with the class methods, not by hand."""

    kind: FaultKind
    status: int = 200
    """HTTP status for `kind == "http"`."""
    error: dict[str, Any] | None = None
    """The `error` object of OpenAI's error body, for `kind == "http"`."""
    headers: dict[str, str] = field(default_factory=dict)
    echo_key: bool = False
    """Put the caller's full bearer token into the error message (a careless provider), to test redaction."""
    tokens: int = 0
    """For `kind == "ignores_max_tokens"`: the output tokens answered (and reported) whatever was asked."""

    @classmethod
    def hang(cls) -> Fault:
        """Never answer; the request is dropped when the client gives up or the server stops."""
        return cls("hang")

    @classmethod
    def reset(cls) -> Fault:
        """Send a 200 status line and half a body, then close the connection."""
        return cls("reset")

    @classmethod
    def malformed_json(cls) -> Fault:
        """A 200 with `Content-Type: application/json` whose body is not JSON."""
        return cls("malformed_json")

    @classmethod
    def empty_content(cls) -> Fault:
        """A well-formed completion whose message content is the empty string."""
        return cls("empty_content")

    @classmethod
    def null_content(cls) -> Fault:
        """A well-formed completion whose message content is `null` (and no tool calls)."""
        return cls("null_content")

    @classmethod
    def no_choices(cls) -> Fault:
        """A well-formed completion body with `choices: []`."""
        return cls("no_choices")

    @classmethod
    def ignores_max_tokens(cls, tokens: int) -> Fault:
        """A 200 completion of `tokens` words, reported as `tokens` completion tokens, whatever the request's
        `max_tokens` (an adversarial or buggy provider: the caller is billed for all of them)."""
        return cls("ignores_max_tokens", tokens=tokens)

    @classmethod
    def echoes_authorization(cls) -> Fault:
        """A 200 completion whose answer quotes the request's `Authorization` header (the API key, whole),
        also in its logprob tokens when asked for them, and in its `model` field: a provider (or a proxy)
        that reflects what it was sent, to test that answers are redacted before anything keeps them."""
        return cls("echoes_authorization")

    @classmethod
    def http(
        cls,
        status: int,
        message: str,
        *,
        type: str,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        echo_key: bool = False,
    ) -> Fault:
        """Any HTTP error in OpenAI's error shape: `{"error": {"message", "type", "param", "code"}}`."""
        error = {"message": message, "type": type, "param": None, "code": code}
        return cls("http", status=status, error=error, headers=headers or {}, echo_key=echo_key)

    @classmethod
    def rate_limited(cls, retry_after: float | str | None = None) -> Fault:
        """429; with a `Retry-After` header (seconds) when `retry_after` is given."""
        headers = {} if retry_after is None else {"retry-after": str(retry_after)}
        return cls.http(
            429,
            "Rate limit reached for requests per min (RPM): Limit 3, Used 3, Requested 1.",
            type="requests",
            code="rate_limit_exceeded",
            headers=headers,
        )

    @classmethod
    def server_error(cls, status: int = 500) -> Fault:
        return cls.http(
            status,
            "The server had an error while processing your request. Sorry about that!",
            type="server_error",
        )

    @classmethod
    def unavailable(cls) -> Fault:
        """503, as OpenAI sends when overloaded."""
        message = "The engine is currently overloaded, please try again later."
        return cls.http(503, message, type="server_error")

    @classmethod
    def unauthorized(cls, *, echo_key: bool = False) -> Fault:
        """401 `invalid_api_key`; with `echo_key` the message quotes the caller's whole key."""
        return cls.http(
            401,
            "Incorrect API key provided: {key}. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            type="invalid_request_error",
            code="invalid_api_key",
            echo_key=echo_key,
        )

    @classmethod
    def forbidden(cls) -> Fault:
        return cls.http(
            403,
            "You are not allowed to sample from this model",
            type="invalid_request_error",
            code="model_not_allowed",
        )

    @classmethod
    def context_length(cls, limit: int = 8192, requested: int = 9000) -> Fault:
        """400 `context_length_exceeded`, word for word as OpenAI sends it."""
        return cls.http(
            400,
            f"This model's maximum context length is {limit} tokens. However, your messages resulted in "
            f"{requested} tokens. Please reduce the length of the messages.",
            type="invalid_request_error",
            code="context_length_exceeded",
        )

    @classmethod
    def bad_request(cls, message: str = "Invalid value for 'temperature'.") -> Fault:
        return cls.http(400, message, type="invalid_request_error")

    @classmethod
    def not_found(cls, model: str = "unknown") -> Fault:
        return cls.http(
            404,
            f"The model `{model}` does not exist or you do not have access to it.",
            type="invalid_request_error",
            code="model_not_found",
        )


@dataclass
class StreamLog:
    """What a streamed answer sent before it ended (or before the client went away)."""

    content_chunks: int = 0
    """Chunks with answer text that were written to the connection."""
    completed: bool = False
    """True once `[DONE]` went out; False when the client closed the connection first."""


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received."""

    model: str
    messages: list[dict[str, Any]]
    body: dict[str, Any]
    """The parsed JSON body (max_tokens, temperature, logprobs... as sent)."""
    headers: dict[str, str]
    """Lower-cased header names."""
    raw: bytes
    """The body exactly as received."""
    stream: StreamLog | None = None
    """For a streamed answer (`stream: true`): what went out of it."""

    @property
    def last_user(self) -> str:
        """Content of the last user message ('' when there is none)."""
        for message in reversed(self.messages):
            if message.get("role") == "user":
                return str(message.get("content") or "")
        return ""

    def contains(self, text: str) -> bool:
        """Whether `text` appears anywhere in the headers or body (to check a secret was or was not sent)."""
        return text in self.raw.decode(errors="replace") or any(text in v for v in self.headers.values())


Reply = str | Fault | Callable[[RecordedRequest], "str | Fault"]
"""An answer's text, a fault, or a function of the request returning either."""


@dataclass
class Script:
    """How one model behaves. Returned by `FakeOpenAI.script`; `calls` counts requests it served."""

    replies: Reply | Sequence[Reply]
    """One reply for every request, or a sequence taken in turn whose last item then repeats."""
    latency_s: float = 0.0
    """Delay before any response (answers and faults alike)."""
    prompt_tokens: int | None = None
    """Reported prompt tokens; None counts the words of the messages."""
    completion_tokens: int | None = None
    """Reported completion tokens; None counts the words of the answer."""
    reasoning_tokens: int | None = None
    """Reasoning tokens, added to the completion tokens and reported in `completion_tokens_details` as
    OpenAI's reasoning models do; None reports no details."""
    include_usage: bool = True
    """False leaves `usage` out of the response, as some OpenAI-compatible servers do."""
    logprobs: Sequence[float] | Sequence[tuple[str, float]] | None = None
    """Per-token logprobs, sent only when the request asks (`logprobs: true`); None makes -0.01 per word."""
    top_logprobs: Sequence[Mapping[str, float]] | None = None
    """The alternatives at each token's position (`top_logprobs`), in order; none by default. Sent only
    to a request asking `top_logprobs: n` (the n likeliest), as OpenAI does."""
    finish_reason: str = "stop"
    honour_max_tokens: bool = False
    """Cut a text answer to the request's `max_tokens` words (`finish_reason: length`), as real providers
    do; by default the fake answers in full whatever `max_tokens` says."""
    response_model: str | None = None
    """The `model` field of the response (providers often answer with a dated id); None echoes the request."""
    chunk_latency_s: float = 0.0
    """When streaming: the delay before each content chunk (so that a client cutting the stream off is
    seen doing so before the whole answer went out)."""
    words_per_chunk: int = 1
    """When streaming: words (tokens) in each content chunk; a provider may batch several."""
    calls: int = 0

    def take(self) -> Reply:
        """The reply for the next request (a function is not called yet); counts the call."""
        self.calls += 1
        if isinstance(self.replies, (str, Fault)) or callable(self.replies):
            return self.replies
        return self.replies[min(self.calls, len(self.replies)) - 1]


@dataclass
class _OneShot:
    fault: Fault
    model: str | None
    times: int


class FakeOpenAI:
    """The server. Start it with `with FakeOpenAI() as fake:` (or `start()` / `stop()`).

    Scripting and reading records is thread-safe: the server runs in its own thread and event loop.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scripts: dict[str, Script] = {}
        self._one_shots: list[_OneShot] = []
        self._requests: list[RecordedRequest] = []
        self._in_flight = 0
        self._stopping = threading.Event()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- scripting ---------------------------------------------------------------------------------

    def script(self, model: str, replies: Reply | Sequence[Reply] = "ok", **options: Any) -> Script:
        """Script `model` (or `"*"` for every model without its own script); options are `Script` fields."""
        script = Script(replies=replies, **options)
        with self._lock:
            self._scripts[model] = script
        return script

    def fail_next(self, fault: Fault, *, model: str | None = None, times: int = 1) -> None:
        """Answer the next `times` requests for `model` (any model when None) with `fault`, then resume."""
        with self._lock:
            self._one_shots.append(_OneShot(fault, model, times))

    def reset(self) -> None:
        """Forget scripts, pending one-shot faults and recorded requests."""
        with self._lock:
            self._scripts.clear()
            self._one_shots.clear()
            self._requests.clear()

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_for(self, model: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.model == model]

    @property
    def last_request(self) -> RecordedRequest:
        requests = self.requests
        assert requests, "the fake server has received no request"
        return requests[-1]

    @property
    def busy(self) -> bool:
        """Whether a request is still being handled (a hang or a latency not yet released)."""
        return self._in_flight > 0

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL, e.g. `http://127.0.0.1:54321/v1` (pass as `api_base`)."""
        return f"http://127.0.0.1:{self.port}/v1"

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> FakeOpenAI:
        # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on sockets that say they are TCP,
        # and with Nagle on, every response waits ~40 ms for the client's delayed ACK.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))  # the OS picks a free port; holding the socket avoids a race for it
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app(),
            log_level="critical",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
            loop="asyncio",
            http="h11",
        )
        self._server = uvicorn.Server(config)
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="fake-openai", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the fake OpenAI server did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        self._stopping.set()  # releases hanging and sleeping handlers
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- serving -----------------------------------------------------------------------------------

    def _app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
            ]
        )

    async def _models(self, request: Request) -> Response:
        with self._lock:
            names = sorted(name for name in self._scripts if name != "*")
        data = [{"id": name, "object": "model", "created": 0, "owned_by": "fake"} for name in names]
        return JSONResponse({"object": "list", "data": data})

    async def _chat(self, request: Request) -> Response:
        self._in_flight += 1  # only the server's own event loop thread touches it
        try:
            return await self._answer(request)
        finally:
            self._in_flight -= 1

    async def _answer(self, request: Request) -> Response:
        raw = await request.body()
        try:
            body = json.loads(raw)
        except ValueError:
            return _error(Fault.bad_request("We could not parse the JSON body of your request."))
        recorded = RecordedRequest(
            model=str(body.get("model", "")),
            messages=list(body.get("messages") or []),
            body=body,
            headers={k.lower(): v for k, v in request.headers.items()},
            raw=raw,
        )
        with self._lock:
            self._requests.append(recorded)
            script = self._scripts.get(recorded.model) or self._scripts.get("*")
            taken: Reply = self._take_one_shot(recorded.model) or (
                script.take() if script is not None else Fault.not_found(recorded.model)
            )
        # A function reply runs outside the lock: it is test code and may be slow or script the fake.
        reply = taken(recorded) if callable(taken) else taken
        if script is not None and script.latency_s > 0 and not await self._wait(request, script.latency_s):
            return Response(status_code=499)
        if isinstance(reply, str):
            text, script_ = _within_max_tokens(recorded, reply, script)
            response: Response = JSONResponse(_completion(recorded, text, script_))
        else:
            response = await self._fault(request, recorded, reply, script)
        if body.get("stream") and isinstance(response, JSONResponse) and response.status_code == 200:
            return self._streamed(recorded, json.loads(response.body), script)
        return response

    def _streamed(self, recorded: RecordedRequest, answer: dict[str, Any], script: Script | None) -> Response:
        """`answer` (a whole chat.completion body) sent as OpenAI streams it; the record's `stream` log says
        how far it got."""
        log = StreamLog()
        with self._lock:  # the record is frozen: swap in a copy that carries the log
            index = next(i for i, r in enumerate(self._requests) if r is recorded)
            self._requests[index] = replace(recorded, stream=log)
        per_chunk = max(1, script.words_per_chunk if script else 1)
        delay = script.chunk_latency_s if script else 0.0
        options = recorded.body.get("stream_options") or {}

        async def events() -> Any:
            for chunk in _chunks(answer, per_chunk):
                if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                    if delay > 0:  # a client that goes away cancels this generator (starlette watches)
                        await anyio.sleep(delay)
                    if self._stopping.is_set():
                        return
                    log.content_chunks += 1
                yield f"data: {json.dumps(chunk)}\n\n".encode()
            if options.get("include_usage") and "usage" in answer:
                usage = {**_chunk_frame(answer), "choices": [], "usage": answer["usage"]}
                yield f"data: {json.dumps(usage)}\n\n".encode()
            yield b"data: [DONE]\n\n"
            log.completed = True

        return StreamingResponse(events(), media_type="text/event-stream")

    def _take_one_shot(self, model: str) -> Fault | None:
        for shot in self._one_shots:
            if shot.model in (None, model):
                shot.times -= 1
                if shot.times <= 0:
                    self._one_shots.remove(shot)
                return shot.fault
        return None

    async def _wait(self, request: Request, seconds: float | None) -> bool:
        """Sleep `seconds` (None: forever); False when the client went away or the server is stopping."""
        deadline = None if seconds is None else anyio.current_time() + seconds
        while not self._stopping.is_set():
            remaining = 0.05 if deadline is None else deadline - anyio.current_time()
            if remaining <= 0:
                return True
            await anyio.sleep(min(0.05, remaining))
            if await request.is_disconnected():
                return False
        return False

    async def _fault(
        self, request: Request, recorded: RecordedRequest, fault: Fault, script: Script | None
    ) -> Response:
        if fault.kind == "hang":
            await self._wait(request, None)
            return Response(status_code=499)
        streamed = bool(recorded.body.get("stream"))
        if fault.kind == "reset":
            whole = _completion(recorded, "cut off", script)
            if streamed:  # the role and a first word ("cut"), then the connection closes mid-stream
                first = b"".join(f"data: {json.dumps(c)}\n\n".encode() for c in list(_chunks(whole, 1))[:2])
                return _HalfBodyResponse(first * 2, media_type="text/event-stream")  # sends `first` only
            return _HalfBodyResponse(json.dumps(whole).encode())
        if fault.kind == "malformed_json":
            if streamed:
                return Response(
                    b'data: {"id": "chatcmpl-fake", "choices": [{"del\n\n', media_type="text/event-stream"
                )
            return Response(b'{"id": "chatcmpl-fake", "choices": [{"mess', media_type="application/json")
        if fault.kind == "ignores_max_tokens":
            words = " ".join(["word"] * fault.tokens)
            overlong = replace(script or Script(""), completion_tokens=fault.tokens, finish_reason="stop")
            return JSONResponse(_completion(recorded, words, overlong))
        if fault.kind == "echoes_authorization":
            header = recorded.headers.get("authorization", "")
            body = _completion(recorded, f"Here is what you sent me: Authorization: {header}", script)
            body["model"] = f"{recorded.model} for {header.removeprefix('Bearer ')}"
            return JSONResponse(body)
        if fault.kind in ("empty_content", "null_content", "no_choices"):
            body = _completion(recorded, "" if fault.kind == "empty_content" else None, script)
            if fault.kind == "no_choices":
                body["choices"] = []
            return JSONResponse(body)
        # OpenAI quotes a masked key; `echo_key` plays a careless provider that quotes it whole.
        if fault.echo_key:
            return _error(fault, recorded.headers.get("authorization", "").removeprefix("Bearer "))
        return _error(fault)


def _error(fault: Fault, key: str = "sk-...****") -> Response:
    error = dict(fault.error or {})
    error["message"] = str(error.get("message", "")).replace("{key}", key)
    return JSONResponse({"error": error}, status_code=fault.status, headers=fault.headers)


class _HalfBodyResponse(Response):
    """Promises the whole body in Content-Length, sends half, returns: uvicorn then drops the connection."""

    def __init__(self, full: bytes, media_type: str = "application/json") -> None:
        super().__init__(status_code=200, media_type=media_type)
        self._full = full
        self._type = media_type

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        full = self._full
        headers = [(b"content-type", self._type.encode()), (b"content-length", str(len(full)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": full[: len(full) // 2], "more_body": True})


def _words(text: str) -> int:
    return len(text.split())


_WORD = re.compile(r"\s*\S+|\s+$")


def _chunk_frame(answer: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": answer.get("id"),
        "object": "chat.completion.chunk",
        "created": answer.get("created"),
        "model": answer.get("model"),
        "system_fingerprint": answer.get("system_fingerprint"),
    }


def _chunks(answer: dict[str, Any], words_per_chunk: int) -> Any:
    """The chunks that stream `answer`: the role, its text `words_per_chunk` words at a time (with their
    logprobs), then the finish reason. A completion without choices streams chunks without choices."""
    frame = _chunk_frame(answer)
    if not answer["choices"]:
        yield {**frame, "choices": []}
        return
    choice = answer["choices"][0]
    content = choice["message"]["content"]
    yield {
        **frame,
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}],
    }
    words = _WORD.findall(content) if content else []
    logprobs = (choice.get("logprobs") or {}).get("content") or []
    if content is None:
        yield {**frame, "choices": [{"index": 0, "delta": {"content": None}, "finish_reason": None}]}
    for start in range(0, len(words), words_per_chunk):
        delta = {"content": "".join(words[start : start + words_per_chunk])}
        part: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": None}
        if choice.get("logprobs") is not None:
            part["logprobs"] = {"content": logprobs[start : start + words_per_chunk], "refusal": None}
        yield {**frame, "choices": [part]}
    if (
        len(logprobs) > len(words) and choice.get("logprobs") is not None
    ):  # scripted logprobs beyond the words
        rest = {
            "index": 0,
            "delta": {},
            "logprobs": {"content": logprobs[len(words) :]},
            "finish_reason": None,
        }
        yield {**frame, "choices": [rest]}
    yield {**frame, "choices": [{"index": 0, "delta": {}, "finish_reason": choice["finish_reason"]}]}


def _within_max_tokens(
    request: RecordedRequest, text: str, script: Script | None
) -> tuple[str, Script | None]:
    """`text` cut to the request's `max_tokens` words when the script honours it (a word is a token here),
    and the script to answer with: reporting at most that many tokens, `finish_reason: length` if cut."""
    limit = request.body.get("max_tokens") or request.body.get("max_completion_tokens")
    if script is None or not script.honour_max_tokens or not isinstance(limit, int):
        return text, script
    words = text.split()
    reported = script.completion_tokens
    capped = replace(script, completion_tokens=None if reported is None else min(reported, limit))
    if len(words) <= limit:
        return text, capped
    return " ".join(words[:limit]), replace(capped, finish_reason="length")


def _completion(request: RecordedRequest, text: str | None, script: Script | None) -> dict[str, Any]:
    """A chat.completion body in OpenAI's exact shape."""
    script = script or Script(replies="")
    prompt_tokens = script.prompt_tokens
    if prompt_tokens is None:
        prompt_tokens = sum(_words(str(m.get("content") or "")) for m in request.messages)
    completion_tokens = script.completion_tokens
    if completion_tokens is None:
        completion_tokens = _words(text or "")
    completion_tokens += script.reasoning_tokens or 0
    choice: dict[str, Any] = {
        "index": 0,
        "message": {"role": "assistant", "content": text, "refusal": None},
        "logprobs": _logprobs(text or "", script, request.body.get("top_logprobs"))
        if request.body.get("logprobs")
        else None,
        "finish_reason": script.finish_reason,
    }
    body: dict[str, Any] = {
        "id": f"chatcmpl-fake-{script.calls}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": script.response_model or request.model,
        "choices": [choice],
        "system_fingerprint": "fp_fake",
    }
    if script.include_usage:
        body["usage"] = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        if script.reasoning_tokens is not None:
            body["usage"]["completion_tokens_details"] = {"reasoning_tokens": script.reasoning_tokens}
    return body


def _logprobs(text: str, script: Script, asked: Any) -> dict[str, Any]:
    """OpenAI's shape. Alternatives are sent as OpenAI sends them: only as many as the request's
    `top_logprobs` asks for (none without it), the likeliest first."""
    pairs: list[tuple[str, float]]
    if script.logprobs is None:
        pairs = [(word, -0.01) for word in text.split()]
    else:
        pairs = [p if isinstance(p, tuple) else (f"t{i}", p) for i, p in enumerate(script.logprobs)]
    count = asked if isinstance(asked, int) and not isinstance(asked, bool) else 0
    tops = [dict(sorted(top.items(), key=lambda kv: -kv[1])[:count]) for top in script.top_logprobs or []]
    content = [
        {
            "token": token,
            "logprob": logprob,
            "bytes": list(token.encode()),
            "top_logprobs": [
                {"token": t, "logprob": lp, "bytes": list(t.encode())}
                for t, lp in (tops[i] if i < len(tops) else {}).items()
            ],
        }
        for i, (token, logprob) in enumerate(pairs)
    ]
    return {"content": content, "refusal": None}


def main(argv: Sequence[str] | None = None) -> None:
    """Serve in the foreground (for benchmarks and manual runs): `python -m tests.fake_openai`.

    Every model answers `--reply`. Prints the base URL as the first line of stdout, then serves until
    interrupted. A separate process keeps client and server from sharing one GIL.
    """
    import argparse

    parser = argparse.ArgumentParser(description="Fake OpenAI-compatible chat-completions server.")
    parser.add_argument("--reply", default="ok", help="what every model answers")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--prompt-tokens", type=int, default=None)
    parser.add_argument("--completion-tokens", type=int, default=None)
    args = parser.parse_args(argv)
    with FakeOpenAI() as fake:
        fake.script(
            "*",
            args.reply,
            latency_s=args.latency,
            prompt_tokens=args.prompt_tokens,
            completion_tokens=args.completion_tokens,
        )
        print(fake.base_url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
