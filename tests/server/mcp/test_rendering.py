"""The text an agent reads first: who said what in a vote, seats that were not independent, ties and
how they ended, a pipeline's unapproved answer, and votes stored before answer groups existed."""

from __future__ import annotations

from decimal import Decimal

from mcp.types import TextContent

from chorus_mcp.server.mcp.rendering import KEY_CHARS, SUMMARY_GROUPS, Detail, render, shaped
from chorus_mcp.strategies.core.result import (
    AnswerGroup,
    CallRecord,
    FanOutDecision,
    ItemFailure,
    NoteDecision,
    RankingDecision,
    RankingEntry,
    ReviewDecision,
    StrategyResult,
    Totals,
    VoteDecision,
)


def _vote(groups: list[AnswerGroup], **fields: object) -> VoteDecision:
    counts = {g.answer: g.weight for g in groups}
    winner = fields.pop("winner", groups[0].answer if groups else None)
    voters = sum(len(g.models) - len(g.echoes) for g in groups)
    defaults: dict[str, object] = {
        "stage": "ensemble",
        "mode": "majority",
        "counts": counts,
        "winner": winner,
        "agreement": counts[winner] / voters if isinstance(winner, str) else 0.0,
        "consensus": False,
        "voters": voters,
        "seats": sum(len(g.models) for g in groups),
        "groups": groups,
    }
    return VoteDecision.model_validate({**defaults, **fields})


def _result(
    *decisions: VoteDecision | ReviewDecision | RankingDecision | FanOutDecision | NoteDecision,
    **fields: object,
) -> StrategyResult:
    values: dict[str, object] = {"strategy": "ensemble", "answer": "391", "ok": True, "session_id": "s-1"}
    values.update(fields)
    values["totals"] = Totals(calls=4, prompt_tokens=40, completion_tokens=8, cost_usd=Decimal("0.004"))
    return StrategyResult.model_validate({**values, "decisions": list(decisions)})


def _text(result: StrategyResult, detail: Detail = "summary") -> str:
    rendered = shaped(render(result), detail)
    return "\n".join(block.text for block in rendered.content if isinstance(block, TextContent))


def _vote_line(result: StrategyResult, detail: Detail = "summary") -> str:
    return next(line for line in _text(result, detail).splitlines() if line.startswith("vote "))


def test_the_vote_line_names_every_answer_with_the_models_that_gave_it_strongest_first() -> None:
    vote = _vote(
        [
            AnswerGroup(answer="391", models=["gpt-4o", "claude", "gemini"], weight=3),
            AnswerGroup(answer="381", models=["mistral"], weight=1),
        ],
        consensus=True,
    )

    assert _vote_line(_result(vote)) == (
        "vote (majority): 391 ← gpt-4o, claude, gemini | 381 ← mistral; "
        "3 of 4 independent voters agree, consensus"
    )


def test_the_full_text_says_who_said_what_too() -> None:
    vote = _vote(
        [
            AnswerGroup(answer="B", models=["a", "b"], weight=2),
            AnswerGroup(answer="C", models=["c"], weight=1),
        ]
    )

    assert "B ← a, b | C ← c; 2 of 3 independent voters agree" in _vote_line(_result(vote), "full")


def test_a_model_in_several_seats_is_named_once_with_its_count() -> None:
    vote = _vote([AnswerGroup(answer="yes", models=["a", "local", "b", "local", "local"], weight=5)])

    assert "yes ← a, local ×3, b;" in _vote_line(_result(vote))


def test_seats_that_echo_a_counted_one_are_shown_with_how_many_independent_voters_their_answer_had() -> None:
    vote = _vote(
        [
            AnswerGroup(answer="yes", models=["a", "b"], weight=2),
            AnswerGroup(answer="no", models=["local", "local"], weight=1, echoes=["member-4 (local)"]),
        ],
        consensus=True,
    )

    line = _vote_line(_result(vote))

    assert "| no ← local ×2 (1 independent voter);" in line, line
    assert line.endswith("2 of 3 independent voters agree, consensus"), line


