"""Running strategies over a recorded dataset, through the same `run_strategy` the MCP tools call.

Each question becomes a `CompletionRequest` holding its prompt as the one user message; the strategy
runs against a replay catalog (`strategies.models.replay`), and its answer is graded (`grading`).

Time is virtual. The run happens on trio with `MockClock(autojump_threshold=0)`: whenever every task
is waiting, the clock jumps to the next wake-up. Replay clients sleep for each call's recorded or
estimated latency, so ensembles really run their members in parallel, cascades in sequence, early
stops cancel the slower members (which then cost nothing, as live), and deadlines cut where they
would — yet an evaluation of thousands of calls takes seconds. A question's latency is the virtual
wall time of its run. Questions run one after another; a fixed seed fixes the latency jitter and so
the whole run.

Live models (`live`) join the same catalog: asked for real (blocking the virtual clock, which then
advances by the measured latency) or replayed from their recording. The time those on this machine
spent is each question's `local_compute_s`, reported beside the dollar cost.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pydantic import TypeAdapter

from chorus_mcp.strategies.core.completion import CompletionRequest
from chorus_mcp.strategies.core.errors import ChorusError, UserInputError
from chorus_mcp.strategies.core.spec import (
    CascadeSpec,
    EnsembleSpec,
    PipelineSpec,
    RouteSpec,
    Step,
    StrategyRef,
    models_in,
)
from chorus_mcp.strategies.engine.context import RunContext
from chorus_mcp.strategies.engine.runner import run_strategy
from chorus_mcp.strategies.evaluation.datasets import Dataset, Question
from chorus_mcp.strategies.evaluation.grading import gold_of, grade
from chorus_mcp.strategies.evaluation.live import LiveModels
from chorus_mcp.strategies.models.client import ModelClient
from chorus_mcp.strategies.models.replay import NotRecorded, Recording, replay_catalog

_STEP: TypeAdapter[Step] = TypeAdapter(Step)

Progress = Callable[[int, int, str], None]
"""Told (questions done, questions in total, strategy name) as an evaluation advances."""

EXTRA_HINT = "install chorus-mcp[eval] (e.g. `uv sync --extra eval` or `pip install 'chorus-mcp[eval]'`)"


class ReplayIncomplete(UserInputError):
    """A strategy asked the replay for something the recording does not hold."""


@dataclass(frozen=True)
class QuestionOutcome:
    question_id: str
    task: str
    answer: str | None
    correct: bool
    graded: bool
    cost_usd: Decimal
    """Sum of the known costs of the calls made."""
    latency_s: float
    """Virtual wall time of the run."""
    calls: int
    models: tuple[str, ...]
    """Models that answered, in call order."""
    error: str | None = None
    local_compute_s: float = 0.0
    """Time the live models on this machine spent on it (their cost: `live`)."""


@dataclass
class Score:
    """One strategy's figures over one set of questions."""

    name: str
    questions: int
    correct: int
    ungraded: int
    failures: int
    """Questions the strategy produced no answer for."""
    cost_usd: Decimal
    mean_latency_s: float
    p95_latency_s: float
    mean_calls: float
    cost_share: float | None = None
    """Total cost as a share of the reference model's cost on the same questions."""
    kind: str = "strategy"
    """`strategy`, `reference` or `oracle` (the last two computed from the recording directly)."""
    spec: Any = None
    outcomes: list[QuestionOutcome] = field(default_factory=list)
    local_compute_s: float = 0.0
    """Total time of the live models on this machine (measured when they were recorded)."""
    local_unpriced: bool = False
    """True when some of that time has no dollar rate: `cost_usd` then leaves it out."""

    @property
    def accuracy(self) -> float:
        return self.correct / self.questions if self.questions else 0.0

    @property
    def cost_per_question(self) -> Decimal:
        return self.cost_usd / self.questions if self.questions else Decimal(0)


def replay_problems(step: Step, named: Mapping[str, Step], seen: frozenset[str] = frozenset()) -> list[str]:
    """Why `step` cannot be evaluated faithfully on a recording of answers to the original prompts.

    A synthesis judge is replayed, keyed on the user's question, with its answer to that question
    alone — not with a synthesis of the members' answers; a pipeline stage or an LLM route classifier
    sends a prompt of its own. Rather than report figures for a strategy other than the one written,
    such strategies are refused.
    """
    problems: list[str] = []
    if isinstance(step, EnsembleSpec):
        if step.aggregation == "synthesis":
            problems.append("an ensemble with 'synthesis' (its judge reads the members' answers)")
        for member in step.members:
            problems += replay_problems(member, named, seen)
    elif isinstance(step, CascadeSpec):
        for tier in step.tiers:
            problems += replay_problems(tier, named, seen)
    elif isinstance(step, RouteSpec):
        if step.classifier:
            problems.append(f"a route with an LLM classifier ({step.classifier} is asked to pick a route)")
        for route in step.routes:
            problems += replay_problems(route.target, named, seen)
    elif isinstance(step, PipelineSpec):
        problems.append("a pipeline (its stages send prompts built from templates and earlier outputs)")
    elif isinstance(step, StrategyRef) and step.name in named and step.name not in seen:
        problems += replay_problems(named[step.name], named, seen | {step.name})
    return problems


