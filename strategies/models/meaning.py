"""Grouping free-text answers that say the same thing in other words, with a text embedder.

`strategies.core.answers` reads short answers into keys that compare exactly; two paragraphs that give
the same explanation in different words do not. Here the answers whose keys are free text are embedded,
and an answer joins the first earlier group whose every member is at least `threshold` similar (cosine)
AND carries the same literals (`strategies.core.literals`: numbers, names, identifiers, negations), so
"O(n log n)" never joins "O(n^2)" however close the sentences around them are. The threshold is
calibrated on the labelled set in bench/data/equivalence (`bench/answer_equivalence.py`).

The embedder is optional (the `eval` extra brings WordLlama): without it, free-text answers keep their
exact keys and the decision trail says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from chorus_mcp.strategies.core.answers import AnswerKey
from chorus_mcp.strategies.core.errors import ChorusError
from chorus_mcp.strategies.core.literals import literals
from chorus_mcp.strategies.models.embeddings import aembed

DEFAULT_EMBEDDER = "wordllama"
DEFAULT_THRESHOLD = 0.80
"""Least cosine similarity for two free-text answers to be one vote (WordLlama; see BENCHMARKS.md)."""


@dataclass(frozen=True)
class MeaningGroups:
    keys: list[str | None]
    """Each answer's vote key after grouping (a grouped answer takes its group's first key)."""
    note: str | None
    """What was done, for the decision trail; None when there was nothing to group."""


MEANING_WORDS = 4
"""Text answers of at least this many words are compared by meaning too: below it, a short answer's
key ("paris", "jane austen") says all there is, and embeddings of names or single words mislead."""


def is_free_text(key: AnswerKey, answer: str) -> bool:
    """Whether an answer is compared by meaning: a text answer of at least `MEANING_WORDS` words."""
    return key.kind == "text" and len(answer.split()) >= MEANING_WORDS


async def group_by_meaning(
    answers: Sequence[str],
    keys: Sequence[AnswerKey],
    vote_keys: Sequence[str | None],
    *,
    embedder: str = DEFAULT_EMBEDDER,
    threshold: float = DEFAULT_THRESHOLD,
) -> MeaningGroups:
    """`vote_keys` with the free-text answers that mean the same grouped under one key."""
    free = [n for n, key in enumerate(keys) if is_free_text(key, answers[n]) and vote_keys[n] is not None]
    if len({vote_keys[n] for n in free}) < 2:
        return MeaningGroups(list(vote_keys), None)
    try:
        vectors = (await aembed(embedder, [answers[n] for n in free])).vectors
    except ChorusError as exc:  # the embedder is not installed, or a remote one failed
        return MeaningGroups(list(vote_keys), f"free-text answers compared as written ({exc.message})")
    grouped = list(vote_keys)
    groups: list[list[int]] = []
    merged = 0
    for row, answer in enumerate(free):
        home = None
        for group in groups:
            if all(
                float(vectors[row] @ vectors[other]) >= threshold
                and literals(answers[answer]) == literals(answers[free[other]])
                for other in group
            ):
                home = group
                break
        if home is None:
            groups.append([row])
            continue
        home.append(row)
        if grouped[answer] != grouped[free[home[0]]]:
            merged += 1
        grouped[answer] = grouped[free[home[0]]]
    note = f"free-text answers grouped by meaning ({embedder}, cosine ≥ {threshold:g}, same literals)"
    if merged:
        note += f": {merged} answer(s) joined an earlier one"
    return MeaningGroups(grouped, note)
