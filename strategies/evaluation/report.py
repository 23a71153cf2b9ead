"""Reporting an evaluation: a text table, JSON and CSV files, and the cost–accuracy frontier as a PNG.

Columns: accuracy and its 95% bootstrap interval; the paired comparison with the reference model on
the same questions (`+w/-l`: questions this strategy got right and the reference wrong, and the
reverse; the exact McNemar p-value; `better` / `worse` when p < 0.05, else `within noise`; the JSON
and CSV files add the accuracy difference and its paired interval: `stats`); total cost, cost per
question and cost as a share of the reference's; estimated latency (mean and 95th percentile of the
virtual wall time per question); model calls per question; ungraded answers (counted as wrong).

The plot draws each accuracy's interval as an error bar. The Pareto front is the set of strategies
(and the reference model) that no other one beats on both cost and accuracy. The cheapest-correct
oracle is drawn for scale but never on the front: it knows the answers. In the plot, points too
close to an already labelled one stay unlabelled (the CSV and JSON files name every point).
"""

from __future__ import annotations

import csv
import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chorus_mcp.strategies.evaluation.calibration import describe
from chorus_mcp.strategies.evaluation.engine import EXTRA_HINT, Score
from chorus_mcp.strategies.evaluation.stats import (
    LEVEL,
    Comparison,
    accuracy_interval,
    compare,
    format_p,
    resample_indices,
)
from chorus_mcp.strategies.evaluation.suite import SuiteReport


@dataclass(frozen=True)
class Paired:
    wins: int
    """Questions this strategy got right and the reference got wrong."""
    losses: int


def paired(score: Score, reference: Score) -> Paired:
    truth = {o.question_id: o.correct for o in reference.outcomes}
    wins = sum(o.correct and not truth.get(o.question_id, False) for o in score.outcomes)
    losses = sum(not o.correct and truth.get(o.question_id, False) for o in score.outcomes)
    return Paired(wins, losses)


def pareto(scores: Sequence[Score]) -> list[Score]:
    """The scores no other score beats on both cost and accuracy (cheapest first)."""
    front: list[Score] = []
    for score in sorted(scores, key=lambda s: (s.cost_usd, -s.accuracy)):
        if not front or score.accuracy > front[-1].accuracy:
            front.append(score)
    return front


def _share(score: Score) -> str:
    return "-" if score.cost_share is None else f"{100 * score.cost_share:.1f}%"


def significance(report: SuiteReport) -> dict[int, tuple[tuple[float, float], Comparison]]:
    """Per score (by id): its accuracy's bootstrap interval and its paired comparison with the reference.

    Every score is resampled with the same draws (seeded by the report's seed), over the reference's
    questions in the reference's order."""
    order = [o.question_id for o in report.reference.outcomes]
    truth = [o.correct for o in report.reference.outcomes]
    draws = resample_indices(len(order), report.seed) if order else None
    out = {}
    for score in [*report.scores, report.reference, report.oracle]:
        by_id = {o.question_id: o.correct for o in score.outcomes}
        hits = [by_id.get(q, False) for q in order]
        out[id(score)] = (
            accuracy_interval(hits, report.seed, indices=draws),
            compare(hits, truth, report.seed, indices=draws),
        )
    return out


def rows(report: SuiteReport) -> list[dict[str, Any]]:
    """One summary row per strategy, then the reference and the oracle."""
    front = {id(s) for s in pareto([*report.scores, report.reference])}
    figures = significance(report)
    out = []
    for score in [*report.scores, report.reference, report.oracle]:
        versus = paired(score, report.reference)
        (low, high), against = figures[id(score)]
        out.append(
            {
                "strategy": score.name,
                "kind": score.kind,
                "questions": score.questions,
                "accuracy": round(score.accuracy, 4),
                "accuracy_low": round(low, 4),
                "accuracy_high": round(high, 4),
                "correct": score.correct,
                "wins_vs_reference": versus.wins,
                "losses_vs_reference": versus.losses,
                "difference_vs_reference": round(against.difference, 4),
                "difference_low": round(against.low, 4),
                "difference_high": round(against.high, 4),
                "mcnemar_p": round(against.p_value, 6),
                "verdict_vs_reference": against.verdict,
                "cost_usd": f"{score.cost_usd:.6f}",
                "cost_per_question_usd": f"{score.cost_per_question:.8f}",
                "cost_share_of_reference": None if score.cost_share is None else round(score.cost_share, 4),
                "mean_latency_s": round(score.mean_latency_s, 3),
                "p95_latency_s": round(score.p95_latency_s, 3),
                "calls_per_question": round(score.mean_calls, 3),
                "ungraded": score.ungraded,
                "no_answer": score.failures,
                "local_compute_s": score.local_compute_s,
                "local_compute_s_per_question": round(score.local_compute_s / score.questions, 4)
                if score.questions
                else 0.0,
                "local_compute_in_cost": score.local_compute_s > 0 and not score.local_unpriced,
                "pareto": id(score) in front,
            }
        )
    return out


