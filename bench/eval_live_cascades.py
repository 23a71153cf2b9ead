"""Cascades on a confidence signal we produce ourselves: live local tiers in front of recorded models.

    uv run --extra eval --extra local python bench/eval_live_cascades.py --limit 150 --record missing
    uv run --extra eval python bench/eval_live_cascades.py --limit 150          # replay the recording

A small and a larger local model (default: the embedded runtime's `local/qwen2.5-coder-0.5b` and
`local/qwen2.5-coder-1.5b`; any model entry works, e.g. `--small-model openai/x --api-base URL` for a
local OpenAI-compatible server) answer RouterBench's multiple-choice prompts live (ARC-Challenge by
default; `--dataset` for Winogrande's two options), with token log-probabilities and repeated
samples; the recorded cheap models and GPT-4 answer from the recording. The live answers
are kept in `bench/recordings/<dataset>-live.jsonl` (`strategies.evaluation.live`): `--record missing`
asks only what the file lacks (resumable), `--record all` asks everything again, and the default
replays the file without running any model.

Split: the seeded 50/50 split of the file (seed 7, the one `eval_routerbench.py` uses), the first
`--limit` questions of each side (live answers cost minutes, not milliseconds). Everything below is
chosen on the calibration side only; the figures are measured on the report side.

Strategy families, each a list of candidates, each calibrated twice (cheapest reaching GPT-4's
calibration accuracy; most accurate within each cost cap of `CAPS`):

- `logprob`: small → larger → (cheap pair unanimous) → GPT-4, each live tier accepted when the
  margin between its two likeliest options (the recorded per-option probabilities, normalised over
  the options) reaches its threshold (thresholds of `LOGPROB`),
  and the shorter chains small → pair → GPT-4, larger → pair → GPT-4;
- `self-consistency`: the larger model sampled `--samples` times (temperature 0.7, distinct seeds),
  accepted when the share agreeing reaches the threshold, else pair → GPT-4;
- `cross-model`: the live models and the recorded cheap pool answer together, accepted when that
  share of them agree, else GPT-4;
- `recorded`: the recorded-only baseline (pair unanimous, else GPT-4; the pair alone; each of the
  pair alone).

Cost: recorded calls cost what the recording says; a live local model costs its measured time at
`--usd-per-hour` (default 0.10, roughly an on-demand 2-vCPU cloud machine: an assumption, stated in
every report with the seconds themselves). The machine was shared (2 cores, several processes), so
the seconds are pessimistic.
"""

from __future__ import annotations

import argparse
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

REFERENCE = "gpt-4-1106-preview"
SEED = 7
CAPS = [0.1, 0.25, 0.5]
LOGPROB = [0.05, 0.1, 0.2, 0.3, 0.5]
"""Acceptance thresholds on a live tier's logprob confidence: the margin between its two likeliest
options (a 0.5-1.5B model is nearly flat over four letters: margins above 0.3 are rare)."""
AGREEMENT = {3: [0.66, 1.0], 4: [0.75, 1.0], 5: [0.6, 0.8, 1.0]}
"""Agreement thresholds by the number of voters (samples or models)."""
MAX_TOKENS = 3
"""The prompts ask for one letter; a cap keeps a rambling small model's answer (and time) short."""


def _model(alias: str, greedy: bool = True) -> dict[str, Any]:
    """A live model step. Greedy (temperature 0) unless it is to be sampled: the agreement estimator
    samples a step without a temperature at 0.7, one with temperature 0 would agree with itself."""
    step: dict[str, Any] = {"kind": "model", "model": alias, "max_tokens": MAX_TOKENS}
    return step | {"temperature": 0} if greedy else step


def _once(step: Any) -> dict[str, Any]:
    """A step as a one-member ensemble: as a cascade tier it is run once and accepted as is (a cascade's
    estimator would otherwise ask a last tier for logprobs or self-report it did not need)."""
    return {"kind": "ensemble", "members": [step]}


def _then(estimator: str, threshold: float, first: Any, rest: Any, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "cascade",
        "estimator": estimator,
        "threshold": threshold,
        "tiers": [first, _once(rest)],
        **extra,
    }


