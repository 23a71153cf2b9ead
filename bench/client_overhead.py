"""Figure 2, per-model-call overhead: what Chorus's client path costs per call over a raw httpx POST to the
same local server, for the OpenAI-compatible fast path (`OpenAICompatClient`, what `openai/` and
`openrouter/` models use) and for `LiteLLMClient` (every other provider).

All talk to the fake OpenAI server (its own process, zero scripted latency), so the difference is
client-side work: building the request, parsing the answer into a `Completion`, pricing it — and for
litellm, its parameter mapping, logging hooks and response objects. Calls are sequential, after a
warm-up, in alternating rounds of 50 so that drift on a busy machine hits every side alike; each
figure is a median of at least 200 calls.

    .venv/bin/python bench/client_overhead.py [--calls 300] [--no-litellm]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Awaitable, Callable

import anyio
import httpx

from bench._harness import BENCH_KEY, BENCH_KEY_ENV, Figure, fake_provider, load, percentile
from chorus_mcp.strategies.core.completion import CompletionRequest
from chorus_mcp.strategies.models.catalog import ModelEntry
from chorus_mcp.strategies.models.providers import LiteLLMClient, OpenAICompatClient, load_litellm

MODEL = "gpt-4o-mini"  # priced by the map: both paths do the price lookup a real call does
PROMPT = "What is the capital of France? Answer in one word."
ROUND = 50
WARM_UP = 30


async def measure(calls: int = 300, with_litellm: bool = True) -> dict[str, list[float]]:
    os.environ[BENCH_KEY_ENV] = BENCH_KEY
    if with_litellm:
        load_litellm()
    with fake_provider(reply="Paris", completion_tokens=1) as base_url:
        entry = ModelEntry(model=f"openai/{MODEL}", api_base=base_url, api_key_env=BENCH_KEY_ENV)
        request = CompletionRequest.of(PROMPT, max_tokens=16, temperature=0.0)
        body = {
            "model": MODEL,
            "messages": [{"role": "user", "content": PROMPT}],
            "max_tokens": 16,
            "temperature": 0.0,
        }
        fast = OpenAICompatClient("bench", entry)
        slow = LiteLLMClient("bench", entry)

        async with httpx.AsyncClient(
            base_url=base_url, headers={"Authorization": f"Bearer {BENCH_KEY}"}
        ) as http:

            async def via_httpx() -> None:
                response = await http.post("/chat/completions", json=body)
                response.raise_for_status()
                assert response.json()["choices"][0]["message"]["content"] == "Paris"

            async def via_fast() -> None:
                assert (await fast.complete(request)).text == "Paris"

            async def via_litellm() -> None:
                assert (await slow.complete(request)).text == "Paris"

            sides: dict[str, Callable[[], Awaitable[None]]] = {"httpx": via_httpx, "openai_compat": via_fast}
            if with_litellm:
                sides["litellm"] = via_litellm
            for call in sides.values():
                for _ in range(WARM_UP):
                    await call()
            timings: dict[str, list[float]] = {name: [] for name in sides}
            for name in sides:
                timings[f"{name}_cpu"] = []
            done = 0
            while done < calls:
                batch = min(ROUND, calls - done)
                for name, call in sides.items():
                    cpu = time.process_time()
                    for _ in range(batch):
                        started = time.perf_counter()
                        await call()
                        timings[name].append(time.perf_counter() - started)
                    timings[f"{name}_cpu"].append((time.process_time() - cpu) / batch)
                done += batch
    return timings


def overhead_ms(timings: dict[str, list[float]], name: str) -> float:
    """Median wall time per call over raw httpx's, in milliseconds."""
    return (statistics.median(timings[name]) - statistics.median(timings["httpx"])) * 1e3


def cpu_overhead_ms(timings: dict[str, list[float]], name: str) -> float:
    """The client process's CPU time per call over raw httpx's (median of the rounds): the part of the
    overhead that a loaded machine does not blur, since waiting for a core is not counted."""
    return (statistics.median(timings[f"{name}_cpu"]) - statistics.median(timings["httpx_cpu"])) * 1e3


def figures(timings: dict[str, list[float]]) -> list[Figure]:
    fast = overhead_ms(timings, "openai_compat")
    raw_ms = statistics.median(timings["httpx"]) * 1e3
    rows = [
        Figure(
            "per-model-call overhead over raw httpx, OpenAI-compatible path (median)",
            f"{fast:.2f} ms",
            "<= 2 ms",
            fast <= 2.0,
            f"{len(timings['httpx'])} calls each; raw httpx {raw_ms:.2f} ms/call; client CPU "
            f"{cpu_overhead_ms(timings, 'openai_compat'):+.2f} ms/call",
        )
    ]
    if "litellm" in timings:
        slow = overhead_ms(timings, "litellm")
        rows.append(
            Figure(
                "per-model-call overhead over raw httpx, litellm path (median)",
                f"{slow:.2f} ms",
                "report",
                None,
                f"other providers; client CPU {cpu_overhead_ms(timings, 'litellm'):+.2f} ms/call",
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=300, help="timed calls per client (>= 200)")
    parser.add_argument("--no-litellm", action="store_true", help="skip the litellm path (saves its import)")
    args = parser.parse_args()
    print(load())
    timings = anyio.run(measure, max(200, args.calls), not args.no_litellm)
    print(
        f"{len(timings['httpx'])} sequential calls each, after {WARM_UP} warm-up calls, zero server latency\n"
    )
    print(f"{'client':<24}{'median ms':>11}{'p90 ms':>10}{'mean ms':>10}{'overhead ms':>13}")
    for name, samples in timings.items():
        if name.endswith("_cpu"):
            continue
        extra = "" if name == "httpx" else f"{overhead_ms(timings, name):>13.2f}"
        print(
            f"{name:<24}{statistics.median(samples) * 1e3:>11.2f}{percentile(samples, 90) * 1e3:>10.2f}"
            f"{statistics.fmean(samples) * 1e3:>10.2f}{extra}"
        )
    for name in timings:
        if name.endswith("_cpu") and name != "httpx_cpu":
            side = name.removesuffix("_cpu")
            print(f"client CPU per call over raw httpx, {side}: {cpu_overhead_ms(timings, side):+.3f} ms")
    print(load())


if __name__ == "__main__":
    main()
