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

`--predictor` adds what a learned acceptance rule could do, on the seeded 50/50 split the benchmark
uses (`bench/eval_routerbench.py`; needs the eval extra): for each cheap tier (1-3 of the four most
accurate models costing at most 15% of the reference's, chosen on the calibration half),

- the questions where the tier's best-supported answer is wrong and the reference right (a cascade
  must escalate every one of them, or make up for each with a question the reference gets wrong);
- a *perfect* acceptance rule's cost (tier + escalating exactly those): the floor for any predictor;
- the correctness predictor (`strategies.learned.predictor`, trained on the calibration half):
  its most accurate threshold within the cap on the calibration half (cross-fitted: each question
  scored by the fold model that never saw it), that threshold on the report half, and, for scale,
  the best the report half allows at any threshold (chosen with hindsight: a bound, not a result).
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from chorus_mcp.strategies.evaluation.datasets import Dataset, Question, load_dataset  # noqa: E402
from chorus_mcp.strategies.evaluation.grading import choice_letter, gold_of  # noqa: E402

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
                    # Ties go to the earliest voter, as in `core.voting` (dicts keep insertion order).
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


CAPS = {"arc_challenge_train": 0.25, "winograde_train": 0.50}
THRESHOLDS = [i / 100 for i in range(0, 101)]


def predictor_bounds(path: Path, seed: int) -> str:
    """The perfect-acceptance floor and the trained predictor's reach, per cheap tier (see the docstring)."""
    from chorus_mcp.strategies.evaluation.training import train_predictor
    from chorus_mcp.strategies.learned.predictor import read_answers
    from chorus_mcp.strategies.learned.settings import PredictorSettings

    data = load_dataset(path)
    cap = CAPS.get(data.name, 0.25)
    calibration, report = data.split(0.5, seed)

    def cost(question: Question, models: tuple[str, ...]) -> float:
        return sum(float(question.outcomes[m].cost_usd or 0) for m in models)

    def right(question: Question, model: str) -> bool:
        return choice_letter(question.outcomes[model].response, question.choices) == gold_of(question)

    ref_cal = sum(cost(q, (REFERENCE,)) for q in calibration.questions)
    singles = {
        m: (
            sum(right(q, m) for q in calibration.questions),
            sum(cost(q, (m,)) for q in calibration.questions),
        )
        for m in data.models
        if m != REFERENCE
    }
    pool = sorted((m for m, (_, c) in singles.items() if c <= 0.15 * ref_cal), key=lambda m: -singles[m][0])[
        :4
    ]
    tiers = [
        *((m,) for m in pool[:3]),
        *itertools.combinations(pool, 2),
        *itertools.combinations(pool, 3),
    ]
    lines = [
        f"## {data.name}: learned acceptance, split seed {seed} "
        f"({len(calibration)} calibration / {len(report)} report questions), cap {int(cap * 100)}%",
        "",
        "| tier | tier cost % | must escalate (cal / report) | perfect rule's cost % (cal / report) "
        "| of them among the predictor's N most doubtful, N = room within the cap (cal / report) "
        "| predictor within cap, calibration (cross-fitted) | same threshold, report "
        "| report, best threshold in hindsight |",
        "| --- | ---: | ---: | ---: | ---: | --- | --- | --- |",
    ]
    for tier in tiers:
        predictor = train_predictor(calibration, PredictorSettings(tier=list(tier), seed=seed))
        halves = {}
        caught: dict[str, tuple[int, int]] = {}
        for name, part in (("cal", calibration), ("report", report)):
            rows = []
            for q in part.questions:
                keys = read_answers(q.prompt, {m: q.outcomes[m].response for m in tier})
                scores = predictor.score_answers(q.prompt, keys)
                best = max(sorted(scores), key=scores.__getitem__) if scores else None
                tier_right = best is not None and best == gold_of(q)
                rows.append(
                    (
                        scores.get(best, 0.0) if best else 0.0,
                        tier_right,
                        right(q, REFERENCE),
                        cost(q, tier),
                        cost(q, (REFERENCE,)),
                    )
                )
            ref_cost = sum(r[4] for r in rows)
            must = sum(1 for r in rows if not r[1] and r[2])
            perfect = sum(r[3] + (r[4] if (not r[1] and r[2]) else 0.0) for r in rows) / ref_cost
            sweep = []
            for t in THRESHOLDS:
                accepted = [r[0] >= t for r in rows]
                accuracy = sum((r[1] if a else r[2]) for r, a in zip(rows, accepted, strict=True)) / len(rows)
                spent = (
                    sum(r[3] + (0.0 if a else r[4]) for r, a in zip(rows, accepted, strict=True)) / ref_cost
                )
                sweep.append((t, accuracy, spent))
            # The cap leaves room to escalate `room` questions: a predictor matching the reference must put
            # (nearly) every must-escalate question among its `room` most doubtful ones.
            room = max(0, int((cap - sum(r[3] for r in rows) / ref_cost) * len(rows)))
            doubtful = sorted(range(len(rows)), key=lambda i: rows[i][0])[:room]
            caught[name] = (room, sum(1 for i in doubtful if not rows[i][1] and rows[i][2]))
            halves[name] = (
                must,
                perfect,
                sweep,
                sum(r[2] for r in rows) / len(rows),
                sum(r[3] for r in rows) / ref_cost,
            )
        within = [s for s in halves["cal"][2] if s[2] <= cap]
        chosen = max(within, key=lambda s: (s[1], -s[2])) if within else None
        on_report = next(s for s in halves["report"][2] if chosen and s[0] == chosen[0]) if chosen else None
        hindsight = max(
            (s for s in halves["report"][2] if s[2] <= cap), key=lambda s: (s[1], -s[2]), default=None
        )

        def shown(s: tuple[float, float, float] | None) -> str:
            return "none within the cap" if s is None else f"{s[1]:.4f} at {100 * s[2]:.1f}% (t={s[0]:.2f})"

        lines.append(
            f"| {' + '.join(m.split('/')[-1] for m in tier)} | {100 * halves['cal'][4]:.1f} "
            f"| {halves['cal'][0]} / {halves['report'][0]} "
            f"| {100 * halves['cal'][1]:.1f} / {100 * halves['report'][1]:.1f} "
            f"| {caught['cal'][1]} / {caught['report'][1]} (N = {caught['cal'][0]} / {caught['report'][0]}) "
            f"| {shown(chosen)} | {shown(on_report)} | {shown(hindsight)} |"
        )
    lines.append(
        f"\nreference accuracy: calibration {halves['cal'][3]:.4f}, report {halves['report'][3]:.4f}"
    )
    lines += unanimous_wrong(pool, calibration, report)
    return "\n".join(lines)


