"""Offline benchmark on RouterBench (ARC-Challenge, Winogrande): calibrate on one half, report on the other.

    uv run --extra eval python bench/eval_routerbench.py [--data-dir DIR] [--out bench/results] [--seed 7]
    uv run --extra eval python bench/eval_routerbench.py --train FILE --test FILE [--out DIR]

For each dataset, the questions are split 50/50 by a seeded hash (`Dataset.split`); with `--train`
and `--test`, all of the train file is the calibration side and all of the test file the report side
(test questions duplicating train ones are dropped and counted: `strategies.evaluation.heldout`).
On the calibration side only:

- the cheap pool is chosen: the 5 most accurate models costing at most 15% of the reference's;
- two learned routers are trained (RouterBench's KNN baseline, and Chorus's variant);
- correctness predictors are trained (`strategies.learned.predictor`, cross-fitted): one per cheap
  tier (1-3 models of the pool's first four), one per vote (the reference and its 2-6 most accurate
  peers), one route-only;
- calibrations pick, among generated candidates (every 2-4 model subset of the pool as an agreement
  tier in front of the reference model; weighted ensembles of the reference with 2-4 other models;
  router trade-offs):
  * `agreement-cascade`: the cheapest cascade whose accuracy reaches the reference's;
  * `best-at-<cap>`: the most accurate cascade, cheap model, cheap vote or Chorus-router trade-off
    within the issue's cost cap (25% of the reference's cost on ARC, 50% on Winogrande);
  * `ensemble-over-reference`: the cheapest ensemble whose accuracy exceeds the reference's;
  * `router-<variant>-at-<cap>`: each router's most accurate trade-off within the cap;
  * `learned-cascade`: the cheapest predictor-judged tier + acceptance threshold reaching the
    reference's accuracy (else the most accurate); `learned-cascade-at-<cap>`: the most accurate one
    within the cap (they also compete in `best-at-<cap>`);
  * `learned-vote-over-reference`: the cheapest predictor-weighted vote exceeding the reference;
  * `predictor-router-at-<cap>`: the route-only predictor's most accurate bar within the cap.

Everything is then measured on the report half, which neither the pool choice, the router training
nor the calibration saw. Results go to `<out>/<dataset>/` (results.json, summary.csv, questions.csv,
frontier.png) and a markdown table is printed. The two datasets run in parallel processes.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

REFERENCE = "gpt-4-1106-preview"
CAPS = {"arc_challenge": 0.25, "winograde": 0.50}
"""The issue's cost caps, by the start of the file's name (so a user's own split of a file keeps its cap)."""


def cap_of(name: str) -> float:
    return next((cap for prefix, cap in CAPS.items() if name.startswith(prefix)), 0.25)


POOL_SIZE = 5
POOL_MAX_COST_SHARE = 0.15
THRESHOLDS = {2: [1.0], 3: [0.66, 1.0], 4: [0.75, 1.0]}
"""Agreement thresholds per tier size: 2 of 3 is 0.6667, so 0.66 accepts it and 1.0 asks for all."""
TRADEOFFS = [0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5]
LEARNED_POOL = 4
"""Cheap tiers judged by a correctness predictor: the 1-3 model subsets of the pool's first four
(singles of the first three)."""
ACCEPT_THRESHOLDS = [0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.99]
"""Predicted P(right) at which a learned cascade accepts its tier's best answer."""
ROUTE_BARS = [0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95]
VOTE_SIZES = [2, 3, 4, 5, 6]
"""Learned votes: the reference plus its 2-6 most accurate peers (on the calibration split)."""


def _short(model: str) -> str:
    return model.split("/")[-1]


def build_config(calibration: Any, seed: int, cap: float) -> tuple[Any, dict[str, Any]]:
    """The evaluation config, with candidates generated from the calibration side (a Dataset)."""
    from chorus_mcp.strategies.evaluation.config import EvalConfig
    from chorus_mcp.strategies.evaluation.engine import Evaluator

    evaluator = Evaluator(calibration, seed)
    reference = evaluator.reference(REFERENCE, calibration.questions)
    singles = {m: evaluator.reference(m, calibration.questions) for m in calibration.models if m != REFERENCE}
    affordable = [
        m for m, s in singles.items() if s.cost_usd <= reference.cost_usd * Decimal(POOL_MAX_COST_SHARE)
    ]
    pool = sorted(affordable, key=lambda m: -singles[m].accuracy)[:POOL_SIZE]
    ranked_others = sorted(singles, key=lambda m: -singles[m].accuracy)
    strong_others = ranked_others[:4]

    def cascade(members: tuple[str, ...], threshold: float) -> dict[str, Any]:
        return {
            "kind": "cascade",
            "estimator": "agreement",
            "threshold": threshold,
            # The reference as a one-member ensemble: accepted as is, asked once (a single-model last
            # tier would be sampled `samples` times by the agreement estimator).
            "tiers": [
                {"kind": "ensemble", "members": list(members), "early_stop": False},
                {"kind": "ensemble", "members": [REFERENCE]},
            ],
        }

    cascades = [
        cascade(members, threshold)
        for size in (2, 3, 4)
        for members in itertools.combinations(pool, size)
        for threshold in THRESHOLDS[size]
    ]
    cheap = [
        *pool,
        *(
            {"kind": "ensemble", "members": list(m), "early_stop": False}
            for m in itertools.combinations(pool, 3)
        ),
    ]
    ensembles = []
    for size in (2, 3, 4):
        for others in itertools.combinations(strong_others, size):
            for weight in sorted({1.0, size - 0.5}):
                ensembles.append(
                    {
                        "kind": "ensemble",
                        "members": [REFERENCE, *others],
                        "aggregation": "weighted" if weight != 1.0 else "majority",
                        "weights": {REFERENCE: weight} if weight != 1.0 else {},
                        "early_stop": False,
                    }
                )
    routes = {
        variant: [{"kind": "learned_route", "router": f"knn-{variant}", "tradeoff": t} for t in TRADEOFFS]
        for variant in ("baseline", "chorus")
    }
    # Correctness predictors, trained on the calibration split (cross-fitted, so calibrating their
    # thresholds there is out-of-sample): one per cheap tier, one per vote, one route-only.
    tiers = [
        *((m,) for m in pool[:3]),
        *itertools.combinations(pool[:LEARNED_POOL], 2),
        *itertools.combinations(pool[:LEARNED_POOL], 3),
    ]
    predictors: dict[str, Any] = {
        f"tier-{'+'.join(_short(m) for m in tier)}": {"tier": list(tier), "seed": seed} for tier in tiers
    }
    votes = {
        f"vote-{size}": {"tier": [REFERENCE, *ranked_others[:size]], "seed": seed} for size in VOTE_SIZES
    }
    predictors |= votes
    predictors["route-all"] = {"seed": seed}
    learned_cascades = [
        {"kind": "learned_vote", "predictor": name, "threshold": t, "escalate": REFERENCE}
        for name in predictors
        if name.startswith("tier-")
        for t in ACCEPT_THRESHOLDS
    ]
    learned_votes = [{"kind": "learned_vote", "predictor": name} for name in votes]
    predictor_routes = [
        {"kind": "learned_route", "router": "route-all", "min_probability": bar} for bar in ROUTE_BARS
    ]
    label = f"{int(cap * 100)}pct"
    raw = {
        "reference": REFERENCE,
        "seed": seed,
        "calibration_share": 0.5,
        "strategies": {
            _short(REFERENCE): REFERENCE,
            **{_short(m): m for m in pool},
            "cheap-vote": {"kind": "ensemble", "members": pool[:3], "early_stop": False},
            **{
                f"router-{variant}-t{t:g}": {
                    "kind": "learned_route",
                    "router": f"knn-{variant}",
                    "tradeoff": t,
                }
                for variant in ("baseline", "chorus")
                for t in TRADEOFFS
            },
        },
        "routers": {
            "knn-baseline": {"variant": "baseline", "embedder": "wordllama", "k": 25},
            "knn-chorus": {"variant": "chorus", "embedder": "wordllama", "k": 25},
        },
        "predictors": predictors,
        "calibrate": {
            "agreement-cascade": {"target": {"accuracy": "reference"}, "candidates": cascades},
            "learned-cascade": {"target": {"accuracy": "reference"}, "candidates": learned_cascades},
            f"best-at-{label}": {
                "target": {"accuracy": None, "max_cost_share": cap},
                "candidates": [
                    *cascades,
                    *cheap,
                    *routes["chorus"],
                    *learned_cascades,
                    *predictor_routes,
                ],
            },
            f"learned-cascade-at-{label}": {
                "target": {"accuracy": None, "max_cost_share": cap},
                "candidates": learned_cascades,
            },
            "ensemble-over-reference": {
                "target": {"accuracy": "reference", "margin": 0.001},
                "candidates": ensembles,
            },
            "learned-vote-over-reference": {
                "target": {"accuracy": "reference", "margin": 0.001},
                "candidates": learned_votes,
            },
            f"predictor-router-at-{label}": {
                "target": {"accuracy": None, "max_cost_share": cap},
                "candidates": predictor_routes,
            },
            f"router-baseline-at-{label}": {
                "target": {"accuracy": None, "max_cost_share": cap},
                "candidates": routes["baseline"],
            },
            f"router-chorus-at-{label}": {
                "target": {"accuracy": None, "max_cost_share": cap},
                "candidates": routes["chorus"],
            },
        },
    }
    info = {
        "pool": pool,
        "strong_others": strong_others,
        "candidates": {
            "cascades": len(cascades),
            "ensembles": len(ensembles),
            "cheap": len(cheap),
            "learned cascades": len(learned_cascades),
            "learned votes": len(learned_votes),
            "predictor routes": len(predictor_routes),
        },
    }
    return EvalConfig.model_validate(raw), info


def router_comparison(report: Any) -> str:
    """AIQ (area under the cost-accuracy hull, averaged over a shared cost range) of each router's sweep."""
    from chorus_mcp.strategies.evaluation.report import aiq

    sweeps = {
        variant: [
            (s.cost_share or 0.0, s.accuracy)
            for s in report.scores
            if s.name.startswith(f"router-{variant}-t")
        ]
        for variant in ("baseline", "chorus")
    }
    low = max(min(c for c, _ in points) for points in sweeps.values())
    high = max(c for points in sweeps.values() for c, _ in points)
    scores = {variant: aiq(points, low, high) for variant, points in sweeps.items()}
    return (
        f"router AIQ on the report split (tradeoffs {TRADEOFFS}, "
        f"cost share {100 * low:.1f}%-{100 * high:.1f}%): "
        f"chorus {scores['chorus']:.4f} vs KNN baseline {scores['baseline']:.4f}"
    )


def run_one(path: str, seed: int, out: str, test_path: str | None = None) -> str:
    from chorus_mcp.server.cli.eval import quiet_logs
    from chorus_mcp.strategies.evaluation.datasets import load_dataset
    from chorus_mcp.strategies.evaluation.heldout import file_sides, seeded_sides
    from chorus_mcp.strategies.evaluation.report import calibration_lines, table, write_files
    from chorus_mcp.strategies.evaluation.suite import run_suite

    quiet_logs()
    started = time.monotonic()
    dataset = load_dataset(path)
    test = None if test_path is None else load_dataset(test_path)
    sides = seeded_sides(dataset, 0.5, seed) if test is None else file_sides(dataset, test)
    cap = cap_of(dataset.name)
    config, info = build_config(sides.calibration, seed, cap)
    folder = Path(out) / (dataset.name if test is None else f"{dataset.name}--{test.name}")
    report = run_suite(config, dataset, folder, test=test)
    write_files(report, folder)
    lines = [
        f"## {report.dataset}: calibrated on {report.calibration_questions} questions, "
        f"reported on {report.report_questions} others ({report.source})",
        f"overlap: {report.overlap.summary()}",
        f"cheap pool (chosen on the calibration split): {', '.join(info['pool'])}",
        f"candidates: {info['candidates']}",
        *(f"calibration: {line}" for line in calibration_lines(report)),
        "",
        table(report),
        "",
        router_comparison(report),
        f"\n({time.monotonic() - started:.0f}s)",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data" / "routerbench")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--datasets", nargs="+", default=["arc_challenge_train", "winograde_train"])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--train", type=Path, help="a train file (all of it calibrates); needs --test")
    parser.add_argument("--test", type=Path, help="a held-out test file to report on; needs --train")
    args = parser.parse_args()
    if (args.train is None) != (args.test is None):
        print("--train and --test go together", file=sys.stderr)
        return 2
    pairs: list[tuple[Path, Path | None]]
    if args.train is not None:
        pairs = [(args.train, args.test)]
    else:
        pairs = [(args.data_dir / f"{name}.csv", None) for name in args.datasets]
    paths = [p for pair in pairs for p in pair if p is not None]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        print(f"missing dataset files: {', '.join(missing)} (see --data-dir)", file=sys.stderr)
        return 2
    try:
        import matplotlib  # noqa: F401
        import numpy  # noqa: F401
        import trio  # noqa: F401
    except ImportError:
        print(
            "this benchmark needs the eval extra: install chorus-mcp[eval] (uv sync --extra eval)",
            file=sys.stderr,
        )
        return 2
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = [
            pool.submit(run_one, str(train), args.seed, str(args.out), None if test is None else str(test))
            for train, test in pairs
        ]
        for future in futures:
            print(future.result(), end="\n\n", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
