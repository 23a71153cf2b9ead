from __future__ import annotations

from decimal import Decimal

import pytest

from chorus_mcp.strategies.core.completion import CompletionRequest
from chorus_mcp.strategies.core.errors import AuthenticationFailed, BadRequest
from chorus_mcp.strategies.core.result import CallRecord, NoteDecision, StrategyResult, VoteDecision
from chorus_mcp.strategies.core.spec import CascadeSpec, EnsembleSpec, StrategyRef
from chorus_mcp.strategies.engine.context import RunContext
from chorus_mcp.strategies.engine.runner import run_step, run_strategy
from chorus_mcp.strategies.engine.testing import context_of
from chorus_mcp.strategies.kinds.ensemble import run_ensemble, sample_seed
from chorus_mcp.strategies.models.catalog import ModelCatalog, ModelEntry
from chorus_mcp.strategies.models.testing import ScriptedClient

pytestmark = pytest.mark.anyio

QUESTION = CompletionRequest.of("Which planet is largest?\nA) Mars\nB) Jupiter\nC) Venus\nD) Earth")


def vote_of(result: StrategyResult) -> VoteDecision:
    votes = [d for d in result.decisions if isinstance(d, VoteDecision)]
    assert len(votes) == 1
    return votes[0]


def notes_of(result: StrategyResult) -> list[str]:
    return [d.message for d in result.decisions if isinstance(d, NoteDecision)]


async def test_majority_reads_each_answer_and_reports_counts_agreement_and_consensus() -> None:
    clients = [
        ScriptedClient("a", "B"),
        ScriptedClient("b", "The answer is (B)."),
        ScriptedClient("c", "**C**"),
    ]
    spec = EnsembleSpec(members=["a", "b", "c"], early_stop=False)

    result = await run_ensemble(spec, QUESTION, context_of(*clients), "ensemble")

    assert result.ok and result.answer == "B"
    vote = vote_of(result)
    assert vote.mode == "majority" and vote.counts == {"B": 2.0, "C": 1.0} and vote.winner == "B"
    assert vote.agreement == pytest.approx(2 / 3, abs=1e-3) and vote.consensus and not vote.early_stop
    records = {c.model: c for c in result.calls}
    assert [c.stage for c in result.calls] == ["ensemble/member-1", "ensemble/member-2", "ensemble/member-3"]
    assert records["a"].answer == "B" and records["a"].text is None
    assert records["b"].answer == "B" and records["b"].text == "The answer is (B)."


async def test_members_are_asked_in_parallel() -> None:
    clients = [ScriptedClient(name, "B", delay_s=0.2) for name in "abc"]
    spec = EnsembleSpec(members=["a", "b", "c"], early_stop=False)

    result = await run_ensemble(spec, QUESTION, context_of(*clients, deadline_s=0.5), "ensemble")

    # Three 0.2 s members within a 0.5 s deadline: only possible when they run at the same time.
    assert result.ok and not result.partial and [c.status for c in result.calls] == ["ok"] * 3


async def test_weighted_vote_uses_spec_weights_then_configured_model_weights() -> None:
    clients = {
        c.name: c
        for c in [ScriptedClient("strong", "A"), ScriptedClient("w1", "B"), ScriptedClient("w2", "B")]
    }
    entries = {
        "strong": ModelEntry(model="fake/strong", weight=1.5),
        "w1": ModelEntry(model="fake/w1"),
        "w2": ModelEntry(model="fake/w2"),
    }
    ctx = RunContext.starting_now(
        ModelCatalog(entries, lambda name, _e: clients[name]), 10.0, step_runner=run_step
    )
    by_config = EnsembleSpec(members=["strong", "w1", "w2"], aggregation="weighted", early_stop=False)
    by_spec = by_config.model_copy(update={"weights": {"strong": 3.0}})

    from_config = await run_ensemble(by_config, QUESTION, ctx, "ensemble")
    from_spec = await run_ensemble(by_spec, QUESTION, ctx, "ensemble")

    assert from_config.answer == "B" and vote_of(from_config).counts == {"B": 2.0, "A": 1.5}
    assert from_spec.answer == "A" and vote_of(from_spec).counts == {"A": 3.0, "B": 2.0}
    assert vote_of(from_spec).mode == "weighted" and vote_of(from_spec).agreement == 0.6


