"""Routing accuracy: keyword rules vs example embeddings vs an LLM classifier, and the full chain.

The labelled set (bench/data/routing_labelled.jsonl) is 125 requests written for this benchmark, 25 for
each of five routes (code, math, writing, health, general); the routes, with their keywords,
descriptions and 8 example requests each, are bench/data/routing_routes.yaml. No labelled request is
one of the examples.

Every router runs through the real `strategies.kinds.routing.choose_route`, on a variant of that spec:

- `keyword`: rules only (keywords and patterns), else the default route;
- `embedding/<embedder>`: examples only (nearest example, cosine similarity over the threshold), else
  the default. Its threshold is reported two ways: the shipped default, and 2-fold cross-validated
  (choose the best threshold on one half, score the other half, and the reverse), so a threshold tuned
  on the very requests it is scored on does not flatter it;
- `classifier/<model>`: the LLM classifier only (route descriptions in the prompt, and in a second run
  also 3 examples per route), else the default;
- `chain`: rules → embeddings → classifier → default, as configured in production.

The classifier is the embedded default model (Qwen2.5-Coder-1.5B-Instruct in-process, the `local`
extra) when it is installed (the figures in BENCHMARKS.md were measured with SmolLM2-135M, the earlier
one), else `fake`, a stand-in that names a random route (the chance baseline), or any model given
with `--classifier` (a litellm id such as `openai/gpt-4.1-mini`, with its key in the environment).

Run: `.venv/bin/python bench/routing_accuracy.py [--classifier local/<model>|fake|<model>] [--write]`
(`--write` replaces bench/results/routing_accuracy.md).
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script from anywhere

from chorus_mcp.strategies import routing  # noqa: E402
from chorus_mcp.strategies.core.completion import CompletionRequest  # noqa: E402
from chorus_mcp.strategies.core.embedders import DEFAULT_THRESHOLDS  # noqa: E402
from chorus_mcp.strategies.core.spec import RouteSpec  # noqa: E402
from chorus_mcp.strategies.engine.context import RunContext  # noqa: E402
from chorus_mcp.strategies.models.catalog import ModelCatalog, ModelEntry  # noqa: E402
from chorus_mcp.strategies.models.embeddings import embed  # noqa: E402
from chorus_mcp.strategies.models.providers import provider_client  # noqa: E402
from chorus_mcp.strategies.models.testing import ScriptedClient  # noqa: E402

DATA = REPO / "bench" / "data"
RESULTS = REPO / "bench" / "results" / "routing_accuracy.md"
THRESHOLDS = [round(0.05 * i, 2) for i in range(0, 13)]
SEED = 7


@dataclass
class Run:
    name: str
    predicted: list[str]
    methods: list[str]
    seconds: list[float] = field(default_factory=list)
    note: str = ""

    def accuracy(self, gold: Sequence[str]) -> float:
        return sum(p == g for p, g in zip(self.predicted, gold, strict=True)) / len(gold)


def load_data() -> tuple[dict[str, Any], list[str], list[str]]:
    raw = yaml.safe_load((DATA / "routing_routes.yaml").read_text())
    rows = [json.loads(line) for line in (DATA / "routing_labelled.jsonl").read_text().splitlines() if line]
    examples = {e for route in raw["routes"] for e in route.get("examples", [])}
    texts = [row["text"] for row in rows]
    assert not examples & set(texts), "a labelled request is also a route example"
    return raw, texts, [row["route"] for row in rows]


def variant(
    raw: dict[str, Any],
    *,
    rules: bool,
    embedder: str | None,
    threshold: float | None,
    classifier: str | None,
    examples: bool | None = None,
) -> RouteSpec:
    """The benchmark's spec with only the named steps (`examples` by default: when an embedder reads them)."""
    spec = json.loads(json.dumps(raw))
    spec.pop("embedding", None)
    for route in spec["routes"]:
        route["target"] = "unused"
        if not rules:
            route.pop("keywords", None)
            route.pop("patterns", None)
        if not (embedder is not None if examples is None else examples):
            route.pop("examples", None)
    if embedder is not None:
        spec["embedding"] = {"model": embedder, "threshold": threshold}
    if classifier is not None:
        spec["classifier"] = "classifier"
    return RouteSpec.model_validate(spec)