def table(report: SuiteReport) -> str:
    header = (
        "strategy",
        "accuracy",
        f"{int(100 * LEVEL)}% interval",
        "vs ref (McNemar p)",
        "cost $",
        "$/question",
        "cost % ref",
        "latency s",
        "p95 s",
        "calls/q",
        "local s/q",
        "front",
    )
    lines: list[tuple[str, ...]] = [header]
    unpriced = False
    for row in rows(report):
        # Local compute without a $/hour rate is not in the dollar figures: the cell says so.
        mark = "+local" if row["local_compute_s"] > 0 and not row["local_compute_in_cost"] else ""
        unpriced = unpriced or bool(mark)
        lines.append(
            (
                row["strategy"] + ("" if row["kind"] == "strategy" else f" ({row['kind']})"),
                f"{row['accuracy']:.4f}",
                f"{row['accuracy_low']:.3f}-{row['accuracy_high']:.3f}",
                "-"
                if row["kind"] == "reference"
                else f"+{row['wins_vs_reference']}/-{row['losses_vs_reference']} "
                f"p={format_p(row['mcnemar_p'])} {row['verdict_vs_reference']}",
                f"{float(row['cost_usd']):.4f}{mark}",
                f"{float(row['cost_per_question_usd']):.6f}",
                "-"
                if row["cost_share_of_reference"] is None
                else f"{100 * row['cost_share_of_reference']:.1f}%",
                "-" if row["kind"] != "strategy" else f"{row['mean_latency_s']:.2f}",
                "-" if row["kind"] != "strategy" else f"{row['p95_latency_s']:.2f}",
                f"{row['calls_per_question']:.2f}",
                f"{row['local_compute_s_per_question']:.2f}" if row["local_compute_s"] else "-",
                "*" if row["pareto"] else "",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    rendered = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in lines
    ]
    rendered.insert(1, "  ".join("-" * w for w in widths))
    if unpriced:
        rendered.append(
            "+local: the dollar figures leave out the local compute (local s/q: seconds per question, "
            "measured when recorded) of live models with no usd_per_hour"
        )
    return "\n".join(rendered)


def calibration_lines(report: SuiteReport) -> list[str]:
    lines = []
    for found in report.calibrations:
        lines.append(found.summary())
    return lines


def to_json(report: SuiteReport) -> dict[str, Any]:
    return {
        "dataset": report.dataset,
        "seed": report.seed,
        "split": {
            "calibration_questions": report.calibration_questions,
            "report_questions": report.report_questions,
            "source": report.source,
            "overlap": {
                "policy": report.overlap.policy,
                "duplicates": report.overlap.count,
                "excluded": list(report.overlap.excluded),
                "pairs": [list(pair) for pair in report.overlap.pairs],
            },
            "note": "every score below is measured on the report split; calibration and router training "
            "used only the calibration split",
        },
        "reference": report.reference.name,
        "scores": rows(report),
        "specs": {s.name: None if s.spec is None else json.loads(describe(s.spec)) for s in report.scores},
        "calibrations": [
            {
                "name": found.name,
                "required_accuracy": None
                if found.required_accuracy is None
                else round(found.required_accuracy, 4),
                "max_cost_share": found.max_cost_share,
                "calibration_reference_accuracy": round(report.calibration_reference.accuracy, 4),
                "target_met": found.met,
                "chosen": json.loads(found.chosen.label),
                "trials": [
                    {
                        "spec": json.loads(t.label),
                        "accuracy": round(t.score.accuracy, 4),
                        "cost_usd": f"{t.score.cost_usd:.6f}",
                        "cost_share_of_reference": None
                        if t.score.cost_share is None
                        else round(t.score.cost_share, 4),
                    }
                    for t in found.trials
                ],
            }
            for found in report.calibrations
        ],
        "routers": {name: str(path) for name, path in report.routers.items()},
    }


def write_files(report: SuiteReport, out_dir: Path, plot: bool = True) -> list[Path]:
    """results.json, summary.csv, questions.csv and (with matplotlib) frontier.png in `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    path = out_dir / "results.json"
    path.write_text(json.dumps(to_json(report), indent=2) + "\n")
    written.append(path)
    summary = rows(report)
    path = out_dir / "summary.csv"
    with path.open("w", newline="") as handle:
        summary_writer = csv.DictWriter(handle, fieldnames=list(summary[0]))
        summary_writer.writeheader()
        summary_writer.writerows(summary)
    written.append(path)
    path = out_dir / "questions.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "strategy",
                "question_id",
                "task",
                "answer",
                "correct",
                "graded",
                "cost_usd",
                "latency_s",
                "calls",
                "models",
            ]
        )
        for score in [*report.scores, report.reference, report.oracle]:
            for o in score.outcomes:
                writer.writerow(
                    [
                        score.name,
                        o.question_id,
                        o.task,
                        o.answer,
                        int(o.correct),
                        int(o.graded),
                        f"{o.cost_usd:.8f}",
                        o.latency_s,
                        o.calls,
                        " ".join(o.models),
                    ]
                )
    written.append(path)
    if plot:
        written.append(plot_frontier(report, out_dir / "frontier.png"))
    return written


def plot_frontier(report: SuiteReport, path: Path, title: str | None = None) -> Path:
    """Strategies as points (cost as % of the reference, log scale; accuracy), the Pareto front as a line."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        from chorus_mcp.strategies.core.errors import UserInputError

        raise UserInputError(
            f"drawing the frontier needs matplotlib: {EXTRA_HINT} (or pass --no-plot)"
        ) from exc

    def x(score: Score) -> float:
        return max(0.1, 100 * (score.cost_share or 0.0))

    figure, axes = plt.subplots(figsize=(9, 6), dpi=120)
    front = pareto([*report.scores, report.reference])
    axes.step(
        [x(s) for s in front],
        [s.accuracy for s in front],
        where="post",
        color="tab:green",
        alpha=0.6,
        label="Pareto front",
    )
    ref = report.reference
    # Label the front first, then any other point not crowding an existing label (a twentieth of a
    # decade of cost and a fiftieth of the accuracy span apart); the rest stay unlabelled.
    accuracies = [s.accuracy for s in [*report.scores, ref]]
    span = max(0.01, max(accuracies) - min(accuracies))
    labelled: list[tuple[float, float]] = []
    figures = significance(report)

    def bar(score: Score, color: str) -> None:
        low, high = figures[id(score)][0]
        error = [[max(0.0, score.accuracy - low)], [max(0.0, high - score.accuracy)]]
        axes.errorbar(
            x(score), score.accuracy, yerr=error, fmt="none", ecolor=color, alpha=0.45, capsize=2, zorder=2
        )

    for score in sorted(report.scores, key=lambda s: not any(s is f for f in front)):
        on_front = any(score is s for s in front)
        color = "tab:green" if on_front else "tab:blue"
        bar(score, color)
        axes.scatter(x(score), score.accuracy, color=color, zorder=3, s=30)
        where = (math.log10(x(score)), score.accuracy)
        if any(abs(where[0] - a) < 0.05 and abs(where[1] - b) < span / 50 for a, b in labelled):
            continue
        labelled.append(where)
        axes.annotate(
            score.name, (x(score), score.accuracy), textcoords="offset points", xytext=(5, 3), fontsize=7
        )
    bar(ref, "tab:red")
    axes.scatter(
        x(ref), ref.accuracy, marker="*", s=220, color="tab:red", zorder=4, label=f"reference: {ref.name}"
    )
    axes.axhline(ref.accuracy, color="tab:red", linestyle=":", linewidth=0.8)
    oracle = report.oracle
    axes.scatter(
        x(oracle),
        oracle.accuracy,
        marker="D",
        s=60,
        color="black",
        zorder=4,
        label="oracle (cheapest correct model)",
    )
    axes.set_xscale("log")
    axes.set_xlabel(f"cost, % of {ref.name} (log scale)")
    axes.set_ylabel(f"accuracy (bars: {int(100 * LEVEL)}% bootstrap interval)")
    axes.set_title(
        title or f"{report.dataset}: report side ({report.report_questions} questions), {report.source}"
    )
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path


def upper_hull(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The non-decreasing upper convex hull of (cost, accuracy) points, cheapest first.

    Any point on it is reachable by mixing the two strategies at its ends at random, which is why
    RouterBench compares routers by the area under it.
    """
    hull: list[tuple[float, float]] = []
    for point in sorted(set(points)):
        if hull and point[1] <= hull[-1][1]:
            continue
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            # Drop the middle point when it lies on or under the segment to the new point.
            if (y2 - y1) * (point[0] - x1) <= (point[1] - y1) * (x2 - x1):
                hull.pop()
            else:
                break
        hull.append(point)
    return hull


def aiq(points: Sequence[tuple[float, float]], low: float, high: float) -> float:
    """Average accuracy of the upper hull over costs [low, high] (RouterBench's AIQ); flat past its ends."""
    hull = upper_hull(points)
    if not hull or high <= low:
        raise ValueError("aiq needs points and a non-empty cost range")

    def at(cost: float) -> float:
        if cost <= hull[0][0]:
            return hull[0][1]
        for (x1, y1), (x2, y2) in itertools.pairwise(hull):
            if cost <= x2:
                return y1 + (y2 - y1) * (cost - x1) / (x2 - x1)
        return hull[-1][1]

    knots = sorted({low, high, *(x for x, _ in hull if low < x < high)})
    area = sum((b - a) * (at(a) + at(b)) / 2 for a, b in itertools.pairwise(knots))
    return area / (high - low)
