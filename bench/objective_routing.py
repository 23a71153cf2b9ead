"""Objective routing: `route_specialist` by `objective: latency | cost | quality` against keyword rules,
with four candidate models of scripted latency and price, one turning slow mid-run, one over the cost cap.

Three kinds of process, as in use: this client, one real `chorus-mcp serve --http` per way of routing
(each keeps its own latency figures, as a single replica without Redis does), and the fake provider
(this script again, `--serve-fake`: tests/fake_openai.py with a script per model). The models:

| model   | answers after        | USD per Mtok in/out | quality score |
| ------- | -------------------- | ------------------- | ------------- |
| swift   | 0.08 s, then 0.80 s  | 2 / 8               | 0.70          |
| steady  | 0.20 s               | 1 / 4               | 0.82          |
| thrifty | 0.40 s               | 0.2 / 0.8           | 0.61          |
| premium | 0.10 s               | 50 / 200            | 0.93          |

Every call asks `max_cost_usd` $0.01: premium's estimate (200 output tokens at $200/Mtok = $0.04) is
over it, so every objective must skip it. The baseline is the rules: prompts cycle through three kinds,
each matching one keyword route (code → steady, translate → thrifty, anything else → swift), as a
hand-written config spreads them. Each round sends one call to every server in turn, so the machine's
drift touches every way of routing alike. After `--rounds` healthy rounds, swift turns slow (the fake
reads a marker in the prompt) for as many rounds again, then recovers for as many more: the figures are
per phase.

Measured per way of routing: the tool call's wall time (median, p95; the client's view: the MCP round
trip plus the model's scripted latency), the cost per call (the result's totals: the fake's token counts
at the configured prices), the quality score of the model that answered (the configured score: the fake
answers the same text whatever the model, so this is the expected accuracy the scores claim, not a
measured one), and, for latency routing, how many calls after swift slowed down still went to it.
Latency routing runs four times: at the default `latency_percentile` 50 and at 90, both with the default
`latency_max_age_s` (600 s: longer than the run, so no sample ages out), and at 50 with samples ageing
out after `AGED_S` — the figure that tells whether a model the router left is ever used again once it
recovers (calls in the recovered phase before the first one to swift); and at 50 over only the latest
10 calls (`latency_window` 10: how much sooner a short window leaves a model that slowed down).

The objective's own decision (µs per route) is measured in this process, without HTTP: the objective's
choice (estimates for the four candidates, figures from a full latency window, the ranking) against
the rules' (keyword matching), over the same request and context.

    .venv/bin/python bench/objective_routing.py [--rounds 40] [--decisions 2000]
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import anyio
from mcp import Client

from bench._harness import (
    BENCH_KEY_ENV,
    LOAD_LIMITS,
    REPO,
    Figure,
    chorus_http,
    load,
    median,
    percentile,
    server_env,
    unique_prompt,
)

HEALTHY_S = {"swift": 0.08, "steady": 0.20, "thrifty": 0.40, "premium": 0.10}
DEGRADED_S = 0.80
"""swift's latency once it has turned slow."""
PRICES = {"swift": (2.0, 8.0), "steady": (1.0, 4.0), "thrifty": (0.2, 0.8), "premium": (50.0, 200.0)}
QUALITY = {"swift": 0.70, "steady": 0.82, "thrifty": 0.61, "premium": 0.93}
MODELS = list(HEALTHY_S)
CAP_USD = 0.01
MAX_OUTPUT_TOKENS = 200
COMPLETION_TOKENS = 40
AGED_S = 10.0
"""`latency_max_age_s` of the ageing way: a few rounds of calls, far shorter than a phase."""
DEGRADED = "[slow]"
"""The marker in a prompt that makes swift answer slowly (from the second phase on)."""
PROMPTS = [
    "Write python code that reverses a list",
    "Translate 'good morning' into French",
    "Name a colour of the sea",
]
"""One per keyword route (code, translate, and the default), cycled."""
WAYS = {
    "rules": {},
    "latency": {"objective": "latency"},
    "latency p90": {"objective": "latency", "latency_percentile": 90},
    "latency aged": {"objective": "latency", "latency_max_age_s": AGED_S},
    "latency w10": {"objective": "latency", "latency_window": 10},
    "cost": {"objective": "cost"},
    "quality": {"objective": "quality"},
}
"""Each way of routing: the route spec's fields over the shared routes (a server each)."""


