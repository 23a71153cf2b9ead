"""Counting votes: tallies, the winner, ties, and when a vote is already decided.

Pure functions over `Ballot`s, so the rules can be read (and tested) apart from the concurrency that
collects the ballots.

- A tie goes to the answer of the lowest-numbered member (the order of `members` in the spec). Finishing
  order would also be deterministic within one run, but not from one run to the next; member order
  is, and lets the caller list the model they trust most first.
- A vote is *decided* when the leader's weight is strictly greater than the runner-up's plus the
  weight of every member still running: even if all of them voted for the runner-up, it could not
  catch up, and cannot tie either (strictly greater: a tie might go the runner-up's way).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from chorus_mcp.strategies.core.result import VoteDecision

_PRECISION = 9
"""Summed weights are rounded so that 0.1 + 0.2 and 0.3 compare equal."""


@dataclass(frozen=True)
class Ballot:
    member: int
    """The member's position in the spec (0-based); a tie goes to the lowest."""
    key: str | None
    """The extracted answer; None when the member answered but no answer could be read (it abstains)."""
    weight: float = 1.0


def tally(ballots: Sequence[Ballot]) -> dict[str, float]:
    """Answer → summed weight, strongest first; equal weights ordered by their lowest-numbered voter."""
    totals: dict[str, float] = {}
    first_voter: dict[str, int] = {}
    for ballot in sorted(ballots, key=lambda b: b.member):
        if ballot.key is None:
            continue
        totals[ballot.key] = round(totals.get(ballot.key, 0.0) + ballot.weight, _PRECISION)
        first_voter.setdefault(ballot.key, ballot.member)
    return dict(sorted(totals.items(), key=lambda item: (-item[1], first_voter[item[0]])))


def winner_of(ballots: Sequence[Ballot]) -> str | None:
    """The answer with the most weight (ties: the lowest-numbered member's); None when nobody voted."""
    return next(iter(tally(ballots)), None)


def is_decided(ballots: Sequence[Ballot], pending_weight: float) -> bool:
    """True when no way the still-running members could vote would change the winner."""
    weights = list(tally(ballots).values())
    if not weights:
        return False
    runner_up = weights[1] if len(weights) > 1 else 0.0
    return weights[0] > round(runner_up + pending_weight, _PRECISION)


def tie_note(ballots: Sequence[Ballot]) -> str | None:
    """Says how a tie for first place was broken, or None when there was no tie."""
    counts = tally(ballots)
    if len(counts) < 2:
        return None
    top = next(iter(counts.values()))
    tied = [key for key, weight in counts.items() if weight == top]
    if len(tied) < 2:
        return None
    first = min(b.member for b in ballots if b.key == tied[0])
    listed = ", ".join(repr(key) for key in tied)
    return (
        f"tie between {listed} ({top:g} each): {tied[0]!r} wins as the answer of the "
        f"lowest-numbered member (member-{first + 1})"
    )


def vote_decision(
    stage: str, mode: str, ballots: Sequence[Ballot], *, early_stop: bool = False
) -> VoteDecision:
    """The decision record: counts, winner, the winner's share of every answering member's weight."""
    counts = tally(ballots)
    winner = next(iter(counts), None)
    # Abstaining members (answers that could not be read) count in the denominator: they did not agree.
    total = sum(b.weight for b in ballots)
    agreement = round(counts[winner] / total, 4) if winner is not None and total > 0 else 0.0
    return VoteDecision(
        stage=stage,
        mode=mode,
        counts=counts,
        winner=winner,
        agreement=agreement,
        consensus=agreement > 0.5,
        early_stop=early_stop,
    )
