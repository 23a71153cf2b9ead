"""`chorus-mcp doctor`: which models can work here, which are live, and what each strategy will use.

Every configured model is checked the way the server checks it at start-up (strategies/models/availability.py:
key set, local server answering with the model, embedded model installed). Then the usable models that
cost nothing — a local server, the embedded model — are asked one tiny question each, all at once and
each within `--timeout`, so "usable" is backed by a real answer. Hosted models are asked only with
`--probe-hosted` (a few tokens each: a fraction of a cent, and it needs the network). The client's own
model (MCP sampling) cannot be asked from here: it exists only inside a tool call from a client that
offers sampling.

Exit status: 0 when at least one model besides the client's own can answer, else 1 (with what to set up).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the CLI imports this module for its parser; the work imports what it needs
    from chorus_mcp.config.schema import ChorusConfig
    from chorus_mcp.strategies.core.spec import Step
    from chorus_mcp.strategies.models.availability import ModelStatus
    from chorus_mcp.strategies.models.catalog import ModelEntry

PROBE_PROMPT = "What is 2+2? Answer with the number only."
"""A question whose answer shows the model is sane as well as live (a tiny model may answer "Reply with
the single word OK." with an unrelated sentence, but gets this one right)."""
DEFAULT_TIMEOUT_S = 60.0
"""Long enough for the embedded model's first use (joining and verifying 1.1 GB of weights, then loading
them, on a busy machine), or a local server loading its model."""


@dataclass(frozen=True)
class Probe:
    ok: bool
    detail: str


def add_doctor_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    doctor = commands.add_parser(
        "doctor", help="say which models are usable and live, and what strategies use"
    )
    doctor.add_argument("--config", help="config file (default: $CHORUS_CONFIG, else the bundled default)")
    doctor.add_argument("--no-probe", action="store_true", help="do not ask any model; only check set-up")
    doctor.add_argument(
        "--probe-hosted",
        action="store_true",
        help="also ask hosted models (a few tokens each; needs the network)",
    )
    doctor.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        help=f"per probe, seconds (default {DEFAULT_TIMEOUT_S:g})",
    )
    doctor.set_defaults(handler=run_doctor)


def run_doctor(args: argparse.Namespace) -> int:
    import anyio

    from chorus_mcp.config.loader import config_path, load_config
    from chorus_mcp.strategies.models.availability import check_models, how_to_enable, use_available

    config = load_config(args.config)
    statuses = check_models(config.models)
    steered, _ = use_available(config, statuses)
    probes: dict[str, Probe] = {}
    if not args.no_probe:
        wanted = [
            alias
            for alias, status in statuses.items()
            if status.usable
            and (status.source in ("local server", "embedded") or args.probe_hosted)
            and status.source != "client"
        ]
        probes = anyio.run(_probe_all, {alias: config.models[alias] for alias in wanted}, args.timeout)
    note = " (uses what is available here)" if config.use_available_models else ""
    print(f"config: {config_path(args.config)}{note}")
    if "CHORUS_CONFIG" in os.environ and not args.config:
        print("  (from CHORUS_CONFIG)")
    print()
    print(render_models(statuses, probes))
    print()
    print(render_facts(config))
    embedded = render_embedded(statuses)
    if embedded:
        print()
        print(embedded)
    print()
    print(render_strategies(steered))
    for line in sampling_notes(statuses, steered):
        print(line)
    answering = [
        alias
        for alias, status in statuses.items()
        if status.usable and status.source != "client" and (alias not in probes or probes[alias].ok)
    ]
    print()
    if answering:
        plural = "s" if len(answering) != 1 else ""
        print(f"{len(answering)} model{plural} can answer here: {', '.join(answering)}")
        return 0
    print("No model can answer here yet. Set up at least one:")
    for line in how_to_enable(statuses):
        print(f"  - {line}")
    return 1


SAMPLING_DEPRECATED = (
    "MCP sampling (how a `client` model asks the calling client's own model) is deprecated in protocol "
    "2026-07-28: it answers only in clients that still offer it; elsewhere its fallbacks answer"
)


def sampling_notes(statuses: Mapping[str, ModelStatus], config: ChorusConfig) -> list[str]:
    """What relies on MCP sampling here, and that it is deprecated (nothing when no model samples)."""
    sampled = {alias for alias, status in statuses.items() if status.source == "client"}
    if not sampled:
        return []
    from chorus_mcp.strategies.core.spec import models_in

    lines = ["", f"note: {', '.join(sorted(sampled))}: {SAMPLING_DEPRECATED}."]
    # Fallbacks are left out: a strategy whose `client` is only a fallback does not give it a seat.
    seated = {name: set(models_in(step, fallbacks=False)) for name, step in config.strategies.items()}
    seating = [name for name, models in seated.items() if sampled & models]
    if seating:
        lines.append(
            f"  here {', '.join(seating)} give{'s' if len(seating) == 1 else ''} it a seat; another key, "
            "Ollama or the embedded model (the `local` extra) would take it"
        )
    return lines


def render_models(statuses: Mapping[str, ModelStatus], probes: Mapping[str, Probe]) -> str:
    from chorus_mcp.strategies.core.errors import redact

    rows = [("model", "provider id", "source", "status")]
    for alias, status in statuses.items():
        if not status.usable:
            state = f"not usable: {status.detail}"
        elif status.source == "client":
            state = f"usable {status.detail}"
        elif alias in probes:
            probe = probes[alias]
            state = f"live: {probe.detail}" if probe.ok else f"usable, but the probe failed: {probe.detail}"
        else:
            state = f"usable: {status.detail}"
        rows.append((alias, status.model, status.source, redact(state)))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(
        "  " + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:3])) + "  " + row[3]
        for row in rows
    )