def families(pool: list[str], samples: int) -> dict[str, list[dict[str, Any]]]:
    pair = {"kind": "ensemble", "members": pool, "early_stop": False}
    recorded_tail = _then("agreement", 1.0, pair, REFERENCE)
    logprob = [
        _then("logprob", t1, _model("small"), _then("logprob", t2, _model("large"), recorded_tail))
        for t1 in LOGPROB
        for t2 in LOGPROB
    ]
    logprob += [_then("logprob", t, _model(m), recorded_tail) for m in ("small", "large") for t in LOGPROB]
    consistency = [
        _then("agreement", t, _model("large", greedy=False), recorded_tail, samples=samples)
        for t in AGREEMENT.get(samples, [1.0])
    ]
    cross = []
    for members in ([_model("small"), _model("large"), *pool], [_model("large"), *pool]):
        voters = {"kind": "ensemble", "members": members, "early_stop": False}
        cross += [_then("agreement", t, voters, REFERENCE) for t in AGREEMENT.get(len(members), [1.0])]
    return {
        "logprob": logprob,
        "self-consistency": consistency,
        "cross-model": cross,
        # Each cheap model alone too: a single strong-enough recorded model can beat every cascade under a
        # cap (Winogrande: Yi-34B alone at 8% of GPT-4's cost), and the calibration must be able to say so.
        "recorded": [recorded_tail, pair, *pool],
    }


def prefetch_step(samples: int) -> dict[str, Any]:
    """One step that makes every live request the families make for a question: each model's greedy
    answer and the larger model's samples (a cascade accepting its sampled tier at any agreement)."""
    consistency = _then("agreement", 0.0, _model("large", greedy=False), _model("small"), samples=samples)
    return {
        "kind": "ensemble",
        "members": [_model("small"), _model("large"), consistency],
        "early_stop": False,
    }


def prefetch(config: Any, dataset: Any, questions: list[Any], samples: int, base: Path) -> None:
    """Record the live answers question by question (calibration and report sides interleaved), so
    that a recording cut short is complete for its first questions: `--limit` can then be lowered."""
    from pydantic import TypeAdapter

    from chorus_mcp.strategies.core.spec import Step
    from chorus_mcp.strategies.evaluation.engine import Evaluator, virtual_time
    from chorus_mcp.strategies.evaluation.live import open_live

    step = TypeAdapter(Step).validate_python(prefetch_step(samples))
    live = open_live(config.live, base, "missing")
    evaluator = Evaluator(dataset, SEED, 1800, live=live)
    started = time.monotonic()
    try:
        for number, question in enumerate(questions, start=1):

            async def one(question: Any = question) -> None:
                await evaluator.run("prefetch", step, [question])

            virtual_time(one)
            if number % 10 == 0:
                rate = (time.monotonic() - started) / number
                print(f"  recorded {number}/{len(questions)} questions ({rate:.1f} s each)", file=sys.stderr)
    finally:
        live.close()


