"""Figure 1, ensemble overhead: `ensemble_vote` with 5 members each answering in 100 ms, called through a
real MCP client over streamable HTTP. Wall time ÷ 100 ms: the physical limit is 1.0, a sequential
implementation 5.0. Then 50 such tool calls at once (250 member calls in flight): each call's wall time
÷ 100 ms.

Client, Chorus server and fake provider are three processes. The same run measures what the machine
itself allows, so the figures can be read against it:

- one direct call to the fake provider (httpx, no Chorus), and five at once (what a 5-member fan-out
  costs here with no Chorus at all: the fake is one Python process serving the five concurrently);
- one call of a bare `MCPServer`'s echo tool over the same transport (the MCP round trip alone), and 50
  at once from 50 clients (the SDK's own cost in a burst);
- 250 direct calls at once to the fake (the providers' side of the burst);
- the server's CPU per tool call in the burst (from /proc), which waiting for a core does not inflate.

The config lifts the per-provider concurrency cap to 256 (default 32): all five members share one fake
endpoint, where in use they would be five providers, and the figure is about orchestration, not that cap.

    .venv/bin/python bench/ensemble_overhead.py [--calls 20] [--concurrent 50]
"""

from __future__ import annotations

import argparse
import contextlib
import time
from typing import Any

import anyio
import httpx
from mcp import Client

from bench._harness import (
    Figure,
    bare_http,
    chorus_http,
    fake_provider,
    load,
    median,
    models_config,
    percentile,
    unique_prompt,
)
from bench.throughput import cpu_seconds
from chorus_mcp.strategies.models.providers.http_pool import OriginPool

MEMBER_LATENCY_S = 0.100
MEMBERS = [f"m{i}" for i in range(5)]
PROMPT = "Pick one: A) red B) blue C) green"


def config(base_url: str) -> dict[str, object]:
    # early_stop off: every member must answer, so the figure is the full fan-out's cost.
    strategies = {
        "ensemble": {"kind": "ensemble", "members": MEMBERS, "extract": "choice", "early_stop": False}
    }
    return models_config(base_url, MEMBERS, strategies, reliability={"provider_concurrency": 256})


def _member_body() -> dict[str, object]:
    return {"model": "m0", "messages": [{"role": "user", "content": PROMPT}]}


async def _direct(base_url: str, calls: int, at_once: int = 1) -> float:
    """Median wall time of `calls` rounds of `at_once` calls to the fake, sent together, after one round
    to open the connections. Through Chorus's own transport (`OriginPool`: httpcore connections, no pool
    scanning): httpx's default pool re-scans every connection per request, which with 250 in flight made
    the baseline itself CPU-bound."""
    async with httpx.AsyncClient(transport=OriginPool(max_idle_per_origin=at_once), timeout=60) as http:

        async def one() -> None:
            response = await http.post(f"{base_url}/chat/completions", json=_member_body())
            response.raise_for_status()

        times = []
        for _ in range(calls + 1):
            started = time.perf_counter()
            async with anyio.create_task_group() as group:
                for _ in range(at_once):
                    group.start_soon(one)
            times.append(time.perf_counter() - started)
    return median(times[1:])


async def _one_call(
    client: Client, tool: str = "ensemble_vote", arguments: dict[str, Any] | None = None
) -> float:
    arguments = dict(arguments or {"prompt": PROMPT})
    if "prompt" in arguments:
        arguments["prompt"] = unique_prompt(arguments["prompt"])
    started = time.perf_counter()
    result = await client.call_tool(tool, arguments)
    elapsed = time.perf_counter() - started
    assert not result.is_error, result.content
    return elapsed


async def _burst(
    url: str, concurrent: int, tool: str, arguments: dict[str, Any], pid: int
) -> dict[str, float]:
    """`concurrent` MCP sessions (opened first: the burst times the tool calls, not the handshakes) each
    call `tool` once, all released together. Per-call wall times, and the server's CPU per call."""
    times: list[float] = []
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(Client(url)) for _ in range(concurrent)]
        await _one_call(clients[0], tool, arguments)
        ready = anyio.Event()

        async def worker(client: Client) -> None:
            await ready.wait()
            times.append(await _one_call(client, tool, arguments))

        async with anyio.create_task_group() as group:
            for client in clients:
                group.start_soon(worker, client)
            await anyio.sleep(0.2)  # every worker waiting on the event
            cpu_before, started = cpu_seconds(pid), time.perf_counter()
            ready.set()
        wall, cpu = time.perf_counter() - started, cpu_seconds(pid) - cpu_before
    return {
        "median": median(times),
        "p90": percentile(times, 90),
        "max": max(times),
        "wall": wall,
        "cpu_ms": cpu / concurrent * 1e3,
    }


