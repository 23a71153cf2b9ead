"""Figure 1, ensemble overhead: `ensemble_vote` with 5 members each answering in 100 ms, called through a
real MCP client over streamable HTTP. Wall time ÷ 100 ms: the physical limit is 1.0, a sequential
implementation 5.0. Then 50 such tool calls at once (250 member calls in flight): each call's wall time
÷ 100 ms.

Client, Chorus server and fake provider are three processes. The same run measures one direct raw-httpx
call to the fake provider (what one 100 ms member costs here, transport included). The config lifts the
per-provider concurrency cap to 256 (default 32): all five members share one fake endpoint, where in
use they would be five providers, and the figure is about orchestration, not that cap.

    .venv/bin/python bench/ensemble_overhead.py [--calls 20] [--concurrent 50]
"""

from __future__ import annotations

import argparse
import contextlib
import time

import anyio
import httpx
from mcp import Client

from bench._harness import (
    Figure,
    chorus_http,
    fake_provider,
    load,
    median,
    models_config,
    percentile,
)

MEMBER_LATENCY_S = 0.100
MEMBERS = [f"m{i}" for i in range(5)]
PROMPT = "Pick one: A) red B) blue C) green"


def config(base_url: str) -> dict[str, object]:
    # early_stop off: every member must answer, so the figure is the full fan-out's cost.
    strategies = {
        "ensemble": {"kind": "ensemble", "members": MEMBERS, "extract": "choice", "early_stop": False}
    }
    return models_config(base_url, MEMBERS, strategies, reliability={"provider_concurrency": 256})


async def _direct(base_url: str, calls: int) -> float:
    async with httpx.AsyncClient() as http:
        times = []
        for _ in range(calls):
            started = time.perf_counter()
            response = await http.post(
                f"{base_url}/chat/completions",
                json={"model": "m0", "messages": [{"role": "user", "content": PROMPT}]},
            )
            response.raise_for_status()
            times.append(time.perf_counter() - started)
    return median(times)


async def _one_call(client: Client) -> float:
    started = time.perf_counter()
    result = await client.call_tool("ensemble_vote", {"prompt": PROMPT})
    elapsed = time.perf_counter() - started
    assert not result.is_error, result.content
    return elapsed


async def measure(calls: int = 20, concurrent: int = 50) -> dict[str, float]:
    with fake_provider(latency_s=MEMBER_LATENCY_S) as base_url, chorus_http(config(base_url)) as served:
        direct = await _direct(base_url, 20)
        async with Client(served.url) as client:
            for _ in range(3):  # warm-up: first connections, first calls
                await _one_call(client)
            singles = [await _one_call(client) for _ in range(calls)]

        # Open every session first: the burst times the tool calls, not 50 MCP handshakes.
        burst: list[float] = []
        async with Client(served.url) as probe:
            await _one_call(probe)
        async with contextlib.AsyncExitStack() as stack:
            clients = [await stack.enter_async_context(Client(served.url)) for _ in range(concurrent)]
            ready = anyio.Event()

            async def worker(client: Client) -> None:
                await ready.wait()
                burst.append(await _one_call(client))

            async with anyio.create_task_group() as group:
                for client in clients:
                    group.start_soon(worker, client)
                await anyio.sleep(0.2)  # every worker waiting on the event
                started = time.perf_counter()
                ready.set()
            burst_wall = time.perf_counter() - started
    return {
        "direct": direct,
        "single": median(singles),
        "single_p90": percentile(singles, 90),
        "burst_median": median(burst),
        "burst_p90": percentile(burst, 90),
        "burst_max": max(burst),
        "burst_wall": burst_wall,
    }


def figures(result: dict[str, float], concurrent: int) -> list[Figure]:
    single = result["single"] / MEMBER_LATENCY_S
    burst = result["burst_median"] / MEMBER_LATENCY_S
    return [
        Figure(
            "ensemble_vote, 5 members x 100 ms: wall / 100 ms",
            f"{single:.2f}",
            "<= 1.10",
            single <= 1.10,
            f"median {result['single'] * 1e3:.0f} ms; one direct member call {result['direct'] * 1e3:.0f} ms",
        ),
        Figure(
            f"same, {concurrent} calls at once: per-call wall / 100 ms",
            f"{burst:.2f}",
            "<= 1.5",
            burst <= 1.5,
            f"p90 {result['burst_p90'] / MEMBER_LATENCY_S:.2f}, slowest {result['burst_max'] * 1e3:.0f} ms",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--concurrent", type=int, default=50)
    args = parser.parse_args()
    print(load())
    result = anyio.run(measure, args.calls, args.concurrent)
    print(f"direct call to one member (raw httpx, median of 20): {result['direct'] * 1e3:.1f} ms")
    print(
        f"ensemble_vote, median of {args.calls}: {result['single'] * 1e3:.1f} ms "
        f"(p90 {result['single_p90'] * 1e3:.1f} ms)"
    )
    print(
        f"{args.concurrent} at once: per-call median {result['burst_median'] * 1e3:.1f} ms, "
        f"p90 {result['burst_p90'] * 1e3:.1f} ms, slowest {result['burst_max'] * 1e3:.1f} ms, "
        f"burst wall {result['burst_wall'] * 1e3:.0f} ms"
    )
    for figure in figures(result, args.concurrent):
        print(f"  {figure.name}: {figure.value} (target {figure.target}) - {figure.note}")
    print(load())


if __name__ == "__main__":
    main()
