"""What it costs a capped call to be streamed and counted (issue 17): a capped call of a priced model is
streamed so that it can be cut off at its reservation (`providers.streaming`), where an uncapped one is
one JSON body. Both ask the fake OpenAI server (its own process, zero scripted latency) for the same
100-word answer, on the OpenAI-compatible path (and on litellm with `--litellm`); the figure is the
streamed call's time and client CPU over the unstreamed one's, measured in the same run in alternating
rounds of 25, so that drift on a busy machine hits both alike.

    .venv/bin/python bench/capped_streaming.py [--calls 200] [--litellm]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Awaitable, Callable

import anyio

from bench._harness import BENCH_KEY, BENCH_KEY_ENV, fake_provider, load
from chorus_mcp.strategies.core.completion import CompletionRequest
from chorus_mcp.strategies.models.catalog import ModelEntry
from chorus_mcp.strategies.models.client import ModelClient
from chorus_mcp.strategies.models.providers import LiteLLMClient, OpenAICompatClient, load_litellm
from chorus_mcp.strategies.models.tokenizer import load_encoding

ANSWER = " ".join(f"word{i % 7}" for i in range(100))
ROUND = 25
WARM_UP = 20


async def measure(calls: int, with_litellm: bool) -> dict[str, list[float]]:
    os.environ[BENCH_KEY_ENV] = BENCH_KEY
    load_encoding()
    if with_litellm:
        load_litellm()
    with fake_provider(reply=ANSWER) as base_url:
        entry = ModelEntry(
            model="openai/bench",
            api_base=base_url,
            api_key_env=BENCH_KEY_ENV,
            input_cost_per_mtok=1,
            output_cost_per_mtok=2,
        )
        plain = CompletionRequest.of("Say a hundred words.", max_tokens=400)
        capped = plain.model_copy(update={"enforce_max_tokens": True})
        clients: dict[str, ModelClient] = {"openai_compat": OpenAICompatClient("bench", entry)}
        if with_litellm:
            clients["litellm"] = LiteLLMClient("bench", entry)
        sides: dict[str, Callable[[], Awaitable[None]]] = {}
        for name, client in clients.items():

            async def unstreamed(client: ModelClient = client) -> None:
                assert (await client.complete(plain)).text == ANSWER

            async def streamed(client: ModelClient = client) -> None:
                completion = await client.complete(capped)
                assert completion.text == ANSWER and completion.truncated is None

            sides[f"{name} unstreamed"] = unstreamed
            sides[f"{name} streamed"] = streamed
        for call in sides.values():
            for _ in range(WARM_UP):
                await call()
        timings: dict[str, list[float]] = {name: [] for name in sides}
        cpu: dict[str, list[float]] = {name: [] for name in sides}
        done = 0
        while done < calls:
            for name, call in sides.items():
                started_cpu = time.process_time()
                for _ in range(ROUND):
                    started = time.perf_counter()
                    await call()
                    timings[name].append(time.perf_counter() - started)
                cpu[name].append((time.process_time() - started_cpu) / ROUND)
            done += ROUND
    return {**timings, **{f"{name} cpu": samples for name, samples in cpu.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--litellm", action="store_true", help="also the litellm path (its import is slow)")
    args = parser.parse_args()
    print(load())
    timings = anyio.run(measure, args.calls, args.litellm)
    print(f"{args.calls} sequential calls a side after {WARM_UP} warm-up calls; a 100-word answer\n")
    print(f"{'path':<28}{'median ms':>11}{'client CPU ms':>15}")
    for name in [n for n in timings if not n.endswith(" cpu")]:
        wall = statistics.median(timings[name]) * 1e3
        print(f"{name:<28}{wall:>11.2f}{statistics.median(timings[f'{name} cpu']) * 1e3:>15.2f}")
    for path in ("openai_compat", "litellm"):
        if f"{path} streamed" in timings:
            ratio = statistics.median(timings[f"{path} streamed"]) / statistics.median(
                timings[f"{path} unstreamed"]
            )
            print(f"\n{path}: streamed / unstreamed wall time = {ratio:.2f}x")


if __name__ == "__main__":
    main()
