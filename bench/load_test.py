"""Bounded load: 200 concurrent tool calls over streamable HTTP, with 10% of model calls faulted.

Three processes, as in use: this client, a real `chorus-mcp serve --http`, and the fake provider (this
script again, with `--serve-fake`), which answers every model after `--latency` seconds and, for a
`--fault-rate` share of model calls picked at random, fails instead with one of: HTTP 500, 503, 429
(Retry-After 0.2 s), a connection reset mid-response, malformed JSON, an empty completion, or no answer
at all (the model's 2 s time-out). The server runs its default reliability settings (3 attempts with
full-jitter back-off, breakers, 32 calls in flight per provider — every model here is one provider) and
lifts the HTTP guards (requests per minute, requests in progress), as an operator expecting this load
would.

The burst: `--sessions` MCP sessions are opened first, then all `--calls` tool calls are released at
once (an even mix of ensemble_vote, cascade_ask, route_specialist and run_pipeline). Each call is:

- a success: an answer (partial answers are counted too);
- a correct isError: no answer, and the error names every model that failed (the strategy's own result);
- a protocol error: an exception out of the client, or an isError that is not a strategy result — must be 0.

The same burst runs first against a fake provider with no faults (the baseline, same run, same machine,
fresh server): latencies are reported as ratios to it, since this machine is shared and its speed drifts.

    .venv/bin/python bench/load_test.py [--calls 200] [--sessions 50] [--fault-rate 0.1] [--out FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from mcp import Client
from mcp.types import CallToolResult, TextContent

from bench._harness import REPO, free_port, median, percentile, unique_prompt, wait_for_port

KEY_ENV = "CHORUS_BENCH_KEY"
KEY = "bench-dummy-credential-load-0000"
MODELS = ["m0", "m1", "m2", "m3", "m4"]
PROMPT = "Which planet is largest? A) Mars B) Jupiter C) Venus"
TOOLS = ["ensemble_vote", "cascade_ask", "route_specialist", "run_pipeline"]
MODEL_TIMEOUT_S = 2.0
DEADLINE_S = 30.0


# -- the fake provider, as its own process ------------------------------------------------------------


def serve_fake(fault_rate: float, latency_s: float, seed: int) -> None:
    """Serve the fake provider until interrupted; print its base URL first."""
    from tests.fake_openai import FakeOpenAI, Fault, RecordedRequest

    faults = [
        Fault.server_error(),
        Fault.unavailable(),
        Fault.rate_limited(retry_after=0.2),
        Fault.reset(),
        Fault.malformed_json(),
        Fault.empty_content(),
        Fault.hang(),
    ]
    rng = random.Random(seed)
    lock = threading.Lock()

    def reply(request: RecordedRequest) -> str | Fault:
        with lock:
            if rng.random() < fault_rate:
                return rng.choice(faults)
        if "confident" in request.last_user:  # the cascade's self-report instruction
            return "B\nConfidence: 90%"
        return "B"

    with FakeOpenAI() as fake:
        fake.script("*", reply, latency_s=latency_s, prompt_tokens=20, completion_tokens=2)
        print(fake.base_url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


@contextlib.contextmanager
def fake_provider(fault_rate: float, latency_s: float, seed: int) -> Iterator[str]:
    command = [
        sys.executable,
        __file__,
        "--serve-fake",
        "--fault-rate",
        str(fault_rate),
        "--latency",
        str(latency_s),
        "--seed",
        str(seed),
    ]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True, env=_env())
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        if not base_url.startswith("http://"):
            raise RuntimeError("the fake provider did not start")
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=10)


# -- the Chorus server ------------------------------------------------------------------------------


def config(base_url: str) -> dict[str, Any]:
    model = {
        "api_base": base_url,
        "api_key_env": KEY_ENV,
        "timeout_s": MODEL_TIMEOUT_S,
        "input_cost_per_mtok": 1,
        "output_cost_per_mtok": 2,
    }
    return {
        "models": {alias: {"model": f"openai/{alias}", **model} for alias in MODELS},
        "allow_unlisted_models": False,
        "strategies": {
            "ensemble": {"kind": "ensemble", "members": ["m0", "m1", "m2"], "quorum": 2, "extract": "choice"},
            "cascade": {"kind": "cascade", "tiers": ["m0", "m3"], "threshold": 0.8},
            "route": {
                "kind": "route",
                "default": "general",
                "routes": [
                    {
                        "name": "science",
                        "keywords": ["planet"],
                        "target": {"kind": "model", "model": "m1", "fallbacks": ["m2"]},
                    },
                    {"name": "general", "target": "m4"},
                ],
            },
            "pipeline": {
                "kind": "pipeline",
                "stages": [
                    {
                        "name": "plan",
                        "prompt": "Plan: {input}",
                        "step": {"kind": "model", "model": "m2", "fallbacks": ["m3"]},
                    },
                    {
                        "name": "answer",
                        "prompt": "{input}\n\nPlan:\n{plan}",
                        "step": {"kind": "model", "model": "m3", "fallbacks": ["m4"]},
                    },
                ],
            },
        },
        "defaults": {"deadline_s": DEADLINE_S},
        "limits": {"rate_limit_per_minute": 0, "max_concurrent_requests": 1024},
        "log_level": "WARNING",
    }


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHORUS")}
    env.update(
        {
            KEY_ENV: KEY,
            "PYTHONPATH": str(REPO),
            "LITELLM_OFFLINE_MODE": "true",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            # Sessions and the response cache go to a throwaway directory, never the user's own.
            "XDG_DATA_HOME": tempfile.mkdtemp(prefix="chorus-load-"),
        }
    )
    return env


@dataclass
class Served:
    url: str
    pid: int


def cpu_s(pid: int) -> float:
    """CPU time (user + system) a process has used so far, in seconds (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def chorus_http(settings: dict[str, Any]) -> Iterator[Served]:
    """`chorus-mcp serve --http` on loopback. Its log must not contain the key."""
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "load.yaml"
        path.write_text(json.dumps(settings))
        command = [
            sys.executable,
            "-m",
            "chorus_mcp.server.cli.main",
            "serve",
            "--http",
            "--port",
            str(port),
            "--config",
            str(path),
        ]
        log = Path(folder) / "server.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(command, env=_env(), cwd=REPO, stdout=subprocess.DEVNULL, stderr=sink)
            try:
                wait_for_port(port, process)
                yield Served(f"http://127.0.0.1:{port}/mcp", process.pid)
            finally:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        if KEY.encode() in log.read_bytes():
            raise AssertionError("the API key appeared in the server's log")


# -- the burst --------------------------------------------------------------------------------------


@dataclass
class Round:
    """What one burst gave."""

    name: str
    latencies: list[float] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    attempts: Counter[str] = field(default_factory=Counter)
    """Model-call records by status, over every result."""
    problems: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    single_s: float = 0.0
    """Median latency of one call at a time (before the burst), on the same server."""
    server_cpu_s: float = 0.0
    """CPU time the Chorus server used during the burst."""
    client_cpu_s: float = 0.0
    """CPU time this load generator used during the burst."""
    session_errors: int = 0

    def p(self, q: float) -> float:
        return percentile(self.latencies, q)


def arguments(tool: str) -> dict[str, Any]:
    if tool == "run_pipeline":
        return {"input": unique_prompt(PROMPT)}
    return {"prompt": unique_prompt(PROMPT)}


def classify(result: CallToolResult, round_: Round) -> str:
    data = result.structured_content or {}
    for call in data.get("calls", []):
        round_.attempts[call.get("status", "?")] += 1
    text = "\n".join(b.text for b in result.content if isinstance(b, TextContent))
    if KEY in result.model_dump_json():
        round_.problems.append("the API key appeared in a result")
        return "protocol error"
    if not result.is_error:
        if data.get("ok") and data.get("answer"):
            return "success (partial)" if data.get("partial") else "success"
        round_.problems.append(f"not an error, but no answer: {text[:200]}")
        return "protocol error"
    failed = {c["model"] for c in data.get("calls", []) if c.get("status") not in ("ok", "cancelled")}
    error = str(data.get("error", ""))
    if data.get("ok") is False and text.startswith("No answer:") and all(m in error for m in failed):
        return "correct isError"
    round_.problems.append(f"isError that is not a strategy result: {text[:200]}")
    return "protocol error"


async def burst(served: Served, calls: int, sessions: int, round_: Round) -> None:
    # One call at a time first, on a session of its own: the server's latency when it is not loaded.
    async with Client(served.url) as client:
        for _ in range(4):  # warm-up: first connections, first model calls
            await client.call_tool("route_specialist", arguments("route_specialist"))
        singles = []
        for index in range(12):
            tool = TOOLS[index % len(TOOLS)]
            started = time.perf_counter()
            await client.call_tool(tool, arguments(tool))
            singles.append(time.perf_counter() - started)
        round_.single_s = median(singles)

    go = anyio.Event()
    opened = 0
    started = 0.0

    async def one(client: Client, index: int, finished: set[int]) -> None:
        tool = TOOLS[index % len(TOOLS)]
        began = time.perf_counter()
        try:
            result = await client.call_tool(tool, arguments(tool))
            outcome = classify(result, round_)
        except Exception as exc:  # what the load test counts
            outcome = "protocol error"
            round_.problems.append(f"{tool}: {_leaf(exc)}")
        round_.latencies.append(time.perf_counter() - began)
        round_.outcomes[outcome] += 1
        finished.add(index)

    async def session(indexes: list[int]) -> None:
        # Each session in a task of its own: a session whose transport fails loses its own calls (counted
        # as protocol errors), not everyone's.
        nonlocal opened
        finished: set[int] = set()
        try:
            async with Client(served.url) as client:
                opened += 1
                await go.wait()
                async with anyio.create_task_group() as group:
                    for index in indexes:
                        group.start_soon(one, client, index, finished)
        except Exception as exc:
            round_.session_errors += 1
            when = "before the burst"
            if go.is_set():
                when = f"{time.perf_counter() - started:.1f} s into the burst"
            lost = [i for i in indexes if i not in finished]
            round_.outcomes["protocol error"] += len(lost)
            round_.problems.append(f"a session failed {when}, losing {len(lost)} call(s): {_leaf(exc)}")

    async with anyio.create_task_group() as group:
        for first in range(sessions):
            group.start_soon(session, list(range(first, calls, sessions)))
        while opened < sessions:  # every session open (or failed) before the burst
            await anyio.sleep(0.05)
            if round_.session_errors + opened >= sessions:
                break
        cpu_before, client_before = cpu_s(served.pid), time.process_time()
        started = time.perf_counter()
        go.set()
    round_.wall_s = time.perf_counter() - started
    round_.server_cpu_s = cpu_s(served.pid) - cpu_before
    round_.client_cpu_s = time.process_time() - client_before


def _leaf(exc: BaseException) -> str:
    """The innermost exception of an exception group and what caused it, as one line."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    causes = [f"{type(exc).__name__}: {exc}"]
    cause = exc.__cause__ or exc.__context__
    while cause is not None and len(causes) < 4:
        causes.append(f"{type(cause).__name__}: {cause}")
        cause = cause.__cause__ or cause.__context__
    return " <- ".join(causes)[:400]


def run_round(name: str, fault_rate: float, args: argparse.Namespace) -> Round:
    round_ = Round(name)
    provider = fake_provider(fault_rate, args.latency, args.seed)
    with provider as base_url, chorus_http(config(base_url)) as served:
        anyio.run(burst, served, args.calls, args.sessions, round_)
    return round_


# -- report -----------------------------------------------------------------------------------------


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def report(baseline: Round, faulted: Round, args: argparse.Namespace, loads: tuple[str, str]) -> str:
    def counts(r: Round) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(r.outcomes.items()))

    sent = sum(v for k, v in faulted.attempts.items() if k in ("ok", "error", "timeout"))
    failed = faulted.attempts["error"] + faulted.attempts["timeout"]
    successes = faulted.outcomes["success"] + faulted.outcomes["success (partial)"]
    lines = [
        "## Load test (bench/load_test.py)",
        "",
        f"{args.calls} concurrent tool calls ({args.calls // len(TOOLS)} each of {', '.join(TOOLS)}) from "
        f"{args.sessions} MCP sessions over streamable HTTP to a real `chorus-mcp serve --http`; fake "
        f"provider in its own process, {args.latency * 1e3:.0f} ms an answer; {args.fault_rate:.0%} of model "
        "calls faulted at random (500, 503, 429 with Retry-After, reset mid-response, malformed JSON, empty "
        f"completion, hang until the {MODEL_TIMEOUT_S:.0f} s model time-out). Default reliability settings. "
        "Baseline: the same burst against a fault-free provider, same run, fresh server.",
        "",
        "| figure | baseline (0% faults) | faulted | faulted / baseline |",
        "| --- | --- | --- | --- |",
        f"| successes | {baseline.outcomes['success'] + baseline.outcomes['success (partial)']}/{args.calls} "
        f"| {successes}/{args.calls} | |",
        f"| correct isError | {baseline.outcomes['correct isError']} "
        f"| {faulted.outcomes['correct isError']} | |",
        f"| protocol errors (must be 0) | {baseline.outcomes['protocol error']} "
        f"| {faulted.outcomes['protocol error']} | |",
        f"| sessions whose transport failed | {baseline.session_errors} | {faulted.session_errors} | |",
        _row("one call at a time, median", baseline.single_s, faulted.single_s),
        _row("burst p50 latency", baseline.p(50), faulted.p(50)),
        _row("burst p99 latency", baseline.p(99), faulted.p(99)),
        _row("burst wall time", baseline.wall_s, faulted.wall_s),
        _row("server CPU during the burst", baseline.server_cpu_s, faulted.server_cpu_s),
        "",
        f"The figure that does not depend on the machine's other load: the server's CPU per tool call, "
        f"{baseline.server_cpu_s / args.calls * 1e3:.0f} ms in the baseline and "
        f"{faulted.server_cpu_s / args.calls * 1e3:.0f} ms with faults "
        f"({faulted.server_cpu_s / baseline.server_cpu_s:.2f}x). Wall times are the machine's: during the "
        f"baseline burst the server used {baseline.server_cpu_s / baseline.wall_s:.0%} of a core and this "
        f"load generator {baseline.client_cpu_s / baseline.wall_s:.0%}, on {os.cpu_count()} cores shared "
        "with other work. The event loop shares the server fairly between calls, so calls that start "
        "together finish together near the end: p50 under the burst is "
        f"{baseline.p(50) / baseline.single_s:.0f}x (baseline) and {faulted.p(50) / faulted.single_s:.0f}x "
        "(faulted) the one-at-a-time median.",
        "",
        f"Model attempts in the faulted round: {sent} sent, {failed} failed ({failed / max(sent, 1):.1%}; "
        f"retries and fallbacks included), {faulted.attempts['skipped']} skipped (open circuit), "
        f"{faulted.attempts['cancelled']} cancelled (vote decided early). "
        f"Outcomes — baseline: {counts(baseline)}; faulted: {counts(faulted)}. "
        f"The API key appeared in no result and in neither server's log.",
        "",
        f"Machine: before {loads[0]}; after {loads[1]} (shared; absolute times drift, ratios less so).",
    ]
    problems = baseline.problems + faulted.problems
    if problems:
        lines += ["", "Problems:", *[f"- {p}" for p in problems[:20]]]
    return "\n".join(lines) + "\n"


def _row(name: str, baseline: float, faulted: float) -> str:
    return f"| {name} | {baseline:.2f} s | {faulted:.2f} s | {faulted / baseline:.2f}x |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--fault-rate", type=float, default=0.10)
    parser.add_argument("--latency", type=float, default=0.05, help="the fake provider's seconds per answer")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=None, help="also write the markdown section here")
    parser.add_argument("--serve-fake", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_fake:
        serve_fake(args.fault_rate, args.latency, args.seed)
        return
    before = load()
    baseline = run_round("baseline", 0.0, args)
    faulted = run_round("faulted", args.fault_rate, args)
    text = report(baseline, faulted, args, (before, load()))
    print(text)
    if args.out is not None:
        args.out.write_text(text)
    if any(r.outcomes["protocol error"] or r.session_errors for r in (baseline, faulted)):
        sys.exit(1)


if __name__ == "__main__":
    main()