async def test_a_tie_is_reported_with_every_candidate_never_given_to_the_first_member() -> None:
    clients = [ScriptedClient("a", "B", delay_s=0.05), ScriptedClient("b", "C")]

    result = await run_ensemble(EnsembleSpec(members=["a", "b"]), QUESTION, context_of(*clients), "e")

    vote = vote_of(result)
    assert not result.ok and result.answer is None
    assert vote.counts == {"C": 1.0, "B": 1.0} and sorted(vote.tie or []) == ["B", "C"]
    assert vote.tie_break == "unresolved" and vote.winner is None and not vote.consensus
    assert result.error is not None and "'B' (a)" in result.error and "'C' (b)" in result.error


async def test_a_tie_is_broken_by_the_configured_model_weights() -> None:
    clients = [ScriptedClient("a", "B"), ScriptedClient("b", "C")]
    spec = EnsembleSpec(members=["a", "b"], weights={"b": 2.0}, early_stop=False)

    result = await run_ensemble(spec, QUESTION, context_of(*clients), "e")

    assert result.ok and result.answer == "C"
    assert vote_of(result).tie_break == "weights" and vote_of(result).counts == {"B": 1.0, "C": 1.0}


async def test_a_tie_is_broken_by_the_judge_picking_a_candidate() -> None:
    def judge(request: CompletionRequest) -> str:
        system = request.messages[0].content
        assert "Candidate 1:\nB" in system and "Candidate 2:\nC" in system
        return "2"

    clients = [ScriptedClient("a", "B"), ScriptedClient("b", "C"), ScriptedClient("j", judge)]
    spec = EnsembleSpec(members=["a", "b"], judge="j", tie_break="judge", early_stop=False)

    result = await run_ensemble(spec, QUESTION, context_of(*clients), "e")

    assert result.ok and result.answer == "C" and vote_of(result).tie_break == "judge"
    assert [c.stage for c in result.calls][-1] == "e/tie-break"


async def test_synthesis_lets_the_judge_write_the_answer_from_every_member_answer() -> None:
    def judge_reply(request: CompletionRequest) -> str:
        system = request.messages[0].content
        assert request.messages[0].role == "system"
        assert "1. B, Jupiter" in system and "2. C" in system and "3. B" in system
        assert request.messages[-1].content == QUESTION.messages[-1].content
        return "B) Jupiter: it is the largest planet by far."

    clients = [
        ScriptedClient("a", "B, Jupiter"),
        ScriptedClient("b", "C"),
        ScriptedClient("c", "B"),
        ScriptedClient("judge", judge_reply),
    ]
    spec = EnsembleSpec(members=["a", "b", "c"], aggregation="synthesis", judge="judge")

    result = await run_ensemble(spec, QUESTION, context_of(*clients), "ensemble")

    assert result.ok and result.answer == "B) Jupiter: it is the largest planet by far."
    vote = vote_of(result)
    assert vote.mode == "synthesis" and vote.counts == {"B": 2.0, "C": 1.0} and not vote.early_stop
    assert [c.stage for c in result.calls][-1] == "ensemble/judge"


async def test_synthesis_falls_back_to_the_majority_when_the_judge_fails() -> None:
    clients = [
        ScriptedClient("a", "B"),
        ScriptedClient("b", "B"),
        ScriptedClient("judge", AuthenticationFailed("judge", "HTTP 401: invalid key")),
    ]
    spec = EnsembleSpec(members=["a", "b"], aggregation="synthesis", judge="judge")

    result = await run_ensemble(spec, QUESTION, context_of(*clients), "ensemble")

    assert result.ok and result.answer == "B"
    assert any(
        "judge judge failed" in note and "401" in note and "majority" in note for note in notes_of(result)
    )


async def test_below_quorum_the_result_fails_naming_each_failing_model_and_reason() -> None:
    clients = [
        ScriptedClient("a", "B"),
        ScriptedClient("b", AuthenticationFailed("b", "HTTP 401: invalid key")),
        ScriptedClient("c", BadRequest("c", "HTTP 400: prompt rejected")),
    ]
    spec = EnsembleSpec(members=["a", "b", "c"], quorum=2)

    result = await run_ensemble(spec, QUESTION, context_of(*clients), "ensemble")

    assert not result.ok and result.answer is None and result.error is not None
    assert "quorum not reached: 1 of 3 members answered, 2 needed" in result.error
    assert "member-1 (a): answered" in result.error
    assert "member-2 (b)" in result.error and "401" in result.error
    assert "member-3 (c)" in result.error and "400" in result.error