def test_one_model_in_two_seats_is_one_independent_voter_and_no_consensus() -> None:
    vote = _vote([AnswerGroup(answer="no", models=["local", "local"], weight=1, echoes=["member-2 (local)"])])

    assert _vote_line(_result(vote, answer="no")) == (
        "vote (majority): no ← local ×2 (1 independent voter); no consensus"
    )


def test_samples_of_one_model_agreeing_are_called_samples_of_one_model_not_independent_voters() -> None:
    vote = _vote(
        [AnswerGroup(answer="no", models=["local", "local"], weight=2)], consensus=True, one_model=True
    )

    line = _vote_line(_result(vote, answer="no"))

    assert line == "vote (majority): no ← local ×2; 2 of 2 samples of one model agree, consensus", line
    assert "one_model" not in str(
        shaped(
            render(_result(_vote([AnswerGroup(answer="no", models=["a"], weight=1)]))), "summary"
        ).structured_content
    )


def test_an_unresolved_tie_is_named_as_one_with_every_tied_answer_and_no_winner() -> None:
    groups = [
        AnswerGroup(answer="yes", models=["a"], weight=1),
        AnswerGroup(answer="no", models=["b"], weight=1),
    ]
    vote = _vote(groups, winner=None, tie=["yes", "no"], tie_break="unresolved")
    error = "tie: 'yes' (a) vs 'no' (b); no tie-break rule resolved it (tie_break: auto)"

    text = _text(_result(vote, ok=False, answer=None, error=error))

    assert text.startswith(f"No answer: {error}\n"), text
    assert "vote (majority): tie: yes ← a | no ← b (unresolved); no consensus" in text.splitlines()


def test_a_tie_broken_by_weights_puts_the_winner_first_and_says_how_it_was_broken() -> None:
    groups = [
        AnswerGroup(answer="yes", models=["a"], weight=1),
        AnswerGroup(answer="no", models=["b"], weight=1),
    ]
    vote = _vote(groups, winner="no", tie=["yes", "no"], tie_break="weights")

    assert _vote_line(_result(vote, answer="no")) == (
        "vote (majority): tie: no ← b | yes ← a (broken by weights); "
        "1 of 2 independent voters agrees, no consensus"
    )


def test_a_tie_broken_by_the_judge_says_so_and_lists_the_untied_answers_after_it() -> None:
    groups = [
        AnswerGroup(answer="A", models=["a", "b"], weight=2),
        AnswerGroup(answer="B", models=["c", "d"], weight=2),
        AnswerGroup(answer="C", models=["e"], weight=1),
    ]
    vote = _vote(groups, winner="B", tie=["A", "B"], tie_break="judge")

    assert "tie: B ← c, d | A ← a, b (broken by judge) | C ← e; 2 of 5" in _vote_line(
        _result(vote, answer="B")
    )


def test_a_weighted_vote_shows_each_answers_weight() -> None:
    groups = [
        AnswerGroup(answer="391", models=["big"], weight=2.5),
        AnswerGroup(answer="381", models=["a", "b"], weight=2),
    ]
    vote = _vote(groups, mode="weighted")

    assert "391 ← big (weight 2.5) | 381 ← a, b (weight 2);" in _vote_line(_result(vote))


