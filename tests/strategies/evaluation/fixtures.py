"""Small recorded-outcome files written by the tests themselves (datasets are never copied in)."""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path

MODELS = ("cheap-a", "cheap-b", "cheap-c", "strong")
COST = {"cheap-a": "0.0001", "cheap-b": "0.0002", "cheap-c": "0.0003", "strong": "0.01"}


def mc_prompt(question: str, options: Sequence[str] = ("yes", "no", "maybe", "later")) -> str:
    letters = "ABCD"
    lines = [question, *(f"{letters[i]}) {text}" for i, text in enumerate(options))]
    lines.append('Print only a single choice from "A" or "B" or "C" or "D" without explanation. Answer:')
    return "\n".join(lines)


def write_routerbench_csv(
    path: Path,
    rows: Sequence[tuple[str, str, Mapping[str, str]]],
    *,
    gold: Mapping[str, str] | None = None,
    models: Sequence[str] = MODELS,
    task: str = "toy-mc",
) -> Path:
    """rows: (sample_id, prompt, {model: answer letter}); a model is graded correct when its answer is
    the row's gold (by default the strong model's answer)."""
    columns = ["", "sample_id", "prompt", "eval_name", *models]
    columns += [f"{m}|model_response" for m in models] + [f"{m}|total_cost" for m in models]
    columns.append("oracle_model_to_route_to")
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for index, (sample_id, prompt, answers) in enumerate(rows):
            right = (gold or {}).get(sample_id, answers.get("strong", "A"))
            grades = ["1.0" if answers[m] == right else "0.0" for m in models]
            responses = [repr([answers[m] + "\n"]) for m in models]
            costs = [COST.get(m, "0.001") for m in models]
            writer.writerow([index, sample_id, repr([prompt]), task, *grades, *responses, *costs, models[0]])
    return path


def toy_rows(count: int = 12) -> list[tuple[str, str, dict[str, str]]]:
    """Questions where the cheap models agree on the right letter for even ids and split on odd ones.

    The strong model is always right (it defines the gold letter). On odd questions the three cheap
    models give three different letters, and only cheap-c's is right (a three-way tie is reported
    unresolved: that tier gives no answer, so a cascade escalates it whatever its threshold).
    """
    rows = []
    for i in range(count):
        right = "ABCD"[i % 4]
        wrong1 = "ABCD"[(i + 1) % 4]
        wrong2 = "ABCD"[(i + 2) % 4]
        if i % 2 == 0:
            answers = {"cheap-a": right, "cheap-b": right, "cheap-c": right, "strong": right}
        else:
            answers = {"cheap-a": wrong1, "cheap-b": wrong2, "cheap-c": right, "strong": right}
        rows.append((f"toy.{i}", mc_prompt(f"Question number {i}?"), answers))
    return rows
