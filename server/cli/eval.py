"""`chorus-mcp eval`: evaluate strategies offline on recorded model outcomes, and train learned routers.

    chorus-mcp eval run config/examples/eval-arc.yaml [--dataset FILE] [--data-dir DIR] [--out DIR]
    chorus-mcp eval run EVAL.yaml --train FILE --test FILE [--overlap exclude|fail]
    chorus-mcp eval train-router DATASET --out router.json [--embedder wordllama] [--k 25] [--all]
    chorus-mcp eval train-predictor DATASET --out predictor.json --tier MODEL... [--folds 5] [--all]
    chorus-mcp eval show DATASET

Datasets are RouterBench CSV files or Chorus JSONL recordings (see `strategies.evaluation.datasets`).
A relative dataset name is looked up in the data directory: `--data-dir`, else `$CHORUS_EVAL_DATA`,
else `../shared/data/routerbench` next to the repository. Progress and tables go to stderr and
stdout respectively; results are written to `--out`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path
from typing import TextIO

from chorus_mcp.strategies.core.errors import UserInputError

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data" / "routerbench"


def default_data_dir() -> Path:
    env = os.environ.get("CHORUS_EVAL_DATA")
    return Path(env).expanduser() if env else DEFAULT_DATA_DIR


def add_eval_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `eval` and its subcommands on the main CLI's subparsers."""
    evaluate = subparsers.add_parser("eval", help="evaluate strategies offline on recorded model outcomes")
    commands = evaluate.add_subparsers(title="eval commands")
    evaluate.set_defaults(handler=lambda _args: _usage(evaluate))

    run = commands.add_parser("run", help="run an evaluation file and report on its held-out split")
    run.add_argument("config", help="evaluation file (YAML), e.g. config/examples/eval-arc.yaml")
    run.add_argument(
        "--dataset",
        "--train",
        dest="dataset",
        help="recording to use instead of the file's 'dataset' (with --test: the train file, all of it "
        "calibrating)",
    )
    run.add_argument(
        "--test",
        help="a held-out test file to report on, instead of the seeded split of the dataset "
        "(or the file's 'test')",
    )
    run.add_argument(
        "--overlap",
        choices=["exclude", "fail"],
        help="report questions duplicating calibration ones: drop and count them (exclude, the default) "
        "or stop (fail)",
    )
    run.add_argument(
        "--data-dir",
        type=Path,
        help=f"where relative dataset names are looked up (default {DEFAULT_DATA_DIR})",
    )
    run.add_argument(
        "--out", type=Path, default=Path("eval-results"), help="output folder (default ./eval-results)"
    )
    record = run.add_mutually_exclusive_group()
    record.add_argument(
        "--record",
        dest="record",
        action="store_const",
        const="all",
        default="replay",
        help="ask the file's live models afresh and replace their recording (default: replay it)",
    )
    record.add_argument(
        "--record-missing",
        dest="record",
        action="store_const",
        const="missing",
        help="ask the live models only what their recording lacks, appending it (resumes a recording)",
    )
    run.add_argument("--seed", type=int, help="override the file's seed (split and latency jitter)")
    run.add_argument("--limit", type=int, help="use at most N questions of each split (a quick look)")
    run.add_argument("--no-plot", action="store_true", help="skip the frontier PNG (no matplotlib needed)")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.set_defaults(handler=handle_run)

    train = commands.add_parser("train-router", help="train a learned router on a recording")
    train.add_argument("dataset", help="RouterBench .csv or Chorus .jsonl")
    train.add_argument("--out", type=Path, required=True, help="router file to write (JSON)")
    train.add_argument("--data-dir", type=Path)
    train.add_argument(
        "--embedder", default="wordllama", help="wordllama (default), hashing, or litellm/<model>"
    )
    train.add_argument("--variant", choices=["chorus", "baseline"], default="chorus")
    train.add_argument("--k", type=int, default=25, help="neighbours consulted (default 25)")
    train.add_argument(
        "--prior", type=float, default=4.0, help="pseudo-questions of each model's overall accuracy"
    )
    train.add_argument(
        "--tradeoff", type=float, default=0.3, help="cost/quality knob stored in the file (0 = accuracy)"
    )
    train.add_argument("--models", nargs="+", help="models the router may choose (default: all recorded)")
    train.add_argument("--seed", type=int, default=0, help="split seed (default 0)")
    train.add_argument("--calibration-share", type=float, default=0.5, help="share trained on (default 0.5)")
    train.add_argument("--all", action="store_true", help="train on every question (leaves nothing held out)")
    train.set_defaults(handler=handle_train_router)

    predictor = commands.add_parser(
        "train-predictor", help="train a correctness predictor (for learned_vote and learned_route)"
    )
    predictor.add_argument("dataset", help="RouterBench .csv or Chorus .jsonl")
    predictor.add_argument("--out", type=Path, required=True, help="predictor file to write (JSON)")
    predictor.add_argument("--data-dir", type=Path)
    predictor.add_argument(
        "--tier", nargs="+", default=[], help="models whose answers it judges (a cascade's cheap tier)"
    )
    predictor.add_argument("--models", nargs="+", help="models it routes between (default: all recorded)")
    predictor.add_argument(
        "--embedder", default="wordllama", help="wordllama (default), hashing, or litellm/<model>"
    )
    predictor.add_argument("--k", type=int, default=25, help="neighbours consulted (default 25)")
    predictor.add_argument("--l2", type=float, default=1.0, help="ridge penalty (default 1.0)")
    predictor.add_argument("--folds", type=int, default=5, help="cross-fitting folds (default 5)")
    predictor.add_argument("--seed", type=int, default=0, help="split and fold seed (default 0)")
    predictor.add_argument(
        "--calibration-share", type=float, default=0.5, help="share trained on (default 0.5)"
    )
    predictor.add_argument(
        "--all", action="store_true", help="train on every question (leaves nothing held out)"
    )
    predictor.set_defaults(handler=handle_train_predictor)

    show = commands.add_parser("show", help="summarise a recording: models, accuracy, cost, oracle")
    show.add_argument("dataset")
    show.add_argument("--data-dir", type=Path)
    show.set_defaults(handler=handle_show)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _fail(exc: UserInputError) -> int:
    print(f"chorus-mcp eval: {exc.message}", file=sys.stderr)
    return 2