def score_of(name: str, outcomes: Sequence[QuestionOutcome], spec: Any = None) -> Score:
    latencies = sorted(o.latency_s for o in outcomes)
    p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))] if latencies else 0.0
    return Score(
        name=name,
        questions=len(outcomes),
        correct=sum(o.correct for o in outcomes),
        ungraded=sum(not o.graded for o in outcomes),
        failures=sum(o.answer is None for o in outcomes),
        cost_usd=sum((o.cost_usd for o in outcomes), Decimal(0)),
        mean_latency_s=statistics.fmean(latencies) if latencies else 0.0,
        p95_latency_s=p95,
        mean_calls=statistics.fmean(o.calls for o in outcomes) if outcomes else 0.0,
        spec=spec,
        outcomes=list(outcomes),
        local_compute_s=round(sum(o.local_compute_s for o in outcomes), 4),
    )


@dataclass
class Evaluator:
    """Runs strategies over a dataset on replayed outcomes. Use `run` inside `virtual_time`."""

    dataset: Dataset
    seed: int = 0
    deadline_s: float = 120.0
    """Each question's deadline, in (virtual) seconds."""
    aliases: Mapping[str, str] = field(default_factory=dict)
    """Model aliases usable in specs: alias → recorded model name."""
    named: Mapping[str, Step] = field(default_factory=dict)
    """Named strategies a spec may refer to with `{kind: strategy, name: ...}`."""
    live: LiveModels | None = None
    """Models asked live (or replayed from their own recording) beside the replayed ones: `live`."""
    recording: Recording = field(init=False)

    def __post_init__(self) -> None:
        self.recording = self.dataset.recording()
        self._golds = {q.id: gold_of(q) for q in self.dataset.questions}
        self._memo: dict[tuple[str, tuple[str, ...]], list[QuestionOutcome]] = {}
        """Outcomes per (spec, questions): a replayed run is deterministic, so it is never run twice."""

    async def run(
        self,
        name: str,
        step: Step,
        questions: Sequence[Question] | None = None,
        progress: Progress | None = None,
    ) -> Score:
        import anyio

        questions = self.dataset.questions if questions is None else questions
        problems = replay_problems(step, self.named)
        if problems:
            raise ReplayIncomplete(
                f"strategy {name!r} cannot be evaluated on recorded outcomes: it contains "
                + "; ".join(problems)
                + ". A recording holds each model's answer to the original prompt only."
            )
        live = self.live.models if self.live is not None else {}
        known = set(self.recording.models) | set(self.aliases) | set(live)
        unknown = sorted({m for m in models_in(step) if m not in known})
        if unknown:
            raise UserInputError(
                f"strategy {name!r} names models that are not in the recording: {', '.join(unknown)} "
                f"(recorded: {', '.join(self.recording.models)}; "
                f"aliases: {', '.join(self.aliases) or 'none'}; live: {', '.join(live) or 'none'})"
            )
        catalog = replay_catalog(
            self.recording,
            aliases=self.aliases,
            simulate_latency=True,
            jitter_seed=self.seed,
            timeout_s=self.deadline_s,
            live={alias: (entry, self._live_builder(alias)) for alias, entry in live.items()},
        )
        key = (
            json.dumps(_STEP.dump_python(step, mode="json"), sort_keys=True),
            tuple(q.id for q in questions),
        )
        if key in self._memo:
            if progress is not None:
                progress(len(questions), len(questions), name)
            return self._priced(score_of(name, self._memo[key], spec=step), step)
        outcomes: list[QuestionOutcome] = []
        for done, question in enumerate(questions, start=1):
            ctx = RunContext(
                catalog=catalog, deadline=anyio.current_time() + self.deadline_s, strategies=self.named
            )
            outcomes.append(await self._ask(name, step, question, ctx))
            if progress is not None:
                progress(done, len(questions), name)
        self._memo[key] = outcomes
        return self._priced(score_of(name, outcomes, spec=step), step)

    def _live_builder(self, alias: str) -> Callable[[], ModelClient]:
        live = self.live
        assert live is not None
        return lambda: live.client(alias)

    def _priced(self, score: Score, step: Step) -> Score:
        if self.live is not None and score.local_compute_s > 0:
            local = self.live.local()
            score.local_unpriced = any(
                self.live.models[m].usd_per_hour is None for m in models_in(step) if m in local
            )
        return score

    async def _ask(self, name: str, step: Step, question: Question, ctx: RunContext) -> QuestionOutcome:
        import anyio

        self.recording.misses.clear()
        request = CompletionRequest.of(question.prompt)
        started = anyio.current_time()
        try:
            result = await run_strategy(step, request, ctx)
        except NotRecorded as exc:
            raise self._incomplete(name, question, exc) from exc
        except ChorusError as exc:
            raise UserInputError(
                f"strategy {name!r} failed on question {question.id!r}: {exc.message}"
            ) from exc
        if self.recording.misses:
            raise self._incomplete(name, question, self.recording.misses[0])
        skipped = next((call for call in result.calls if call.status == "skipped"), None)
        if skipped is not None:
            # No budget is set here, so a skip is a configuration mistake (e.g. an unknown model).
            raise UserInputError(
                f"strategy {name!r}, question {question.id!r}: the call to {skipped.model} was skipped: "
                f"{skipped.error}"
            )
        cost = result.totals.cost_usd or Decimal(0)
        answered = tuple(call.model for call in result.calls if call.status == "ok")
        local = self.live.local() if self.live is not None else set()
        local_s = sum(call.latency_s or 0.0 for call in result.calls if call.model in local)
        verdict = grade(question, result.answer if result.ok else None, self._golds[question.id])
        return QuestionOutcome(
            question_id=question.id,
            task=question.task,
            answer=result.answer if result.ok else None,
            correct=verdict.correct,
            graded=verdict.graded,
            cost_usd=cost,
            latency_s=round(anyio.current_time() - started, 4),
            calls=result.totals.calls,
            models=answered,
            error=result.error,
            local_compute_s=round(local_s, 4),
        )

    @staticmethod
    def _incomplete(name: str, question: Question, miss: NotRecorded) -> ReplayIncomplete:
        return ReplayIncomplete(
            f"strategy {name!r} cannot be evaluated on this recording: on question {question.id!r}, "
            f"{miss.message}. A replay answers only recorded (model, prompt) pairs; strategies that send "
            "other prompts (a synthesis judge, an LLM route classifier, pipeline stages) need those "
            "prompts recorded too."
        )

    def reference(self, model: str, questions: Sequence[Question] | None = None) -> Score:
        """`model` alone, read straight from the recording (no strategy run)."""
        questions = self.dataset.questions if questions is None else questions
        recorded = self.aliases.get(model, model)
        if recorded not in self.dataset.models:
            raise UserInputError(
                f"reference model {model!r} is not in the recording ({', '.join(self.dataset.models)})"
            )
        outcomes = []
        for q in questions:
            outcome = q.outcomes.get(recorded)
            answer = outcome.response if outcome is not None else None
            verdict = grade(q, answer, self._golds[q.id])
            cost = outcome.cost_usd if outcome is not None and outcome.cost_usd is not None else Decimal(0)
            outcomes.append(
                QuestionOutcome(
                    q.id, q.task, answer, verdict.correct, verdict.graded, cost, 0.0, 1, (recorded,)
                )
            )
        score = score_of(model, outcomes)
        score.kind = "reference"
        return score

    def oracle(self, questions: Sequence[Question] | None = None) -> Score:
        """The cheapest-correct oracle: per question, the cheapest model recorded (or graded) correct.

        A question no model answered correctly costs the cheapest model's call and counts as wrong.
        """
        questions = self.dataset.questions if questions is None else questions
        outcomes = []
        for q in questions:
            priced = [(o.cost_usd or Decimal(0), m, o) for m, o in sorted(q.outcomes.items())]
            right = [p for p in priced if grade(q, p[2].response, self._golds[q.id]).correct]
            cost, model, outcome = min(right or priced, key=lambda p: p[0])
            outcomes.append(
                QuestionOutcome(q.id, q.task, outcome.response, bool(right), True, cost, 0.0, 1, (model,))
            )
        score = score_of("oracle (cheapest correct)", outcomes)
        score.kind = "oracle"
        return score


def with_cost_shares(scores: Sequence[Score], reference: Score) -> list[Score]:
    for score in scores:
        score.cost_share = float(score.cost_usd / reference.cost_usd) if reference.cost_usd else None
    return list(scores)


def virtual_time(work: Callable[[], Any]) -> Any:
    """Run the async callable `work` on trio with an auto-jumping mock clock; return its result."""
    try:
        import anyio
        from trio.testing import MockClock
    except ImportError as exc:
        raise UserInputError(f"evaluation runs on a virtual clock provided by trio: {EXTRA_HINT}") from exc
    return anyio.run(work, backend="trio", backend_options={"clock": MockClock(autojump_threshold=0)})
