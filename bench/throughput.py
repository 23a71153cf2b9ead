"""Figure 5, throughput: tool calls per second over streamable HTTP with a zero-latency fake provider, as a
ratio to a bare `MCPServer` echo tool on the same transport, driven by the same client the same way.

`--concurrency` MCP sessions (default 8) each call the tool in a loop for `--seconds`. Chorus runs
`ensemble_vote` with 3 members (3 model calls per tool call, through the OpenAI-compatible fast path)
and `route_specialist` to one model. The server's CPU seconds per call are read from /proc, so the
figure says how much work a call is, not only how long the machine took to find a core for it.

    .venv/bin/python bench/throughput.py [--seconds 8] [--concurrency 8] [--profile out.txt]

With `--profile`, py-spy (`uv tool install py-spy`) samples the Chorus server during the ensemble run
(after a 2 s warm-up run) and the hottest frames are printed.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
from mcp import Client

from bench._harness import (
    Figure,
    Served,
    bare_http,
    chorus_http,
    fake_provider,
    load,
    models_config,
    unique_prompt,
)

MEMBERS = ["m0", "m1", "m2"]


def config(base_url: str) -> dict[str, Any]:
    strategies = {
        "ensemble": {"kind": "ensemble", "members": MEMBERS, "extract": "choice", "early_stop": False},
        "route": {"kind": "route", "default": "only", "routes": [{"name": "only", "target": "m0"}]},
    }
    return models_config(base_url, MEMBERS, strategies, reliability={"provider_concurrency": 256})


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def drive(
    url: str, call: Callable[[Client], Awaitable[Any]], seconds: float, concurrency: int, pid: int
) -> tuple[float, float]:
    """Calls per second and server CPU milliseconds per call, over `seconds` after a warm-up."""
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(Client(url)) for _ in range(concurrency)]
        for client in clients:
            await call(client)
        done = 0
        stop = time.perf_counter() + seconds

        async def loop(client: Client) -> None:
            nonlocal done
            while time.perf_counter() < stop:
                await call(client)
                done += 1

        cpu_before, started = cpu_seconds(pid), time.perf_counter()
        async with anyio.create_task_group() as group:
            for client in clients:
                group.start_soon(loop, client)
        elapsed, cpu = time.perf_counter() - started, cpu_seconds(pid) - cpu_before
    return done / elapsed, cpu / max(done, 1) * 1e3


async def _echo(client: Client) -> None:
    result = await client.call_tool("echo", {"text": "B"})
    assert not result.is_error


async def _ensemble(client: Client) -> None:
    result = await client.call_tool("ensemble_vote", {"prompt": unique_prompt("Pick one: A) red B) blue")})
    assert not result.is_error, result.content


async def _route(client: Client) -> None:
    result = await client.call_tool("route_specialist", {"prompt": unique_prompt("Pick one: A) red B) blue")})
    assert not result.is_error, result.content


@contextlib.contextmanager
def profiled(served: Served, output: str | None, seconds: float) -> Any:
    if output is None:
        yield
        return
    spy = shutil.which("py-spy") or str(Path.home() / ".local/bin/py-spy")
    process = subprocess.Popen(
        [
            spy,
            "record",
            "-p",
            str(served.pid),
            "-o",
            output,
            "-f",
            "raw",
            "-d",
            str(int(seconds)),
            "-r",
            "100",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        process.wait(timeout=60)


async def measure(seconds: float = 8, concurrency: int = 8, profile: str | None = None) -> dict[str, float]:
    with bare_http() as bare:
        echo_rate, echo_cpu = await drive(bare.url, _echo, seconds, concurrency, bare.pid)
    with fake_provider(latency_s=0.0) as base_url, chorus_http(config(base_url)) as served:
        if profile is not None:
            # Warm first, so the profile shows the steady state, not the first calls' one-off work.
            await drive(served.url, _ensemble, 2, concurrency, served.pid)
        with profiled(served, profile, seconds):
            ensemble_rate, ensemble_cpu = await drive(served.url, _ensemble, seconds, concurrency, served.pid)
        route_rate, route_cpu = await drive(served.url, _route, seconds, concurrency, served.pid)
    return {
        "echo": echo_rate,
        "echo_cpu_ms": echo_cpu,
        "ensemble": ensemble_rate,
        "ensemble_cpu_ms": ensemble_cpu,
        "route": route_rate,
        "route_cpu_ms": route_cpu,
    }


def figures(result: dict[str, float]) -> list[Figure]:
    ratio = result["ensemble"] / result["echo"]
    route = result["route"] / result["echo"]
    return [
        Figure(
            "throughput: ensemble_vote (3 members) calls/s / bare echo calls/s",
            f"{ratio:.2f}",
            "report",
            None,
            f"{result['ensemble']:.0f} vs {result['echo']:.0f} calls/s; server CPU "
            f"{result['ensemble_cpu_ms']:.1f} vs {result['echo_cpu_ms']:.1f} ms/call",
        ),
        Figure(
            "throughput: route_specialist (1 model) calls/s / bare echo calls/s",
            f"{route:.2f}",
            "report",
            None,
            f"{result['route']:.0f} calls/s; server CPU {result['route_cpu_ms']:.1f} ms/call",
        ),
    ]


def hottest(path: str, top: int = 25) -> list[str]:
    """Inclusive share of the busiest frames in a py-spy raw profile (idle frames left out)."""
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in Path(path).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if not count.isdigit() or frames[-1].startswith(("EpollSelector.select", "Condition.wait")):
            continue
        total += int(count)
        for frame in set(frames):
            inclusive[frame] += int(count)
    return [f"{100 * n / total:5.1f}%  {frame}" for frame, n in inclusive.most_common(top)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--profile", help="write a py-spy profile of the Chorus server here")
    args = parser.parse_args()
    print(load())
    result = anyio.run(measure, args.seconds, args.concurrency, args.profile)
    for name in ("echo", "ensemble", "route"):
        print(f"{name:<9} {result[name]:7.1f} calls/s   server CPU {result[name + '_cpu_ms']:6.2f} ms/call")
    for figure in figures(result):
        print(f"  {figure.name}: {figure.value} - {figure.note}")
    if args.profile:
        print("\n".join(hottest(args.profile, 60)))
    print(load())


if __name__ == "__main__":
    main()
