"""Bounded debate: members see the others' latest answers without names and may revise their own; the
rounds stop when everyone agrees, nobody changes or the limit is reached; a failed debater keeps its
answer; the vote over the final answers says it is not independent; stances need a moderator."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from chorus_mcp.server.mcp.rendering import text_of
from chorus_mcp.strategies.core.completion import CompletionRequest
from chorus_mcp.strategies.core.errors import BadRequest
from chorus_mcp.strategies.core.result import DebateDecision, NoteDecision, StrategyResult, VoteDecision
from chorus_mcp.strategies.core.spec import EnsembleSpec
from chorus_mcp.strategies.engine.testing import context_of
from chorus_mcp.strategies.kinds.debate import Debater, shown_order
from chorus_mcp.strategies.kinds.ensemble import run_ensemble
from chorus_mcp.strategies.models.testing import Reply, ScriptedClient

pytestmark = pytest.mark.anyio

QUESTION = CompletionRequest.of("Is 91 a prime number? Answer yes or no.")


def _system(request: CompletionRequest) -> str:
    return next((m.content for m in request.messages if m.role == "system"), "")


def _debating(request: CompletionRequest) -> bool:
    return "Your previous answer:" in _system(request)


def stubborn(answer: str) -> Reply:
    """Answers `answer`, in every round."""
    return lambda request: answer


def persuaded(first: str, then: str) -> Reply:
    """Answers `first`; once shown the others' answers, `then`."""
    return lambda request: then if _debating(request) else first


def debate_of(result: StrategyResult) -> DebateDecision:
    found = [d for d in result.decisions if isinstance(d, DebateDecision)]
    assert len(found) == 1, result.decisions
    return found[0]


def vote_of(result: StrategyResult) -> VoteDecision:
    found = [d for d in result.decisions if isinstance(d, VoteDecision)]
    assert len(found) == 1, result.decisions
    return found[0]


def _spec(**fields: object) -> EnsembleSpec:
    raw: dict[str, object] = {"members": ["a", "b", "c"], "aggregation": "debate", "extract": "yes_no"}
    return EnsembleSpec.model_validate(raw | fields)


async def test_a_member_persuaded_in_round_one_changes_its_answer_and_the_debate_stops_on_agreement() -> None:
    a, b = ScriptedClient("a", stubborn("No: 91 = 7 x 13.")), ScriptedClient("b", stubborn("No."))
    c = ScriptedClient("c", persuaded("Yes, 91 is prime.", "No, I was wrong: 7 x 13."))

    result = await run_ensemble(_spec(debate_rounds=3), QUESTION, context_of(a, b, c), "ensemble")

    assert result.ok and result.answer == "no"
    debate = debate_of(result)
    assert [r.number for r in debate.rounds] == [0, 1]
    assert debate.stopped == "every member agrees after round 1" and debate.changed == ["member-3"]
    turn = debate.rounds[1].turns[2]
    assert (turn.seat, turn.changed_from, turn.answer) == ("member-3", "yes", "no")
    assert {c.stage for c in result.calls} >= {f"ensemble/debate-1-{n}" for n in (1, 2, 3)}
    vote = vote_of(result)
    assert vote.counts == {"no": 3.0} and vote.after_debate == 1 and not vote.consensus


async def test_the_rendered_vote_says_the_agreement_came_after_debate_and_is_not_independent() -> None:
    a, b = ScriptedClient("a", stubborn("No.")), ScriptedClient("b", stubborn("No."))
    c = ScriptedClient("c", persuaded("Yes.", "No."))

    result = await run_ensemble(_spec(), QUESTION, context_of(a, b, c), "ensemble")
    text = text_of(result.model_dump(mode="json"), "summary")

    assert "3 of 3 members agree after 1 round of debate (not independent)" in text
    assert "consensus" not in text and "independent voters" not in text
    assert "debate: 1 of 1 round (every member agrees after round 1); member-3 (c) changed yes → no" in text


async def test_members_that_already_agree_are_not_asked_to_debate_and_stay_independent_voters() -> None:
    clients = [ScriptedClient(name, "No.") for name in ("a", "b", "c")]

    result = await run_ensemble(_spec(), QUESTION, context_of(*clients), "ensemble")

    assert all(len(c.requests) == 1 for c in clients)
    assert debate_of(result).stopped == "the members already agreed: no debate was needed"
    vote = vote_of(result)
    assert vote.after_debate == 0 and vote.consensus


async def test_the_rounds_stop_when_nobody_changes_and_at_the_limit_otherwise() -> None:
    unmoved = [ScriptedClient("a", "No."), ScriptedClient("b", "No."), ScriptedClient("c", "Yes.")]
    result = await run_ensemble(_spec(debate_rounds=3), QUESTION, context_of(*unmoved), "ensemble")
    assert debate_of(result).stopped == "no member changed its answer in round 1"
    assert len(unmoved[2].requests) == 2

    flipping = ScriptedClient("c", ["Yes.", "No.", "Yes.", "No."])  # changes its mind every round
    others = [ScriptedClient("a", "No."), ScriptedClient("b", "Yes.")]
    result = await run_ensemble(_spec(debate_rounds=2), QUESTION, context_of(*others, flipping), "ensemble")
    debate = debate_of(result)
    assert debate.stopped == "the round limit (2) was reached" and len(debate.rounds) == 3
    assert len(flipping.requests) == 3


