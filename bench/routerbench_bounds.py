"""What agreement cascades and voting ensembles can reach at all on the RouterBench recordings.

    uv run python bench/routerbench_bounds.py [--data-dir DIR]

An exhaustive count over the *whole* file (no split, so these are in-sample upper bounds, not
results): for every 1-5 model subset of the non-reference models,

- the agreement cascade "ask the subset; if every member gives the same readable answer take it,
  else ask the reference" (the shape of `eval-*.yaml`'s agreement cascades): its accuracy and cost;
- for every 2-6 model subset, the vote "reference plus the subset", the reference's vote weighing
  1 (plain majority) up to subset size - 0.5 (outvoted only by a unanimous subset): its accuracy.

It reads the recorded answers directly (grading as `strategies.evaluation.grading` does) instead of
running the strategy core, which is why it can try every subset in seconds. It shows why issue 6's
targets are out of reach for these strategy families on these recordings: the cheap models are most
often unanimous *and wrong* exactly where the reference is right.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from strategies.evaluation.datasets import load_dataset  # noqa: E402
from strategies.evaluation.grading import choice_letter, gold_of  # noqa: E402

REFERENCE = "gpt-4-1106-preview"


def analyse(path: Path) -> str:
    data = load_dataset(path)
    others = [m for m in data.models if m != REFERENCE]
    golds = [gold_of(q) for q in data.questions]
    answers = [
        {m: choice_letter(o.response, q.choices) for m, o in q.outcomes.items()} for q in data.questions
    ]
    costs = [{m: float(o.cost_usd or 0) for m, o in q.outcomes.items()} for q in data.questions]
    n = len(data.questions)
    ref_cost = sum(c[REFERENCE] for c in costs)
    ref_right = sum(
        a[REFERENCE] is not None and a[REFERENCE] == g for a, g in zip(answers, golds, strict=True)
    )

    cascades = []
    for size in range(1, 6):
        for subset in itertools.combinations(others, size):
            right, spent = 0, 0.0
            for a, c, g in zip(answers, costs, golds, strict=True):
                spent += sum(c[m] for m in subset)
                said = {a[m] for m in subset}
                answer = next(iter(said)) if len(said) == 1 else None
                if answer is None:
                    answer, spent = a[REFERENCE], spent + c[REFERENCE]
                right += answer is not None and answer == g
            cascades.append((right, spent / ref_cost, subset))
    votes = []
    for size in range(2, 7):
        for subset in itertools.combinations(others, size):
            for weight in sorted({1.0, size - 0.5}):
                right = 0
                for a, g in zip(answers, golds, strict=True):
                    tally: dict[str, float] = {}
                    for model, w in [(REFERENCE, weight), *((m, 1.0) for m in subset)]:
                        vote = a[model]
                        if vote is not None:
                            tally[vote] = tally.get(vote, 0.0) + w
                    # Ties go to the earliest voter, as in `strategies.voting` (dicts keep insertion order).
                    right += bool(tally) and max(tally, key=lambda k: tally[k]) == g
                votes.append((right, weight, subset))

    def names(models: tuple[str, ...]) -> str:
        return ", ".join(m.split("/")[-1] for m in models)

    best = max(cascades, key=lambda c: (c[0], -c[1]))
    matching = sorted((c for c in cascades if c[0] >= ref_right), key=lambda c: c[1])
    under = {cap: max((c for c in cascades if c[1] <= cap), key=lambda c: c[0]) for cap in (0.25, 0.5)}
    best_vote = max(votes, key=lambda v: v[0])
    lines = [
        f"## {data.name} (all {n} questions)",
        f"reference {REFERENCE}: {ref_right}/{n} = {ref_right / n:.4f}",
        f"agreement cascades tried: {len(cascades)}; most accurate: {best[0]}/{n} = {best[0] / n:.4f} at "
        f"{100 * best[1]:.1f}% of the reference's cost ({names(best[2])})",
        "cheapest cascade matching the reference: "
        + (f"{100 * matching[0][1]:.1f}% ({names(matching[0][2])})" if matching else "none"),
        *(
            f"most accurate cascade within {int(cap * 100)}%: {c[0]}/{n} = {c[0] / n:.4f} "
            f"at {100 * c[1]:.1f}% ({names(c[2])})"
            for cap, c in under.items()
        ),
        f"votes tried: {len(votes)}; most accurate: {best_vote[0]}/{n} = {best_vote[0] / n:.4f} "
        f"(reference weight {best_vote[1]:g} with {names(best_vote[2])})",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data" / "routerbench")
    parser.add_argument("--datasets", nargs="+", default=["arc_challenge_train", "winograde_train"])
    args = parser.parse_args()
    for name in args.datasets:
        print(analyse(args.data_dir / f"{name}.csv"), end="\n\n", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
