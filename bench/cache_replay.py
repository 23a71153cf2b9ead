"""Response cache (issue 10): a replayed agent session through the real strategy core, three times — cache
off, exact cache, exact + semantic cache — against the fake provider on loopback (its own process, every
call answering after a scripted latency with 12 prompt and 200 completion tokens, priced per token).

The session (`session()`, 82 requests) is what an agent does over an afternoon: new questions, asked of one
model or of a 3-member ensemble; the same question again a few turns later; a retry right after (the
agent's own time-out or a lost reply); a rephrasing of an earlier question; and *near-misses* — the same
question about a different number, name or direction, which must get a fresh answer.

Reported as ratios to the cache-off run in the same process: total cost, total latency, provider calls.
For the semantic run, the hit rate on paraphrases and the false-hit rate on near-misses (a near-miss
answered from the cache is an error). The exact run uses the default store (SQLite, WAL) in a temporary
directory; the semantic run adds WordLlama embeddings (the `eval` extra).

    .venv/bin/python bench/cache_replay.py [--latency 0.15]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Literal

import anyio

from bench._harness import BENCH_KEY, BENCH_KEY_ENV, Figure, fake_provider, load
from chorus_mcp.strategies.cache.client import with_cache
from chorus_mcp.strategies.cache.response_cache import ResponseCache, open_response_cache
from chorus_mcp.strategies.cache.settings import CacheSettings, SemanticSettings
from chorus_mcp.strategies.core.completion import CompletionRequest
from chorus_mcp.strategies.core.spec import EnsembleSpec, ModelStep, Step
from chorus_mcp.strategies.engine.context import RunContext
from chorus_mcp.strategies.engine.runner import run_strategy
from chorus_mcp.strategies.models.catalog import ModelCatalog, ModelEntry
from chorus_mcp.strategies.models.embeddings import aembed
from chorus_mcp.strategies.models.providers import provider_client
from chorus_mcp.strategies.sessions.session import SessionSettings

Kind = Literal["new", "repeat", "retry", "paraphrase", "near_miss"]
MEMBERS = ["m1", "m2", "m3"]
INPUT_PER_MTOK, OUTPUT_PER_MTOK = Decimal("2.50"), Decimal("10.00")
REPLY = "The answer, with the reasoning that leads to it."


@dataclass(frozen=True)
class Turn:
    kind: Kind
    tool: Literal["ask", "ensemble"]
    prompt: str


# (first question, paraphrase, near-miss) — all three asked in the session, in that order, apart.
TOPICS = [
    (
        "What is the capital of Australia?",
        "What's the capital of Australia?",
        "What is the capital of Austria?",
    ),
    ("Is 221 a prime number?", "Is 221 prime?", "Is 223 a prime number?"),
    (
        "How do I read a CSV file in Python?",
        "How can I read a CSV file in Python?",
        "How do I read a CSV file in Rust?",
    ),
    (
        "What does HTTP status 429 mean?",
        "What is the meaning of HTTP status 429?",
        "What does HTTP status 409 mean?",
    ),
    (
        "Convert 30 miles to kilometres.",
        "Convert 30 miles into kilometres.",
        "Convert 30 kilometres to miles.",
    ),
    ("Who painted the Mona Lisa?", "Who is the painter of the Mona Lisa?", "Who painted The Starry Night?"),
    ("What is 12 squared?", "What's 12 squared?", "What is 13 squared?"),
    (
        "Explain what a Python decorator is.",
        "Can you explain what a Python decorator is?",
        "Explain what a Python generator is.",
    ),
    ("List three uses of baking soda.", "List 3 uses of baking soda.", "List five uses of baking soda."),
    (
        "When did the Apollo 11 mission land on the Moon?",
        "When did Apollo 11 land on the Moon?",
        "When did the Apollo 13 mission launch?",
    ),
    (
        "What is the time complexity of quicksort?",
        "What's the time complexity of quicksort?",
        "What is the time complexity of mergesort?",
    ),
    (
        "Translate 'thank you' into German.",
        "Please translate 'thank you' into German.",
        "Translate 'thank you' into Italian.",
    ),
    (
        "Is it safe to microwave aluminium foil?",
        "Is it safe to put aluminium foil in a microwave?",
        "Is it unsafe to microwave aluminium foil?",
    ),
    (
        "What is the boiling point of ethanol?",
        "At what temperature does ethanol boil?",
        "What is the melting point of ethanol?",
    ),
]
OTHERS = [
    "Summarise the plot of Hamlet in two sentences.",
    "What is a monad, in plain words?",
    "Write a regular expression that matches an ISO 8601 date.",
    "Which is larger, 2^10 or 10^3?",
    "Suggest a name for a cat that likes boxes.",
    "What causes the seasons on Earth?",
    "Give an example of a SQL LEFT JOIN.",
    "How does a hash map handle collisions?",
    "What is the difference between TCP and UDP?",
    "Why do onions make you cry?",
]


def session() -> list[Turn]:
    """82 turns: every topic's first question early, its repeat and retry later, its paraphrase and its
    near-miss later still; other one-off questions in between. Ensembles for every third topic."""
    turns: list[Turn] = []

    def tool(n: int) -> Literal["ask", "ensemble"]:
        return "ensemble" if n % 3 == 0 else "ask"

    for n, (first, _, _) in enumerate(TOPICS):
        turns.append(Turn("new", tool(n), first))
        if n % 2 == 0:
            turns.append(Turn("retry", tool(n), first))  # the agent retries at once
    turns += [Turn("new", "ask", prompt) for prompt in OTHERS[:5]]
    for n, (first, paraphrase, _) in enumerate(TOPICS):
        turns.append(Turn("repeat", tool(n), first))
        turns.append(Turn("paraphrase", tool(n), paraphrase))
    turns += [Turn("new", "ask", prompt) for prompt in OTHERS[5:]]
    for n, (_, _, near_miss) in enumerate(TOPICS):
        turns.append(Turn("near_miss", tool(n), near_miss))
    for n, (first, _, _) in enumerate(TOPICS[:9]):
        turns.append(Turn("repeat", tool(n), first))
    return turns


@dataclass
class Outcome:
    cost: Decimal = Decimal(0)
    saved: Decimal = Decimal(0)
    latency_s: float = 0.0
    provider_calls: int = 0
    hits_by_kind: dict[str, int] = field(default_factory=dict)
    turns_by_kind: dict[str, int] = field(default_factory=dict)
    hit_latencies_s: list[float] = field(default_factory=list)


def catalog(base_url: str, cache: ResponseCache | None) -> ModelCatalog:
    entries = {
        alias: ModelEntry(
            model=f"openai/{alias}",
            api_base=base_url,
            api_key_env=BENCH_KEY_ENV,
            input_cost_per_mtok=INPUT_PER_MTOK,
            output_cost_per_mtok=OUTPUT_PER_MTOK,
            timeout_s=30,
        )
        for alias in MEMBERS
    }
    return ModelCatalog(entries, with_cache(provider_client, cache), allow_unlisted=False)


async def replay(base_url: str, cache: ResponseCache | None, turns: list[Turn]) -> Outcome:
    models = catalog(base_url, cache)
    outcome = Outcome()
    ask: Step = ModelStep(model="m1")
    ensemble: Step = EnsembleSpec(members=list(MEMBERS), extract="text", early_stop=False)
    for turn in turns:
        ctx = RunContext.starting_now(models, 60.0)
        started = time.perf_counter()
        result = await run_strategy(
            ask if turn.tool == "ask" else ensemble, CompletionRequest.of(turn.prompt), ctx
        )
        outcome.latency_s += time.perf_counter() - started
        assert result.ok, result.error
        outcome.cost += result.totals.cost_usd or Decimal(0)
        outcome.saved += result.totals.saved_cost_usd or Decimal(0)
        outcome.provider_calls += result.totals.calls
        outcome.hit_latencies_s += [c.latency_s or 0.0 for c in result.calls if c.cached]
        hit = bool(result.totals.cached_calls)
        outcome.hits_by_kind[turn.kind] = outcome.hits_by_kind.get(turn.kind, 0) + hit
        outcome.turns_by_kind[turn.kind] = outcome.turns_by_kind.get(turn.kind, 0) + 1
    if cache is not None:
        await cache.aclose()
    return outcome


def _cache(folder: Path, name: str, semantic: bool) -> ResponseCache | None:
    settings = CacheSettings(
        sqlite_path=str(folder / f"{name}.sqlite3"), semantic=SemanticSettings(enabled=semantic)
    )
    return open_response_cache(settings, SessionSettings())


def _rate(outcome: Outcome, kind: str) -> str:
    hits, total = outcome.hits_by_kind.get(kind, 0), outcome.turns_by_kind.get(kind, 0)
    return f"{hits}/{total}"


async def run(latency_s: float) -> list[Figure]:
    os.environ[BENCH_KEY_ENV] = BENCH_KEY
    turns = session()
    with (
        fake_provider(latency_s=latency_s, reply=REPLY, completion_tokens=200) as base_url,
        tempfile.TemporaryDirectory() as folder,
    ):
        await replay(base_url, None, turns[:3])  # warm up the client and the connection pool
        await aembed("wordllama", ["load the embedder before the clock starts"])
        off = await replay(base_url, None, turns)
        exact = await replay(base_url, _cache(Path(folder), "exact", False), turns)
        semantic = await replay(base_url, _cache(Path(folder), "semantic", True), turns)

    print(
        f"{len(turns)} requests ({', '.join(f'{k} {v}' for k, v in off.turns_by_kind.items())}); "
        f"member latency {latency_s * 1000:.0f} ms; {load()}"
    )
    print(
        "| mode | cost USD | cost vs off | latency s | latency vs off | provider calls | saved USD |"
        " repeats+retries hit | paraphrases hit | near-misses hit (false) | median hit ms |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, o in (("cache off", off), ("exact", exact), ("exact + semantic", semantic)):
        hit_ms = f"{statistics.median(o.hit_latencies_s) * 1000:.1f}" if o.hit_latencies_s else "-"
        repeats = (
            o.hits_by_kind.get("repeat", 0) + o.hits_by_kind.get("retry", 0),
            o.turns_by_kind.get("repeat", 0) + o.turns_by_kind.get("retry", 0),
        )
        print(
            f"| {name} | {o.cost:.6f} | {float(o.cost / off.cost):.3f} | {o.latency_s:.2f} | "
            f"{o.latency_s / off.latency_s:.3f} | {o.provider_calls} | {o.saved:.6f} | "
            f"{repeats[0]}/{repeats[1]} | {_rate(o, 'paraphrase')} | {_rate(o, 'near_miss')} | {hit_ms} |"
        )
    false_hits = semantic.hits_by_kind.get("near_miss", 0)
    return [
        Figure(
            "cache: cost, exact vs off", f"{float(exact.cost / off.cost):.3f}", "< 1", exact.cost < off.cost
        ),
        Figure(
            "cache: cost, semantic vs off",
            f"{float(semantic.cost / off.cost):.3f}",
            "< exact",
            semantic.cost < exact.cost,
        ),
        Figure(
            "cache: semantic false hits on near-misses", _rate(semantic, "near_miss"), "0", false_hits == 0
        ),
    ]


def main() -> None:
    logging.disable(logging.INFO)  # the core logs every call at INFO
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--latency", type=float, default=0.15, help="seconds per provider call")
    args = parser.parse_args()
    for figure in anyio.run(run, args.latency):
        print(f"{figure.name}: {figure.value} (target {figure.target}) {'ok' if figure.holds else 'MISSED'}")


if __name__ == "__main__":
    main()