# -- the fake provider, as its own process ------------------------------------------------------------


def serve_fake() -> None:
    """Serve every model with its latency until interrupted; print the base URL first."""
    from tests.fake_openai import FakeOpenAI, RecordedRequest, Script

    with FakeOpenAI() as fake:
        scripts: dict[str, Script] = {}
        lock = threading.Lock()

        def swift(request: RecordedRequest) -> str:
            # Runs before the fake waits out the script's latency: setting it here slows this answer.
            with lock:
                scripts["swift"].latency_s = (
                    DEGRADED_S if DEGRADED in request.last_user else HEALTHY_S["swift"]
                )
            return "swift answers"

        for model, latency in HEALTHY_S.items():
            reply = swift if model == "swift" else f"{model} answers"
            scripts[model] = fake.script(model, reply, latency_s=latency, completion_tokens=COMPLETION_TOKENS)
        print(fake.base_url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


@contextlib.contextmanager
def fake_provider() -> Iterator[str]:
    command = [sys.executable, __file__, "--serve-fake"]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True, env=server_env())
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        if not base_url.startswith("http://"):
            raise RuntimeError("the fake provider did not start")
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=10)


# -- the configs ------------------------------------------------------------------------------------


def route_spec(**fields: Any) -> dict[str, Any]:
    return {
        "kind": "route",
        "default": "general",
        "routes": [
            {"name": "code", "keywords": ["python"], "target": "steady"},
            {"name": "translate", "keywords": ["translate"], "target": "thrifty"},
            {"name": "general", "target": "swift"},
        ],
        "candidates": MODELS,
        "quality": QUALITY,
        **fields,
    }


def model_entries(base_url: str) -> dict[str, Any]:
    return {
        model: {
            "model": f"openai/{model}",
            "api_base": base_url,
            "api_key_env": BENCH_KEY_ENV,
            "input_cost_per_mtok": PRICES[model][0],
            "output_cost_per_mtok": PRICES[model][1],
            "max_output_tokens": MAX_OUTPUT_TOKENS,
            "timeout_s": 30,
        }
        for model in MODELS
    }


def config(base_url: str, **fields: Any) -> dict[str, Any]:
    return {
        "limits": LOAD_LIMITS,
        "models": model_entries(base_url),
        "allow_unlisted_models": False,
        "strategies": {"route": route_spec(**fields)},
        "defaults": {"deadline_s": 60},
        "log_level": "WARNING",
    }


# -- the run ----------------------------------------------------------------------------------------


@dataclass
class Calls:
    """What one way of routing did in one phase."""

    wall_s: list[float] = field(default_factory=list)
    cost_usd: list[float] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    figures: str = ""
    """The last call's route decision: each candidate's figure (what the next call would compare)."""

    def summary(self) -> dict[str, Any]:
        quality = [QUALITY[m] for m in self.models]
        return {
            "figures": self.figures,
            "median_s": median(self.wall_s),
            "p95_s": percentile(self.wall_s, 95),
            "cost_usd": sum(self.cost_usd) / len(self.cost_usd),
            "quality": sum(quality) / len(quality),
            "models": dict(Counter(self.models)),
        }


async def _call(client: Client, prompt: str) -> tuple[float, float, str, str]:
    """One route_specialist call: its wall time, its cost, the model that answered and the candidates'
    figures in its route decision."""
    arguments = {"prompt": unique_prompt(prompt), "max_cost_usd": CAP_USD}
    started = time.perf_counter()
    result = await client.call_tool("route_specialist", arguments)
    elapsed = time.perf_counter() - started
    data: dict[str, Any] = result.structured_content or {}
    if result.is_error or not data.get("ok"):
        raise RuntimeError(f"route_specialist failed: {result.content}")
    answered = [c["model"] for c in data["calls"] if c.get("status") == "ok"]
    route = next(d for d in data["decisions"] if d["kind"] == "route")
    figures = ", ".join(
        f"{c['model']} {c.get('figure', '-')}" + (f"/{c['samples']}" if "samples" in c else "")
        for c in route.get("candidates") or []
    )
    return elapsed, float(data["totals"].get("cost_usd") or 0), answered[-1], figures


