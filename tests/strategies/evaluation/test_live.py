"""Live tiers in an evaluation: a model asked over real HTTP (the fake OpenAI server) beside replayed
recordings, its answers recorded once and replayed after."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter

from chorus_mcp.strategies.core.errors import UserInputError
from chorus_mcp.strategies.core.spec import Step
from chorus_mcp.strategies.evaluation.datasets import Dataset, load_dataset
from chorus_mcp.strategies.evaluation.engine import Evaluator, Score, virtual_time
from chorus_mcp.strategies.evaluation.live import LiveModel, RecordMode, open_live, read_recording
from tests.fake_openai import FakeOpenAI, RecordedRequest
from tests.strategies.evaluation.fixtures import toy_rows, write_routerbench_csv

pytest.importorskip("trio")

STEP: TypeAdapter[Step] = TypeAdapter(Step)
QUESTIONS = 6


def _letter(request: RecordedRequest) -> str:
    """Right ("ABCD"[i % 4], the toy gold) on even questions, wrong on odd ones."""
    number = int(re.search(r"Question number (\d+)", request.last_user).group(1))  # type: ignore[union-attr]
    return "ABCD"[number % 4] if number % 2 == 0 else "ABCD"[(number + 1) % 4]


@pytest.fixture
def dataset(tmp_path: Path) -> Dataset:
    return load_dataset(write_routerbench_csv(tmp_path / "toy.csv", toy_rows(QUESTIONS)))


def _live(fake: FakeOpenAI, tmp_path: Path, **extra: Any) -> dict[str, LiveModel]:
    entry = {"model": "openai/small", "api_base": fake.base_url, "recording": "live.jsonl", **extra}
    return {"small": LiveModel.model_validate(entry)}


def _run(dataset: Dataset, models: dict[str, LiveModel], base: Path, mode: RecordMode, spec: Any) -> Score:
    live = open_live(models, base, mode)
    evaluator = Evaluator(dataset, seed=1, live=live)

    async def work() -> Score:
        return await evaluator.run("s", STEP.validate_python(spec))

    try:
        result: Score = virtual_time(work)
    finally:
        live.close()
    return result


def _cascade(estimator: str, threshold: float, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "cascade",
        "estimator": estimator,
        "threshold": threshold,
        "tiers": ["small", {"kind": "ensemble", "members": ["strong"]}],
        **extra,
    }


def test_a_live_tier_is_asked_once_recorded_and_replayed_without_the_model(
    fake_openai: FakeOpenAI, dataset: Dataset, tmp_path: Path
) -> None:
    fake_openai.script("small", _letter, latency_s=0.01, completion_tokens=1)
    models = _live(fake_openai, tmp_path)
    recorded = _run(dataset, models, tmp_path, "missing", _cascade("logprob", 0.9))
    asked = len(fake_openai.requests_for("small"))
    assert asked == QUESTIONS and all(r.body.get("logprobs") for r in fake_openai.requests_for("small"))
    lines = [json.loads(line) for line in (tmp_path / "live.jsonl").read_text().splitlines()]
    assert len(lines) == QUESTIONS
    first = lines[0]
    assert first["model"] == "openai/small" and first["text"] in "ABCD"
    assert first["logprobs"] == [[first["text"], -0.01]]
    assert first["completion_tokens"] == 1 and first["prompt_tokens"] > 0 and first["latency_s"] > 0
    # The default logprobs (-0.01, p = 0.99) clear 0.9: the live answer is taken on every question.
    assert all(o.models == ("small",) for o in recorded.outcomes) and recorded.accuracy == 0.5

    fake_openai.reset()
    replayed = _run(dataset, models, tmp_path, "replay", _cascade("logprob", 0.9))
    assert fake_openai.requests == []
    assert replayed.outcomes == recorded.outcomes


def test_recorded_logprobs_decide_a_cascade_and_the_local_time_is_its_stated_cost(
    fake_openai: FakeOpenAI, dataset: Dataset, tmp_path: Path
) -> None:
    fake_openai.script("small", _letter, logprobs=[-2.0])  # p = 0.14: never sure enough
    models = _live(fake_openai, tmp_path)
    score = _run(dataset, models, tmp_path, "missing", _cascade("logprob", 0.9))
    assert all(o.models == ("small", "strong") for o in score.outcomes) and score.accuracy == 1.0
    # The fake server is on loopback: a model on this machine. No $/hour: its dollar cost is unknown,
    # its time is reported, and the dollar figure holds only the recorded model's cost.
    assert score.cost_usd == Decimal("0.01") * QUESTIONS
    assert score.local_compute_s > 0 and score.local_unpriced
    recorded = sum(a.latency_s for a in read_recording(tmp_path / "live.jsonl").values())
    assert score.local_compute_s == pytest.approx(recorded, abs=1e-3)

    priced = _live(fake_openai, tmp_path, usd_per_hour="36")  # 1 cent per second
    again = _run(dataset, priced, tmp_path, "replay", _cascade("logprob", 0.9))
    assert not again.local_unpriced
    assert float(again.cost_usd) == pytest.approx(0.06 + 0.01 * recorded, rel=1e-3)


def test_self_consistency_samples_are_recorded_one_line_each_and_replayed(
    fake_openai: FakeOpenAI, dataset: Dataset, tmp_path: Path
) -> None:
    fake_openai.script("small", _letter)
    models = _live(fake_openai, tmp_path)
    spec = _cascade("agreement", 1.0, samples=3)
    score = _run(dataset, models, tmp_path, "missing", spec)
    lines = [json.loads(line) for line in (tmp_path / "live.jsonl").read_text().splitlines()]
    assert len(lines) == 3 * QUESTIONS
    seeds = [line["seed"] for line in lines]
    assert {line["temperature"] for line in lines} == {0.7}
    # One unseeded sample and two seeded ones per question, the seeds differing from question to
    # question (a seed per copy number alone would draw the same quantile on every question).
    assert seeds.count(None) == QUESTIONS and len(set(seeds) - {None}) == 2 * QUESTIONS
    assert all(o.calls == 3 for o in score.outcomes)  # the three samples agree: accepted, never escalated
    fake_openai.reset()
    assert _run(dataset, models, tmp_path, "replay", spec).outcomes == score.outcomes
    assert fake_openai.requests == []


def test_a_request_missing_from_the_recording_names_the_record_option(
    fake_openai: FakeOpenAI, dataset: Dataset, tmp_path: Path
) -> None:
    fake_openai.script("small", _letter)
    models = _live(fake_openai, tmp_path)
    with pytest.raises(UserInputError, match="run the evaluation with --record"):
        _run(dataset, models, tmp_path, "replay", "small")
    _run(dataset, models, tmp_path, "missing", "small")
    with pytest.raises(UserInputError, match=r"temperature 0.7, seed None.*--record-missing"):
        _run(dataset, models, tmp_path, "replay", _cascade("agreement", 1.0, samples=2))
    assert fake_openai.requests_for("small")


def test_record_all_asks_afresh_and_replaces_stale_lines(
    fake_openai: FakeOpenAI, dataset: Dataset, tmp_path: Path
) -> None:
    fake_openai.script("small", "A")
    models = _live(fake_openai, tmp_path)
    _run(dataset, models, tmp_path, "missing", _cascade("agreement", 1.0, samples=2))
    assert len(read_recording(tmp_path / "live.jsonl")) == 2 * QUESTIONS
    fake_openai.script("small", "B")
    score = _run(dataset, models, tmp_path, "all", "small")
    assert len(fake_openai.requests_for("small")) == 2 * QUESTIONS + QUESTIONS
    answers = read_recording(tmp_path / "live.jsonl")
    assert len(answers) == QUESTIONS and {a.text for a in answers.values()} == {"B"}
    assert {o.answer for o in score.outcomes} == {"B"}
    assert not (tmp_path / "live.jsonl.partial").exists()


def test_a_live_member_overlaps_recorded_ones_in_virtual_time(
    fake_openai: FakeOpenAI, dataset: Dataset, tmp_path: Path
) -> None:
    fake_openai.script("small", _letter)
    models = _live(fake_openai, tmp_path)
    spec = {"kind": "ensemble", "members": ["small", "cheap-a"], "early_stop": False}
    score = _run(dataset, models, tmp_path, "missing", spec)
    live = _run(dataset, models, tmp_path, "replay", "small")
    alone = _run(dataset, models, tmp_path, "replay", "cheap-a")
    for together, one, other in zip(score.outcomes, live.outcomes, alone.outcomes, strict=True):
        assert together.latency_s == pytest.approx(max(one.latency_s, other.latency_s), abs=1e-3)


def test_a_recorded_failure_fails_again_on_replay(
    fake_openai: FakeOpenAI, dataset: Dataset, tmp_path: Path
) -> None:
    from tests.fake_openai import Fault

    fake_openai.script("small", Fault.bad_request("no such thing"))
    models = _live(fake_openai, tmp_path)
    spec = {"kind": "model", "model": "small", "fallbacks": ["strong"]}
    first = _run(dataset, models, tmp_path, "missing", spec)
    assert all(o.models == ("strong",) for o in first.outcomes)
    assert all(a.error_type == "BadRequest" for a in read_recording(tmp_path / "live.jsonl").values())
    fake_openai.reset()
    assert _run(dataset, models, tmp_path, "replay", spec).outcomes == first.outcomes


# A one-letter answer whose own probability is low (0.30: most of the mass went to "The", no option)
# but far ahead of the only other option listed (" B", 0.02): normalised over the options, A holds 0.94.
_AHEAD = {"A": -1.2, "The": -0.5, " B": -4.0, "B": -6.0}


def test_per_option_probabilities_are_recorded_and_their_margin_decides_the_logprob_cascade(
    fake_openai: FakeOpenAI, dataset: Dataset, tmp_path: Path
) -> None:
    fake_openai.script("small", "A", logprobs=[("A", -1.2)], top_logprobs=[_AHEAD])
    models = _live(fake_openai, tmp_path)
    score = _run(dataset, models, tmp_path, "missing", _cascade("logprob", 0.8))
    [line, *_] = [json.loads(line) for line in (tmp_path / "live.jsonl").read_text().splitlines()]
    assert line["top_logprobs"] == [_AHEAD]
    probs = line["choice_probs"]
    assert set(probs) == {"A", "B", "C", "D"} and probs["C"] == probs["D"] == 0
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-5)
    assert probs["A"] == pytest.approx(0.301 / (0.301 + 0.0183 + 0.0025), abs=1e-3)
    # The margin (0.93) clears 0.8 although the chosen token alone (p = 0.30) would not: accepted.
    assert all(o.models == ("small",) for o in score.outcomes)

    fake_openai.reset()
    assert _run(dataset, models, tmp_path, "replay", _cascade("logprob", 0.8)).outcomes == score.outcomes
    assert fake_openai.requests == []


def test_close_options_escalate_even_when_the_chosen_token_is_likely(
    fake_openai: FakeOpenAI, dataset: Dataset, tmp_path: Path
) -> None:
    # 0.55 on "A" (its geometric mean would clear 0.5), 0.40 on "B": a margin of 0.16 escalates.
    close = {"A": -0.6, "B": -0.92, "C": -4.0}
    fake_openai.script("small", "A", logprobs=[("A", -0.6)], top_logprobs=[close])
    score = _run(dataset, _live(fake_openai, tmp_path), tmp_path, "missing", _cascade("logprob", 0.5))
    assert all(o.models == ("small", "strong") for o in score.outcomes)


def test_a_line_without_alternatives_replays_with_the_chosen_tokens_confidence(
    fake_openai: FakeOpenAI, dataset: Dataset, tmp_path: Path
) -> None:
    fake_openai.script("small", "A", logprobs=[("A", -0.01)])
    models = _live(fake_openai, tmp_path)
    _run(dataset, models, tmp_path, "missing", _cascade("logprob", 0.9))
    lines = [json.loads(line) for line in (tmp_path / "live.jsonl").read_text().splitlines()]
    assert all(line["top_logprobs"] is None and line["choice_probs"] is None for line in lines)
    # Older recordings have no such keys at all: they read as before (the geometric mean decides).
    (tmp_path / "live.jsonl").write_text(
        "".join(
            json.dumps({k: v for k, v in line.items() if k not in ("top_logprobs", "choice_probs")}) + "\n"
            for line in lines
        )
    )
    score = _run(dataset, models, tmp_path, "replay", _cascade("logprob", 0.9))
    assert all(o.models == ("small",) for o in score.outcomes)