def build(calibration: Any, args: argparse.Namespace) -> tuple[Any, list[str]]:
    from chorus_mcp.strategies.evaluation.config import EvalConfig
    from chorus_mcp.strategies.evaluation.engine import Evaluator

    evaluator = Evaluator(calibration, SEED)
    reference = evaluator.reference(REFERENCE, calibration.questions)
    singles = {m: evaluator.reference(m, calibration.questions) for m in calibration.models if m != REFERENCE}
    cheap = [m for m, s in singles.items() if s.cost_usd <= reference.cost_usd * Decimal("0.15")]
    pool = sorted(cheap, key=lambda m: -singles[m].accuracy)[:2]
    live: dict[str, Any] = {}
    bases = {"small": args.small_api_base or args.api_base, "large": args.large_api_base or args.api_base}
    for alias, model in (("small", args.small_model), ("large", args.large_model)):
        entry: dict[str, Any] = {"model": model, "recording": str(args.recording), "timeout_s": 600}
        if bases[alias]:
            entry |= {"api_base": bases[alias], "protocol": "openai"}
        if args.usd_per_hour is not None:
            entry["usd_per_hour"] = args.usd_per_hour
        live[alias] = entry
    found = families(pool, args.samples)
    if args.families:
        unknown = set(args.families) - set(found)
        if unknown:
            raise SystemExit(f"--families: unknown {sorted(unknown)} (known: {sorted(found)})")
        found = {family: found[family] for family in args.families}
    calibrate: dict[str, Any] = {}
    for family, candidates in found.items():
        calibrate[f"{family}: matching GPT-4"] = {
            "target": {"accuracy": "reference"},
            "candidates": candidates,
        }
        for cap in CAPS:
            calibrate[f"{family}: best within {int(100 * cap)}%"] = {
                "target": {"accuracy": None, "max_cost_share": cap},
                "candidates": candidates,
            }
    raw = {
        "reference": REFERENCE,
        "seed": SEED,
        "deadline_s": 1800,
        "live": live,
        "strategies": {
            "gpt-4": REFERENCE,
            "small alone": _model("small"),
            "large alone": _model("large"),
            **{m.split("/")[-1]: m for m in pool},
        },
        "calibrate": calibrate,
    }
    return EvalConfig.model_validate(raw), pool


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--dataset", type=Path, default=Path("/work/shared/data/routerbench/arc_challenge_train.csv")
    )
    parser.add_argument("--limit", type=int, default=150, help="questions per side (default 150)")
    parser.add_argument("--small-model", default="local/qwen2.5-coder-0.5b")
    parser.add_argument("--large-model", default="local/qwen2.5-coder-1.5b")
    parser.add_argument("--api-base", help="an OpenAI-compatible endpoint serving both live models")
    parser.add_argument("--small-api-base", help="the small model's endpoint (default --api-base)")
    parser.add_argument("--large-api-base", help="the larger model's endpoint (default --api-base)")
    parser.add_argument("--recording", type=Path, help="default bench/recordings/<dataset>-live.jsonl")
    parser.add_argument("--record", choices=["replay", "missing", "all"], default="replay")
    parser.add_argument("--samples", type=int, default=3, help="self-consistency samples (default 3)")
    parser.add_argument(
        "--families",
        type=lambda text: text.split(","),
        help="only these families, comma-separated (logprob,cross-model,recorded need no samples)",
    )
    parser.add_argument("--usd-per-hour", type=Decimal, default=Decimal("0.10"))
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "live")
    args = parser.parse_args()

    from chorus_mcp.server.cli.eval import ProgressBar, quiet_logs
    from chorus_mcp.strategies.evaluation.datasets import load_dataset
    from chorus_mcp.strategies.evaluation.heldout import seeded_sides
    from chorus_mcp.strategies.evaluation.report import calibration_lines, table, write_files
    from chorus_mcp.strategies.evaluation.suite import run_suite

    quiet_logs()
    started = time.monotonic()
    dataset = load_dataset(args.dataset)
    if args.recording is None:
        args.recording = REPO / "bench" / "recordings" / f"{dataset.name}-live.jsonl"
    sides = seeded_sides(dataset, 0.5, SEED)
    config, pool = build(sides.calibration.subset(sides.calibration.questions[: args.limit], ""), args)
    if args.record == "missing":
        pairs = zip(
            sides.calibration.questions[: args.limit], sides.report.questions[: args.limit], strict=False
        )
        prefetch(config, sides.recorded, [q for pair in pairs for q in pair], args.samples, REPO)
    folder = args.out / dataset.name
    report = run_suite(config, dataset, folder, ProgressBar(), args.limit, record=args.record, base_dir=REPO)
    write_files(report, folder)
    print(f"## {dataset.name} with live tiers ({args.small_model}, {args.large_model}); cheap pair {pool}")
    print(
        f"calibrated on {report.calibration_questions} questions, reported on {report.report_questions} "
        f"({report.source}, first {args.limit} of each side); local compute at ${args.usd_per_hour}/hour"
    )
    print(f"overlap: {report.overlap.summary()}")
    for line in calibration_lines(report):
        print(f"calibration: {line}")
    print()
    print(table(report))
    print(f"\n({time.monotonic() - started:.0f}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