async def test_once_the_majority_is_decided_slow_members_are_cancelled_and_cost_nothing() -> None:
    fast = [ScriptedClient("a", "B"), ScriptedClient("b", "(B)")]
    slow = [ScriptedClient("c", "C", delay_s=0.3), ScriptedClient("d", "C", delay_s=0.3)]
    ctx = context_of(*fast, *slow)
    spec = EnsembleSpec(members=["a", "b", "c", "d", "a"])

    result = await run_strategy(spec, QUESTION, ctx)

    # a, b and a again vote B: 3 > 0 + 2 pending, so c and d can no longer change the outcome.
    assert result.ok and result.answer == "B"
    assert [client.cancelled for client in slow] == [1, 1]
    statuses = {c.stage: c.status for c in result.calls}
    assert statuses["ensemble/member-3"] == statuses["ensemble/member-4"] == "cancelled"
    cancelled = [c for c in result.calls if c.status == "cancelled"]
    assert all(c.cost_usd is None and c.error == "the vote was already decided" for c in cancelled)
    assert result.totals.cost_usd == Decimal("0.003") and ctx.budget.spent_usd == Decimal("0.003")
    vote = vote_of(result)
    assert vote.early_stop and vote.counts == {"B": 3.0} and vote.agreement == 1.0


async def test_without_early_stop_every_member_is_heard() -> None:
    clients = [ScriptedClient("a", "B"), ScriptedClient("b", "B"), ScriptedClient("c", "C", delay_s=0.05)]
    spec = EnsembleSpec(members=["a", "b", "c"], early_stop=False)

    result = await run_ensemble(spec, QUESTION, context_of(*clients), "ensemble")

    assert clients[2].cancelled == 0 and vote_of(result).counts == {"B": 2.0, "C": 1.0}


async def test_at_the_deadline_the_votes_so_far_give_a_partial_answer() -> None:
    answered = [ScriptedClient("a", "B"), ScriptedClient("b", "B"), ScriptedClient("c", "C")]
    late = [ScriptedClient("d", "C", delay_s=5), ScriptedClient("e", "C", delay_s=5)]
    spec = EnsembleSpec(members=["a", "b", "c", "d", "e"], quorum=3)

    result = await run_ensemble(spec, QUESTION, context_of(*answered, *late, deadline_s=0.2), "ensemble")

    assert result.ok and result.answer == "B"
    assert result.partial and result.partial_reason == "deadline reached: 3 of 5 members answered"
    assert vote_of(result).counts == {"B": 2.0, "C": 1.0} and not vote_of(result).early_stop
    cut = [c for c in result.calls if c.status == "cancelled"]
    assert [(c.model, c.error) for c in cut] == [("d", "deadline reached"), ("e", "deadline reached")]
    assert [client.cancelled for client in late] == [1, 1]


async def test_a_deadline_before_quorum_fails_with_every_members_reason() -> None:
    clients = [ScriptedClient("a", "B"), ScriptedClient("b", "B", delay_s=5)]
    spec = EnsembleSpec(members=["a", "b"], quorum=2)

    result = await run_ensemble(spec, QUESTION, context_of(*clients, deadline_s=0.1), "ensemble")

    assert not result.ok and result.partial and result.error is not None
    assert "member-2 (b): cancelled, deadline reached" in result.error


async def test_a_member_that_is_a_cascade_composes() -> None:
    clients = [
        ScriptedClient("a", "B"),
        ScriptedClient("small", "C\nConfidence: 30%"),
        ScriptedClient("big", "The answer is B.\nConfidence: 95%"),
    ]
    cascade = CascadeSpec(tiers=["small", "big"], threshold=0.8)
    spec = EnsembleSpec(members=["a", cascade], early_stop=False)

    result = await run_ensemble(spec, QUESTION, context_of(*clients), "ensemble")

    assert result.ok and result.answer == "B" and vote_of(result).counts == {"B": 2.0}
    stages = [c.stage for c in result.calls]
    assert stages == ["ensemble/member-1", "ensemble/member-2/tier-1", "ensemble/member-2/tier-2"]
    big = result.calls[-1]
    assert big.answer == "B" and big.text == "The answer is B.\nConfidence: 95%"
    assert [d.kind for d in result.decisions] == ["confidence", "confidence", "vote"]