def _dataset_path(name: str, data_dir: Path | None) -> Path:
    path = Path(name).expanduser()
    if path.is_absolute() or path.is_file():
        return path
    return (data_dir or default_data_dir()) / path


class ProgressBar:
    """A one-line progress bar on a terminal; one line per finished strategy otherwise."""

    def __init__(self, stream: TextIO = sys.stderr, enabled: bool = True) -> None:
        self._stream = stream
        self._enabled = enabled
        self._tty = stream.isatty()
        self._last = 0.0
        self._started = time.monotonic()

    def __call__(self, done: int, total: int, label: str) -> None:
        if not self._enabled:
            return
        if self._tty:
            now = time.monotonic()
            if done != total and now - self._last < 0.1:
                return
            self._last = now
            filled = int(30 * done / max(total, 1))
            bar = "#" * filled + "." * (30 - filled)
            self._stream.write(f"\r[{bar}] {done}/{total} {label[:60]:<60}")
            if done == total:
                self._stream.write("\n")
            self._stream.flush()
        elif done == total:
            elapsed = time.monotonic() - self._started
            self._stream.write(f"  done: {label} ({total} questions, {elapsed:.0f}s elapsed)\n")
            self._stream.flush()


def quiet_logs() -> None:
    """One evaluation makes thousands of runs: their per-run INFO logs would drown the table (and the
    wordllama package turns the root logger on at INFO when imported)."""
    for name in ("chorus", "wordllama", "strategies", "LiteLLM"):
        logging.getLogger(name).setLevel(logging.WARNING)


def handle_run(args: argparse.Namespace) -> int:
    quiet_logs()
    try:
        from chorus_mcp.strategies.evaluation.config import load_eval_config, resolve_dataset, resolve_test
        from chorus_mcp.strategies.evaluation.datasets import load_dataset
        from chorus_mcp.strategies.evaluation.report import calibration_lines, table, write_files
        from chorus_mcp.strategies.evaluation.suite import run_suite

        config_path = Path(args.config)
        config = load_eval_config(config_path)
        if args.seed is not None:
            config = config.model_copy(update={"seed": args.seed})
        data_dir = args.data_dir or default_data_dir()
        path = resolve_dataset(config, config_path, args.dataset, data_dir)
        test_path = resolve_test(config, config_path, args.test, data_dir)
        dataset = load_dataset(path)
        test = None if test_path is None else load_dataset(test_path)
        where = f"{path} ({len(dataset)} questions)"
        if test is not None:
            where = f"train {where}, test {test_path} ({len(test)} questions)"
        print(f"evaluating {config_path} on {where}, seed {config.seed}", file=sys.stderr)
        report = run_suite(
            config,
            dataset,
            args.out,
            ProgressBar(enabled=not args.quiet),
            args.limit,
            test=test,
            overlap=args.overlap,
            record=args.record,
            base_dir=config_path.parent,
        )
        written = write_files(report, args.out, plot=not args.no_plot)
    except UserInputError as exc:
        return _fail(exc)
    print(
        f"\n{report.dataset}: calibrated on {report.calibration_questions} questions, "
        f"reported on {report.report_questions} others ({report.source}); "
        f"reference {report.reference.name}"
    )
    print(f"overlap: {report.overlap.summary()}\n")
    for line in calibration_lines(report):
        print(f"calibration: {line}")
    print()
    print(table(report))
    print("\nwritten: " + ", ".join(str(p) for p in written))
    return 0


