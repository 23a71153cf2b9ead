from __future__ import annotations

from chorus_mcp.strategies.core.voting import Ballot, count, is_decided, tally, tie_of, vote_decision


def test_tally_orders_answers_by_weight() -> None:
    ballots = [Ballot(2, "C"), Ballot(0, "B"), Ballot(1, "C"), Ballot(3, "B"), Ballot(4, "A")]

    assert list(tally(ballots).values()) == [2.0, 2.0, 1.0]
    assert set(tally(ballots)) == {"B", "C", "A"}


def test_a_tie_is_reported_as_a_tie_whatever_the_member_order() -> None:
    for ballots in ([Ballot(1, "C"), Ballot(0, "B")], [Ballot(0, "B"), Ballot(1, "C")]):
        decision = vote_decision("ensemble", "majority", ballots)

        assert decision.winner is None and not decision.consensus
        assert sorted(decision.tie or []) == ["B", "C"] and decision.tie_break == "unresolved"
        assert sorted(tie_of(ballots)) == ["B", "C"]


def test_a_tie_broken_by_a_rule_names_the_rule() -> None:
    decision = vote_decision(
        "ensemble", "majority", [Ballot(0, "B"), Ballot(1, "C")], winner="C", tie_break="judge"
    )

    assert decision.winner == "C" and decision.tie_break == "judge" and decision.tie == ["B", "C"]
    assert not decision.consensus  # half the voters behind it is no majority


def test_no_tie_without_a_tie() -> None:
    decision = vote_decision("ensemble", "majority", [Ballot(0, "B"), Ballot(1, "B"), Ballot(2, "C")])

    assert decision.tie is None and decision.tie_break is None and decision.winner == "B"


def test_the_same_voter_giving_the_same_answer_counts_once() -> None:
    ballots = [Ballot(0, "no", voter="local", model="local"), Ballot(1, "no", voter="local", model="local")]

    decision = vote_decision("ensemble", "majority", ballots)

    assert decision.voters == 1 and decision.seats == 2 and decision.counts == {"no": 1.0}
    assert not decision.consensus  # one independent voter agrees with itself
    assert decision.groups[0].models == ["local", "local"] and decision.groups[0].echoes == [
        "member-2 (local)"
    ]


def test_the_same_voter_giving_a_different_answer_is_an_independent_sample() -> None:
    ballots = [Ballot(0, "yes", voter="m"), Ballot(1, "no", voter="m"), Ballot(2, "yes", voter="m")]

    split = count(ballots)

    assert [b.member for b in split.counted] == [0, 1] and [b.member for b in split.echoes] == [2]


def test_voters_of_their_own_are_never_echoes() -> None:
    ballots = [Ballot(0, "B"), Ballot(1, "B"), Ballot(2, "B")]

    decision = vote_decision("ensemble", "majority", ballots)

    assert decision.voters == 3 and decision.consensus and decision.agreement == 1.0


def test_groups_list_each_answer_with_its_models_strongest_first() -> None:
    ballots = [Ballot(0, "381", model="m1"), Ballot(1, "391", model="m2"), Ballot(2, "391", model="m3")]

    groups = vote_decision("ensemble", "majority", ballots).groups

    assert [(g.answer, g.models, g.weight) for g in groups] == [
        ("391", ["m2", "m3"], 2.0),
        ("381", ["m1"], 1.0),
    ]


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


def test_counted_voters_that_are_all_samples_of_one_model_are_marked_one_model() -> None:
    ballots = [Ballot(n, "no", voter=("m", n), source="m") for n in range(3)]

    decision = vote_decision("ensemble", "majority", ballots)

    assert decision.voters == 3 and decision.one_model and decision.consensus


def test_voters_from_two_models_or_of_unknown_source_are_not_one_model() -> None:
    two = [Ballot(0, "no", voter=("m", 0), source="m"), Ballot(1, "no", voter=("k", 0), source="k")]
    unknown = [Ballot(0, "no", voter=("m", 0), source="m"), Ballot(1, "no")]
    single = [Ballot(0, "no", voter=("m", 0), source="m")]

    assert not any(vote_decision("e", "majority", b).one_model for b in (two, unknown, single))
