"""`Budget`: reservations and charges, alone and under a shared parent."""

from __future__ import annotations

from decimal import Decimal

from chorus_mcp.strategies.engine.context import Budget


def test_a_reservation_that_would_break_the_cap_is_refused_and_holds_nothing() -> None:
    budget = Budget(max_cost_usd=Decimal("1.0"))
    assert budget.reserve(Decimal("0.6"))
    assert not budget.reserve(Decimal("0.5"))
    assert budget.reserved_usd == Decimal("0.6") and budget.left_usd() == Decimal("0.4")


def test_two_budgets_under_one_parent_together_respect_the_parent_s_cap() -> None:
    session = Budget(max_cost_usd=Decimal("1.5"))
    first, second = Budget(max_cost_usd=Decimal("1.5"), parent=session), Budget(parent=session)

    assert first.reserve(Decimal("1.0"))
    assert not second.reserve(Decimal("1.0"))  # alone it would fit its own (no) cap
    assert second.left_usd() == Decimal("0.5")

    first.release(Decimal("1.0"))
    first.charge(Decimal("0.8"))
    assert session.spent_usd == Decimal("0.8") and session.reserved_usd == 0
    assert second.reserve(Decimal("0.7")) and not second.reserve(Decimal("0.1"))


def test_a_child_s_own_cap_still_applies_under_a_roomier_parent() -> None:
    child = Budget(max_cost_usd=Decimal("0.2"), parent=Budget(max_cost_usd=Decimal("10")))
    assert not child.reserve(Decimal("0.3"))
    assert child.parent is not None and child.parent.reserved_usd == 0
