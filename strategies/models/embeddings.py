"""Text embeddings behind one small interface, for anything that compares texts by meaning.

An embedder is named by a string (in config and in code alike):

- `wordllama`: WordLlama's 256-dimension static embeddings (MIT), whose weights and tokenizer ship
  inside the `wordllama` package: loaded with downloads disabled, no torch, ~1 ms per text on a CPU.
  Needs the `eval` extra.
- `hashing`: hashed words and word pairs (numpy only). A lexical baseline: no notion of meaning.
- `litellm/<embedding model>`, e.g. `litellm/openai/text-embedding-3-small` or
  `litellm/ollama/nomic-embed-text`: any embedding model litellm reaches, with that provider's usual
  key variable. A network call that may cost money; its usage comes back with the vectors.

Every embedder returns one unit-length float32 row per text, so cosine similarity is a dot product.
`embed` blocks (for offline tools); `aembed` does not block the event loop (local embedders run in a
worker thread, litellm's through its async API) and reports a remote call's usage. Failures are the
project's errors: an unknown or uninstalled embedder is a `UserInputError`, a failed remote call a
`ModelError` (translated once, by the litellm provider module).
"""

from __future__ import annotations

import functools
import itertools
import re
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from chorus_mcp.strategies.core.embedders import LITELLM_PREFIX, UNKNOWN_EMBEDDER
from chorus_mcp.strategies.core.errors import ModelError, UserInputError

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

EXTRA_HINT = "install chorus-mcp[eval] (e.g. `uv sync --extra eval` or `pip install 'chorus-mcp[eval]'`)"
HASHING_DIM = 4096


@dataclass(frozen=True)
class EmbeddingUsage:
    """What a remote embedding call used (local embedders make no call and report none)."""

    model: str
    prompt_tokens: int | None
    cost_usd: Decimal | None
    """Best-effort cost in USD; None when the provider's price is unknown."""
    latency_s: float


@dataclass(frozen=True)
class Embeddings:
    vectors: NDArray[np.float32]
    """One unit-length row per text."""
    usage: EmbeddingUsage | None = None
    """Set when the vectors came from a remote call."""


def embed(embedder: str, texts: Sequence[str]) -> NDArray[np.float32]:
    """Unit-length embeddings of `texts`, one row each. Blocking: call from a worker thread in a server."""
    if embedder.startswith(LITELLM_PREFIX):
        litellm = _litellm()
        model = embedder.removeprefix(LITELLM_PREFIX)
        try:
            response = litellm.embedding(model=model, input=list(texts), max_retries=0)
        except Exception as exc:
            raise _translated(model, exc) from None
        return _unit_rows(_vectors_of(response), len(texts))
    return _local(embedder, texts)


async def aembed(embedder: str, texts: Sequence[str], *, timeout_s: float | None = None) -> Embeddings:
    """`embed` without blocking the event loop, with the usage of a remote call.

    `timeout_s` bounds a remote call (litellm's own time-out); cancelling the caller cuts either kind short.
    """
    if not embedder.startswith(LITELLM_PREFIX):
        vectors = await anyio.to_thread.run_sync(_local, embedder, list(texts), abandon_on_cancel=True)
        return Embeddings(vectors)
    model = embedder.removeprefix(LITELLM_PREFIX)
    litellm = await anyio.to_thread.run_sync(_litellm, abandon_on_cancel=True)
    arguments: dict[str, Any] = {"model": model, "input": list(texts), "max_retries": 0}
    if timeout_s is not None:
        arguments["timeout"] = timeout_s
    started = time.perf_counter()
    try:
        response = await litellm.aembedding(**arguments)
    except Exception as exc:
        raise _translated(model, exc) from None
    usage = EmbeddingUsage(
        model=model,
        prompt_tokens=_prompt_tokens(response),
        cost_usd=_cost(response),
        latency_s=time.perf_counter() - started,
    )
    return Embeddings(_unit_rows(_vectors_of(response), len(texts)), usage)


