"""Counting votes: independent voters, tallies, ties, and when a vote is already decided.

Pure functions over `Ballot`s, so the rules can be read (and tested) apart from the concurrency that
collects the ballots.

- **Independent voters.** A ballot is counted unless it *echoes* a counted one: the same `voter` (the
  same provider model asked the same way — same sampling, no distinct seed) giving the same answer.
  Such a seat cannot be told apart from a replay of the other (greedy decoding, a response-cache hit, a
  fallback onto a model that already voted), so it would only count one opinion twice. The same voter
  giving a *different* answer has shown it is an independent sample, and counts. Agreement and
  consensus are over counted ballots, and consensus needs at least two independent voters.
- **Samples of one model.** Counted voters that are all samples of one provider model (distinct seeds
  or temperatures of the same model) are independent draws, not independent judges: they share that
  model's biases, so their agreement is marked `one_model` and never reported as corroboration by
  independent voters.
- **Ties** are reported, never broken by member order: `tie_of` names the answers tied for first, and
  the ensemble resolves them by its configured rule (weights, a judge) or reports the tie unresolved.
- A vote is **decided** when the leader's weight is strictly greater than the runner-up's plus the
  weight of every member still running: even if all of them voted for the runner-up, it could not
  catch up, and cannot tie either.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

from chorus_mcp.strategies.core.result import AnswerGroup, VoteDecision

_PRECISION = 9
"""Summed weights are rounded so that 0.1 + 0.2 and 0.3 compare equal."""


@dataclass(frozen=True)
class Ballot:
    member: int
    """The member's position in the spec (0-based)."""
    key: str | None
    """The answer's vote key; None when the member answered but no answer could be read (it abstains)."""
    weight: float = 1.0
    voter: Hashable = None
    """Who really answered, as far as independence goes (None: a voter of its own)."""
    model: str = ""
    """The model that answered the seat, for the decision trail."""
    how: str | None = None
    """How the key was read."""
    stage: str = ""
    source: Hashable = None
    """The provider model behind the seat whatever its sampling (None: unknown, e.g. a sub-strategy):
    seats with one source are samples of one model, whose agreement shares that model's biases."""


@dataclass
class Count:
    """The ballots split into counted ones and echoes."""

    counted: list[Ballot] = field(default_factory=list)
    echoes: list[Ballot] = field(default_factory=list)

    @property
    def voters(self) -> int:
        return len(self.counted)


def count(ballots: Sequence[Ballot]) -> Count:
    """Which ballots count (see the module docstring), in member order."""
    result = Count()
    seen: set[tuple[Hashable, str | None]] = set()
    for ballot in sorted(ballots, key=lambda b: b.member):
        if ballot.voter is not None and (ballot.voter, ballot.key) in seen:
            result.echoes.append(ballot)
            continue
        if ballot.voter is not None:
            seen.add((ballot.voter, ballot.key))
        result.counted.append(ballot)
    return result


def tally(ballots: Sequence[Ballot]) -> dict[str, float]:
    """Answer → summed weight of the counted ballots, strongest first (equal weights: first seen first)."""
    return _summed(count(ballots).counted)


def _summed(counted: Sequence[Ballot]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for ballot in counted:
        if ballot.key is None:
            continue
        totals[ballot.key] = round(totals.get(ballot.key, 0.0) + ballot.weight, _PRECISION)
    return dict(sorted(totals.items(), key=lambda item: -item[1]))


def tie_of(ballots: Sequence[Ballot]) -> list[str]:
    """The answers tied for first place (empty when there is a single leader or no vote)."""
    return _tied(tally(ballots))


def _tied(counts: dict[str, float]) -> list[str]:
    if len(counts) < 2:
        return []
    top = next(iter(counts.values()))
    tied = [key for key, weight in counts.items() if weight == top]
    return tied if len(tied) > 1 else []


def is_decided(ballots: Sequence[Ballot], pending_weight: float) -> bool:
    """True when no way the still-running members could vote would change the winner."""
    weights = list(tally(ballots).values())
    if not weights:
        return False
    runner_up = weights[1] if len(weights) > 1 else 0.0
    return weights[0] > round(runner_up + pending_weight, _PRECISION)


def _groups(ballots: Sequence[Ballot], split: Count, counts: dict[str, float]) -> list[AnswerGroup]:
    """Each distinct answer with the models that gave it (echoes named apart), strongest first."""
    echoed = {id(b) for b in split.echoes}
    order = {key: n for n, key in enumerate(counts)}
    keys = sorted({b.key for b in ballots if b.key is not None}, key=lambda k: order.get(k, len(order)))
    groups = []
    for key in keys:
        members = sorted((b for b in ballots if b.key == key), key=lambda b: b.member)
        groups.append(
            AnswerGroup(
                answer=key,
                models=[b.model for b in members],
                weight=counts.get(key, 0.0),
                echoes=[
                    f"{b.stage or f'member-{b.member + 1}'} ({b.model})" for b in members if id(b) in echoed
                ],
                how=next((b.how for b in members if b.how), None),
            )
        )
    return groups


def vote_decision(
    stage: str,
    mode: str,
    ballots: Sequence[Ballot],
    *,
    early_stop: bool = False,
    winner: str | None = None,
    tie_break: str | None = None,
) -> VoteDecision:
    """The decision record. `winner` overrides the leader (a tie broken by a rule, `tie_break` says which)."""
    split = count(ballots)
    counts = _summed(split.counted)
    tied = _tied(counts)
    leader = None if tied else next(iter(counts), None)
    chosen = winner if winner is not None else leader
    # Abstaining voters (answers that could not be read) count in the denominator: they did not agree.
    total = sum(b.weight for b in split.counted)
    sources = {b.source for b in split.counted}
    one_model = split.voters >= 2 and None not in sources and len(sources) == 1
    agreement = round(counts[chosen] / total, 4) if chosen is not None and total > 0 else 0.0
    return VoteDecision(
        stage=stage,
        mode=mode,
        counts=counts,
        winner=chosen,
        agreement=agreement,
        consensus=agreement > 0.5 and split.voters >= 2 and not (tied and winner is None),
        early_stop=early_stop,
        voters=split.voters,
        one_model=one_model,
        seats=len(ballots),
        groups=_groups(ballots, split, counts),
        tie=tied or None,
        tie_break=(tie_break or "unresolved") if tied else None,
    )
