"""Training the learned parts offline, on a recorded dataset: a KNN router and a correctness predictor.

What they learn is saved to a file that the run-time halves (`strategies.learned`) load.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from chorus_mcp.strategies.core.errors import UserInputError
from chorus_mcp.strategies.evaluation.datasets import Dataset, Question
from chorus_mcp.strategies.evaluation.grading import gold_of, grade
from chorus_mcp.strategies.learned.predictor import (
    ROUTE_FEATURES,
    Predictor,
    answer_feature_count,
    answer_features,
    fit_logistic,
    read_answers,
    route_features,
)
from chorus_mcp.strategies.learned.router import Router, question_text, text_key
from chorus_mcp.strategies.learned.settings import PredictorSettings, RouterSettings
from chorus_mcp.strategies.models.embeddings import EXTRA_HINT, embed

try:
    import numpy as np
    from numpy.typing import NDArray
except ImportError as exc:  # the eval extra
    raise UserInputError(f"training needs numpy: {EXTRA_HINT}") from exc


def train_router(dataset: Dataset, settings: RouterSettings) -> Router:
    """Fit a router on every question of `dataset` (give it the calibration split, not the report one)."""
    models = list(settings.models) or list(dataset.models)
    unknown = [m for m in models if m not in dataset.models]
    if unknown:
        raise UserInputError(f"router models {unknown} are not in the dataset ({', '.join(dataset.models)})")
    if not dataset.questions:
        raise UserInputError("cannot train a router on an empty dataset")
    correct = np.zeros((len(dataset.questions), len(models)), dtype=np.float32)
    costs = np.zeros(len(models))
    for row, question in enumerate(dataset.questions):
        gold = gold_of(question)
        for column, model in enumerate(models):
            outcome = question.outcomes.get(model)
            if outcome is None:
                continue
            correct[row, column] = grade(question, outcome.response, gold).correct
            costs[column] += float(outcome.cost_usd or 0)
    text = (lambda p: p) if settings.variant == "baseline" else question_text
    texts = [text(q.prompt) for q in dataset.questions]
    embeddings = embed(settings.embedder, texts)
    return Router(
        settings=settings,
        models=models,
        mean_cost=[float(c) for c in costs / len(dataset.questions)],
        accuracy=[float(a) for a in correct.mean(axis=0)],
        embeddings=embeddings,
        correct=correct,
        keys=[text_key(t) for t in texts],
        trained_on=f"{dataset.name} ({len(dataset.questions)} questions)",
    )


def _fold_of(seed: int, key: str, folds: int) -> int:
    return int(hashlib.sha256(f"{seed}\0{key}".encode()).hexdigest()[:8], 16) % folds


def _leave_one_out_estimates(predictor: Predictor) -> NDArray[np.float64]:
    """Every training question's neighbour estimates, itself (and its duplicates) left out.

    One question at a time, so memory stays linear in the number of training questions."""
    result = np.zeros((len(predictor.keys), len(predictor.models)))
    for row, key in enumerate(predictor.keys):
        result[row] = predictor.neighbour_estimates(predictor.embeddings[row], key)
    return result


def _outcome_texts(question: Question, tier: Sequence[str]) -> dict[str, str | None]:
    return {m: (question.outcomes[m].response if m in question.outcomes else None) for m in tier}


def train_predictor(dataset: Dataset, settings: PredictorSettings) -> Predictor:
    """Fit a predictor on every question of `dataset` (give it the calibration split, not the report one)."""
    models = list(settings.models) or list(dataset.models)
    for model in settings.tier:
        if model not in models:
            models.append(model)
    unknown = [m for m in models if m not in dataset.models]
    if unknown:
        raise UserInputError(
            f"predictor models {unknown} are not in the dataset ({', '.join(dataset.models)})"
        )
    if len(dataset.questions) < 2 * settings.folds:
        raise UserInputError(
            f"cannot train a predictor with {settings.folds} folds on {len(dataset.questions)} questions "
            f"(at least {2 * settings.folds} needed)"
        )
    questions = dataset.questions
    correct = np.zeros((len(questions), len(models)), dtype=np.float32)
    costs = np.zeros(len(models))
    for row, question in enumerate(questions):
        for column, model in enumerate(models):
            outcome = question.outcomes.get(model)
            if outcome is None:
                continue
            correct[row, column] = grade(question, outcome.response).correct
            costs[column] += float(outcome.cost_usd or 0)
    texts = [question_text(q.prompt) for q in questions]
    keys = [text_key(t) for t in texts]
    folds = [_fold_of(settings.seed, key, settings.folds) for key in keys]
    slots = settings.folds + 1
    predictor = Predictor(
        settings=settings,
        models=models,
        tier=list(settings.tier),
        mean_cost=[float(c) for c in costs / len(questions)],
        accuracy=[float(a) for a in correct.mean(axis=0)],
        embeddings=embed(settings.embedder, texts),
        correct=correct,
        keys=keys,
        folds=folds,
        route_weights=np.zeros((slots, len(models), ROUTE_FEATURES)),
        answer_weights=np.zeros((slots, answer_feature_count(len(settings.tier)))),
        trained_on=f"{dataset.name} ({len(questions)} questions)",
    )
    estimates = _leave_one_out_estimates(predictor)
    fold_of_row = np.asarray(folds)

    # Route head: one regression per model, over the training questions.
    route_x = np.stack([route_features(estimates[row], texts[row]) for row in range(len(questions))])
    for slot in range(slots):
        keep = fold_of_row != slot  # the last slot (== folds) keeps every question
        for column in range(len(models)):
            predictor.route_weights[slot, column] = fit_logistic(
                route_x[keep, column], correct[keep, column].astype(np.float64), settings.l2
            )

    # Answer head: one row per distinct answer the tier gave to a question, labelled by its grade.
    if settings.tier:
        tier_columns = [models.index(m) for m in settings.tier]
        x_rows: list[NDArray[np.float64]] = []
        labels: list[float] = []
        owners: list[int] = []
        for row, question in enumerate(questions):
            texts_given = _outcome_texts(question, settings.tier)
            answers = read_answers(question.prompt, texts_given)
            tier_keys = [answers[m] for m in settings.tier]
            candidates = sorted({k for k in tier_keys if k is not None})
            if not candidates:
                continue
            x_rows.append(answer_features(tier_keys, candidates, estimates[row, tier_columns]))
            for candidate in candidates:
                giver = next(m for m in settings.tier if answers[m] == candidate)
                labels.append(float(grade(question, texts_given[giver]).correct))
                owners.append(row)
        if not x_rows:
            raise UserInputError(
                f"no question of {dataset.name} has a readable answer from the tier {settings.tier}"
            )
        answer_x = np.concatenate(x_rows)
        answer_y = np.asarray(labels)
        answer_fold = fold_of_row[np.asarray(owners)]
        for slot in range(slots):
            keep = answer_fold != slot
            predictor.answer_weights[slot] = fit_logistic(answer_x[keep], answer_y[keep], settings.l2)
    return predictor