async def measure(rounds: int = 40, decisions: int = 2000) -> dict[str, Any]:
    phases: dict[str, dict[str, Calls]] = {}
    with fake_provider() as base_url, contextlib.ExitStack() as servers:
        served = {way: servers.enter_context(chorus_http(config(base_url, **f))) for way, f in WAYS.items()}
        async with contextlib.AsyncExitStack() as stack:
            clients = {way: await stack.enter_async_context(Client(s.url)) for way, s in served.items()}
            for phase, marker in (("healthy", ""), ("degraded", f" {DEGRADED}"), ("recovered", "")):
                calls = phases[phase] = {way: Calls() for way in WAYS}
                for number in range(rounds):
                    prompt = PROMPTS[number % len(PROMPTS)] + marker
                    for way, client in clients.items():
                        wall, cost, model, figures = await _call(client, prompt)
                        calls[way].figures = figures
                        calls[way].wall_s.append(wall)
                        calls[way].cost_usd.append(cost)
                        calls[way].models.append(model)
    result: dict[str, Any] = {
        phase: {way: c.summary() for way, c in by_way.items()} for phase, by_way in phases.items()
    }
    result["switch"] = {
        way: _calls_until_switch(phases["healthy"][way].models, phases["degraded"][way].models)
        for way in LATENCY_WAYS
    }
    result["return"] = {way: _calls_until_return(phases["recovered"][way].models) for way in LATENCY_WAYS}
    result["decision_us"] = await decision_overhead(decisions)
    return result


LATENCY_WAYS = ("latency", "latency p90", "latency aged", "latency w10")


def _calls_until_return(recovered: list[str]) -> int | None:
    """Calls in the recovered phase before the first one routed to swift (None: never)."""
    return next((number for number, model in enumerate(recovered) if model == "swift"), None)


def _calls_until_switch(healthy: list[str], degraded: list[str]) -> int | str | None:
    """Calls still routed to swift after it slowed down, before the first that was not (None: never;
    `off already` when the healthy phase had not ended on swift: nothing to switch from)."""
    if not healthy or healthy[-1] != "swift":
        return "off already"
    for number, model in enumerate(degraded):
        if model != "swift":
            return number
    return None


async def decision_overhead(iterations: int) -> dict[str, float]:
    """µs per routing decision, in process: each objective's choice against the rules' match."""
    from chorus_mcp.strategies.core.completion import CompletionRequest
    from chorus_mcp.strategies.core.spec import RouteSpec
    from chorus_mcp.strategies.engine.context import Budget, RunContext
    from chorus_mcp.strategies.engine.latency import WINDOW
    from chorus_mcp.strategies.engine.runner import run_step
    from chorus_mcp.strategies.kinds.objective import choose_by_objective
    from chorus_mcp.strategies.kinds.routing import choose_route
    from chorus_mcp.strategies.models.availability import provider_client
    from chorus_mcp.strategies.models.catalog import ModelCatalog, ModelEntry

    # No call is made: an estimate reads the model's price, not the provider.
    entries = {
        name: ModelEntry.model_validate(entry) for name, entry in model_entries("http://127.0.0.1:9").items()
    }
    catalog = ModelCatalog(entries, provider_client, allow_unlisted=False)
    ctx = RunContext.starting_now(
        catalog, 600, step_runner=run_step, budget=Budget(max_cost_usd=Decimal(CAP_USD))
    )
    for model, latency in HEALTHY_S.items():
        for n in range(WINDOW):  # a full window, each sample a little different (a real sort)
            ctx.latency.record(model, latency * (1 + (n % 7) / 100))
    request = CompletionRequest.of(PROMPTS[2])
    timings: dict[str, float] = {}
    for way, fields in WAYS.items():
        spec = RouteSpec.model_validate({k: v for k, v in route_spec(**fields).items() if k != "kind"})
        for _ in range(50):  # warm-up (the first estimate builds the client)
            await _decide(spec, request, ctx, choose_by_objective, choose_route)
        started = time.perf_counter()
        for _ in range(iterations):
            await _decide(spec, request, ctx, choose_by_objective, choose_route)
        timings[way] = (time.perf_counter() - started) / iterations * 1e6
    return timings


