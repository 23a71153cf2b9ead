"""What a strategy run returns: the answer, one record per model call, totals and the decision trail."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, Field

CallStatus = Literal["ok", "error", "timeout", "skipped", "cancelled"]


class CallRecord(BaseModel):
    """One attempted model call, whatever became of it."""

    model: str
    stage: str
    """Where in the strategy the call happened, e.g. `ensemble/member-2` or `pipeline/review#2/tier-1`."""
    status: CallStatus
    answer: str | None = None
    """The extracted answer (for a vote) or the text the model gave."""
    text: str | None = None
    """The model's raw text when it differs from `answer`; omitted otherwise to keep results small."""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: Decimal | None = None
    latency_s: float | None = None
    error: str | None = None
    """Why the call did not produce an answer (never contains a secret)."""
    attempt: int | None = None
    """Which attempt at this model this was (1-based); set only when the model was tried more than once."""
    retry_in_s: float | None = None
    """Set on a failed attempt that was retried: the back-off (seconds) before the model was tried again."""
    cached: bool | None = None
    """True when the response cache answered (no provider call, cost 0); omitted otherwise."""
    similarity: float | None = None
    """On a semantic cache hit: how similar the cached prompt was (cosine)."""
    saved_cost_usd: Decimal | None = None
    """On a cache hit: what the original call cost."""
    truncated: str | None = None
    """Set when the answer was cut off at the call's reservation (the provider went past `max_tokens`):
    `answer` is what arrived before the cut."""
    reasoning_effort: str | None = None
    """The reasoning effort sent with the call (the call's, else the model's configured one): `low`,
    `medium` or `high` (a plain string in the schema: an enum here would be spelled out in every tool's
    published output schema)."""
    reasoning_tokens: int | None = None
    """Of `completion_tokens`, those spent reasoning, when the provider says."""
    reasoning_note: str | None = None
    """Why an effort that was asked for was not sent, or what is not known about it."""


class AnswerGroup(BaseModel):
    """One distinct answer of a vote and who gave it."""

    answer: str
    """The answer's key (`"391"`, `"no"`, `"B"`, `"paris"`): what the answers in this group share."""
    models: list[str]
    """The model that answered each seat in this group, in member order (a model twice: two seats)."""
    weight: float
    """What the group counted in the vote: its independent voters' weight."""
    echoes: list[str] = Field(default_factory=list)
    """Seats in this group that were not counted: they could not be independent of a counted seat
    (the same model asked the same way, a cache replay, a fallback onto a model already voting)."""
    how: str | None = None
    """How the key was read from the answers, e.g. `number after the last '='`, `leading yes/no`."""


class VoteDecision(BaseModel):
    kind: Literal["vote"] = "vote"
    stage: str
    mode: str
    """`majority`, `weighted` or `synthesis`."""
    counts: dict[str, float]
    """Answer → number of votes (or summed weights) of independent voters."""
    winner: str | None = None
    agreement: float
    """Share of the independent voters' votes (or weight) behind the winner."""
    consensus: bool
    """True when the winner holds more than half of the votes of at least two independent voters."""
    early_stop: bool = False
    """True when the vote was decided before every member answered and the rest were cancelled."""
    voters: int | None = None
    """Independent voters: answered seats that could differ from every other (see `AnswerGroup.echoes`)."""
    one_model: bool = False
    """True when the counted voters (two or more) are all samples of one provider model: their agreement
    shares that model's biases and is not corroboration by independent voters."""
    seats: int | None = None
    """Members that answered."""
    groups: list[AnswerGroup] = Field(default_factory=list)
    """Each distinct answer with the models that gave it, strongest first."""
    tie: list[str] | None = None
    """The answers tied for first place, when there was a tie."""
    tie_break: str | None = None
    """How a tie was resolved (`weights`, `judge`) or `unresolved`; None without a tie."""
    after_debate: int = 0
    """Rounds of debate before this vote (`aggregation: debate`): its voters had seen each other's answers,
    so their agreement is not independent and `consensus` is false whatever the share."""