def catalog(classifier: str, names: list[str]) -> ModelCatalog:
    if classifier == "fake":
        chance = random.Random(SEED)
        client = ScriptedClient("classifier", lambda _request: chance.choice(names), cost_usd=None)
        return ModelCatalog({"classifier": ModelEntry(model="fake/random")}, lambda _n, _e: client)
    entry = ModelEntry(model=classifier, timeout_s=120)
    return ModelCatalog({"classifier": entry}, provider_client)


async def route_all(spec: RouteSpec, texts: list[str], models: ModelCatalog, name: str) -> Run:
    run = Run(name, [], [])
    for text in texts:
        ctx = RunContext.starting_now(models, deadline_s=300)
        started = time.perf_counter()
        choice, _calls = await routing.choose_route(spec, CompletionRequest.of(text), ctx, "route")
        run.seconds.append(time.perf_counter() - started)
        run.predicted.append(choice.route)
        run.methods.append(choice.method)
    return run


def best_threshold(similarity: list[float], nearest: list[str], gold: list[str], default: str) -> float:
    def accuracy(t: float) -> float:
        return sum((n if s >= t else default) == g for s, n, g in zip(similarity, nearest, gold, strict=True))

    return max(THRESHOLDS, key=lambda t: (accuracy(t), -t))


def cross_validated(
    raw: dict[str, Any], embedder: str, texts: list[str], gold: list[str]
) -> tuple[float, str]:
    """2-fold accuracy of the embedding router with the threshold chosen on the other fold."""
    examples = [(route["name"], e) for route in raw["routes"] for e in route.get("examples", [])]
    vectors = embed(embedder, [e for _, e in examples])
    queries = embed(embedder, texts)
    similarity_matrix = queries @ vectors.T
    best = similarity_matrix.argmax(axis=1)
    similarity = [float(similarity_matrix[i, b]) for i, b in enumerate(best)]
    nearest = [examples[b][0] for b in best]
    order = list(range(len(texts)))
    random.Random(SEED).shuffle(order)
    folds = [order[::2], order[1::2]]
    right = 0
    chosen = []
    for fit, score in (folds, folds[::-1]):
        t = best_threshold(
            [similarity[i] for i in fit], [nearest[i] for i in fit], [gold[i] for i in fit], raw["default"]
        )
        chosen.append(t)
        right += sum((nearest[i] if similarity[i] >= t else raw["default"]) == gold[i] for i in score)
    sweep = []
    for t in THRESHOLDS:
        acc = sum(
            (n if s >= t else raw["default"]) == g for s, n, g in zip(similarity, nearest, gold, strict=True)
        )
        covered = sum(s >= t for s in similarity)
        sweep.append(f"{t:.2f}: {acc / len(gold):.1%} ({covered} decided by examples)")
    note = f"thresholds chosen per fold: {chosen}; in-sample sweep: " + "; ".join(sweep)
    return right / len(gold), note


def per_route(run: Run, gold: list[str], names: list[str]) -> str:
    cells = []
    for name in names:
        idx = [i for i, g in enumerate(gold) if g == name]
        cells.append(f"{sum(run.predicted[i] == name for i in idx) / len(idx):.0%}")
    return " | ".join(cells)


def confusion(run: Run, gold: list[str], names: list[str]) -> list[str]:
    counts = Counter(zip(gold, run.predicted, strict=True))
    lines = ["| gold \\ predicted | " + " | ".join(names) + " |", "| --- |" + " --- |" * len(names)]
    for g in names:
        lines.append(f"| {g} | " + " | ".join(str(counts[(g, p)]) for p in names) + " |")
    return lines


def default_classifier() -> str:
    from chorus_mcp.strategies.models.providers.local import DEFAULT_MODEL, unavailable_reason

    return "fake" if unavailable_reason(DEFAULT_MODEL) else DEFAULT_MODEL


