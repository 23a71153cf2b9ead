"""Figure 6, memory: the Chorus server's resident set size idle (after start-up and its warm-up), after
1,000 tool calls, and after 1,000 more — `ensemble_vote` with 3 members against a zero-latency fake
provider, over streamable HTTP, from 8 sessions. The bare `MCPServer`'s idle RSS is the baseline.

The bound: the second 1,000 calls may add at most `GROWTH_BOUND_MIB`. Memory that the first calls
take and keep (connection pools, caches filled once, the allocator's arenas) is paid once; what must
not happen is growth in proportion to calls. Sessions are stored on disk (SQLite by default), so
history does not live in the server's memory.

    .venv/bin/python bench/memory.py [--calls 1000]
"""

from __future__ import annotations

import argparse
import contextlib
import time

import anyio
from mcp import Client

from bench._harness import Figure, bare_http, chorus_http, fake_provider, load, rss_mib, unique_prompt
from bench.throughput import config

GROWTH_BOUND_MIB = 10.0
SESSIONS = 8


async def _calls(url: str, count: int) -> None:
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(Client(url)) for _ in range(SESSIONS)]
        remaining = count

        async def loop(client: Client) -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                result = await client.call_tool(
                    "ensemble_vote", {"prompt": unique_prompt("Pick one: A) red B) blue")}
                )
                assert not result.is_error, result.content

        async with anyio.create_task_group() as group:
            for client in clients:
                group.start_soon(loop, client)


async def measure(calls: int = 1000) -> dict[str, float]:
    with bare_http() as bare:
        await anyio.sleep(2)
        bare_idle = rss_mib(bare.pid)
    with fake_provider() as base_url, chorus_http(config(base_url)) as served:
        await anyio.sleep(4)  # the warm-up thread (price map, httpcore) has run
        idle = rss_mib(served.pid)
        await _calls(served.url, calls)
        after = rss_mib(served.pid)
        await _calls(served.url, calls)
        again = rss_mib(served.pid)
    return {"bare_idle": bare_idle, "idle": idle, "after": after, "again": again}


def figures(result: dict[str, float], calls: int) -> list[Figure]:
    growth = result["again"] - result["after"]
    return [
        Figure(
            "idle RSS / bare MCPServer idle RSS",
            f"{result['idle'] / result['bare_idle']:.2f}",
            "report",
            None,
            f"{result['idle']:.0f} MiB vs {result['bare_idle']:.0f} MiB",
        ),
        Figure(
            f"RSS growth over calls {calls + 1}-{2 * calls}",
            f"{growth:+.1f} MiB",
            f"<= {GROWTH_BOUND_MIB:.0f} MiB",
            growth <= GROWTH_BOUND_MIB,
            f"{result['idle']:.0f} idle -> {result['after']:.0f} after {calls} -> {result['again']:.0f} MiB "
            f"after {2 * calls}",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=1000)
    args = parser.parse_args()
    print(load())
    started = time.perf_counter()
    result = anyio.run(measure, args.calls)
    print(
        f"bare idle {result['bare_idle']:.1f} MiB; chorus idle {result['idle']:.1f} MiB, "
        f"after {args.calls} calls "
        f"{result['after']:.1f} MiB, after {2 * args.calls} {result['again']:.1f} MiB "
        f"({time.perf_counter() - started:.0f} s)"
    )
    for figure in figures(result, args.calls):
        print(f"  {figure.name}: {figure.value} (target {figure.target}) - {figure.note}")
    print(load())


if __name__ == "__main__":
    main()
