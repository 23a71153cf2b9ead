"""Which questions calibrate and which report: a seeded split of one file, or a train file and a test file.

- One file: `Dataset.split` (a seeded hash of each question id; the variants of one sample id share
  a side).
- Two files (`--train FILE --test FILE`): every question of the train file calibrates (routers,
  predictors, calibrated settings), every question of the test file reports.

Either way the two sides are checked for **overlaps**: a question on the report side whose question
text (the last paragraph of the prompt, where few-shot examples come first, compared with case and
whitespace folded) is also on the calibration side, or whose id is. A recording is indexed by prompt
and the learned parts look up a question's nearest recorded neighbours, so such a duplicate would
hand the report side answers the calibration side already holds (its recorded outcomes are the same
facts; a KNN router would find itself as its own nearest neighbour). The policy:

- `exclude` (the default): the report side's duplicates are dropped before anything runs, and the
  report says how many and which;
- `fail`: the run stops with an error naming the first duplicates.

Two files must record the same models: a strategy evaluated on one and reported on the other
would otherwise meet a model the other has never seen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from chorus_mcp.strategies.core.errors import UserInputError
from chorus_mcp.strategies.evaluation.datasets import Dataset
from chorus_mcp.strategies.learned.router import question_text

OverlapPolicy = Literal["exclude", "fail"]
SHOWN = 5
"""How many duplicates an error or a summary names."""


@dataclass(frozen=True)
class Overlap:
    """Questions found on both sides, and what was done about them."""

    policy: OverlapPolicy
    pairs: tuple[tuple[str, str], ...] = ()
    """(calibration question id, report question id) for each report question that duplicates one."""
    excluded: tuple[str, ...] = field(default=())
    """Report question ids dropped (with `exclude`)."""

    @property
    def count(self) -> int:
        return len(self.pairs)

    def summary(self) -> str:
        if not self.pairs:
            return "no question of the report side duplicates one of the calibration side"
        shown = ", ".join(f"{test} = {train}" for train, test in self.pairs[:SHOWN])
        more = f" and {self.count - SHOWN} more" if self.count > SHOWN else ""
        return (
            f"{self.count} report question(s) duplicate calibration ones ({shown}{more}); "
            f"{len(self.excluded)} excluded from the report"
        )


@dataclass(frozen=True)
class Sides:
    """The calibration and report questions, and the dataset whose recording serves them both."""

    calibration: Dataset
    report: Dataset
    recorded: Dataset
    """Every question of both sides (after exclusions): what the replay answers from."""
    overlap: Overlap
    source: str
    """How the sides were made, for the report: `seeded split of X (seed s)` or `train X, test Y`."""


def question_key(prompt: str) -> str:
    """What two prompts of one question share: the question text, case and whitespace folded."""
    return " ".join(question_text(prompt).split()).casefold()


def find_overlaps(calibration: Dataset, report: Dataset) -> list[tuple[str, str]]:
    """(calibration id, report id) for every report question duplicating a calibration question."""
    by_key: dict[str, str] = {}
    ids = {q.id for q in calibration.questions}
    for question in calibration.questions:
        by_key.setdefault(question_key(question.prompt), question.id)
    pairs = []
    for question in report.questions:
        twin = by_key.get(question_key(question.prompt))
        if twin is None and question.id in ids:
            twin = question.id
        if twin is not None:
            pairs.append((twin, question.id))
    return pairs


def _resolve(
    calibration: Dataset, report: Dataset, policy: OverlapPolicy, where: str
) -> tuple[Dataset, Overlap]:
    pairs = find_overlaps(calibration, report)
    if pairs and policy == "fail":
        overlap = Overlap(policy, tuple(pairs))
        raise UserInputError(
            f"{where}: {overlap.summary().split(';')[0]}. A duplicated question would leak the calibration "
            "side's recorded outcomes into the report; remove the duplicates, or use the 'exclude' "
            "overlap policy to drop them from the report"
        )
    dropped = {test for _train, test in pairs}
    kept = report.subset((q for q in report.questions if q.id not in dropped), "")
    return kept, Overlap(policy, tuple(pairs), tuple(q.id for q in report.questions if q.id in dropped))


def seeded_sides(dataset: Dataset, share: float, seed: int, policy: OverlapPolicy = "exclude") -> Sides:
    """One file split by `Dataset.split`, checked for overlaps like two files."""
    calibration, report = dataset.split(share, seed)
    report, overlap = _resolve(calibration, report, policy, dataset.name)
    recorded = dataset.subset([*calibration.questions, *report.questions], "")
    return Sides(calibration, report, recorded, overlap, f"seeded split of {dataset.name} (seed {seed})")


def file_sides(train: Dataset, test: Dataset, policy: OverlapPolicy = "exclude") -> Sides:
    """All of `train` calibrates, all of `test` (less any duplicates of train questions) reports."""
    if set(train.models) != set(test.models):
        only_train = ", ".join(sorted(set(train.models) - set(test.models))) or "none"
        only_test = ", ".join(sorted(set(test.models) - set(train.models))) or "none"
        raise UserInputError(
            f"the train file {train.name!r} and the test file {test.name!r} record different models "
            f"(only in train: {only_train}; only in test: {only_test})"
        )
    report, overlap = _resolve(train, test, policy, f"train {train.name!r} / test {test.name!r}")
    calibration = train.subset(train.questions, ":calibration")
    report = Dataset(f"{test.name}:report", report.questions, train.models)
    recorded = Dataset(f"{train.name}+{test.name}", (*train.questions, *report.questions), train.models)
    return Sides(calibration, report, recorded, overlap, f"train {train.name}, test {test.name}")


def limited(sides: Sides, limit: int | None) -> Sides:
    """At most `limit` questions on each side (a quick look); None keeps everything."""
    if limit is None:
        return sides
    calibration = sides.calibration.subset(sides.calibration.questions[:limit], "")
    report = sides.report.subset(sides.report.questions[:limit], "")
    return Sides(calibration, report, sides.recorded, sides.overlap, sides.source)
