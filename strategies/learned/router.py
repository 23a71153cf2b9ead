"""A learned router: embed the prompt, look up its nearest recorded neighbours, pick a model.

Training stores, for every question of a recorded dataset, the embedding of its prompt and which
models answered it correctly. Routing a new prompt:

1. embed it the same way, and take its `k` nearest training questions (cosine similarity), leaving
   out any training question with the very same text: a question is never its own neighbour, so a
   router scored (or calibrated) on the questions it was trained on is not flattered by recall;
2. estimate each model's chance of being right as the similarity-weighted share of those neighbours
   it got right, shrunk towards the model's overall accuracy by `prior` pseudo-questions (a model
   that was right on all 3 close neighbours is not thereby certain);
3. choose the model with the best `p(correct) - tradeoff * mean_cost / max_mean_cost`: `tradeoff` 0
   takes the likeliest-correct model whatever its price; larger values buy cheaper models.

RouterBench's KNN baseline is steps 1-3 with uniform weights, no prior and the whole prompt embedded
(`variant: baseline`); `variant: chorus` (the default) adds the similarity weights, the prior, and
embeds only the question: the last paragraph of the prompt, so that few-shot examples shared by
every prompt do not dominate the embedding.

Embedders (`embedder`): `wordllama` (default: a static-embedding model whose 256-dimension weights ship
inside the `wordllama` package, so it works offline), `hashing` (word and word-pair hashing, numpy
only; a lexical baseline), or `litellm/<embedding model>` (e.g. `litellm/openai/text-embedding-3-small`,
through litellm; needs that provider's key and network, costs money, and is not exercised by the
tests here).

The router file is JSON (no pickle): settings, models, their mean cost and accuracy, and base64
float32 embeddings with a correctness matrix.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from chorus_mcp.strategies.core.errors import UserInputError
from chorus_mcp.strategies.learned.settings import RouterSettings
from chorus_mcp.strategies.models.embeddings import EXTRA_HINT, embed

try:
    import numpy as np
    from numpy.typing import NDArray
except ImportError as exc:  # pragma: no cover - depends on the install
    raise UserInputError(f"the learned router needs numpy: {EXTRA_HINT}") from exc

FORMAT = "chorus-router/1"
EMBEDDING_CACHE = 4096
"""Prompts whose embedding a router keeps (oldest dropped first): a prompt seen again is not re-embedded."""


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def question_text(prompt: str) -> str:
    """The last non-empty paragraph of the prompt (the question after any few-shot examples)."""
    paragraphs = [p for p in re.split(r"\n\s*\n", prompt) if p.strip()]
    return paragraphs[-1] if paragraphs else prompt


# --- Training and routing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    model: str
    probability: float
    """Estimated chance that `model` answers correctly."""
    estimates: dict[str, float]
    """Every candidate's estimated chance of being correct."""
    neighbours: int


