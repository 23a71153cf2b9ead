"""The `chorus-mcp eval` commands, run as a user runs them."""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chorus_mcp.server.cli.eval import add_eval_parser
from tests.strategies.evaluation.fixtures import toy_rows, write_routerbench_csv

pytest.importorskip("trio")


@pytest.fixture(autouse=True)
def _log_levels_restored() -> Iterator[None]:
    """`eval` quietens the process's loggers for its run; later tests in this process read them."""
    names = ("chorus", "wordllama", "strategies", "LiteLLM")
    levels = {name: logging.getLogger(name).level for name in names}
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


EVAL_FILE = """
dataset: toy.csv
reference: strong
seed: 3
models: {best: strong}
strategies:
  strong-alone: best
  cheap-vote: {kind: ensemble, members: [cheap-a, cheap-b, cheap-c], early_stop: false}
calibrate:
  agreement-cascade:
    candidates:
      - kind: cascade
        estimator: agreement
        tiers:
          - {kind: ensemble, members: [cheap-a, cheap-b, cheap-c], early_stop: false}
          - {kind: ensemble, members: [best]}
    grid: {threshold: [0.3, 1.0]}
"""


def main(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="chorus-mcp")
    add_eval_parser(parser.add_subparsers())
    args = parser.parse_args(list(argv))
    code: int = args.handler(args)
    return code


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    write_routerbench_csv(tmp_path / "toy.csv", toy_rows(40))
    (tmp_path / "eval.yaml").write_text(EVAL_FILE)
    return tmp_path


