"""A learned correctness predictor: how likely is a model's answer, or a tier's answer, to be right?

Trained on recorded outcomes, it has two heads, each a small L2-penalised logistic regression fitted
in numpy (Newton's method: deterministic, no learning rate to tune):

- **per model, before anything is asked** (`route`): P(model m is right) from the prompt's nearest
  recorded neighbours (the similarity-weighted share m got right, shrunk towards m's overall accuracy,
  as the KNN router estimates it, fed in as log-odds) and the question's length. Routing takes the
  cheapest model whose P clears a bar.
- **per candidate answer, after a tier has answered** (`score_answers`): P(answer a is right) from
  which tier models gave a, each of those models' neighbour estimate, the share of the tier behind
  a, whether the tier is unanimous, and how many distinct answers it gave. A cascade accepts the best
  answer when its P reaches a threshold and escalates otherwise; a vote takes the likeliest answer.

**Cross-fitting.** The training questions are dealt into `folds` folds (by a seeded hash of their
text). Besides the model fitted on everything, one model per fold is fitted without that fold. A
prompt whose text is a training question is scored by the model that never saw it, and its
neighbours never include itself: so scoring (or calibrating a threshold on) the very questions the
predictor was trained on gives out-of-sample figures, not recall. Any other prompt gets the full
model.

Answers are read with `strategies.core.extract` (the format resolved from the prompt and the answers,
as the ensemble does) both when training on recorded responses and when scoring live ones.

The file is JSON (no pickle): settings, models, base64 float32 embeddings, the correctness matrix,
the folds and the weights.
"""

from __future__ import annotations

import base64
import functools
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chorus_mcp.strategies.core.errors import UserInputError
from chorus_mcp.strategies.core.extract import extract, resolve_format
from chorus_mcp.strategies.learned.router import Choice, question_text, text_key
from chorus_mcp.strategies.learned.settings import PredictorSettings
from chorus_mcp.strategies.models.embeddings import EXTRA_HINT, embed

try:
    import numpy as np
    from numpy.typing import NDArray
except ImportError as exc:  # pragma: no cover - depends on the install
    raise UserInputError(f"the correctness predictor needs numpy: {EXTRA_HINT}") from exc

FORMAT = "chorus-predictor/1"
EMBEDDING_CACHE = 4096
NEWTON_STEPS = 25
ROUTE_FEATURES = 3
"""Per model: neighbour log-odds, question length, bias."""


def answer_feature_count(tier_size: int) -> int:
    """Per candidate: tier votes, votes x neighbour log-odds, share, unanimous, 1/distinct, bias."""
    return 2 * tier_size + 4


def _logit(p: NDArray[np.float64]) -> NDArray[np.float64]:
    clipped = np.clip(p, 1e-3, 1 - 1e-3)
    result: NDArray[np.float64] = np.log(clipped / (1 - clipped))
    return result


def _length_feature(text: str) -> float:
    return math.log1p(len(text.split())) / 5.0


def fit_logistic(x: NDArray[np.float64], y: NDArray[np.float64], l2: float) -> NDArray[np.float64]:
    """Weights of an L2-penalised logistic regression (the last column, the bias, is not penalised)."""
    weights = np.zeros(x.shape[1])
    penalty = np.full(x.shape[1], l2)
    penalty[-1] = 1e-6
    for _ in range(NEWTON_STEPS):
        p = 1.0 / (1.0 + np.exp(-(x @ weights)))
        gradient = x.T @ (p - y) + penalty * weights
        hessian = (x.T * (p * (1 - p))) @ x + np.diag(penalty)
        step = np.linalg.solve(hessian, gradient)
        weights -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    return weights


def _sigmoid(z: NDArray[np.float64]) -> NDArray[np.float64]:
    result: NDArray[np.float64] = 1.0 / (1.0 + np.exp(-z))
    return result


def read_answers(prompt: str, texts: Mapping[str, str | None]) -> dict[str, str | None]:
    """Each model's answer key (None: no readable answer), read as the ensemble reads answers."""
    given = [t for t in texts.values() if t is not None]
    fmt = resolve_format("auto", prompt, given)
    return {model: None if text is None else extract(text, fmt) for model, text in texts.items()}


