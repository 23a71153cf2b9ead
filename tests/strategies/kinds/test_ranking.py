"""Anonymised peer ranking: members rank each other's answers without names, in a seeded order of their
own, never their own answer; Borda combines what was read, unparsable rankings are counted as such, a
chair writes the answer from the ranked answers."""

from __future__ import annotations

import re

import pytest

from chorus_mcp.strategies.core.completion import CompletionRequest
from chorus_mcp.strategies.core.errors import BadRequest
from chorus_mcp.strategies.core.result import NoteDecision, RankingDecision, StrategyResult
from chorus_mcp.strategies.core.spec import EnsembleSpec
from chorus_mcp.strategies.engine.testing import context_of
from chorus_mcp.strategies.kinds.ensemble import run_ensemble
from chorus_mcp.strategies.kinds.ranking import Ranked, borda, parse_ranking, shown_order
from chorus_mcp.strategies.models.testing import Reply, ScriptedClient

pytestmark = pytest.mark.anyio

QUESTION = CompletionRequest.of("Which planet is the largest? Answer in one sentence.")
ANSWERS = {"a": "Jupiter is the largest planet.", "b": "Saturn is the largest.", "c": "Mars, surely."}
PREFERENCE = ["Jupiter", "Saturn", "Mars"]


def _system(request: CompletionRequest) -> str:
    return next((m.content for m in request.messages if m.role == "system"), "")


def ranks_by(preference: list[str]) -> Reply:
    """A member: answers the question, and when asked to rank, ranks the shown responses by `preference`."""

    def reply(request: CompletionRequest) -> str:
        shown = dict(re.findall(r"Response ([A-Z]):\n(.*)", _system(request)))
        if not shown:
            return ""
        place = {
            label: next(n for n, word in enumerate(preference) if word in text)
            for label, text in shown.items()
        }
        order = sorted(shown, key=lambda label: place[label])
        return "B looks best.\nFINAL RANKING:\n" + "\n".join(
            f"{n}. Response {x}" for n, x in enumerate(order, 1)
        )

    return reply


def member(name: str, ranking: Reply | None = None) -> ScriptedClient:
    return ScriptedClient(name, [ANSWERS[name], ranking if ranking is not None else ranks_by(PREFERENCE)])


def ranking_of(result: StrategyResult) -> RankingDecision:
    found = [d for d in result.decisions if isinstance(d, RankingDecision)]
    assert len(found) == 1, result.decisions
    return found[0]


def test_a_ranking_is_read_from_its_final_line_and_must_name_every_response_once() -> None:
    assert parse_ranking("A is wrong.\nFINAL RANKING:\n1. Response B\n2. Response A", ["A", "B"]) == (
        ["B", "A"],
        None,
    )
    assert parse_ranking("Response A is best", ["A", "B"])[0] is None
    assert parse_ranking("FINAL RANKING: Response B", ["A", "B"]) == (None, "ranked B; shown A, B")


def test_borda_gives_the_first_of_k_k_minus_one_points() -> None:
    scores = borda([["m2", "m3"], ["m1", "m3"], ["m1", "m2"]], ["m1", "m2", "m3"])

    assert scores == {"m1": 2.0, "m2": 1.0, "m3": 0.0}


def test_each_ranker_sees_the_answers_in_an_order_of_its_own_repeatably() -> None:
    others = [Ranked(f"member-{n}", "m", str(n)) for n in range(1, 6)]
    firsts = {shown_order(ranker, others, seed=0)[0].member for ranker in range(8)}

    assert len(firsts) > 1  # no answer is always shown first
    assert shown_order(3, others, seed=0) == shown_order(3, others, seed=0)


