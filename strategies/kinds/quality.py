"""Per-model quality from recorded outcomes: the share of a model's graded answers that were right.

A route with `objective: quality` scores its candidates from `quality` (configured scores, which win) or
from `quality_data`, a recording of graded answers in either of the formats the offline evaluation reads
(`strategies.evaluation.datasets`; read here by a few lines of their own, so that serving never imports
the evaluation code):

- RouterBench CSV (as shipped in `../shared/data/routerbench`): a model is every column `X` that has a
  `X|model_response` column beside it; a cell of 0.5 or more is a right answer, below a wrong one, empty
  not graded;
- Chorus JSONL: one object per line with `model` and `correct` (true/false; a line without it is not
  graded); blank lines and lines starting with `#` are skipped.

A file is read once per (path, size, modification time) and kept; a figure says how many graded answers
it rests on. A model the recording does not grade has no figure: the ranking says so and puts it last.
"""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from chorus_mcp.strategies.core.errors import ConfigError
from chorus_mcp.strategies.core.spec import RouteSpec

_RESPONSE_SUFFIX = "|model_response"
_RIGHT = 0.5
"""RouterBench grades: at or above this a right answer."""


@dataclass(frozen=True)
class Graded:
    right: int
    graded: int

    @property
    def accuracy(self) -> float:
        return self.right / self.graded


@dataclass(frozen=True)
class QualityFigure:
    score: float | None
    """None: no configured score and no graded answer recorded."""
    samples: int | None
    """Graded answers behind a recorded score; None for a configured one."""
    source: str


def quality_figures(spec: RouteSpec, models: list[str]) -> dict[str, QualityFigure]:
    """Each model's score: its configured `quality`, else its accuracy in `quality_data`."""
    recorded: dict[str, Graded] = {}
    name = ""
    if spec.quality_data is not None:
        path = Path(spec.quality_data).expanduser()
        try:
            stat = path.stat()
        except OSError as exc:
            raise ConfigError(f"quality_data: cannot read {str(path)!r}: {exc.strerror or exc}") from None
        by_name = _read(str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        recorded = {spec.quality_models.get(model, model): graded for model, graded in by_name.items()}
        name = path.name
    figures: dict[str, QualityFigure] = {}
    for model in models:
        if model in spec.quality:
            figures[model] = QualityFigure(spec.quality[model], None, "configured")
        elif model in recorded:
            graded = recorded[model]
            figures[model] = QualityFigure(round(graded.accuracy, 4), graded.graded, f"recorded in {name}")
        else:
            figures[model] = QualityFigure(
                None, None, f"no score configured or recorded in {name}" if name else "no score configured"
            )
    return figures


@lru_cache(maxsize=8)
def _read(path: str, size: int, mtime_ns: int) -> dict[str, Graded]:
    """The graded answers per model in the file at `path` (size and time make a changed file a new key)."""
    del size, mtime_ns
    if path.endswith(".csv"):
        return _read_csv(Path(path))
    return _read_jsonl(Path(path))


def _read_csv(path: Path) -> dict[str, Graded]:
    csv.field_size_limit(max(csv.field_size_limit(), min(sys.maxsize, 2**31 - 1)))  # prompts can be long
    counts: dict[str, list[int]] = {}
    with path.open(newline="", encoding="utf-8") as file:
        reader = csv.DictReader(file)
        header = reader.fieldnames or []
        models = [c for c in header if f"{c}{_RESPONSE_SUFFIX}" in header]
        if not models:
            raise ConfigError(
                f"quality_data: {path.name} has no model columns (a RouterBench CSV has `<model>` beside "
                f"`<model>{_RESPONSE_SUFFIX}`)"
            )
        for line, row in enumerate(reader, start=2):
            for model in models:
                cell = (row.get(model) or "").strip()
                if not cell:
                    continue
                try:
                    grade = float(cell)
                except ValueError:
                    raise ConfigError(
                        f"quality_data: {path.name} line {line}: the grade of {model!r} is "
                        f"{cell[:20]!r}, not a number"
                    ) from None
                tally = counts.setdefault(model, [0, 0])
                tally[0] += grade >= _RIGHT
                tally[1] += 1
    return {model: Graded(right, graded) for model, (right, graded) in counts.items() if graded}


def _read_jsonl(path: Path) -> dict[str, Graded]:
    counts: dict[str, list[int]] = {}
    with path.open(encoding="utf-8") as file:
        for line_number, line in enumerate(file, start=1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            where = f"quality_data: {path.name} line {line_number}"
            try:
                record = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{where}: not JSON ({exc.msg})") from None
            if not isinstance(record, dict) or not isinstance(record.get("model"), str):
                raise ConfigError(f"{where}: needs a 'model' (a string)")
            correct = record.get("correct")
            if correct is None:
                continue
            if not isinstance(correct, bool):
                raise ConfigError(f"{where}: 'correct' is {correct!r}; expected true or false")
            tally = counts.setdefault(record["model"], [0, 0])
            tally[0] += correct
            tally[1] += 1
    return {model: Graded(right, graded) for model, (right, graded) in counts.items()}