@dataclass
class Predictor:
    settings: PredictorSettings
    models: list[str]
    """Every model the predictor knows (the route head's candidates; the tier is among them)."""
    tier: list[str]
    mean_cost: list[float]
    accuracy: list[float]
    embeddings: NDArray[np.float32]
    correct: NDArray[np.float32]
    """training questions × models: 1 right, 0 wrong."""
    keys: list[str]
    folds: list[int]
    route_weights: NDArray[np.float64]
    """(folds + 1) × models × ROUTE_FEATURES; the last slice is the model fitted on everything."""
    answer_weights: NDArray[np.float64]
    """(folds + 1) × answer features."""
    trained_on: str = ""
    _embedded: dict[str, NDArray[np.float32]] = field(default_factory=dict, repr=False)
    _rows: dict[str, list[int]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for row, key in enumerate(self.keys):
            self._rows.setdefault(key, []).append(row)

    # --- what the heads read ---

    def _vector(self, text: str) -> NDArray[np.float32]:
        vector = self._embedded.get(text)
        if vector is None:
            vector = embed(self.settings.embedder, [text])[0]
            if len(self._embedded) >= EMBEDDING_CACHE:
                self._embedded.pop(next(iter(self._embedded)))
            self._embedded[text] = vector
        return vector

    def _slot(self, key: str) -> int:
        """Which fitted model scores a text: its fold's if it was a training question, else the full one."""
        rows = self._rows.get(key)
        return self.folds[rows[0]] if rows else self.settings.folds

    def neighbour_estimates(self, vector: NDArray[np.float32], exclude: str | None) -> NDArray[np.float64]:
        """Each model's similarity-weighted share of right answers among the nearest training questions."""
        similarity = self.embeddings @ vector
        excluded = self._rows.get(exclude or "", [])
        if excluded:
            similarity = similarity.copy()
            similarity[excluded] = -np.inf
        k = max(1, min(self.settings.k, len(similarity) - len(excluded)))
        nearest = np.argpartition(-similarity, k - 1)[:k]
        weights = np.maximum(similarity[nearest], 0.0).astype(np.float64) + 1e-6
        prior = self.settings.prior
        rights = weights @ self.correct[nearest].astype(np.float64)
        result: NDArray[np.float64] = (rights + prior * np.asarray(self.accuracy)) / (weights.sum() + prior)
        return result

    def _context(self, prompt: str) -> tuple[str, NDArray[np.float64], int]:
        text = question_text(prompt)
        key = text_key(text)
        return text, self.neighbour_estimates(self._vector(text), exclude=key), self._slot(key)

    # --- the route head ---

    def model_probabilities(self, prompt: str) -> dict[str, float]:
        """P(right) per model for `prompt`, before any model is asked."""
        text, estimates, slot = self._context(prompt)
        features = route_features(estimates, text)
        scores = _sigmoid(np.einsum("mf,mf->m", features, self.route_weights[slot]))
        return {m: float(p) for m, p in zip(self.models, scores, strict=True)}

    def route(self, prompt: str, min_probability: float) -> Choice:
        """The cheapest model whose P(right) reaches `min_probability`; if none does, the likeliest."""
        estimates = self.model_probabilities(prompt)
        by_cost = sorted(range(len(self.models)), key=lambda i: (self.mean_cost[i], -self.accuracy[i]))
        clearing = [i for i in by_cost if estimates[self.models[i]] >= min_probability]
        best = clearing[0] if clearing else max(by_cost, key=lambda i: estimates[self.models[i]])
        return Choice(
            model=self.models[best],
            probability=estimates[self.models[best]],
            estimates={m: round(p, 4) for m, p in estimates.items()},
            neighbours=min(self.settings.k, len(self.keys)),
        )

    # --- the answer head ---

    def score_answers(self, prompt: str, answers: Mapping[str, str | None]) -> dict[str, float]:
        """P(right) of every distinct answer the tier gave; `answers`: tier model → answer key or None.

        A tier model missing from `answers` (it failed) counts as having given no answer.
        """
        unknown = sorted(set(answers) - set(self.tier))
        if unknown:
            raise UserInputError(f"the predictor's tier is {self.tier}; it cannot read answers of {unknown}")
        keys = [answers.get(m) for m in self.tier]
        _, estimates, slot = self._context(prompt)
        tier_estimates = estimates[[self.models.index(m) for m in self.tier]]
        candidates = sorted({k for k in keys if k is not None})
        if not candidates:
            return {}
        features = answer_features(keys, candidates, tier_estimates)
        scores = _sigmoid(features @ self.answer_weights[slot])
        return {c: float(p) for c, p in zip(candidates, scores, strict=True)}

    # --- files ---

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        payload = {
            "format": FORMAT,
            "settings": self.settings.model_dump(),
            "trained_on": self.trained_on,
            "models": self.models,
            "tier": self.tier,
            "mean_cost": self.mean_cost,
            "accuracy": self.accuracy,
            "shape": list(self.embeddings.shape),
            "embeddings": _encode(self.embeddings, "<f4"),
            "correct": _encode(self.correct, "u1"),
            "keys": self.keys,
            "folds": self.folds,
            "route_weights": self.route_weights.tolist(),
            "answer_weights": self.answer_weights.tolist(),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload))
        return path


