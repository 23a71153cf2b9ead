"""One recursive spec type for every strategy, so strategies compose.

A pipeline stage may be an ensemble, a route may lead to a cascade, and every member may be a model
with a fallback chain. Anywhere a step is expected, a bare string is shorthand for a model step
(`"fast"` ≡ `{kind: model, model: fast}`). `{kind: strategy, name: ...}` refers to a named strategy
from chorus_mcp.config.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from chorus_mcp.strategies.core.embedders import DEFAULT_THRESHOLDS, check_embedder
from chorus_mcp.strategies.core.errors import UserInputError
from chorus_mcp.strategies.core.templates import check_fields

AnswerFormat = Literal["auto", "choice", "number", "yes_no", "json_field", "text"]
Aggregation = Literal["majority", "weighted", "synthesis", "ranking", "debate"]
Stance = Literal["for", "against", "neutral"]
Estimator = Literal["self_report", "logprob", "agreement"]
TieBreak = Literal["auto", "weights", "judge", "none"]
Objective = Literal["rules", "latency", "cost", "quality"]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelStep(_Spec):
    """Ask one model; on failure try its fallbacks in order."""

    kind: Literal["model"] = "model"
    model: str = Field(min_length=1)
    fallbacks: list[str] = Field(default_factory=list)
    """Tried in order when the model fails (after any fallbacks configured for the model itself)."""
    system: str | None = None
    max_tokens: int | None = Field(default=None, gt=0)
    temperature: float | None = Field(default=None, ge=0, le=2)


class EnsembleSpec(_Spec):
    """Ask every member in parallel and aggregate their answers."""

    kind: Literal["ensemble"] = "ensemble"
    members: list[Step] = Field(min_length=1)
    aggregation: Aggregation = "majority"
    extract: AnswerFormat = "auto"
    """How each member's answer is read for the vote; `auto` guesses from the prompt and answers."""
    json_field: str | None = None
    """The field voted on when `extract` is `json_field`."""
    weights: dict[str, float] = Field(default_factory=dict)
    """Per-model vote weights for `weighted`; models not listed use their configured weight."""
    judge: str | None = None
    """The model that writes the final answer from all answers when `aggregation` is `synthesis`; for
    `ranking`, the chair (optional) that writes it from the answers ordered by the members' ranking."""
    ranking_seed: int = 0
    """For `ranking`: the seed of each ranker's shuffle of the answers it is shown (`kinds.ranking`); for
    `debate`, of each debater's."""
    debate_rounds: int = Field(default=1, ge=1, le=3)
    """For `debate`: the most rounds in which each member sees the others' latest answers and may revise
    its own (`kinds.debate`); fewer when a round changes nothing or everyone agrees."""
    stances: list[Stance] = Field(default_factory=list)
    """For `debate`: each member's stance, in member order (`for`/`against` the question's claim, or
    `neutral`); empty: all neutral. A non-neutral stance needs a `judge` to moderate: an argued position
    is not a sincere vote."""
    quorum: int = Field(default=1, ge=1)
    """Minimum number of members that must answer for the vote to count."""
    early_stop: bool = True
    """Cancel the members still running once the majority is mathematically decided."""
    degrade_to: Step | None = None
    """Graceful degradation: when fewer than `quorum` members answer, this step (typically the single best
    model, with its own fallbacks) answers instead, marked by a `fallback` decision. Members then run within
    the first 75% of the time left, so that it has time to."""
    tie_break: TieBreak = "auto"
    """How a tie for first place is resolved: `weights` (the voters' configured model weights), `judge`
    (the `judge` model picks a candidate), `auto` (weights, then the judge if one is set) or `none`. A tie
    no rule resolves is reported as such: no answer, every candidate and who gave it in the error."""
    diversify_repeats: bool = True
    """A model listed more than once is sampled (its step's temperature, else 0.7) with a distinct seed
    per copy and never from the cache, so each copy is a second opinion (self-consistency); false: every
    copy is asked the same way, and identical answers from it count as one independent voter."""
    meaning_embedder: str | None = None
    """Group free-text answers that say the same in other words with this embedder (`wordllama`,
    `litellm/<model>`); off by default: WordLlama tells paraphrases from contradictions too poorly
    (BENCHMARKS.md, answer equivalence)."""
    meaning_threshold: float = Field(default=0.8, gt=0, le=1)
    """Least cosine similarity for two free-text answers to be one vote (with `meaning_embedder`)."""

    @model_validator(mode="after")
    def _check(self) -> EnsembleSpec:
        if self.aggregation == "synthesis" and not self.judge:
            raise ValueError("aggregation 'synthesis' needs a 'judge' model")
        if self.aggregation == "ranking" and len(self.members) < 3:
            raise ValueError("aggregation 'ranking' needs at least 3 members: each ranks the others' answers")
        if self.aggregation == "debate" and len(self.members) < 2:
            raise ValueError("aggregation 'debate' needs at least 2 members: each sees the others' answers")
        if self.stances and self.aggregation != "debate":
            raise ValueError("'stances' are for aggregation 'debate'")
        if self.stances and len(self.stances) != len(self.members):
            raise ValueError(f"'stances' has {len(self.stances)} entries for {len(self.members)} members")
        if any(stance != "neutral" for stance in self.stances) and not self.judge:
            raise ValueError(
                "a debate with a 'for' or 'against' stance needs a 'judge' to moderate: an argued stance "
                "is not a sincere vote"
            )
        if self.extract == "json_field" and not self.json_field:
            raise ValueError("extract 'json_field' needs 'json_field' (the field to vote on)")
        if self.meaning_embedder is not None:
            check_embedder(self.meaning_embedder)
        if self.quorum > len(self.members):
            raise ValueError(f"quorum {self.quorum} is larger than the {len(self.members)} members")
        return self


