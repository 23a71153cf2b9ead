"""Ensemble overhead: 5 members each answering in 100 ms, `ensemble_vote` through a real MCP client
over streamable HTTP. Wall time ÷ 100 ms: the physical limit is 1.0, a sequential implementation 5.0.

The same run also measures one direct call to the fake provider (raw httpx) as the baseline the
ratio is honest against: what one 100 ms member costs here, transport included.

    uv run python bench/ensemble_overhead.py [--calls 20] [--concurrent 50]
"""

from __future__ import annotations

import argparse
import time

import anyio
import httpx
from mcp import Client

from bench._harness import FakeOpenAI, chorus_http, fake_models_config, median, percentile

MEMBER_LATENCY_S = 0.100
MEMBERS = [f"m{i}" for i in range(5)]


async def _direct_baseline(fake: FakeOpenAI, calls: int) -> float:
    async with httpx.AsyncClient() as client:
        times = []
        for _ in range(calls):
            started = time.perf_counter()
            response = await client.post(
                f"{fake.base_url}/chat/completions",
                json={"model": "m0", "messages": [{"role": "user", "content": "Pick: A) B) C)"}]},
            )
            response.raise_for_status()
            times.append(time.perf_counter() - started)
    return median(times)


async def _one_call(client: Client) -> float:
    started = time.perf_counter()
    result = await client.call_tool("ensemble_vote", {"prompt": "Pick: A) B) C)"})
    elapsed = time.perf_counter() - started
    assert not result.is_error, result.content
    return elapsed


async def main(calls: int, concurrent: int) -> None:
    with FakeOpenAI() as fake:
        for index, name in enumerate(MEMBERS):
            fake.script(name, "B" if index % 2 == 0 else "The answer is B", latency_s=MEMBER_LATENCY_S)
        config = fake_models_config(
            fake, MEMBERS,
            # early_stop off: every member must answer, so the figure is the full fan-out's cost.
            {"ensemble": {"kind": "ensemble", "members": MEMBERS, "extract": "choice", "early_stop": False}},
        )
        baseline = await _direct_baseline(fake, 20)
        with chorus_http(config) as url:
            async with Client(url) as client:
                for _ in range(3):  # warm-up: imports, connection pools, litellm's first call
                    await _one_call(client)
                singles = [await _one_call(client) for _ in range(calls)]

            async def worker(results: list[float]) -> None:
                async with Client(url) as client:
                    results.append(await _one_call(client))

            burst: list[float] = []
            started = time.perf_counter()
            async with anyio.create_task_group() as group:
                for _ in range(concurrent):
                    group.start_soon(worker, burst)
            burst_wall = time.perf_counter() - started

    single = median(singles)
    print(f"direct call to one member (raw httpx, median of 20): {baseline * 1000:.1f} ms")
    print(f"ensemble_vote, 5 members x 100 ms, over streamable HTTP, median of {calls}: {single * 1000:.1f} ms"
          f" (p90 {percentile(singles, 90) * 1000:.1f} ms)")
    print(f"  wall / 100 ms             = {single / MEMBER_LATENCY_S:.2f}   (target <= 1.10; sequential = 5.0)")
    print(f"  wall / direct member call = {single / baseline:.2f}")
    print(f"{concurrent} concurrent ensemble_vote calls: wall {burst_wall * 1000:.0f} ms, "
          f"per-call median {median(burst) * 1000:.1f} ms, p99 {percentile(burst, 99) * 1000:.1f} ms")
    print(f"  per-call median / 100 ms  = {median(burst) / MEMBER_LATENCY_S:.2f}   (target <= 1.5)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--concurrent", type=int, default=50)
    args = parser.parse_args()
    anyio.run(main, args.calls, args.concurrent)