def test_long_answers_are_cut_like_vote_keys_in_the_text_and_in_the_summarys_groups_and_tie() -> None:
    long = "the sky looks blue because air scatters short wavelengths of sunlight far more than long ones"
    other = "rayleigh scattering of sunlight by the molecules of the air"
    groups = [
        AnswerGroup(answer=long, models=["a"], weight=1),
        AnswerGroup(answer=other, models=["b"], weight=1),
    ]
    vote = _vote(groups, winner=long, tie=[long, other], tie_break="weights")
    result = _result(vote, answer=long)

    line = _vote_line(result)
    summary = shaped(render(result), "summary").structured_content
    assert summary is not None
    decision = summary["decisions"][0]
    assert line.startswith(
        "vote (majority): tie: the sky looks blue… ← a | rayleigh scattering of… ← b (broken"
    ), line
    assert all(len(g["answer"]) <= KEY_CHARS for g in decision["groups"])
    assert decision["tie"] == [g["answer"] for g in decision["groups"]]
    assert "how" not in decision["groups"][0] and "echoes" not in decision["groups"][0]
    assert summary["answer"] == long, "the final answer is never cut"


def test_a_summary_names_a_bounded_number_of_answers_and_counts_the_rest() -> None:
    groups = [AnswerGroup(answer=str(n), models=[f"m{n}"], weight=1) for n in range(SUMMARY_GROUPS + 3)]
    vote = _vote(groups, winner=None, tie=[g.answer for g in groups], tie_break="unresolved")
    result = _result(vote, ok=False, answer=None, error="tie")

    assert "| +3 more answers; no consensus" in _vote_line(result)
    assert f"← m{SUMMARY_GROUPS + 2}" in _vote_line(result, "full")


def test_a_vote_seats_answer_is_cut_like_its_key_in_a_summary_and_a_nested_call_like_an_answer() -> None:
    long = " ".join(["word"] * 40)
    vote = _vote([AnswerGroup(answer=long, models=["a"], weight=1)])
    calls = [
        CallRecord(model="a", stage="ensemble/member-1", status="ok", answer=long, latency_s=1.5),
        CallRecord(model="b", stage="ensemble/member-2/tier-1", status="ok", answer=long),
    ]
    summary = shaped(render(_result(vote, answer=long, calls=calls)), "summary").structured_content

    assert summary is not None
    seat, nested = summary["calls"]
    assert len(seat["answer"]) <= KEY_CHARS and "latency_s" not in seat
    assert KEY_CHARS < len(nested["answer"]) < len(long)


def test_a_pipeline_not_approved_shows_the_error_first_then_its_latest_answer_labelled_not_accepted() -> None:
    error = "not approved after 2 refinement(s): no tests; unclear names"
    review = ReviewDecision(
        stage="pipeline/review", iteration=3, approved=False, issues=["no tests", "unclear names"]
    )
    result = _result(
        review, strategy="pipeline", ok=False, answer="def add(a, b):\n    return a + b", error=error
    )

    lines = _text(result).splitlines()

    assert lines[0] == f"Not accepted: {error}"
    assert lines[1:4] == ["Latest answer (not accepted):", "def add(a, b):", "    return a + b"]
    assert "review #3: 2 issues" in lines
    assert not any(line.startswith("No answer") for line in lines)
    assert render(result).is_error, "still an error result: the answer was not approved"


def test_a_result_with_no_answer_still_starts_with_no_answer() -> None:
    result = _result(ok=False, answer=None, error="no model answered: a (timeout)")

    assert _text(result).startswith("No answer: no model answered: a (timeout)\n")


def test_a_vote_stored_before_answer_groups_existed_renders_as_it_did() -> None:
    # A session stored by an older version: no voters, seats, groups or tie in the record.
    old = VoteDecision.model_validate(
        {
            "stage": "ensemble",
            "mode": "majority",
            "counts": {"17": 1, "23": 1, "391": 1},
            "winner": "17",
            "agreement": 0.3333,
            "consensus": False,
        }
    )

    for detail in ("summary", "full"):
        assert _vote_line(_result(old, answer="17"), detail) == "vote (majority): 17 1/3, no consensus"


def test_the_totals_line_gives_cost_without_trailing_zeros_and_a_cached_run_without_empty_calls() -> None:
    result = _result()
    result.totals = Totals(
        calls=0, cost_usd=Decimal(0), cached_calls=3, saved_cost_usd=Decimal("0.0031"), latency_s=0.02
    )

    assert _text(result).splitlines()[-1] == "3 cached (saved $0.0031), 0.02s, session_id s-1"
    assert _text(_result()).splitlines()[-1] == "4 calls, 40+8 tokens, $0.004, 0.00s, session_id s-1"