class CascadeSpec(_Spec):
    """Try tiers from cheap to strong; stop at the first answer whose confidence reaches the threshold."""

    kind: Literal["cascade"] = "cascade"
    tiers: list[Step] = Field(min_length=1)
    threshold: float = Field(default=0.7, ge=0, le=1)
    estimator: Estimator = "self_report"
    samples: int = Field(default=3, ge=2, le=10)
    """For `agreement`: how many times a single-model tier is sampled."""
    extract: AnswerFormat = "auto"
    """How answers are compared for `agreement`."""

    @model_validator(mode="after")
    def _check(self) -> CascadeSpec:
        if self.extract == "json_field":
            raise ValueError("a cascade compares answers as choice, number, yes_no or text, not json_field")
        return self


class Route(_Spec):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_\-]+$")
    description: str = ""
    """What requests belong here; the LLM classifier reads it."""
    keywords: list[str] = Field(default_factory=list)
    """Case-insensitive whole words; any match selects the route."""
    patterns: list[str] = Field(default_factory=list)
    """Regular expressions (Python syntax); any match selects the route."""
    examples: list[str] = Field(default_factory=list)
    """Example requests that belong here; the embedding router (`RouteSpec.embedding`) sends a request
    to the route whose examples are most similar to it, and the classifier is shown the first few."""
    target: Step

    @model_validator(mode="after")
    def _patterns_compile(self) -> Route:
        # Checked when the config loads, not when the first request happens to reach this route.
        for pattern in self.patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(
                    f"route {self.name!r}: pattern {pattern!r} is not a valid regex: {exc}"
                ) from None
        return self


class EmbeddingRouting(_Spec):
    """How the embedding router compares a request with the routes' examples."""

    model: str = "wordllama"
    """The embedder: `wordllama` (local, bundled in the `eval` extra), `hashing` (a lexical baseline)
    or `litellm/<embedding model>` (e.g. `litellm/openai/text-embedding-3-small`); see
    `strategies.models.embeddings`."""
    threshold: float | None = Field(default=None, ge=-1, le=1)
    """The least cosine similarity between the request and a route's closest example for the embedding
    router to choose that route; below it, the classifier (or the default) decides. None: the local
    embedder's default (`strategies.models.embeddings.DEFAULT_THRESHOLDS`); required for `litellm/` embedders,
    whose similarity scale depends on the model. Calibrate on your own requests
    (bench/routing_accuracy.py shows how)."""

    @field_validator("model")
    @classmethod
    def _known_embedder(cls, model: str) -> str:
        return check_embedder(model)

    @model_validator(mode="after")
    def _threshold_known(self) -> EmbeddingRouting:
        if self.threshold is None and self.model not in DEFAULT_THRESHOLDS:
            raise ValueError(f"embedder {self.model!r} needs a 'threshold': its similarity scale is its own")
        return self

    @property
    def min_similarity(self) -> float:
        """The threshold in force (the configured one, else the embedder's default)."""
        return self.threshold if self.threshold is not None else DEFAULT_THRESHOLDS[self.model]


