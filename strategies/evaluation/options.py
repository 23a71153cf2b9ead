"""Per-option probabilities of a multiple-choice answer, read from the answer's token alternatives.

A one-letter answer's own probability says how much of the model's mass went to that letter, but not
against what: a model may put 0.3 on "B" and 0.6 on tokens that are no option at all ("The", "**"),
or 0.3 on "B" and 0.29 on "C". What the cascade needs is the second: how far ahead the chosen option
is of the others. So, at the answer's position — the first token whose text is an option letter —
each option's mass is the probability of the alternatives that read as it (`B`, ` B`, `(B`), and the
masses are normalised over the options. Options absent from the alternatives get 0 (their mass is
below the last alternative listed, so this slightly overstates the leader's share; with ten
alternatives and two to five options it is small).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from chorus_mcp.strategies.core.completion import TokenLogprob


def option_of(token: str, options: Sequence[str]) -> str | None:
    """The option a token reads as (`A`, ` A`, `(A`, `**A`), or None."""
    text = token.strip().lstrip("(*[_").strip()
    return text if text in options else None


def choice_probs(logprobs: Sequence[TokenLogprob] | None, options: Sequence[str]) -> dict[str, float] | None:
    """Each option's probability at the answer's position, normalised over `options`; None when there are
    no options, no alternatives, or no answer token that reads as an option."""
    if not logprobs or len(options) < 2:
        return None
    position = next((t for t in logprobs if option_of(t.token, options) is not None), None)
    if position is None or not position.top:
        return None
    mass = dict.fromkeys(options, 0.0)
    for token, logprob in position.top.items():
        option = option_of(token, options)
        if option is not None:
            mass[option] += math.exp(logprob)
    total = sum(mass.values())
    if total <= 0:
        return None
    return {option: round(share / total, 6) for option, share in mass.items()}