@dataclass
class Router:
    settings: RouterSettings
    models: list[str]
    mean_cost: list[float]
    accuracy: list[float]
    embeddings: NDArray[np.float32]
    correct: NDArray[np.float32]
    """questions × models: 1 right, 0 wrong."""
    keys: list[str] = field(default_factory=list)
    """A digest of each training question's embedded text (for leave-one-out)."""
    trained_on: str = ""
    _embedded: dict[str, NDArray[np.float32]] = field(default_factory=dict, repr=False)
    _rows: dict[str, list[int]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for row, key in enumerate(self.keys):
            self._rows.setdefault(key, []).append(row)

    def text_of(self, prompt: str) -> str:
        return prompt if self.settings.variant == "baseline" else question_text(prompt)

    def choose(
        self, prompt: str, tradeoff: float | None = None, min_probability: float | None = None
    ) -> Choice:
        """The model for `prompt`: by the trade-off rule, or the cheapest reaching `min_probability`."""
        text = self.text_of(prompt)
        vector = self._embedded.get(text)
        if vector is None:
            vector = embed(self.settings.embedder, [text])[0]
            if len(self._embedded) >= EMBEDDING_CACHE:
                self._embedded.pop(next(iter(self._embedded)))
            self._embedded[text] = vector
        choice = self.choose_embedded(vector, tradeoff, exclude=text_key(text))
        if min_probability is None:
            return choice
        by_cost = sorted(range(len(self.models)), key=lambda i: (self.mean_cost[i], -self.accuracy[i]))
        clearing = [i for i in by_cost if choice.estimates[self.models[i]] >= min_probability]
        best = self.models[clearing[0]] if clearing else max(self.models, key=choice.estimates.__getitem__)
        return Choice(best, choice.estimates[best], choice.estimates, choice.neighbours)

    def choose_embedded(
        self, vector: NDArray[np.float32], tradeoff: float | None = None, exclude: str | None = None
    ) -> Choice:
        """Route an embedded prompt; training questions whose key is `exclude` are not neighbours."""
        settings = self.settings
        similarity = self.embeddings @ vector
        if exclude is not None and exclude in self._rows:
            similarity = similarity.copy()
            similarity[self._rows[exclude]] = -np.inf
        k = max(1, min(settings.k, len(similarity) - len(self._rows.get(exclude or "", []))))
        nearest = np.argpartition(-similarity, k - 1)[:k]
        if settings.variant == "baseline":
            weights = np.ones(k, dtype=np.float32)
            prior = 0.0
        else:
            weights = np.maximum(similarity[nearest], 0.0) + 1e-6
            prior = settings.prior
        rights = weights @ self.correct[nearest]
        estimates = (rights + prior * np.asarray(self.accuracy)) / (weights.sum() + prior)
        cost = np.asarray(self.mean_cost)
        knob = settings.tradeoff if tradeoff is None else tradeoff
        utility = estimates - knob * cost / max(float(cost.max()), 1e-12)
        best = int(np.argmax(utility))
        return Choice(
            model=self.models[best],
            probability=float(estimates[best]),
            estimates={m: round(float(e), 4) for m, e in zip(self.models, estimates, strict=True)},
            neighbours=k,
        )

    # --- files ---

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        payload = {
            "format": FORMAT,
            "settings": self.settings.model_dump(),
            "trained_on": self.trained_on,
            "models": self.models,
            "mean_cost": self.mean_cost,
            "accuracy": self.accuracy,
            "shape": list(self.embeddings.shape),
            "embeddings": base64.b64encode(np.ascontiguousarray(self.embeddings, "<f4").tobytes()).decode(),
            "correct": base64.b64encode(np.ascontiguousarray(self.correct, "u1").tobytes()).decode(),
            "keys": self.keys,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload))
        return path


def load_router(path: str | Path) -> Router:
    """Read a router file; a missing or malformed file is a `UserInputError` naming it."""
    path = Path(path)
    try:
        return _load_cached(str(path.resolve()), path.stat().st_mtime_ns)
    except FileNotFoundError as exc:
        raise UserInputError(
            f"router file {str(path)!r} does not exist (train one: chorus-mcp eval train-router)"
        ) from exc


@functools.lru_cache(maxsize=8)
def _load_cached(path: str, _mtime: int) -> Router:
    try:
        payload = json.loads(Path(path).read_text())
        if payload.get("format") != FORMAT:
            raise ValueError(f"format is {payload.get('format')!r}, expected {FORMAT!r}")
        rows, dim = payload["shape"]
        models = list(payload["models"])
        embeddings = np.frombuffer(base64.b64decode(payload["embeddings"]), "<f4").reshape(rows, dim)
        correct = np.frombuffer(base64.b64decode(payload["correct"]), "u1").reshape(rows, len(models))
        return Router(
            settings=RouterSettings.model_validate(payload["settings"]),
            models=models,
            mean_cost=[float(c) for c in payload["mean_cost"]],
            accuracy=[float(a) for a in payload["accuracy"]],
            embeddings=embeddings.astype(np.float32),
            correct=correct.astype(np.float32),
            keys=[str(k) for k in payload.get("keys", [])],
            trained_on=str(payload.get("trained_on", "")),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise UserInputError(f"router file {path!r} is not a valid Chorus router: {exc}") from exc