class RouteSpec(_Spec):
    """Pick one route per request: rules first, then example embeddings, then an LLM classifier, then
    the default; or, with an `objective`, the candidate model that best meets it."""

    kind: Literal["route"] = "route"
    routes: list[Route] = Field(min_length=1)
    embedding: EmbeddingRouting | None = None
    """Route by similarity to the routes' `examples` when no rule matches (before the classifier)."""
    classifier: str | None = None
    """A (cheap) model that picks a route name from the descriptions when no rule or example decides."""
    default: str
    """The route taken when no rule matches and neither the examples nor the classifier decide."""
    objective: Objective = "rules"
    """`rules`: the request's content decides (rules, examples, classifier, default). Otherwise one of the
    `candidates` answers: the one with the lowest measured `latency`, the lowest estimated `cost` for this
    request, or the best recorded `quality`. A candidate whose estimated cost exceeds what is left of the
    call's (or session's) cost cap, or whose circuit is open, is skipped; see `strategies.kinds.objective`."""
    candidates: list[str] = Field(default_factory=list)
    """The models an objective chooses among; empty: every route whose target is a single model step."""
    latency_percentile: float = Field(default=50, gt=0, le=100)
    """With `latency`: which percentile of a model's recent latencies is compared (50: the median)."""
    min_samples: int = Field(default=3, ge=1)
    """With `latency`: a candidate measured fewer times than this is tried first (the least measured one,
    then in listed order), so that no figure is compared before it rests on this many calls."""
    latency_window: int = Field(default=50, ge=1, le=50)
    """With `latency`: how many of a model's latest calls the percentile is taken over (at most the 50 the
    store keeps, `engine.latency.WINDOW`). Fewer follow a model that slows down in fewer calls (a median of
    10 moves after 5 slow ones, of 50 after 25) at the price of a noisier figure."""
    latency_max_age_s: float = Field(default=600, gt=0)
    """With `latency`: only calls of the last this many seconds count. A model routing stopped choosing is
    no longer measured; once its samples age out it is unmeasured again and explored anew, so one slow
    spell (or one slow first call) does not keep it out for good."""
    quality: dict[str, float] = Field(default_factory=dict)
    """With `quality`: each model's score in [0, 1] (e.g. its accuracy on your own evaluation); wins over
    `quality_data`."""
    quality_data: str | None = None
    """With `quality`: a recording of graded answers (a RouterBench CSV, or Chorus JSONL with `model` and
    `correct`; see `strategies.kinds.quality`) whose per-model accuracy scores the candidates. Relative
    paths are resolved against the working directory."""
    quality_models: dict[str, str] = Field(default_factory=dict)
    """The recording's model names → the aliases they score; names not listed score the alias they equal."""

    @model_validator(mode="after")
    def _check(self) -> RouteSpec:
        names = [r.name for r in self.routes]
        if len(set(names)) != len(names):
            raise ValueError(f"route names must be unique, got {names}")
        if self.default not in names:
            raise ValueError(f"default route {self.default!r} is not one of the routes {names}")
        with_examples = [r.name for r in self.routes if r.examples]
        if self.embedding is not None and not with_examples:
            raise ValueError("embedding routing needs 'examples' on at least one route")
        if self.embedding is None and self.classifier is None and with_examples:
            raise ValueError(
                f"routes {with_examples} have 'examples', which only an embedding router or a classifier "
                "reads: add 'embedding: {model: wordllama}' (or another embedder) or a 'classifier'"
            )
        self._check_objective()
        return self

    def _check_objective(self) -> None:
        for model, score in self.quality.items():
            if not 0 <= score <= 1:
                raise ValueError(f"quality of {model!r} is {score:g}; a score is between 0 and 1")
        if self.objective == "rules":
            return
        if not self.candidates and not any(isinstance(r.target, ModelStep) for r in self.routes):
            raise ValueError(
                f"objective {self.objective!r} chooses among models: list them in 'candidates' (no route's "
                "target is a single model)"
            )
        if self.objective == "quality" and not self.quality and self.quality_data is None:
            raise ValueError(
                "objective 'quality' needs scores: 'quality' (model → score in [0, 1]) or 'quality_data' "
                "(a recording of graded answers)"
            )

    def objective_candidates(self) -> list[tuple[str, Route | None]]:
        """The models an objective weighs, each with the route whose target it is (None: from `candidates`),
        without repeats, in order."""
        pairs: list[tuple[str, Route | None]] = [(model, None) for model in self.candidates]
        if not pairs:
            for route in self.routes:
                if isinstance(route.target, ModelStep):
                    pairs.append((route.target.model, route))
        unique: dict[str, Route | None] = {}
        for model, owner in pairs:
            unique.setdefault(model, owner)
        return list(unique.items())


ItemFormat = Literal["auto", "json", "lines"]