class RankingEntry(BaseModel):
    """One member's ranking of the others' answers (shown to it without names)."""

    ranker: str
    """The ranking member's seat, e.g. `member-2` (its call is `{stage}/rank-2`)."""
    model: str
    shown: list[str] = Field(default_factory=list)
    """The seats whose answers it was shown, in the order shown (`Response A`, `Response B`, ...)."""
    order: list[str] | None = None
    """Those seats ranked best first; None when no ranking was read (see `error`)."""
    error: str | None = None
    """Why this ranking does not count: the call failed, or `unparsable: ...`."""


class RankingDecision(BaseModel):
    """Anonymised peer ranking: who ranked what, the Borda scores, and the top-ranked seat."""

    kind: Literal["ranking"] = "ranking"
    stage: str
    scores: dict[str, float] = Field(default_factory=dict)
    """Seat → Borda points over the parsed rankings (first of k: k-1), best first."""
    winner: str | None = None
    """The top-scored seat; None on a tie for the top or when no ranking was read."""
    rankings: list[RankingEntry] = Field(default_factory=list)
    counted: int = 0
    """Rankings that were read and counted."""
    unparsable: int = 0
    """Rankings given but not readable: not counted, never guessed."""
    one_model: bool = False
    """True when the counted rankers are all samples of one provider model (shared biases)."""
    chair: str | None = None
    """The model that wrote the final answer from the ranked answers, if any."""


class DebateTurn(BaseModel):
    """One member's answer in one round of a debate."""

    seat: str
    """The member, e.g. `member-2` (its call in round r is `{stage}/debate-{r}-2`)."""
    model: str | None = None
    """The model that answered; None for a sub-strategy member (its answer is shown, it does not debate)."""
    answer: str | None = None
    """The answer as read for the vote (its key), else an excerpt; the previous one when the turn failed."""
    changed_from: str | None = None
    """Its previous answer, when this round changed it."""
    error: str | None = None
    """Why the member did not answer this round (it keeps its previous answer)."""


class DebateRound(BaseModel):
    number: int
    """0: the members' independent answers; 1..N: after seeing the others'."""
    turns: list[DebateTurn] = Field(default_factory=list)


class DebateDecision(BaseModel):
    """A bounded debate: each round's answers, who changed, why it stopped, and who moderated."""

    kind: Literal["debate"] = "debate"
    stage: str
    rounds: list[DebateRound] = Field(default_factory=list)
    """Round 0 and every round run."""
    max_rounds: int
    stopped: str
    """Why no further round ran: everyone agreed, nobody changed, the round limit, no debater answered."""
    stances: dict[str, str] = Field(default_factory=dict)
    """Seat → `for`/`against`, for the members given one (the rest were neutral)."""
    changed: list[str] = Field(default_factory=list)
    """Seats whose final answer differs from their independent one (round 0)."""
    moderator: str | None = None
    """The judge that wrote the final answer from the last round's answers, if any."""


class ConfidenceDecision(BaseModel):
    kind: Literal["confidence"] = "confidence"
    stage: str
    model: str
    estimator: str
    confidence: float | None = None
    threshold: float
    escalate: bool
    reason: str


class Candidate(BaseModel):
    """One model weighed by a route's objective (latency, cost or quality), with what it was measured at."""

    model: str
    route: str | None = None
    """The route whose target the model is; None for a candidate listed in `candidates`."""
    figure: float | None = None
    """The objective's measure: a latency percentile in seconds, an estimated cost in USD or an accuracy in
    [0, 1]; None when the model has none (unmeasured, price unknown, no recorded outcome)."""
    samples: int | None = None
    """The calls (latency) or graded recorded answers (quality) the figure rests on."""
    cost_usd: Decimal | None = None
    """The estimated cost of this call on this model (its prompt, and `max_tokens` or the model's
    `max_output_tokens` of output); None when its price is unknown."""
    skipped: str | None = None
    """Why it was not eligible: over what is left of the cost cap, its circuit open."""


class RouteDecision(BaseModel):
    kind: Literal["route"] = "route"
    stage: str
    route: str
    method: str
    """`rule`, `embedding`, `classifier` or `default`; or the objective (`latency`, `cost`, `quality`)."""
    reason: str
    candidates: list[Candidate] | None = None
    """With an objective: every candidate, its figure and whether it was eligible, in the order ranked."""