async def _decide(spec: Any, request: Any, ctx: Any, by_objective: Any, by_rules: Any) -> None:
    if spec.objective == "rules":
        await by_rules(spec, request, ctx, "route")
    else:
        choice, _notes = await by_objective(spec, request, ctx)
        assert choice.model is not None and choice.model != "premium"


# -- the figures ------------------------------------------------------------------------------------


PHASES = ("healthy", "degraded", "recovered")


def _ratio(value: float, baseline: float) -> str:
    return f"{value / baseline:.2f}" if baseline else "-"


def figures(result: dict[str, Any]) -> list[Figure]:
    rows: list[Figure] = []
    for phase in PHASES:
        base = result[phase]["rules"]
        for way in (*LATENCY_WAYS, "cost", "quality"):
            got = result[phase][way]
            models = ", ".join(f"{m} {n}" for m, n in sorted(got["models"].items(), key=lambda kv: -kv[1]))
            rows.append(
                Figure(
                    f"objective {way} vs rules, {phase}: median wall ratio",
                    _ratio(got["median_s"], base["median_s"]),
                    "-",
                    None,
                    f"median {got['median_s'] * 1e3:.0f} vs {base['median_s'] * 1e3:.0f} ms, p95 "
                    f"{_ratio(got['p95_s'], base['p95_s'])} ({got['p95_s'] * 1e3:.0f} vs "
                    f"{base['p95_s'] * 1e3:.0f} ms), cost/call {_ratio(got['cost_usd'], base['cost_usd'])} "
                    f"(${got['cost_usd']:.7f} vs ${base['cost_usd']:.7f}), quality {got['quality']:.3f} vs "
                    f"{base['quality']:.3f}; answered by {models}",
                )
            )
    for way, calls in result["switch"].items():
        rows.append(
            Figure(
                f"objective {way}: calls to the slowed model before switching",
                "never" if calls is None else str(calls),
                "-",
                None,
                f"swift went from {HEALTHY_S['swift'] * 1e3:.0f} to {DEGRADED_S * 1e3:.0f} ms; the window "
                "holds the last 50 answers",
            )
        )
    for way, calls in result["return"].items():
        age = f"{AGED_S:g} s" if way == "latency aged" else "600 s (the default)"
        rows.append(
            Figure(
                f"objective {way}: calls after swift recovered before it was used again",
                "never" if calls is None else str(calls),
                "-",
                None,
                f"swift back to {HEALTHY_S['swift'] * 1e3:.0f} ms; samples count for {age}",
            )
        )
    rules_us = result["decision_us"]["rules"]
    for way in ("latency", "cost", "quality"):
        us = result["decision_us"][way]
        rows.append(
            Figure(
                f"objective {way} decision: µs per route vs rules",
                f"{us:.0f}",
                "-",
                None,
                f"rules {rules_us:.0f} µs ({_ratio(us, rules_us)}x), 4 candidates",
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=40, help="rounds in each of 3 phases")
    parser.add_argument("--decisions", type=int, default=2000, help="decisions timed per way, in process")
    parser.add_argument("--serve-fake", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_fake:
        serve_fake()
        return
    import logging

    logging.disable(logging.INFO)
    print(load(), flush=True)
    result = anyio.run(measure, args.rounds, args.decisions)
    for phase in PHASES:
        print(f"\n{phase} ({args.rounds} calls each):")
        for way, got in result[phase].items():
            print(
                f"  {way:12} median {got['median_s'] * 1e3:6.0f} ms  p95 {got['p95_s'] * 1e3:6.0f} ms  "
                f"cost/call ${got['cost_usd']:.7f}  quality {got['quality']:.3f}  {got['models']}"
            )
            if got["figures"]:
                print(f"  {'':12} last decision's figures (model figure/samples): {got['figures']}")
    print(f"\ncalls to swift after it slowed, before switching: {result['switch']}")
    print(f"calls after swift recovered, before it was used again: {result['return']}")
    print("decision µs per route: " + ", ".join(f"{k} {v:.0f}" for k, v in result["decision_us"].items()))
    print()
    for figure in figures(result):
        print(f"  {figure.name}: {figure.value} - {figure.note}")
    print(load())


if __name__ == "__main__":
    main()