class ForEach(_Spec):
    """Dynamic fan-out: run a stage's step once per item of a list an earlier stage produced, in parallel."""

    stage: str = Field(min_length=1)
    """The earlier stage whose output is the list (or `input`, the request itself). A fan-out stage's
    list is its results, one per item that answered."""
    parse: ItemFormat = "auto"
    """How the list is read: `json` (a JSON array, e.g. `["tides", "waves"]`, also inside a ``` fence or
    after prose), `lines` (one item per non-empty line, list markers such as `1.` or `-` removed), `auto`
    (a JSON array when the output holds one, else lines)."""
    max_items: int = Field(default=8, ge=1, le=64)
    """Most items run; a longer list is cut to its first `max_items`, and a decision note says so."""
    concurrency: int = Field(default=4, ge=1, le=32)
    """Most items running at once (the providers' own concurrency caps still apply)."""


class Stage(_Spec):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    prompt: str
    """A template: `{input}` is the request, `{<stage name>}` an earlier stage's output; in a `for_each`
    stage `{item}` is the item (a fan-out stage's output is its results, each under its item's heading)."""
    step: Step
    review: bool = False
    """A review stage answers with a JSON verdict `{"approved": bool, "issues": [...]}`."""
    for_each: ForEach | None = None
    """Run `step` once per item of an earlier stage's list, concurrently (`strategies.kinds.fanout`);
    the calls of item 2 are staged `<pipeline>/<stage>[2]`."""
    context: Literal["full", "summary", "extract", "none"] | None = None
    """What of the session's history this stage is sent (`strategies.engine.context_passing`); None: as the
    tool call chose."""


class Refine(_Spec):
    stage: str
    """The stage whose output is revised when a review does not approve it."""
    prompt: str
    """Template for the revision; `{issues}` holds the reviewer's issues, `{<stage>}` the current output."""
    step: Step | None = None
    """Who revises; defaults to the step of `stage`."""
    max_iterations: int = Field(default=2, ge=0, le=10)


RESERVED_STAGE_NAMES = ("input", "issues", "item")
"""Template names with a fixed meaning (the request, a review's issues, a fan-out's item); no stage may
be called this."""


class PipelineSpec(_Spec):
    """Run stages in order, each seeing earlier outputs; refine until a reviewer approves, within a bound."""

    kind: Literal["pipeline"] = "pipeline"
    stages: list[Stage] = Field(min_length=1)
    refine: Refine | None = None
    output: str | None = None
    """The stage whose output is the answer; defaults to the last non-review stage."""

    @model_validator(mode="after")
    def _check(self) -> PipelineSpec:
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise ValueError(f"stage names must be unique, got {names}")
        if self.refine is not None:
            if self.refine.stage not in names:
                raise ValueError(f"refine.stage {self.refine.stage!r} is not one of the stages {names}")
            if not any(s.review for s in self.stages[names.index(self.refine.stage) + 1 :]):
                raise ValueError(f"refine needs a review stage after {self.refine.stage!r}")
        if self.output is not None and self.output not in names:
            raise ValueError(f"output {self.output!r} is not one of the stages {names}")
        if all(s.review for s in self.stages):
            raise ValueError("a pipeline needs at least one stage that is not a review")
        self._check_fan_out(names)
        self._check_templates(names)
        return self

    def _check_fan_out(self, names: list[str]) -> None:
        """A fan-out maps over an earlier, non-review stage's list; it is not itself a review or refined."""
        for index, stage in enumerate(self.stages):
            if stage.for_each is None:
                continue
            where = f"stages[{index}]"
            if stage.review:
                raise ValueError(
                    f"{where}.review: true with for_each; expected false "
                    "(a review judges one output, not a list)"
                )
            source = stage.for_each.stage
            sources = ["input", *(s.name for s in self.stages[:index] if not s.review)]
            if source not in sources:
                raise ValueError(
                    f"{where}.for_each.stage: {source!r}; expected an earlier stage that is not a review "
                    f"({', '.join(sources)})"
                )
        if self.refine is not None:
            target = self.stages[names.index(self.refine.stage)]
            if target.for_each is not None:
                raise ValueError(
                    f"refine.stage: {target.name!r} is a for_each stage; expected a stage with one output "
                    "(refine the stage its list comes from, or one after it)"
                )

    def _check_templates(self, names: list[str]) -> None:
        """Each template may use `{input}` and earlier stages (the refine prompt also `{issues}`, a
        fan-out stage's prompt also `{item}`)."""
        for reserved in RESERVED_STAGE_NAMES:
            if reserved in names:
                raise ValueError(f"a stage may not be named {reserved!r}: it is a template field")
        try:
            for index, stage in enumerate(self.stages):
                item = ["item"] if stage.for_each is not None else []
                check_fields(stage.prompt, ["input", *item, *names[:index]], where=f"stage {stage.name!r}")
            if self.refine is not None:
                check_fields(self.refine.prompt, ["input", "issues", *names], where="refine prompt")
        except UserInputError as exc:
            raise ValueError(exc.message) from None


