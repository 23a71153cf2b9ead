from __future__ import annotations

from chorus_mcp.strategies.core.voting import Ballot, is_decided, tally, tie_note, vote_decision, winner_of


def test_tally_orders_answers_by_weight_then_by_their_lowest_numbered_voter() -> None:
    ballots = [Ballot(2, "C"), Ballot(0, "B"), Ballot(1, "C"), Ballot(3, "B"), Ballot(4, "A")]

    assert list(tally(ballots).items()) == [("B", 2.0), ("C", 2.0), ("A", 1.0)]


def test_a_tie_goes_to_the_lowest_numbered_member_whatever_the_finishing_order() -> None:
    finished_first = [Ballot(1, "C"), Ballot(0, "B")]
    finished_last = [Ballot(0, "B"), Ballot(1, "C")]

    assert winner_of(finished_first) == winner_of(finished_last) == "B"
    note = tie_note(finished_first)
    assert note is not None and "'B'" in note and "member-1" in note


def test_no_tie_note_without_a_tie() -> None:
    assert tie_note([Ballot(0, "B"), Ballot(1, "B"), Ballot(2, "C")]) is None


def test_weights_can_outvote_a_larger_number_of_members() -> None:
    ballots = [Ballot(0, "A", 3.0), Ballot(1, "B", 1.0), Ballot(2, "B", 1.0)]

    decision = vote_decision("ensemble", "weighted", ballots)

    assert decision.winner == "A" and decision.counts == {"A": 3.0, "B": 2.0}
    assert decision.agreement == 0.6 and decision.consensus


def test_a_vote_is_decided_only_when_the_rest_could_not_overtake_or_tie_the_leader() -> None:
    two_for_b = [Ballot(0, "B"), Ballot(1, "B")]

    assert is_decided(two_for_b, pending_weight=1.0)
    assert not is_decided(two_for_b, pending_weight=2.0)  # 2 more for C would tie
    assert not is_decided([], pending_weight=0.0)
    assert is_decided([Ballot(0, "B", 0.3)], pending_weight=0.25)
    assert not is_decided([Ballot(0, "B", 0.3)], pending_weight=0.1 + 0.2)  # 0.30000000000000004 ties


def test_members_whose_answer_could_not_be_read_lower_the_agreement() -> None:
    ballots = [Ballot(0, "B"), Ballot(1, "B"), Ballot(2, None), Ballot(3, None)]

    decision = vote_decision("ensemble", "majority", ballots)

    assert decision.counts == {"B": 2.0}
    assert decision.agreement == 0.5 and not decision.consensus


def test_nobody_voting_gives_no_winner() -> None:
    decision = vote_decision("ensemble", "majority", [Ballot(0, None)])

    assert decision.winner is None and decision.agreement == 0.0 and not decision.consensus
