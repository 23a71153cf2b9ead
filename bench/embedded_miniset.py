"""The embedded models on a committed mini-set: score (with a 95% Wilson interval) and latency per answer.

    uv run --extra local --extra local-small python bench/embedded_miniset.py [--models a,b] [--split all]

`bench/data/embedded_miniset.jsonl` has 40 short questions (arithmetic, yes/no facts, letter choices, short
facts), half `tune` and half `held_out`: prompts and settings were only ever tried on `tune`; `held_out`
is scored to see whether that generalises. Answers are read by the project's own answer reader
(strategies/core/answers.py, as a vote reads them) and compared with the expected one.

Per model, through the same `LocalClient` the server uses: load time (weights joined and verified
beforehand), greedy answers (temperature 0), then
- `seeds`: the model sampled 3 times at temperature 0.7 with seeds 1-3 (concurrently, as an ensemble's
  seats are), majority of the answers read; ties count as wrong;
- `cascade`: the first model with logprob confidence, escalating to the second below each threshold.
Latency is wall time per answer on this machine; it is shared, so the figures also give each model's
latency as a ratio to the first model's, measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from chorus_mcp.strategies.core.answers import group_keys, read_answer, same_answer  # noqa: E402
from chorus_mcp.strategies.core.completion import Completion, CompletionRequest  # noqa: E402
from chorus_mcp.strategies.kinds.confidence import logprob_confidence  # noqa: E402
from chorus_mcp.strategies.models.catalog import ModelEntry  # noqa: E402
from chorus_mcp.strategies.models.providers.local import LocalClient  # noqa: E402

DATA = REPO / "bench" / "data" / "embedded_miniset.jsonl"
SEEDS = (1, 2, 3)
THRESHOLDS = (0.5, 0.7, 0.8, 0.9, 0.95)


@dataclass
class Answer:
    item: dict[str, Any]
    completion: Completion
    correct: bool


def wilson(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (0.0, 1.0)
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def score_line(label: str, hits: int, n: int) -> str:
    low, high = wilson(hits, n)
    return f"{label}: {hits}/{n} ({hits / n:.0%}; 95% Wilson {low:.0%}-{high:.0%})"


def is_correct(text: str, item: dict[str, Any]) -> bool:
    expected = read_answer(item["answer"], item["prompt"])
    return same_answer(read_answer(text, item["prompt"]), expected)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def ask(client: LocalClient, prompt: str, **settings: Any) -> Completion:
    return await client.complete(CompletionRequest.of(prompt, max_tokens=48, **settings))


async def greedy(client: LocalClient, items: list[dict[str, Any]]) -> list[Answer]:
    answers = []
    for item in items:
        completion = await ask(client, item["prompt"], temperature=0, logprobs=True)
        answers.append(Answer(item, completion, is_correct(completion.text, item)))
    return answers


async def seeded_vote(client: LocalClient, item: dict[str, Any]) -> tuple[bool, float]:
    texts: dict[int, str] = {}

    async def one(seed: int) -> None:
        texts[seed] = (await ask(client, item["prompt"], temperature=0.7, seed=seed)).text

    started = time.perf_counter()
    async with anyio.create_task_group() as group:
        for seed in SEEDS:
            group.start_soon(one, seed)
    elapsed = time.perf_counter() - started
    keys = [read_answer(texts[s], item["prompt"]) for s in SEEDS]
    groups = Counter(g for g in group_keys(keys) if g is not None)
    if not groups:
        return False, elapsed
    (top, votes), *rest = groups.most_common()
    if rest and rest[0][1] == votes:
        return False, elapsed  # a tie gives no answer
    winner = next(k for k, g in zip(keys, group_keys(keys), strict=True) if g == top)
    expected = read_answer(item["answer"], item["prompt"])
    return same_answer(winner, expected), elapsed


def latency_line(answers: list[Answer]) -> str:
    latencies = [a.completion.latency_s for a in answers]
    tokens = sum(a.completion.completion_tokens or 0 for a in answers)
    return (
        f"latency per answer mean {statistics.mean(latencies):.2f}s,"
        f" median {statistics.median(latencies):.2f}s,"
        f" max {max(latencies):.2f}s; {tokens / sum(latencies):.1f} answer tokens/s overall"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="local/qwen2.5-coder-0.5b,local/qwen2.5-coder-1.5b")
    parser.add_argument("--split", default="all", choices=["all", "tune", "held_out"])
    parser.add_argument("--no-seeds", action="store_true", help="skip the seeded 3-sample vote")
    args = parser.parse_args()
    items = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    if args.split != "all":
        items = [i for i in items if i["split"] == args.split]
    results: dict[str, list[Answer]] = {}
    first_mean: float | None = None
    for model in args.models.split(","):
        client = LocalClient(model, ModelEntry(model=model, max_output_tokens=48))
        before = rss_mb()
        started = time.perf_counter()
        await client.ready()
        load_s = time.perf_counter() - started
        answers = await greedy(client, items)
        results[model] = answers
        mean = statistics.mean(a.completion.latency_s for a in answers)
        first_mean = first_mean or mean
        print(f"\n{model}: load {load_s:.2f}s, RSS +{rss_mb() - before:.0f} MB after loading and answering")
        for split in ("tune", "held_out"):
            part = [a for a in answers if a.item["split"] == split]
            if part:
                print("  greedy " + score_line(split, sum(a.correct for a in part), len(part)))
        print("  greedy " + score_line("all", sum(a.correct for a in answers), len(answers)))
        print(f"  {latency_line(answers)}; latency x{mean / first_mean:.2f} the first model's")
        by_kind = Counter(a.item["kind"] for a in answers if a.correct)
        print(
            "  right by kind: "
            + ", ".join(f"{k} {by_kind[k]}" for k in sorted({a.item["kind"] for a in answers}))
        )
        wrong = [f"{a.item['id']} {a.completion.text[:40]!r}" for a in answers if not a.correct]
        print("  wrong: " + ("; ".join(wrong) or "none"))
        if not args.no_seeds:
            votes = [await seeded_vote(client, item) for item in items]
            for split in ("tune", "held_out"):
                part = [v for v, i in zip(votes, items, strict=True) if i["split"] == split]
                if part:
                    print(
                        "  3 seeds at T=0.7, majority "
                        + score_line(split, sum(c for c, _ in part), len(part))
                    )
            seconds = [s for _, s in votes]
            print(
                f"  3 seeds: {sum(c for c, _ in votes)}/{len(votes)}; wall time per question mean"
                f" {statistics.mean(seconds):.2f}s (x{statistics.mean(seconds) / mean:.2f} one greedy answer)"
            )
    if len(results) >= 2:
        small, large = list(results.values())[:2]
        print(f"\ncascade {args.models}: logprob confidence of the first, escalate below the threshold")
        for threshold in THRESHOLDS:
            hits = 0
            escalated = 0
            seconds = 0.0
            for a, b in zip(small, large, strict=True):
                confidence = logprob_confidence(a.completion.logprobs) or 0.0
                seconds += a.completion.latency_s
                if confidence < threshold:
                    escalated += 1
                    seconds += b.completion.latency_s
                    hits += b.correct
                else:
                    hits += a.correct
            n = len(small)
            print(
                f"  threshold {threshold:.2f}: {score_line('score', hits, n)}, escalated {escalated}/{n},"
                f" mean {seconds / n:.2f}s per question"
            )


if __name__ == "__main__":
    anyio.run(main)