class StrategyRef(_Spec):
    """A named strategy from config."""

    kind: Literal["strategy"] = "strategy"
    name: str


class LearnedRouteSpec(_Spec):
    """Send each request to the one model a trained router expects to answer it well most cheaply.

    The router file is written by `chorus-mcp eval train-router` from recorded outcomes; running this
    kind needs the `eval` extra (`pip install 'chorus-mcp[eval]'`) for the embedding model.
    """

    kind: Literal["learned_route"] = "learned_route"
    router: str = Field(min_length=1)
    """Path of the router file (relative paths are resolved against the working directory)."""
    tradeoff: float | None = Field(default=None, ge=0)
    """Cost/quality knob: 0 picks the likeliest-correct model whatever its price; higher values favour
    cheaper models. None uses the value stored in the router file."""
    min_probability: float | None = Field(default=None, ge=0, le=1)
    """Route to the cheapest model whose estimated chance of being right reaches this bar (the likeliest
    model when none does), instead of the `tradeoff` rule. Needed for a predictor file (`chorus-mcp eval
    train-predictor`), which routes only this way."""
    models: dict[str, str] = Field(default_factory=dict)
    """The router's model names → the model aliases to call; names not listed are called as they are."""
    fallbacks: list[str] = Field(default_factory=list)
    """Tried in order when the chosen model fails."""


class LearnedVoteSpec(_Spec):
    """Ask the predictor's tier in parallel, score each distinct answer with a trained correctness
    predictor, and take the likeliest; when its chance is below `threshold`, ask `escalate` instead.

    A cheap tier with a strong `escalate` is a cascade with a learned acceptance rule; a tier holding
    the strong model, without `escalate`, is a vote weighted per question. The predictor file is
    written by `chorus-mcp eval train-predictor`; running this kind needs the `eval` extra.
    """

    kind: Literal["learned_vote"] = "learned_vote"
    predictor: str = Field(min_length=1)
    """Path of the predictor file (relative paths are resolved against the working directory)."""
    threshold: float = Field(default=0.0, ge=0, le=1)
    """The least predicted chance of being right at which the tier's best answer is accepted."""
    escalate: Step | None = None
    """Asked when the best answer's chance is below `threshold`; None: the best answer is always taken."""
    models: dict[str, str] = Field(default_factory=dict)
    """The predictor's model names → the model aliases to call; names not listed are called as they are."""

    @model_validator(mode="after")
    def _check(self) -> LearnedVoteSpec:
        if self.threshold > 0 and self.escalate is None:
            raise ValueError(
                "a 'threshold' needs 'escalate' (the step asked when the tier's answer falls short)"
            )
        return self


def _shorthand(value: Any) -> Any:
    return {"kind": "model", "model": value} if isinstance(value, str) else value


Step = Annotated[
    ModelStep
    | EnsembleSpec
    | CascadeSpec
    | RouteSpec
    | PipelineSpec
    | StrategyRef
    | LearnedRouteSpec
    | LearnedVoteSpec,
    Field(discriminator="kind"),
    BeforeValidator(_shorthand),
]

for _model in (
    EnsembleSpec,
    CascadeSpec,
    Route,
    RouteSpec,
    ForEach,
    Stage,
    Refine,
    PipelineSpec,
    LearnedVoteSpec,
):
    _model.model_rebuild()


def models_in(step: object, *, fallbacks: bool = True) -> list[str]:
    """Model names a spec mentions at any depth (members, tiers, judges, classifiers, route candidates,
    fallbacks).

    `fallbacks=False` gives only the models a spec asks first. Named-strategy references are not
    followed: each named strategy is checked on its own.
    """
    if isinstance(step, ModelStep):
        return [step.model, *step.fallbacks] if fallbacks else [step.model]
    found: list[str] = []
    if isinstance(step, BaseModel):
        for key, value in step.__dict__.items():
            if key in ("judge", "classifier") and isinstance(value, str):
                found.append(value)
            if key == "candidates" and isinstance(value, list):
                found.extend(item for item in value if isinstance(item, str))
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, BaseModel):
                    found.extend(models_in(item, fallbacks=fallbacks))
    return found