def test_eval_run_reports_the_held_out_split_and_writes_results(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = workspace / "out"
    code = main(
        "eval",
        "run",
        str(workspace / "eval.yaml"),
        "--data-dir",
        str(workspace),
        "--out",
        str(out),
        "--quiet",
        "--no-plot",
    )
    printed = capsys.readouterr().out
    assert code == 0
    assert "calibrated on 20 questions, reported on 20 others (seeded split of toy (seed 3))" in printed
    assert "overlap: no question of the report side duplicates one" in printed
    assert "agreement-cascade: target accuracy 1.0000 met" in printed
    results = json.loads((out / "results.json").read_text())
    by_name = {row["strategy"]: row for row in results["scores"]}
    assert by_name["agreement-cascade"]["accuracy"] == 1.0
    assert by_name["strong-alone"]["cost_share_of_reference"] == 1.0
    assert by_name["cheap-vote"]["losses_vs_reference"] > 0
    # Every accuracy has its bootstrap interval, every comparison its exact McNemar test.
    cheap = by_name["cheap-vote"]
    assert (cheap["wins_vs_reference"], cheap["losses_vs_reference"]) == (0, 10)
    assert cheap["mcnemar_p"] == round(2 / 2**10, 6) and cheap["verdict_vs_reference"] == "worse"
    assert cheap["accuracy_low"] < cheap["accuracy"] < cheap["accuracy_high"]
    assert cheap["difference_high"] < 0
    assert by_name["agreement-cascade"]["verdict_vs_reference"] == "within noise"
    assert "+0/-10 p=0.002 worse" in printed and "95% interval" in printed
    # The cheap vote ties three ways on half the questions: a tie is no answer, so the cascade escalates
    # it at any threshold and the lowest one in the grid is chosen.
    assert results["calibrations"][0]["chosen"]["threshold"] == 0.3
    assert (out / "summary.csv").read_text().startswith("strategy,kind,questions,accuracy")
    assert "agreement-cascade" in (out / "questions.csv").read_text()


def test_eval_run_trains_on_one_file_and_reports_on_another_excluding_duplicates(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = toy_rows(40)
    write_routerbench_csv(workspace / "train.csv", rows[:24])
    write_routerbench_csv(workspace / "test.csv", [*rows[24:], rows[5]])
    out = workspace / "out"
    args = ["eval", "run", str(workspace / "eval.yaml"), "--out", str(out), "--quiet", "--no-plot"]
    files = ["--train", str(workspace / "train.csv"), "--test", str(workspace / "test.csv")]
    assert main(*args, *files) == 0
    printed = capsys.readouterr().out
    assert "calibrated on 24 questions, reported on 16 others (train train, test test)" in printed
    assert "overlap: 1 report question(s) duplicate calibration ones (toy.5 = toy.5); 1 excluded" in printed
    results = json.loads((out / "results.json").read_text())
    assert results["split"]["calibration_questions"] == 24 and results["split"]["report_questions"] == 16
    assert results["split"]["overlap"]["excluded"] == ["toy.5"]
    assert all(row["questions"] == 16 for row in results["scores"])
    assert main(*args, *files, "--overlap", "fail") == 2
    assert "would leak the calibration side's recorded outcomes" in capsys.readouterr().err


def test_eval_run_draws_the_frontier(workspace: Path) -> None:
    pytest.importorskip("matplotlib")
    out = workspace / "out"
    assert (
        main(
            "eval",
            "run",
            str(workspace / "eval.yaml"),
            "--data-dir",
            str(workspace),
            "--out",
            str(out),
            "--quiet",
        )
        == 0
    )
    assert (out / "frontier.png").read_bytes().startswith(b"\x89PNG")


def test_bad_input_is_a_clear_message_and_exit_code_2(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main("eval", "run", str(workspace / "eval.yaml"), "--dataset", str(workspace / "missing.csv")) == 2
    assert "does not exist" in capsys.readouterr().err
    (workspace / "bad.yaml").write_text("reference: strong\nstrategies: {x: {kind: ensemble, members: []}}\n")
    assert main("eval", "run", str(workspace / "bad.yaml"), "--data-dir", str(workspace)) == 2
    assert "strategies.x.ensemble.members" in capsys.readouterr().err


def test_train_router_holds_out_the_report_split(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("numpy")
    out = workspace / "r.json"
    assert (
        main(
            "eval",
            "train-router",
            "toy.csv",
            "--data-dir",
            str(workspace),
            "--out",
            str(out),
            "--embedder",
            "hashing",
        )
        == 0
    )
    assert "held out: 20 questions" in capsys.readouterr().out
    assert json.loads(out.read_text())["shape"][0] == 20


def test_show_summarises_a_recording(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main("eval", "show", str(workspace / "toy.csv")) == 0
    printed = capsys.readouterr().out
    assert "toy: 40 questions, 4 models" in printed and "oracle" in printed


@pytest.mark.parametrize(
    "path", sorted((Path(__file__).parents[3] / "config" / "examples").glob("eval-*.yaml"))
)
def test_shipped_evaluation_files_are_valid(path: Path) -> None:
    from chorus_mcp.strategies.evaluation.config import load_eval_config

    config = load_eval_config(path)
    assert config.reference in config.models and config.strategies


LIVE_FILE = """
dataset: toy.csv
reference: strong
seed: 3
live:
  small: {{model: openai/small, api_base: "{base}", recording: recordings/live.jsonl}}
strategies:
  small-then-strong:
    kind: cascade
    estimator: logprob
    threshold: 0.9
    tiers: [small, {{kind: ensemble, members: [strong]}}]
"""


def test_eval_run_records_a_live_tier_then_replays_it(
    workspace: Path, fake_openai: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_openai.script("small", "A", logprobs=[-0.01])
    (workspace / "live.yaml").write_text(LIVE_FILE.format(base=fake_openai.base_url))
    args = ["eval", "run", str(workspace / "live.yaml"), "--data-dir", str(workspace), "--quiet", "--no-plot"]
    args += ["--out", str(workspace / "out")]
    assert main(*args) == 2
    assert "--record to ask the live models" in capsys.readouterr().err
    assert main(*args, "--record-missing") == 0
    asked = len(fake_openai.requests_for("small"))
    assert asked == 20 and (workspace / "recordings" / "live.jsonl").is_file()
    capsys.readouterr()
    fake_openai.reset()
    assert main(*args) == 0 and fake_openai.requests == []
    printed = capsys.readouterr().out
    assert "local s/q" in printed and "+local: the dollar figures leave out the local compute" in printed
    row = next(
        r
        for r in json.loads((workspace / "out" / "results.json").read_text())["scores"]
        if r["strategy"] == "small-then-strong"
    )
    assert row["local_compute_s"] > 0 and row["local_compute_in_cost"] is False
