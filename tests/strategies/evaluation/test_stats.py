from __future__ import annotations

from fractions import Fraction
from math import comb

import pytest

from chorus_mcp.strategies.evaluation.stats import (
    accuracy_interval,
    compare,
    format_p,
    mcnemar_exact,
    resample_indices,
)

pytest.importorskip("numpy")


@pytest.mark.parametrize(
    ("wins", "losses", "expected"),
    [(0, 0, 1.0), (0, 5, 0.0625), (5, 0, 0.0625), (1, 11, 26 / 4096), (3, 3, 1.0), (2, 3, 1.0)],
)
def test_exact_mcnemar_is_the_two_sided_binomial_tail(wins: int, losses: int, expected: float) -> None:
    assert mcnemar_exact(wins, losses) == pytest.approx(expected)


def test_exact_mcnemar_matches_a_rational_computation_and_survives_large_counts() -> None:
    for wins, losses in [(4, 17), (30, 52), (7, 7), (0, 40)]:
        n = wins + losses
        exact = min(Fraction(1), 2 * Fraction(sum(comb(n, i) for i in range(min(wins, losses) + 1)), 2**n))
        assert mcnemar_exact(wins, losses) == pytest.approx(float(exact), rel=1e-12)
    assert mcnemar_exact(700, 700) == 1.0
    assert 0.0 <= mcnemar_exact(0, 1500) < 1e-300
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 2)


def test_the_accuracy_interval_holds_the_accuracy_is_seeded_and_narrows_with_more_questions() -> None:
    small = [i % 4 != 0 for i in range(40)]  # 0.75
    large = small * 10
    low, high = accuracy_interval(small, seed=1)
    assert low < 0.75 < high
    assert accuracy_interval(small, seed=1) == (low, high)
    assert (resample_indices(40, 1) == resample_indices(40, 1)).all()
    assert (resample_indices(40, 1) != resample_indices(40, 2)).any()
    large_low, large_high = accuracy_interval(large, seed=1)
    assert large_high - large_low < (high - low) / 2
    assert accuracy_interval([True] * 30, seed=0) == (1.0, 1.0)
    assert accuracy_interval([], seed=0) == (0.0, 0.0)


def test_a_paired_comparison_separates_a_real_loss_from_noise() -> None:
    reference = [True] * 90 + [False] * 10
    identical = compare(reference, reference, seed=0)
    assert identical.verdict == "within noise" and (identical.low, identical.high) == (0.0, 0.0)
    # 12 questions the strategy misses where the reference is right, 1 the other way round.
    worse = [False] * 12 + [True] * 78 + [True] + [False] * 9
    loss = compare(worse, reference, seed=0)
    assert (loss.wins, loss.losses) == (1, 12) and loss.verdict == "worse"
    assert loss.difference == pytest.approx(-0.11) and loss.high < 0
    assert loss.describe().startswith("-11.0 pts [") and loss.describe().endswith("+1/-12, p=0.003: worse")
    # Two questions either way of a 100: the same accuracy, and within noise.
    swapped = [False, False] + [True] * 88 + [True, True] + [False] * 8
    assert compare(swapped, reference, seed=0).verdict == "within noise"
    with pytest.raises(ValueError, match="same questions"):
        compare([True], [True, False], seed=0)


def test_p_values_below_a_thousandth_are_shown_as_such() -> None:
    assert format_p(0.0001) == "<0.001" and format_p(0.0456) == "0.046"
