"""Run every figure of issue 7 and print one table: figure, value, target, holds?

    bench/run_all [--quick] [--markdown FILE]

Each figure is a ratio (or a count) against a baseline measured in the same run; see each script's
docstring for what exactly is measured. `--quick` shortens the runs (fewer calls, shorter loops) for a
smoke test; the figures in BENCHMARKS.md come from a full run. The machine's load is printed before
and after: on a shared machine, timings are only comparable within one run.
"""

from __future__ import annotations

import argparse
import logging
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import anyio

from bench import (
    client_overhead,
    cold_start,
    ensemble_overhead,
    footprint,
    memory,
    objective_routing,
    throughput,
)
from bench._harness import Figure, load


def _steps(quick: bool) -> list[tuple[str, Callable[[], list[Figure]]]]:
    calls = 200 if quick else 300
    return [
        ("tool footprint", lambda: footprint.figures(anyio.run(footprint.measure))),
        (
            "per-model-call overhead",
            lambda: client_overhead.figures(anyio.run(client_overhead.measure, calls, True)),
        ),
        ("cold start", lambda: cold_start.figures(cold_start.measure(3 if quick else 7))),
        (
            "ensemble overhead",
            lambda: ensemble_overhead.figures(
                anyio.run(ensemble_overhead.measure, 10 if quick else 20, 50), 50
            ),
        ),
        ("throughput", lambda: throughput.figures(anyio.run(throughput.measure, 4 if quick else 8, 8, None))),
        (
            "objective routing",
            lambda: objective_routing.figures(
                anyio.run(objective_routing.measure, 12 if quick else 40, 500 if quick else 2000)
            ),
        ),
        (
            "memory",
            lambda: memory.figures(anyio.run(memory.measure, 300 if quick else 1000), 300 if quick else 1000),
        ),
    ]


def table(rows: list[Figure]) -> str:
    header = ("figure", "value", "target", "holds?")
    cells = [(row.name, row.value, row.target, _verdict(row)) for row in rows]
    widths = [max(len(str(cell[i])) for cell in [header, *cells]) for i in range(4)]
    lines = [
        "  ".join(str(value).ljust(width) for value, width in zip(line, widths, strict=True))
        for line in [header, *cells]
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def markdown(rows: list[Figure]) -> str:
    lines = ["| figure | value | target | holds? | detail |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {r.name} | {r.value} | {r.target} | {_verdict(r)} | {r.note} |" for r in rows]
    return "\n".join(lines)


def _verdict(row: Figure) -> str:
    return "-" if row.holds is None else ("yes" if row.holds else "MISSED")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="shorter runs (a smoke test)")
    parser.add_argument("--markdown", type=Path, help="also write the table as Markdown to this file")
    parser.add_argument("--only", nargs="*", help="run only the steps whose name contains one of these")
    args = parser.parse_args()
    # The bench process is a client: its own INFO logs (httpx logs every request) would cost time in the
    # measured loops, and building a server in-process (the footprint step) turns them on.
    logging.disable(logging.INFO)
    started = time.perf_counter()
    before = load()
    print(before, flush=True)
    rows: list[Figure] = []
    for name, step in _steps(args.quick):
        if args.only and not any(part in name for part in args.only):
            continue
        step_started = time.perf_counter()
        try:
            rows.extend(step())
        except Exception as exc:  # one broken figure must not hide the others
            traceback.print_exc()
            rows.append(Figure(name, "error", "-", False, f"{type(exc).__name__}: {exc}"))
        print(f"  {name}: {time.perf_counter() - step_started:.0f} s", flush=True)
    after = load()
    print()
    print(table(rows))
    print(f"\n{time.perf_counter() - started:.0f} s in all; before: {before}; after: {after}")
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(f"{markdown(rows)}\n\nMachine: before the run {before}; after {after}.\n")


if __name__ == "__main__":
    main()
