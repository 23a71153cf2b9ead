"""What a live recording's confidence signal is worth, per model, before any cascade is built.

    uv run --extra eval python bench/eval_live_signal.py                  # ARC, the default recording
    uv run --extra eval python bench/eval_live_signal.py --dataset PATH/winograde_train.csv

For each live model of `bench/recordings/<dataset>-live.jsonl` (greedy answers, temperature 0, the
3-token cap `eval_live_cascades.py` uses), over the recorded questions of the seed-7 split:

- accuracy, the letters answered against the gold letters and each answer's likeliest option (a
  model always answering "A" shows here), and how well each signal ranks its right answers above its
  wrong ones (AUC): the chosen token's probability (the old `logprob` estimator on a one-letter
  answer) and the margin between the two likeliest options (`choice_probs`, what the estimator reads now);
- how many answers clear each margin, and how many of those are right;
- self-consistency: for the model's sampled answers (temperature 0.7, seeds as the cascade gives them:
  `ensemble.sample_seed`, or 1..k-1 with `--copy-number-seeds`), the rank of each sample's option in
  the greedy distribution (a fixed seed drawing the same quantile on every question shows as one
  rank), how often the k samples are unanimous, and how often they *should*
  be if each sample were an independent draw from the recorded option distribution sharpened by the
  temperature (q ∝ p^(1/T), llama.cpp's top-p/min-p ignored: they cut only tails here): a broken
  seeding would show as far more agreement than expected (same seed → same answer), a broken
  temperature as samples all equal to the greedy answer.

The questions of each side are reported together and per side (`calibration`/`report`), since the
cascades calibrate on one and report on the other.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SEED = 7
MAX_TOKENS = 3
TEMPERATURE = 0.7
MARGINS = [0.05, 0.1, 0.2, 0.3, 0.5]


def auc(scores: list[tuple[float, bool]]) -> float | None:
    """The chance a right answer scores above a wrong one (ties count half)."""
    right = [s for s, ok in scores if ok]
    wrong = [s for s, ok in scores if not ok]
    if not right or not wrong:
        return None
    wins = sum((r > w) + 0.5 * (r == w) for r in right for w in wrong)
    return wins / (len(right) * len(wrong))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--dataset", type=Path, default=Path("/work/shared/data/routerbench/arc_challenge_train.csv")
    )
    parser.add_argument("--recording", type=Path, help="default bench/recordings/<dataset>-live.jsonl")
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument(
        "--copy-number-seeds",
        action="store_true",
        help="look up samples seeded 1..k-1 (the seeding before sample_seed; the loopback recording's)",
    )
    args = parser.parse_args()

    from chorus_mcp.strategies.core.completion import CompletionRequest
    from chorus_mcp.strategies.evaluation.datasets import load_dataset
    from chorus_mcp.strategies.evaluation.grading import choice_letter, gold_of
    from chorus_mcp.strategies.evaluation.heldout import seeded_sides
    from chorus_mcp.strategies.evaluation.live import read_recording, request_key
    from chorus_mcp.strategies.evaluation.options import choice_probs
    from chorus_mcp.strategies.kinds.confidence import option_margin
    from chorus_mcp.strategies.kinds.ensemble import sample_seed

    dataset = load_dataset(args.dataset)
    recording = args.recording or REPO / "bench" / "recordings" / f"{dataset.name}-live.jsonl"
    answers = read_recording(recording)
    models = sorted({model for model, _ in answers})
    sides = seeded_sides(dataset, 0.5, SEED)
    side_of = {q.id: "calibration" for q in sides.calibration.questions}
    side_of |= {q.id: "report" for q in sides.report.questions}
    print(f"## {dataset.name}: {recording.name} ({len(answers)} lines)")
    for model in models:
        by_side: dict[str, list[dict[str, object]]] = defaultdict(list)
        ranks: dict[int, Counter[object]] = defaultdict(Counter)
        for question in dataset.questions:
            greedy = CompletionRequest.of(question.prompt, temperature=0.0, max_tokens=MAX_TOKENS)
            answer = answers.get((model, request_key(model, greedy)))
            if answer is None or answer.text is None:
                continue
            gold = gold_of(question)
            letter = choice_letter(answer.text, question.choices)
            tokens = answer.token_logprobs() or []
            probs = choice_probs(tokens, question.choices)
            chosen_p = 2.718281828 ** tokens[0].logprob if tokens else 0.0
            samples = []
            plain = CompletionRequest.of(question.prompt)
            seeds = [None, *(sample_seed(n, plain) for n in range(1, args.samples))]
            if args.copy_number_seeds:
                seeds = [None, *range(1, args.samples)]
            for index, seed in enumerate(seeds):
                sampled = CompletionRequest.of(
                    question.prompt, temperature=TEMPERATURE, max_tokens=MAX_TOKENS, seed=seed
                )
                got = answers.get((model, request_key(model, sampled)))
                if got is not None and got.text is not None:
                    samples.append(choice_letter(got.text, question.choices) or got.text.strip())
                    if probs:
                        ranked = sorted(probs, key=lambda o: -probs[o])
                        rank = ranked.index(samples[-1]) if samples[-1] in ranked else "other"
                        ranks[index][rank] += 1
            row = {
                "right": gold is not None and letter == gold,
                "gold": gold,
                "chosen_p": chosen_p,
                "margin": option_margin(probs) if probs else None,
                "probs": probs,
                "letter": letter,
                "samples": samples,
            }
            by_side[side_of[question.id]].append(row)
            by_side["both"].append(row)
        if not by_side:
            continue
        print(f"\n### {model}")
        for side in ("both", "calibration", "report"):
            rows = by_side.get(side, [])
            if not rows:
                continue
            right = sum(bool(r["right"]) for r in rows)
            margins = [(float(r["margin"]), bool(r["right"])) for r in rows if r["margin"] is not None]  # type: ignore[arg-type]
            chosen = [(float(r["chosen_p"]), bool(r["right"])) for r in rows]  # type: ignore[arg-type]
            line = f"{side}: {len(rows)} questions, right {right} ({right / len(rows):.3f})"
            a_chosen, a_margin = auc(chosen), auc(margins)
            line += f"; AUC chosen-token p {a_chosen:.2f}" if a_chosen is not None else ""
            line += f", option margin {a_margin:.2f}" if a_margin is not None else ""
            print(line)
            given = Counter(str(r["letter"] or "none") for r in rows)
            golds = Counter(str(r["gold"]) for r in rows)
            leaning = [max(r["probs"], key=r["probs"].get) for r in rows if r["probs"]]  # type: ignore[call-overload, attr-defined]
            print(
                "  answers "
                + ", ".join(f"{k} {n}" for k, n in sorted(given.items()))
                + "; gold "
                + ", ".join(f"{k} {n}" for k, n in sorted(golds.items()))
                + "; likeliest option "
                + ", ".join(f"{k} {n}" for k, n in sorted(Counter(leaning).items()))
            )
            if side != "both":
                continue
            for bar in MARGINS:
                cleared = [ok for m, ok in margins if m >= bar]
                print(f"  margin >= {bar}: {len(cleared)} answers, {sum(cleared)} right")
            sampled = [r for r in rows if len(r["samples"]) == args.samples]  # type: ignore[arg-type]
            if sampled:
                unanimous = sum(len(set(r["samples"])) == 1 for r in sampled)  # type: ignore[arg-type]
                expected = 0.0
                for r in sampled:
                    probs = r["probs"] or {}
                    sharp = {k: v ** (1 / TEMPERATURE) for k, v in probs.items()}  # type: ignore[union-attr]
                    total = sum(sharp.values()) or 1.0
                    expected += sum((v / total) ** args.samples for v in sharp.values())
                greedy_match = sum(
                    sum(s == r["letter"] for s in r["samples"])
                    for r in sampled  # type: ignore[attr-defined]
                )
                for index, counted in sorted(ranks.items()):
                    shown = ", ".join(f"{rank}: {n}" for rank, n in sorted(counted.items(), key=str))
                    print(f"  sample {index}: rank of its option by probability (0: the likeliest) {shown}")
                print(
                    f"  {args.samples} samples at T={TEMPERATURE} on {len(sampled)} questions: unanimous on "
                    f"{unanimous} (expected {expected:.1f} from the option distribution); "
                    f"{greedy_match} of {args.samples * len(sampled)} samples equal the greedy answer"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