async def test_a_member_that_cannot_even_start_is_a_failure_not_an_exception() -> None:
    clients = [ScriptedClient("a", "B"), ScriptedClient("b", "B")]
    spec = EnsembleSpec(members=["a", "b", StrategyRef(name="missing")])

    result = await run_ensemble(spec, QUESTION, context_of(*clients), "ensemble")

    assert result.ok and result.answer == "B"
    failed = await run_ensemble(spec.model_copy(update={"quorum": 3}), QUESTION, context_of(*clients), "e")
    assert not failed.ok and failed.error is not None and "unknown strategy 'missing'" in failed.error


async def test_answers_that_cannot_be_read_do_not_vote_and_a_note_says_so() -> None:
    clients = [
        ScriptedClient("a", "42"),
        ScriptedClient("b", "I cannot compute that."),
        ScriptedClient("c", "42.0"),
    ]
    spec = EnsembleSpec(members=["a", "b", "c"], extract="number", early_stop=False)

    result = await run_ensemble(spec, CompletionRequest.of("6*7?"), context_of(*clients), "ensemble")

    assert result.answer == "42" and vote_of(result).counts == {"42": 2.0}
    assert vote_of(result).agreement == pytest.approx(2 / 3, abs=1e-3)
    assert any("member-2 (b)" in note and "not counted" in note for note in notes_of(result))


async def test_free_text_answers_agree_after_normalising_and_the_answer_keeps_its_wording() -> None:
    clients = [ScriptedClient("a", "London"), ScriptedClient("b", "**Paris.**"), ScriptedClient("c", "paris")]
    spec = EnsembleSpec(members=["a", "b", "c"], early_stop=False)

    result = await run_ensemble(spec, CompletionRequest.of("Capital of France?"), context_of(*clients), "e")

    assert result.answer == "**Paris.**" and vote_of(result).counts == {"paris": 2.0, "london": 1.0}


async def test_json_field_votes_on_the_field_and_answers_with_the_winning_json() -> None:
    clients = [
        ScriptedClient("a", '```json\n{"label": "spam", "why": "link"}\n```'),
        ScriptedClient("b", '{"label": "Spam"}'),
        ScriptedClient("c", '{"label": "ham"}'),
    ]
    spec = EnsembleSpec(members=["a", "b", "c"], extract="json_field", json_field="label", early_stop=False)

    result = await run_ensemble(spec, CompletionRequest.of("Classify: buy now!"), context_of(*clients), "e")

    assert vote_of(result).winner == "spam" and result.answer == clients[0].replies


async def test_progress_hears_of_every_member_including_the_cancelled_ones() -> None:
    seen: list[tuple[str, str]] = []

    async def sink(record: CallRecord) -> None:
        seen.append((record.model, record.status))

    clients = [ScriptedClient("a", "B"), ScriptedClient("b", "B"), ScriptedClient("c", "C", delay_s=0.3)]
    spec = EnsembleSpec(members=["a", "b", "c"])

    await run_ensemble(spec, QUESTION, context_of(*clients, progress=sink), "ensemble")

    assert sorted(seen) == [("a", "ok"), ("b", "ok"), ("c", "cancelled")]


async def test_a_model_listed_three_times_votes_as_samples_of_one_model() -> None:
    spec = EnsembleSpec(members=["a", "a", "a"], early_stop=False)

    result = await run_ensemble(spec, QUESTION, context_of(ScriptedClient("a", "B")), "ensemble")

    vote = vote_of(result)
    assert result.answer == "B" and vote.voters == 3 and vote.one_model


async def test_two_different_models_agreeing_are_not_samples_of_one_model() -> None:
    clients = [ScriptedClient("a", "B"), ScriptedClient("b", "B")]
    spec = EnsembleSpec(members=["a", "b"], early_stop=False)

    result = await run_ensemble(spec, QUESTION, context_of(*clients), "ensemble")

    vote = vote_of(result)
    assert vote.voters == 2 and vote.consensus and not vote.one_model


def test_a_sample_seed_depends_on_the_prompt_as_well_as_the_copy_number() -> None:
    first, second = CompletionRequest.of("Question one?"), CompletionRequest.of("Question two?")
    assert sample_seed(1, first) == sample_seed(1, CompletionRequest.of("Question one?"))  # reproducible
    assert len({sample_seed(n, r) for n in (1, 2, 3) for r in (first, second)}) == 6
    assert all(0 <= sample_seed(n, first) < 2**31 for n in range(1, 10))