def route_features(estimates: NDArray[np.float64], text: str) -> NDArray[np.float64]:
    """models × ROUTE_FEATURES for one question."""
    features = np.ones((len(estimates), ROUTE_FEATURES))
    features[:, 0] = _logit(estimates)
    features[:, 1] = _length_feature(text)
    return features


def answer_features(
    keys: Sequence[str | None], candidates: Sequence[str], tier_estimates: NDArray[np.float64]
) -> NDArray[np.float64]:
    """candidates × answer features for one question; `keys` are the tier's answers in tier order."""
    size = len(keys)
    distinct = len({k for k in keys if k is not None})
    odds = _logit(tier_estimates)
    rows = np.zeros((len(candidates), answer_feature_count(size)))
    for row, candidate in enumerate(candidates):
        votes = np.array([1.0 if k == candidate else 0.0 for k in keys])
        rows[row, :size] = votes
        rows[row, size : 2 * size] = votes * odds
        rows[row, 2 * size] = votes.sum() / size
        rows[row, 2 * size + 1] = float(votes.sum() == size)
        rows[row, 2 * size + 2] = 1.0 / max(distinct, 1)
        rows[row, 2 * size + 3] = 1.0
    return rows


def _encode(array: NDArray[Any], dtype: str) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype).tobytes()).decode()


# --- reading files -----------------------------------------------------------------------------------


def is_predictor_file(path: str | Path) -> bool:
    """Whether `path` holds a predictor (rather than a KNN router); False for anything unreadable."""
    try:
        with Path(path).open(encoding="utf-8") as handle:
            head = handle.read(256)
    except (OSError, UnicodeDecodeError):
        return False
    return re.search(rf'"format"\s*:\s*"{re.escape(FORMAT)}"', head) is not None


def load_predictor(path: str | Path) -> Predictor:
    """Read a predictor file; a missing or malformed file is a `UserInputError` naming it."""
    path = Path(path)
    try:
        return _load_cached(str(path.resolve()), path.stat().st_mtime_ns)
    except FileNotFoundError as exc:
        raise UserInputError(
            f"predictor file {str(path)!r} does not exist (train one: chorus-mcp eval train-predictor)"
        ) from exc


@functools.lru_cache(maxsize=8)
def _load_cached(path: str, _mtime: int) -> Predictor:
    try:
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
            raise ValueError(f"format is {found!r}, expected {FORMAT!r}")
        settings = PredictorSettings.model_validate(payload["settings"])
        models = [str(m) for m in payload["models"]]
        tier = [str(m) for m in payload["tier"]]
        rows, dim = payload["shape"]
        embeddings = np.frombuffer(base64.b64decode(payload["embeddings"]), "<f4").reshape(rows, dim)
        correct = np.frombuffer(base64.b64decode(payload["correct"]), "u1").reshape(rows, len(models))
        route_weights = np.asarray(payload["route_weights"], dtype=np.float64)
        answer_weights = np.asarray(payload["answer_weights"], dtype=np.float64)
        slots = settings.folds + 1
        if route_weights.shape != (slots, len(models), ROUTE_FEATURES):
            raise ValueError(f"route_weights has shape {route_weights.shape}")
        if answer_weights.shape != (slots, answer_feature_count(len(tier))):
            raise ValueError(f"answer_weights has shape {answer_weights.shape}")
        keys = [str(k) for k in payload["keys"]]
        folds = [int(f) for f in payload["folds"]]
        if len(keys) != rows or len(folds) != rows:
            raise ValueError(f"{rows} embeddings but {len(keys)} keys and {len(folds)} folds")
        if any(m not in models for m in tier):
            raise ValueError(f"tier {tier} is not among the models {models}")
        return Predictor(
            settings=settings,
            models=models,
            tier=tier,
            mean_cost=[float(c) for c in payload["mean_cost"]],
            accuracy=[float(a) for a in payload["accuracy"]],
            embeddings=embeddings.astype(np.float32),
            correct=correct.astype(np.float32),
            keys=keys,
            folds=folds,
            route_weights=route_weights,
            answer_weights=answer_weights,
            trained_on=str(payload.get("trained_on", "")),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise UserInputError(f"predictor file {path!r} is not a valid Chorus predictor: {exc}") from exc