async def measure(calls: int = 20, concurrent: int = 50) -> dict[str, float]:
    echo_args = {"text": "B"}
    with bare_http() as bare:
        async with Client(bare.url) as client:
            for _ in range(3):
                await _one_call(client, "echo", echo_args)
            echo = median([await _one_call(client, "echo", echo_args) for _ in range(calls)])
        echo_burst = await _burst(bare.url, concurrent, "echo", echo_args, bare.pid)

    with fake_provider(latency_s=MEMBER_LATENCY_S) as base_url, chorus_http(config(base_url)) as served:
        direct = await _direct(base_url, 20)
        direct5 = await _direct(base_url, 20, at_once=len(MEMBERS))
        async with Client(served.url) as client:
            for _ in range(3):  # warm-up: first connections, first calls
                await _one_call(client)
            singles = [await _one_call(client) for _ in range(calls)]
        burst = await _burst(served.url, concurrent, "ensemble_vote", {"prompt": PROMPT}, served.pid)
        direct_burst = await _direct(base_url, 3, at_once=concurrent * len(MEMBERS))
    return {
        "direct": direct,
        "direct5": direct5,
        "echo": echo,
        "single": median(singles),
        "single_p90": percentile(singles, 90),
        "burst_median": burst["median"],
        "burst_p90": burst["p90"],
        "burst_max": burst["max"],
        "burst_wall": burst["wall"],
        "burst_cpu_ms": burst["cpu_ms"],
        "echo_burst_median": echo_burst["median"],
        "echo_burst_cpu_ms": echo_burst["cpu_ms"],
        "direct_burst": direct_burst,
    }


def figures(result: dict[str, float], concurrent: int) -> list[Figure]:
    single = result["single"] / MEMBER_LATENCY_S
    burst = result["burst_median"] / MEMBER_LATENCY_S
    fan_out = result["direct5"] / MEMBER_LATENCY_S
    return [
        Figure(
            "ensemble_vote, 5 members x 100 ms: wall / 100 ms",
            f"{single:.2f}",
            "<= 1.10",
            single <= 1.10,
            f"median {result['single'] * 1e3:.0f} ms; without Chorus or MCP, 5 direct calls at once "
            f"{result['direct5'] * 1e3:.0f} ms ({fan_out:.2f}), one {result['direct'] * 1e3:.0f} ms; "
            f"bare MCP echo round trip {result['echo'] * 1e3:.0f} ms",
        ),
        Figure(
            f"same, {concurrent} calls at once: per-call wall / 100 ms",
            f"{burst:.2f}",
            "<= 1.5",
            burst <= 1.5,
            f"p90 {result['burst_p90'] / MEMBER_LATENCY_S:.2f}; server CPU "
            f"{result['burst_cpu_ms']:.1f} ms/call; {concurrent} bare echo calls at once "
            f"{result['echo_burst_median'] * 1e3:.0f} ms ({result['echo_burst_cpu_ms']:.1f} ms CPU/call); "
            f"{concurrent * len(MEMBERS)} direct calls at once {result['direct_burst'] * 1e3:.0f} ms",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--concurrent", type=int, default=50)
    args = parser.parse_args()
    print(load())
    result = anyio.run(measure, args.calls, args.concurrent)
    ms = {k: v * 1e3 for k, v in result.items() if not k.endswith("_ms")}
    print(
        f"direct to the fake (no Chorus): one {ms['direct']:.1f} ms, {len(MEMBERS)} at once "
        f"{ms['direct5']:.1f} ms, {args.concurrent * len(MEMBERS)} at once {ms['direct_burst']:.0f} ms"
    )
    print(
        f"bare MCPServer echo: one {ms['echo']:.1f} ms; {args.concurrent} at once: per-call median "
        f"{ms['echo_burst_median']:.0f} ms, server CPU {result['echo_burst_cpu_ms']:.1f} ms/call"
    )
    print(f"ensemble_vote, median of {args.calls}: {ms['single']:.1f} ms (p90 {ms['single_p90']:.1f} ms)")
    print(
        f"{args.concurrent} at once: per-call median {ms['burst_median']:.1f} ms, "
        f"p90 {ms['burst_p90']:.1f} ms, slowest {ms['burst_max']:.1f} ms, "
        f"burst wall {ms['burst_wall']:.0f} ms, server CPU {result['burst_cpu_ms']:.1f} ms/call"
    )
    for figure in figures(result, args.concurrent):
        print(f"  {figure.name}: {figure.value} (target {figure.target}) - {figure.note}")
    print(load())


if __name__ == "__main__":
    main()
