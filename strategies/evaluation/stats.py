"""How sure a reported figure is: bootstrap intervals for accuracies, exact McNemar tests for pairs.

- **Accuracy interval**: the 2.5th and 97.5th percentiles of the accuracy over `RESAMPLES` bootstrap
  resamples of the questions (drawn with replacement, numpy's seeded generator). Every strategy of a
  report is resampled with the *same* draws, so their intervals are comparable.
- **Paired comparison with the reference** on the same questions: the questions one got right and the
  other wrong (`wins`, `losses`) are all that tell two strategies apart. Under "no difference" each
  such question is a fair coin, so the exact two-sided McNemar p-value is the binomial tail
  `min(1, 2 * P(X <= min(wins, losses)))` for X ~ Binomial(wins + losses, 1/2), computed with exact
  integers. The accuracy difference gets a paired bootstrap interval (the same resamples applied to
  both). A difference is *significant* when p < `ALPHA`; otherwise it is **within noise**, which is
  not the same as "equal": the interval says how large a difference the data cannot rule out.

One question of n moves an accuracy by 1/n (0.19 points on a 519-question half): differences of a few
questions are what these tests are for.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from chorus_mcp.strategies.core.errors import UserInputError
from chorus_mcp.strategies.models.embeddings import EXTRA_HINT

try:
    import numpy as np
    from numpy.typing import NDArray
except ImportError as exc:  # the eval extra
    raise UserInputError(f"bootstrap intervals need numpy: {EXTRA_HINT}") from exc

RESAMPLES = 2000
LEVEL = 0.95
ALPHA = 0.05

Verdict = Literal["better", "worse", "within noise"]


@dataclass(frozen=True)
class Comparison:
    """A strategy against the reference, on the same questions."""

    wins: int
    """Questions the strategy got right and the reference wrong."""
    losses: int
    """Questions the reference got right and the strategy wrong."""
    p_value: float
    """Exact two-sided McNemar p-value."""
    difference: float
    """Accuracy minus the reference's."""
    low: float
    high: float
    """The difference's paired bootstrap interval."""

    @property
    def verdict(self) -> Verdict:
        if self.p_value >= ALPHA or self.wins == self.losses:
            return "within noise"
        return "better" if self.wins > self.losses else "worse"

    def describe(self) -> str:
        """E.g. `-1.9 pts [-3.1, -0.8], +1/-11, p=0.006: worse`."""
        return (
            f"{100 * self.difference:+.1f} pts [{100 * self.low:+.1f}, {100 * self.high:+.1f}], "
            f"+{self.wins}/-{self.losses}, p={format_p(self.p_value)}: {self.verdict}"
        )


def format_p(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def mcnemar_exact(wins: int, losses: int) -> float:
    """The exact two-sided McNemar p-value for `wins` and `losses` discordant questions."""
    if wins < 0 or losses < 0:
        raise ValueError("counts must not be negative")
    n = wins + losses
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(wins, losses) + 1))
    # Exact integers: 2**n overflows a float past n = 1023, the ratio does not.
    ratio: float = 2 * tail / (1 << n)
    return min(1.0, ratio)


def resample_indices(count: int, seed: int, resamples: int = RESAMPLES) -> NDArray[np.int64]:
    """`resamples` x `count` question indices drawn with replacement, fixed by `seed`."""
    return np.random.default_rng(seed).integers(0, count, size=(resamples, count))


def accuracy_interval(
    hits: Sequence[bool], seed: int, *, indices: NDArray[np.int64] | None = None, level: float = LEVEL
) -> tuple[float, float]:
    """The bootstrap interval of the share of `hits` that are True; (0, 0) for no questions."""
    if not hits:
        return 0.0, 0.0
    draws = resample_indices(len(hits), seed) if indices is None else indices
    means = np.asarray(hits, dtype=np.float64)[draws].mean(axis=1)
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def compare(
    hits: Sequence[bool],
    reference: Sequence[bool],
    seed: int,
    *,
    indices: NDArray[np.int64] | None = None,
    level: float = LEVEL,
) -> Comparison:
    """`hits` against `reference`, question by question (the same questions in the same order)."""
    if len(hits) != len(reference):
        raise ValueError(f"paired figures need the same questions ({len(hits)} vs {len(reference)})")
    wins = sum(a and not b for a, b in zip(hits, reference, strict=True))
    losses = sum(b and not a for a, b in zip(hits, reference, strict=True))
    if not hits:
        return Comparison(0, 0, 1.0, 0.0, 0.0, 0.0)
    draws = resample_indices(len(hits), seed) if indices is None else indices
    delta = np.asarray(hits, dtype=np.float64) - np.asarray(reference, dtype=np.float64)
    means = delta[draws].mean(axis=1)
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(means, [tail, 100 - tail])
    return Comparison(
        wins=wins,
        losses=losses,
        p_value=mcnemar_exact(wins, losses),
        difference=float(delta.mean()),
        low=float(low),
        high=float(high),
    )