class FallbackDecision(BaseModel):
    kind: Literal["fallback"] = "fallback"
    stage: str
    from_model: str
    to_model: str | None = None
    reason: str


class ReviewDecision(BaseModel):
    kind: Literal["review"] = "review"
    stage: str
    iteration: int
    approved: bool
    issues: list[str] = Field(default_factory=list)


class NoteDecision(BaseModel):
    """Anything else worth knowing about how the answer came about (a quorum miss, a budget skip...)."""

    kind: Literal["note"] = "note"
    stage: str
    message: str


class ItemFailure(BaseModel):
    """One item of a fan-out that gave no answer."""

    number: int
    """1-based, as in its stage label (`pipeline/research[3]`)."""
    item: str
    """The item itself, on one line (cut when long)."""
    stage: str
    error: str
    """Why it failed: the step's error (a time-out, a provider's refusal...), or the deadline."""


class FanOutDecision(BaseModel):
    """A `for_each` stage: how many of its items answered, and each failed item with its reason."""

    kind: Literal["for_each"] = "for_each"
    stage: str
    items: int
    answered: int
    source: str
    """Where the items came from and how they were read (`stage 'outline', read as a JSON array`)."""
    failed: list[ItemFailure] = Field(default_factory=list)


Decision = Annotated[
    VoteDecision
    | RankingDecision
    | DebateDecision
    | ConfidenceDecision
    | RouteDecision
    | FallbackDecision
    | ReviewDecision
    | FanOutDecision
    | NoteDecision,
    Field(discriminator="kind"),
]


class Totals(BaseModel):
    calls: int = 0
    """Model calls actually sent (skipped and cancelled-before-start calls are not counted)."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int | None = None
    """Of `completion_tokens`, those spent reasoning (as providers reported them); omitted when none."""
    cost_usd: Decimal | None = None
    """Sum of known costs; None only when no call had a known price and at least one was made."""
    cost_complete: bool = True
    """False when some call's price was unknown: `cost_usd` is then a lower bound."""
    latency_s: float = 0.0
    """Wall time of the whole run."""
    cached_calls: int | None = None
    """Calls answered by the response cache (not counted in `calls`); omitted when none."""
    saved_cost_usd: Decimal | None = None
    """What the cached answers originally cost (known prices only); omitted when nothing was cached or no
    cached answer's original price was known."""


class StrategyResult(BaseModel):
    """The outcome of one strategy run. `answer` is None only when no answer could be produced."""

    strategy: str
    answer: str | None = None
    ok: bool
    partial: bool = False
    """True when a deadline or budget cut the run short and `answer` is the best one available."""
    partial_reason: str | None = None
    error: str | None = None
    """When `ok` is False: why no answer could be produced, naming each model and its reason."""
    calls: list[CallRecord] = Field(default_factory=list)
    decisions: list[Decision] = Field(default_factory=list)
    totals: Totals = Field(default_factory=Totals)
    session_id: str | None = None

    def include(self, child: StrategyResult) -> None:
        """Take a child step's calls and decisions into this result (strategies compose this way)."""
        self.calls.extend(child.calls)
        self.decisions.extend(child.decisions)


def compute_totals(calls: list[CallRecord], latency_s: float) -> Totals:
    hits = [c for c in calls if c.cached]
    sent = [c for c in calls if not c.cached and (c.status in ("ok", "error", "timeout") or c.latency_s)]
    known = [c.cost_usd for c in sent if c.cost_usd is not None]
    oks = [c for c in sent if c.status == "ok"]
    saved = [c.saved_cost_usd for c in hits if c.saved_cost_usd is not None]
    return Totals(
        cached_calls=len(hits) or None,
        saved_cost_usd=sum(saved, Decimal(0)) if saved else None,
        calls=len(sent),
        prompt_tokens=sum(c.prompt_tokens or 0 for c in sent),
        completion_tokens=sum(c.completion_tokens or 0 for c in sent),
        reasoning_tokens=sum(c.reasoning_tokens or 0 for c in sent) or None,
        cost_usd=sum(known, Decimal(0)) if known or not oks else None,
        cost_complete=all(c.cost_usd is not None for c in oks),
        latency_s=latency_s,
    )