def handle_train_router(args: argparse.Namespace) -> int:
    quiet_logs()
    try:
        from chorus_mcp.strategies.evaluation.datasets import load_dataset
        from chorus_mcp.strategies.evaluation.training import train_router
        from chorus_mcp.strategies.learned.settings import RouterSettings

        dataset = load_dataset(_dataset_path(args.dataset, args.data_dir))
        settings = RouterSettings(
            embedder=args.embedder,
            variant=args.variant,
            k=args.k,
            prior=args.prior,
            tradeoff=args.tradeoff,
            models=args.models or [],
        )
        part = dataset if args.all else dataset.split(args.calibration_share, args.seed)[0]
        router = train_router(part, settings)
        path = router.save(args.out)
    except UserInputError as exc:
        return _fail(exc)
    except ValueError as exc:  # pydantic validation of the settings
        print(f"chorus-mcp eval: {exc}", file=sys.stderr)
        return 2
    held_out = "none (--all)" if args.all else f"{len(dataset) - len(part)} questions (seed {args.seed})"
    print(f"trained on {router.trained_on}; held out: {held_out}; {len(router.models)} models; wrote {path}")
    print(f"use it in a config: {{kind: learned_route, router: {path}}}")
    return 0


def handle_train_predictor(args: argparse.Namespace) -> int:
    quiet_logs()
    try:
        from chorus_mcp.strategies.evaluation.datasets import load_dataset
        from chorus_mcp.strategies.evaluation.training import train_predictor
        from chorus_mcp.strategies.learned.settings import PredictorSettings

        dataset = load_dataset(_dataset_path(args.dataset, args.data_dir))
        settings = PredictorSettings(
            embedder=args.embedder,
            k=args.k,
            tier=args.tier,
            models=args.models or [],
            l2=args.l2,
            folds=args.folds,
            seed=args.seed,
        )
        part = dataset if args.all else dataset.split(args.calibration_share, args.seed)[0]
        predictor = train_predictor(part, settings)
        path = predictor.save(args.out)
    except UserInputError as exc:
        return _fail(exc)
    except ValueError as exc:  # pydantic validation of the settings
        print(f"chorus-mcp eval: {exc}", file=sys.stderr)
        return 2
    held_out = "none (--all)" if args.all else f"{len(dataset) - len(part)} questions (seed {args.seed})"
    print(f"trained on {predictor.trained_on}; held out: {held_out}; tier {predictor.tier}; wrote {path}")
    if predictor.tier:
        print(
            f"use it in a config: {{kind: learned_vote, predictor: {path}, threshold: 0.9, escalate: MODEL}}"
        )
    print(f"or to route: {{kind: learned_route, router: {path}, min_probability: 0.9}}")
    return 0


def handle_show(args: argparse.Namespace) -> int:
    try:
        from chorus_mcp.strategies.evaluation.datasets import load_dataset
        from chorus_mcp.strategies.evaluation.engine import Evaluator

        dataset = load_dataset(_dataset_path(args.dataset, args.data_dir))
        evaluator = Evaluator(dataset)
        scores = [evaluator.reference(model) for model in dataset.models]
    except UserInputError as exc:
        return _fail(exc)
    oracle = evaluator.oracle()
    most = max(scores, key=lambda s: s.cost_usd)
    print(f"{dataset.name}: {len(dataset)} questions, {len(dataset.models)} models")
    print(f"{'model':<40} {'accuracy':>8} {'cost $':>10} {'% of ' + most.name[:20]:>26}")
    for score in [*sorted(scores, key=lambda s: -s.accuracy), oracle]:
        share = 100 * float(score.cost_usd / most.cost_usd) if most.cost_usd else 0.0
        print(f"{score.name:<40} {score.accuracy:>8.4f} {float(score.cost_usd):>10.4f} {share:>25.1f}%")
    return 0
