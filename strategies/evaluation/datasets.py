"""Recorded-outcome datasets: the RouterBench CSV format and Chorus's own JSONL format.

A `Dataset` is a list of `Question`s, each with its prompt and, per model, the `RecordedOutcome` of
asking that model (answer, cost, latency if known, recorded grade). It turns into a replay
`Recording`, and splits deterministically into a calibration part and a held-out report part.

RouterBench CSV (as redistributed by RouterDC, one row per question): `sample_id`, `prompt`,
`eval_name`, then per model a grade column `<model>` (1.0 correct / 0.0 wrong / empty: not graded),
`<model>|model_response` and `<model>|total_cost`. Prompts and responses are Python-list-like strings
(`['B']`); they are read with `ast.literal_eval` and the list's strings joined with a newline. A grade
of 0.5 or more counts as correct.

Chorus JSONL, for recordings made from your own logs: one JSON object per line, one line per model
call::

    {"prompt": "Which gas ...?\\nA) ...\\nB) ...", "model": "gpt-4o-mini", "response": "B",
     "cost_usd": 0.00021, "latency_s": 0.84, "correct": true,
     "id": "q-17", "task": "science", "gold": "B", "choices": ["A", "B", "C", "D"]}

- required: `prompt` (the user's prompt as sent, the replay key), `model`, `response` (the answer text);
- optional: `cost_usd` (number, null when unknown), `latency_s` (seconds; estimated when absent),
  `correct` (true/false: the recorded grade of this answer), `id` (groups the calls of one question;
  defaults to the prompt), `task` (a label for per-task breakdowns), `gold` (the reference answer,
  e.g. a choice letter), `choices` (the option letters, for multiple choice; otherwise read from
  `A) ...` lines in the prompt).

Blank lines and lines starting with `#` are skipped. A (question, model) pair recorded twice is an
error naming both lines.
"""

from __future__ import annotations

import ast
import csv
import hashlib
import json
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from chorus_mcp.strategies.core.errors import UserInputError
from chorus_mcp.strategies.models.replay import RecordedOutcome, Recording

_OPTION_RE = re.compile(r"^\s*\(?([A-J])\)\s", re.MULTILINE)
_RESPONSE_SUFFIX = "|model_response"
_COST_SUFFIX = "|total_cost"


@dataclass(frozen=True)
class Question:
    id: str
    prompt: str
    """The prompt exactly as the models saw it: the replay key."""
    outcomes: Mapping[str, RecordedOutcome]
    """Recorded outcome per model."""
    task: str = ""
    gold: str | None = None
    """The reference answer when the recording states one (JSONL `gold`); see `grading.gold_of`."""
    choices: tuple[str, ...] = ()
    """Option letters for a multiple-choice question; empty for free-form answers."""


@dataclass(frozen=True)
class Dataset:
    name: str
    questions: tuple[Question, ...]
    models: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.models:
            found = sorted({model for q in self.questions for model in q.outcomes})
            object.__setattr__(self, "models", tuple(found))

    def __len__(self) -> int:
        return len(self.questions)

    def recording(self) -> Recording:
        recording = Recording()
        for question in self.questions:
            for model, outcome in question.outcomes.items():
                recording.add(question.prompt, model, outcome)
        return recording

    def subset(self, questions: Iterable[Question], suffix: str) -> Dataset:
        return Dataset(f"{self.name}{suffix}", tuple(questions), self.models)

    def split(self, calibration_share: float, seed: int) -> tuple[Dataset, Dataset]:
        """(calibration part, held-out report part), chosen by a seeded hash of each question's id.

        The same seed and ids give the same split whatever the file's row order. Ids are compared up
        to a `#` suffix, so the variants of one question (see `read_routerbench_csv`) share a side.
        """
        if not 0 < calibration_share < 1:
            raise UserInputError(f"calibration share must be between 0 and 1, got {calibration_share}")
        ordered = sorted(self.questions, key=lambda q: _hash(seed, q.id.split("#")[0]) + q.id)
        cut = round(len(ordered) * calibration_share)
        chosen = {q.id for q in ordered[:cut]}
        calibration = [q for q in self.questions if q.id in chosen]
        report = [q for q in self.questions if q.id not in chosen]
        return self.subset(calibration, ":calibration"), self.subset(report, ":report")


def _hash(seed: int, text: str) -> str:
    return hashlib.sha256(f"{seed}\0{text}".encode()).hexdigest()


def options_in(prompt: str) -> tuple[str, ...]:
    """The option letters listed as `A) ...` lines in the prompt (at least two), else ()."""
    letters = sorted(set(_OPTION_RE.findall(prompt)))
    return tuple(letters) if len(letters) >= 2 else ()


def load_dataset(path: str | Path) -> Dataset:
    """Read a recording file by its extension: `.csv` (RouterBench) or `.jsonl` (Chorus)."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(
            f"dataset {str(path)!r} does not exist (give a RouterBench .csv or a Chorus .jsonl)"
        )
    if path.suffix == ".csv":
        return read_routerbench_csv(path)
    if path.suffix in (".jsonl", ".ndjson"):
        return read_jsonl(path)
    raise UserInputError(f"dataset {str(path)!r}: unknown format (expected a .csv or .jsonl file)")


# --- RouterBench CSV --------------------------------------------------------------------------------


def unlist(text: str) -> str:
    """`"['B\\n']"` → `"B\\n"`: a Python-list-like value's strings joined by newlines; other text as is."""
    stripped = text.strip()
    if stripped.startswith("[") and stripped.endswith("]"):
        try:
            value = ast.literal_eval(stripped)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return text
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return "\n".join(value)
    return text