def test_a_peer_ranking_line_gives_each_seats_points_with_its_model_and_how_many_rankings_counted() -> None:
    rankings = [
        RankingEntry(ranker="member-1", model="a", order=["member-2", "member-3"]),
        RankingEntry(ranker="member-2", model="b", order=["member-1", "member-3"]),
        RankingEntry(ranker="member-3", model="c", error="unparsable: no 'FINAL RANKING:' line"),
    ]
    decision = RankingDecision(
        stage="ensemble",
        scores={"member-1": 1, "member-2": 1, "member-3": 0},
        rankings=rankings,
        counted=2,
        unparsable=1,
    )

    line = next(ln for ln in _text(_result(decision)).splitlines() if ln.startswith("ranking"))

    assert line == (
        "ranking (Borda): member-1 (a) 1 | member-2 (b) 1 | member-3 (c) 0; "
        "2 of 3 rankings counted, 1 unparsable, undecided"
    )


def _fan_out(failed: list[ItemFailure], items: int = 5) -> FanOutDecision:
    return FanOutDecision(
        stage="pipeline/research",
        items=items,
        answered=items - len(failed),
        source="stage 'outline', read as a JSON array",
        failed=failed,
    )


def _failure(number: int, item: str, error: str) -> ItemFailure:
    return ItemFailure(number=number, item=item, stage=f"pipeline/research[{number}]", error=error)


def test_a_fan_out_that_lost_items_says_how_many_and_why_each_failed_in_the_summary_text() -> None:
    fan_out = _fan_out(
        [
            _failure(3, "Waves", "researcher: no answer within 2.0s"),
            _failure(5, "Currents", "researcher: HTTP 400: This section cannot be researched."),
        ]
    )
    note = NoteDecision(stage="pipeline/research", message="a note stays in the structured record")

    text = _text(_result(fan_out, note, strategy="pipeline"))

    assert (
        "fan-out pipeline/research: 2 of 5 items failed: item 3 'Waves' (researcher: no answer within 2.0s), "
        "item 5 'Currents' (researcher: HTTP 400: This section cannot be researched.)"
    ) in text.splitlines()
    assert "a note stays" not in text  # a note is not shown in a summary: the fan-out's line is


def test_a_fan_out_whose_items_all_answered_says_so_in_one_short_line() -> None:
    text = _text(_result(_fan_out([], items=3), strategy="pipeline"))

    assert "fan-out pipeline/research: 3 of 3 items answered" in text.splitlines()


def test_a_summary_cuts_each_failed_item_and_names_at_most_the_summary_count_the_full_text_all() -> None:
    long_item = "A section title that goes on and on well past what a summary keeps of an item"
    failed = [_failure(n, long_item, f"researcher: failure number {n}") for n in range(1, SUMMARY_GROUPS + 3)]
    result = _result(_fan_out(failed, items=len(failed) + 1), strategy="pipeline")

    summary = next(line for line in _text(result).splitlines() if line.startswith("fan-out "))
    full = next(line for line in _text(result, "full").splitlines() if line.startswith("fan-out "))

    assert summary.startswith(f"fan-out pipeline/research: {len(failed)} of {len(failed) + 1} items failed: ")
    assert summary.count("researcher: failure number") == SUMMARY_GROUPS and summary.endswith(", +2 more")
    assert long_item not in summary and len(long_item) > KEY_CHARS
    assert full.count("researcher: failure number") == len(failed) and long_item in full
    structured = shaped(render(result), "summary").structured_content or {}
    kept = structured["decisions"][0]["failed"][0]
    assert len(kept["item"]) <= KEY_CHARS and kept["error"] == "researcher: failure number 1"