async def main(classifier: str, write: bool, with_examples: bool) -> None:
    raw, texts, gold = load_data()
    names = [route["name"] for route in raw["routes"]]
    models = catalog(classifier, names)
    runs: list[Run] = []
    runs.append(
        await route_all(
            variant(raw, rules=True, embedder=None, threshold=None, classifier=None),
            texts,
            models,
            "keyword rules",
        )
    )
    cv_notes: dict[str, tuple[float, str]] = {}
    for embedder in ("wordllama", "hashing"):
        threshold = DEFAULT_THRESHOLDS[embedder]
        spec = variant(raw, rules=False, embedder=embedder, threshold=threshold, classifier=None)
        await route_all(spec, texts[:1], models, "warm-up")  # model load and example embeddings
        run = await route_all(spec, texts, models, f"embedding: {embedder} (threshold {threshold})")
        runs.append(run)
        no_threshold = variant(raw, rules=False, embedder=embedder, threshold=-1, classifier=None)
        runs.append(
            await route_all(no_threshold, texts, models, f"embedding: {embedder}, nearest example always")
        )
        cv_notes[embedder] = cross_validated(raw, embedder, texts, gold)
    label = "fake (random route)" if classifier == "fake" else classifier
    only_classifier = variant(raw, rules=False, embedder=None, threshold=None, classifier=classifier)
    runs.append(await route_all(only_classifier, texts, models, f"LLM classifier: {label}"))
    if with_examples:
        shown = variant(raw, rules=False, embedder=None, threshold=None, classifier=classifier, examples=True)
        runs.append(
            await route_all(shown, texts, models, f"LLM classifier: {label}, shown 3 examples per route")
        )
    rules_embedding = variant(
        raw, rules=True, embedder="wordllama", threshold=DEFAULT_THRESHOLDS["wordllama"], classifier=None
    )
    runs.append(await route_all(rules_embedding, texts, models, "chain: rules → wordllama → default"))
    chain = variant(
        raw,
        rules=True,
        embedder="wordllama",
        threshold=DEFAULT_THRESHOLDS["wordllama"],
        classifier=classifier,
    )
    runs.append(await route_all(chain, texts, models, f"chain: rules → wordllama → {label} → default"))
    report = render(runs, gold, names, cv_notes, label)
    print(report)
    if write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(report)
        print(f"wrote {RESULTS.relative_to(REPO)}")


def render(
    runs: list[Run], gold: list[str], names: list[str], cv: dict[str, tuple[float, str]], label: str
) -> str:
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    lines = [
        "# Routing accuracy: keyword vs embedding vs LLM classifier",
        "",
        f"{len(gold)} labelled requests ({', '.join(f'{n}: {gold.count(n)}' for n in names)}), written "
        "for this benchmark (bench/data/routing_labelled.jsonl); routes, keywords, descriptions and 8 "
        "examples per route in bench/data/routing_routes.yaml. Default route: `general`, so a router that "
        f"decides nothing scores {gold.count('general') / len(gold):.0%}.",
        "",
        f"Measured with `bench/routing_accuracy.py` at commit {commit} on {platform.machine()}, "
        f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}; classifier: {label}.",
        "",
        "| router | accuracy | " + " | ".join(names) + " | decided by (method: count) | median ms/request |",
        "| --- | --- |" + " --- |" * len(names) + " --- | --- |",
    ]
    for run in runs:
        methods = ", ".join(f"{m}: {c}" for m, c in Counter(run.methods).most_common())
        lines.append(
            f"| {run.name} | **{run.accuracy(gold):.1%}** | {per_route(run, gold, names)} | {methods} | "
            f"{statistics.median(run.seconds) * 1000:.1f} |"
        )
    lines += [
        "",
        "Embedding threshold, 2-fold cross-validated (threshold chosen on one half, scored on the other):",
        "",
    ]
    for embedder, (accuracy, note) in cv.items():
        lines.append(f"- {embedder}: **{accuracy:.1%}**. {note}")
    for run in runs:
        if run.name.startswith(("LLM classifier", "chain: rules → wordllama → ")):
            lines += ["", f"Confusion, {run.name}:", "", *confusion(run, gold, names)]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--classifier", default=None, help="the embedded model (default when installed), fake, or a model id"
    )
    parser.add_argument("--write", action="store_true", help="write bench/results/routing_accuracy.md")
    parser.add_argument(
        "--no-examples-variant",
        action="store_true",
        help="skip the classifier run that shows examples (a slow local classifier takes minutes per run)",
    )
    arguments = parser.parse_args()
    anyio.run(
        main, arguments.classifier or default_classifier(), arguments.write, not arguments.no_examples_variant
    )