def _grade(raw: str, where: str) -> bool | None:
    if raw.strip() == "":
        return None
    try:
        return float(raw) >= 0.5
    except ValueError:
        raise UserInputError(f"{where}: grade {raw!r} is not a number") from None


def _cost(raw: str, where: str) -> Decimal | None:
    if raw.strip() == "":
        return None
    try:
        return Decimal(raw.strip())
    except InvalidOperation:
        raise UserInputError(f"{where}: cost {raw!r} is not a number") from None


def read_routerbench_csv(path: str | Path) -> Dataset:
    path = Path(path)
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        models = [c[: -len(_RESPONSE_SUFFIX)] for c in columns if c.endswith(_RESPONSE_SUFFIX)]
        missing = [c for c in ("prompt",) if c not in columns]
        if missing or not models:
            raise UserInputError(
                f"{path}: not a RouterBench CSV "
                "(needs a 'prompt' column and '<model>|model_response' columns)"
            )
        questions: list[Question] = []
        seen: set[str] = set()
        for line, row in enumerate(reader, start=2):
            where = f"{path}:{line}"
            prompt = unlist(row["prompt"])
            qid = row.get("sample_id") or f"row-{line}"
            if qid in seen:
                # RouterBench repeats a few sample_ids with a differently formatted prompt: keep both,
                # as `<id>#<row>`; `split` keeps rows of one sample_id on the same side.
                qid = f"{qid}#{row.get('') or line}"
                if qid in seen:
                    raise UserInputError(f"{where}: sample_id {qid!r} appears twice")
            seen.add(qid)
            outcomes = {
                model: RecordedOutcome(
                    response=unlist(row.get(model + _RESPONSE_SUFFIX) or ""),
                    cost_usd=_cost(row.get(model + _COST_SUFFIX) or "", where),
                    correct=_grade(row.get(model) or "", where),
                )
                for model in models
            }
            questions.append(
                Question(qid, prompt, outcomes, task=row.get("eval_name") or "", choices=options_in(prompt))
            )
    return Dataset(path.stem, tuple(questions), tuple(models))


# --- Chorus JSONL -----------------------------------------------------------------------------------


@dataclass
class _Draft:
    prompt: str
    line: int
    task: str = ""
    gold: str | None = None
    choices: tuple[str, ...] = ()
    outcomes: dict[str, tuple[int, RecordedOutcome]] = field(default_factory=dict)


def _field(
    record: Mapping[str, Any], name: str, kind: type | tuple[type, ...], where: str, required: bool
) -> Any:
    value = record.get(name)
    if value is None:
        if required:
            raise UserInputError(f"{where}: missing required field {name!r}")
        return None
    if isinstance(value, bool) and kind is not bool:
        raise UserInputError(f"{where}: field {name!r} must be a number, got {value!r}")
    if not isinstance(value, kind):
        raise UserInputError(f"{where}: field {name!r} has the wrong type ({type(value).__name__})")
    return value


def read_jsonl(path: str | Path) -> Dataset:
    path = Path(path)
    drafts: dict[str, _Draft] = {}
    with path.open(encoding="utf-8") as handle:
        for line, text in enumerate(handle, start=1):
            if not text.strip() or text.lstrip().startswith("#"):
                continue
            where = f"{path}:{line}"
            try:
                record = json.loads(text)
            except json.JSONDecodeError as exc:
                raise UserInputError(f"{where}: not valid JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise UserInputError(f"{where}: each line must be a JSON object")
            _add_call(drafts, record, where, line)
    questions = []
    for qid, draft in drafts.items():
        outcomes = {model: outcome for model, (_line, outcome) in draft.outcomes.items()}
        choices = draft.choices or options_in(draft.prompt)
        questions.append(Question(qid, draft.prompt, outcomes, draft.task, draft.gold, choices))
    if not questions:
        raise UserInputError(f"{path}: no records")
    return Dataset(path.stem, tuple(questions))


def _add_call(drafts: dict[str, _Draft], record: Mapping[str, Any], where: str, line: int) -> None:
    prompt = _field(record, "prompt", str, where, True)
    model = _field(record, "model", str, where, True)
    response = _field(record, "response", str, where, True)
    cost = _field(record, "cost_usd", (int, float, str), where, False)
    latency = _field(record, "latency_s", (int, float), where, False)
    correct = _field(record, "correct", bool, where, False)
    qid = _field(record, "id", (str, int), where, False)
    qid = str(qid) if qid is not None else prompt
    draft = drafts.setdefault(qid, _Draft(prompt=prompt, line=line))
    if draft.prompt != prompt:
        raise UserInputError(f"{where}: id {qid!r} was recorded with a different prompt on line {draft.line}")
    if model in draft.outcomes:
        raise UserInputError(
            f"{where}: model {model!r} is recorded twice for this question (also line "
            f"{draft.outcomes[model][0]})"
        )
    task = _field(record, "task", str, where, False)
    gold = _field(record, "gold", str, where, False)
    choices = _field(record, "choices", list, where, False)
    if task:
        draft.task = task
    if gold is not None:
        if draft.gold is not None and draft.gold != gold:
            raise UserInputError(
                f"{where}: gold {gold!r} contradicts {draft.gold!r} given earlier for {qid!r}"
            )
        draft.gold = gold
    if choices:
        draft.choices = tuple(str(c) for c in choices)
    try:
        cost_usd = None if cost is None else Decimal(str(cost))
    except InvalidOperation:
        raise UserInputError(f"{where}: cost_usd {cost!r} is not a number") from None
    if latency is not None and latency < 0:
        raise UserInputError(f"{where}: latency_s must not be negative")
    outcome = RecordedOutcome(response, cost_usd, None if latency is None else float(latency), correct)
    draft.outcomes[model] = (line, outcome)