async def test_a_debater_sees_its_own_answer_and_the_others_unnamed_never_its_own_among_them() -> None:
    answers = {"a": "No: 91 = 7 x 13.", "b": "No, it is 7 times 13.", "c": "Yes, 91 is prime."}
    clients = [ScriptedClient(name, stubborn(text)) for name, text in answers.items()]

    await run_ensemble(_spec(), QUESTION, context_of(*clients), "ensemble")

    for client in clients:
        asked = _system(client.requests[1])
        own, others = asked.split("The other participants' answers:")
        assert answers[client.name] in own and answers[client.name] not in others
        assert sorted(re.findall(r"Response ([A-Z]):", others)) == ["A", "B"]
        assert all(text in others for name, text in answers.items() if name != client.name)
        assert not re.search(r"\b(a|b|c)\b:", asked)


def test_each_debater_sees_the_others_in_an_order_of_its_own_per_round_repeatably() -> None:
    others = [Debater(n, f"member-{n + 1}", "m", str(n)) for n in range(5)]
    me = Debater(9, "member-10", "m", "mine")
    firsts = {shown_order(me, others, 0, number)[0].member for number in range(1, 9)}

    assert len(firsts) > 1
    assert shown_order(me, others, 0, 1) == shown_order(me, others, 0, 1)


async def test_a_failed_debater_keeps_its_previous_answer_and_the_failure_is_recorded() -> None:
    a, b = ScriptedClient("a", "No."), ScriptedClient("b", "No.")
    c = ScriptedClient("c", ["Yes.", BadRequest("c", "request rejected (HTTP 400)")])

    result = await run_ensemble(_spec(), QUESTION, context_of(a, b, c), "ensemble")

    turn = debate_of(result).rounds[1].turns[2]
    assert turn.answer == "yes" and turn.error is not None and "HTTP 400" in turn.error
    assert vote_of(result).counts == {"no": 2.0, "yes": 1.0} and result.answer == "no"
    assert any(call.stage == "ensemble/debate-1-3" and call.status == "error" for call in result.calls)


async def test_a_stance_is_put_to_its_member_and_the_moderator_writes_the_answer() -> None:
    pro, con = ScriptedClient("a", "Yes."), ScriptedClient("b", "No.")
    neutral = ScriptedClient("c", "No.")
    moderator = ScriptedClient("judge", "No: 91 = 7 x 13, so it is not prime.")
    spec = _spec(stances=["for", "against", "neutral"], judge="judge")

    result = await run_ensemble(spec, QUESTION, context_of(pro, con, neutral, moderator), "ensemble")

    assert "argue FOR" in _system(pro.requests[1]) and "argue AGAINST" in _system(con.requests[1])
    assert "argue" not in _system(neutral.requests[1])
    assert result.answer == "No: 91 = 7 x 13, so it is not prime."
    debate = debate_of(result)
    assert debate.stances == {"member-1": "for", "member-2": "against"} and debate.moderator == "judge"
    assert "Final answers:" in _system(moderator.requests[0])
    assert any(call.stage == "ensemble/moderator" for call in result.calls)


async def test_when_the_moderator_fails_the_vote_over_the_final_answers_stands_with_a_note() -> None:
    clients = [ScriptedClient("a", "Yes."), ScriptedClient("b", "No."), ScriptedClient("c", "No.")]
    moderator = ScriptedClient("judge", BadRequest("judge", "request rejected (HTTP 400)"))

    result = await run_ensemble(_spec(judge="judge"), QUESTION, context_of(*clients, moderator), "ensemble")

    assert result.ok and result.answer == "no"
    assert any("moderator judge failed" in d.message for d in result.decisions if isinstance(d, NoteDecision))


async def test_every_debate_call_is_charged_to_the_run() -> None:
    a, b = ScriptedClient("a", "No."), ScriptedClient("b", "No.")
    c = ScriptedClient("c", persuaded("Yes.", "No."))

    ctx = context_of(a, b, c)

    result = await run_ensemble(_spec(), QUESTION, ctx, "ensemble")

    assert len(result.calls) == 6 and all(call.cost_usd is not None for call in result.calls)
    assert sum(call.cost_usd or 0 for call in result.calls) == ctx.budget.spent_usd


def test_a_stance_without_a_moderator_or_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(ValidationError, match="needs a 'judge' to moderate"):
        _spec(stances=["for", "against", "neutral"])
    with pytest.raises(ValidationError, match="'stances' has 2 entries for 3 members"):
        _spec(stances=["neutral", "neutral"], judge="j")
    with pytest.raises(ValidationError, match="'stances' are for aggregation 'debate'"):
        EnsembleSpec(members=["a", "b"], stances=["neutral", "neutral"])
    with pytest.raises(ValidationError, match="at least 2 members"):
        EnsembleSpec(members=["a"], aggregation="debate")


async def test_two_copies_of_one_model_debate_as_two_samples_each_with_its_own_seed() -> None:
    copies = ScriptedClient("m", ["No.", "Yes.", "No.", "No.", "No."])  # answers taken in turn
    other = ScriptedClient("o", "Yes.")
    spec = EnsembleSpec(members=["m", "m", "o"], aggregation="debate", extract="yes_no")

    await run_ensemble(spec, QUESTION, context_of(copies, other), "ensemble")

    seeds = [r.seed for r in copies.requests]
    assert seeds[0] is None and seeds[1] is not None  # the second copy is a seeded sample
    debate_seeds = [r.seed for r in copies.requests if _debating(r)]
    assert sorted(debate_seeds, key=str) == sorted([None, seeds[1]], key=str)