def render_facts(config: ChorusConfig) -> str:
    """What each model can do and costs (`catalog.capabilities`), and which model map says so."""
    from chorus_mcp.strategies.models.catalog import capabilities, map_version_text

    windows = config.sessions.context.windows
    rows = [("model", "context", "output", "supports", "USD/Mtok in/out", "from")]
    for alias, entry in config.models.items():
        facts = capabilities(entry, window=windows.get(alias))
        listed = facts.listing()
        prices = listed.get("usd_per_mtok", {})
        rows.append(
            (
                alias,
                f"{facts.context_window:,}" if facts.context_window else "?",
                f"{facts.max_output:,}" if facts.max_output else "?",
                (", ".join(facts.supports) or "text only") if "supports" in listed else "?",
                "/".join(f"{prices[side]:g}" if side in prices else "?" for side in ("in", "out")),
                facts.provenance(),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = [f"what the models can do, by {map_version_text() or 'no model map (litellm is not installed)'}:"]
    lines += [
        "  " + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:5])) + "  " + row[5]
        for row in rows
    ]
    return "\n".join(lines)


def render_embedded(statuses: Mapping[str, ModelStatus]) -> str:
    """For each embedded model: the runtime, the model, its licence, its file and that file's hash."""
    from chorus_mcp.strategies.models.availability import embedded_details

    lines: list[str] = []
    seen: set[str] = set()
    for alias, status in statuses.items():
        if status.source != "embedded" or status.model in seen:
            continue
        seen.add(status.model)
        details = embedded_details(status.model)
        lines += [
            f"embedded model {alias} ({status.model}):",
            f"  runtime  {details.runtime}",
            f"  model    {details.title}",
            f"  licence  {details.licence}",
            f"  source   {details.source}",
            f"  file     {details.file}",
        ]
        if details.sha256:
            lines.append(f"  sha256   {details.sha256}")
    return "\n".join(lines)


def render_strategies(config: ChorusConfig) -> str:
    lines = ["strategies use:"]
    width = max((len(name) for name in config.strategies), default=0)
    for name, step in config.strategies.items():
        lines.append(f"  {name.ljust(width)}  {describe(step)}")
    return "\n".join(lines)


def describe(step: Step) -> str:
    """One line saying which models a strategy calls, and how."""
    from chorus_mcp.strategies.core.spec import (
        CascadeSpec,
        EnsembleSpec,
        ModelStep,
        PipelineSpec,
        RouteSpec,
        StrategyRef,
    )

    if isinstance(step, ModelStep):
        return step.model + (f" (then {', '.join(step.fallbacks)})" if step.fallbacks else "")
    if isinstance(step, EnsembleSpec):
        members = ", ".join(_short(m) for m in step.members)
        judge = f", judged by {step.judge}" if step.judge else ""
        return f"ensemble of {members} ({step.aggregation}, quorum {step.quorum}{judge})"
    if isinstance(step, CascadeSpec):
        return (
            "cascade "
            + " → ".join(_short(t) for t in step.tiers)
            + f" ({step.estimator} ≥ {step.threshold:g})"
        )
    if isinstance(step, RouteSpec):
        routes = ", ".join(f"{r.name} → {_short(r.target)}" for r in step.routes)
        classifier = f"; classifier {step.classifier}" if step.classifier else ""
        return f"route {routes}{classifier}"
    if isinstance(step, PipelineSpec):
        return "pipeline " + " → ".join(f"{s.name}: {_short(s.step)}" for s in step.stages)
    if isinstance(step, StrategyRef):
        return f"strategy {step.name}"
    return step.kind


def _short(step: Step) -> str:
    from chorus_mcp.strategies.core.spec import ModelStep, StrategyRef

    if isinstance(step, ModelStep):
        return step.model
    if isinstance(step, StrategyRef):
        return step.name
    return step.kind


async def _probe_all(entries: Mapping[str, ModelEntry], timeout_s: float) -> dict[str, Probe]:
    import anyio

    results: dict[str, Probe] = {}

    async def one(alias: str, entry: ModelEntry) -> None:
        results[alias] = await probe_model(alias, entry, timeout_s)

    async with anyio.create_task_group() as tg:
        for alias, entry in entries.items():
            tg.start_soon(one, alias, entry)
    return {alias: results[alias] for alias in entries}


async def probe_model(alias: str, entry: ModelEntry, timeout_s: float) -> Probe:
    """Ask one model a one-word question, through the same client the server would use."""
    import anyio

    from chorus_mcp.strategies.core.completion import CompletionRequest
    from chorus_mcp.strategies.core.errors import ModelError
    from chorus_mcp.strategies.models.availability import provider_client
    from chorus_mcp.strategies.models.client import WarmsUp

    request = CompletionRequest.of(PROBE_PROMPT, max_tokens=8, temperature=0.0, timeout_s=timeout_s)
    started = time.monotonic()
    try:
        client = provider_client(alias, entry)
        with anyio.fail_after(timeout_s):
            if isinstance(client, WarmsUp):
                await client.ready()
            completion = await client.complete(request)
    except TimeoutError:
        return Probe(False, f"no answer within {timeout_s:g}s")
    except ModelError as exc:
        return Probe(False, str(exc).removeprefix(f"{alias}: "))
    said = " ".join(completion.text.split())[:24]
    return Probe(True, f"answered {said!r} in {time.monotonic() - started:.2f}s")