# --- local embedders ------------------------------------------------------------------------------


def _numpy() -> Any:
    try:
        import numpy
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise UserInputError(f"embeddings need numpy: {EXTRA_HINT}") from exc
    return numpy


def _local(embedder: str, texts: Sequence[str]) -> NDArray[np.float32]:
    xp = _numpy()
    if embedder == "wordllama":
        vectors = wordllama_model().embed(list(texts), norm=False) if texts else xp.zeros((0, 256))
    elif embedder == "hashing":
        vectors = xp.stack([_hashed(text) for text in texts]) if texts else xp.zeros((0, HASHING_DIM))
    else:
        raise UserInputError(UNKNOWN_EMBEDDER.format(name=repr(embedder)))
    return _unit_rows(vectors, len(texts))


@functools.cache
def wordllama_model() -> Any:
    """The 256-dimension WordLlama model bundled in the `wordllama` package, loaded without a download.

    Its files are looked up in the package itself (passed as the cache folder: wordllama 0.4's own
    project-root lookup misses its `tokenizers/` folder), with downloads disabled.
    """
    try:
        import wordllama  # type: ignore[import-untyped, import-not-found, unused-ignore]
    except ImportError as exc:
        raise UserInputError(f"the wordllama embedder needs the wordllama package: {EXTRA_HINT}") from exc
    bundled = Path(wordllama.__file__).parent
    try:
        return wordllama.WordLlama.load(
            config="l2_supercat", dim=256, cache_dir=bundled, disable_download=True
        )
    except FileNotFoundError as exc:
        raise UserInputError(f"the wordllama package at {bundled} lacks its bundled model: {exc}") from exc


def _hashed(text: str) -> Any:
    xp = _numpy()
    vector = xp.zeros(HASHING_DIM, dtype=xp.float32)
    words = re.findall(r"[a-z0-9]+", text.lower())
    for feature in [*words, *(f"{a} {b}" for a, b in itertools.pairwise(words))]:
        vector[zlib.crc32(feature.encode()) % HASHING_DIM] += 1.0
    return xp.log1p(vector)


def _unit_rows(vectors: Any, expected: int) -> NDArray[np.float32]:
    xp = _numpy()
    matrix = xp.asarray(vectors, dtype=xp.float32)
    if matrix.ndim != 2 or matrix.shape[0] != expected:
        raise UserInputError(f"the embedder returned {matrix.shape} for {expected} texts")
    norms = xp.linalg.norm(matrix, axis=1, keepdims=True)
    result: NDArray[np.float32] = matrix / xp.maximum(norms, 1e-12)
    return result


# --- litellm ----------------------------------------------------------------------------------------


def _litellm() -> Any:
    # The litellm provider module is the one place that imports and configures litellm (offline price
    # map, quiet logs, secrets registered for redaction).
    from chorus_mcp.strategies.models.providers.litellm_client import load_litellm

    return load_litellm()


def _translated(model: str, exc: Exception) -> ModelError:
    from chorus_mcp.strategies.models.providers.litellm_client import translate_error

    return translate_error(model, exc)


def _vectors_of(response: Any) -> list[Any]:
    data = response["data"] if isinstance(response, dict) else response.data
    return [item["embedding"] if isinstance(item, dict) else item.embedding for item in data]


def _prompt_tokens(response: Any) -> int | None:
    usage = getattr(response, "usage", None)
    tokens = getattr(usage, "prompt_tokens", None)
    return tokens if isinstance(tokens, int) else None


def _cost(response: Any) -> Decimal | None:
    """litellm's own cost of the call when it knows the model's price; None (unknown) otherwise."""
    hidden = getattr(response, "_hidden_params", None)
    cost = hidden.get("response_cost") if isinstance(hidden, dict) else None
    if not isinstance(cost, int | float) or isinstance(cost, bool):
        return None
    try:
        return Decimal(str(cost))
    except InvalidOperation:  # pragma: no cover - a float always converts
        return None