def unanimous_wrong(pool: list[str], calibration: Dataset, report: Dataset) -> list[str]:
    """Questions where every pool model is wrong, or all give the same wrong answer, per half."""
    out = []
    for name, part in (("calibration", calibration), ("report", report)):
        questions = part.questions
        all_wrong = unanimous = ref_right_there = 0
        for q in questions:
            gold = gold_of(q)
            said = [choice_letter(q.outcomes[m].response, q.choices) for m in pool]
            if all(s != gold for s in said):
                all_wrong += 1
                if len(set(said)) == 1 and said[0] is not None:
                    unanimous += 1
                    ref_right_there += choice_letter(q.outcomes[REFERENCE].response, q.choices) == gold
        models = ", ".join(m.split("/")[-1] for m in pool)
        out.append(
            f"{name} half: the pool ({models}) is all wrong on {all_wrong} "
            f"of {len(questions)} questions, unanimous and wrong on {unanimous} (the reference right on "
            f"{ref_right_there} of those)"
        )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data" / "routerbench")
    parser.add_argument("--datasets", nargs="+", default=["arc_challenge_train", "winograde_train"])
    parser.add_argument("--predictor", action="store_true", help="add the learned-acceptance bounds")
    parser.add_argument("--seed", type=int, default=7, help="split seed for --predictor (default 7)")
    args = parser.parse_args()
    for name in args.datasets:
        print(analyse(args.data_dir / f"{name}.csv"), end="\n\n", flush=True)
        if args.predictor:
            print(predictor_bounds(args.data_dir / f"{name}.csv", args.seed), end="\n\n", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