async def test_members_rank_each_others_answers_and_borda_picks_the_answer_the_vote_could_not() -> None:
    clients = [member("a"), member("b"), member("c")]
    spec = EnsembleSpec(members=["a", "b", "c"], aggregation="ranking", extract="text")

    result = await run_ensemble(spec, QUESTION, context_of(*clients), "ensemble")

    assert result.ok and result.answer == ANSWERS["a"]
    ranking = ranking_of(result)
    assert (
        ranking.scores == {"member-1": 2.0, "member-2": 1.0, "member-3": 0.0} and ranking.winner == "member-1"
    )
    assert ranking.counted == 3 and ranking.unparsable == 0
    assert [(r.ranker, sorted(r.shown)) for r in ranking.rankings] == [
        ("member-1", ["member-2", "member-3"]),
        ("member-2", ["member-1", "member-3"]),
        ("member-3", ["member-1", "member-2"]),
    ]
    stages = {c.stage for c in result.calls}
    assert {"ensemble/rank-1", "ensemble/rank-2", "ensemble/rank-3"} <= stages
    assert all(c.cost_usd is not None for c in result.calls if "/rank-" in c.stage)


async def test_a_member_never_sees_its_own_answer_nor_anyones_name() -> None:
    clients = [member("a"), member("b"), member("c")]
    spec = EnsembleSpec(members=["a", "b", "c"], aggregation="ranking")

    await run_ensemble(spec, QUESTION, context_of(*clients), "ensemble")

    for client in clients:
        shown = _system(client.requests[1])
        assert ANSWERS[client.name] not in shown and "Response A" in shown
        assert not re.search(r"\b(a|b|c)\b:", shown)


async def test_an_unparsable_ranking_is_counted_as_such_never_as_a_vote() -> None:
    clients = [member("a"), member("b"), member("c", "I like the first one.")]
    spec = EnsembleSpec(members=["a", "b", "c"], aggregation="ranking")

    result = await run_ensemble(spec, QUESTION, context_of(*clients), "ensemble")

    ranking = ranking_of(result)
    assert ranking.counted == 2 and ranking.unparsable == 1
    assert ranking.rankings[2].order is None and (ranking.rankings[2].error or "").startswith("unparsable")
    assert ranking.scores == {"member-1": 1.0, "member-2": 1.0, "member-3": 0.0} and ranking.winner is None
    assert any(
        "tied between member-1, member-2" in d.message
        for d in result.decisions
        if isinstance(d, NoteDecision)
    )


async def test_a_ranker_that_fails_leaves_the_others_rankings_standing() -> None:
    clients = [member("a"), member("b"), member("c", BadRequest("c", "HTTP 400: rejected"))]
    spec = EnsembleSpec(members=["a", "b", "c"], aggregation="ranking")

    result = await run_ensemble(spec, QUESTION, context_of(*clients), "ensemble")

    ranking = ranking_of(result)
    assert ranking.counted == 2 and ranking.unparsable == 0 and ranking.rankings[2].error
    assert any(c.stage == "ensemble/rank-3" and c.status == "error" for c in result.calls)


async def test_the_chair_writes_the_answer_from_the_answers_best_ranked_first() -> None:
    chair = ScriptedClient("chair", "Jupiter, the gas giant, is the largest planet.")
    clients = [member("a"), member("b"), member("c"), chair]
    spec = EnsembleSpec(members=["a", "b", "c"], aggregation="ranking", judge="chair")

    result = await run_ensemble(spec, QUESTION, context_of(*clients), "ensemble")

    assert result.answer == "Jupiter, the gas giant, is the largest planet."
    shown = _system(chair.requests[0])
    assert shown.index(ANSWERS["a"]) < shown.index(ANSWERS["b"]) < shown.index(ANSWERS["c"])
    assert ranking_of(result).chair == "chair" and any(c.stage == "ensemble/chair" for c in result.calls)


async def test_rankers_that_are_samples_of_one_model_are_marked_so() -> None:
    one = ScriptedClient("m", lambda r: ranks_by(PREFERENCE)(r) or "Jupiter is the largest planet.")
    spec = EnsembleSpec(members=["m", "m", "m"], aggregation="ranking")

    result = await run_ensemble(spec, QUESTION, context_of(one), "ensemble")

    assert ranking_of(result).one_model


def test_ranking_needs_three_members() -> None:
    with pytest.raises(ValueError, match="at least 3 members"):
        EnsembleSpec(members=["a", "b"], aggregation="ranking")
