"""Live tiers in an offline evaluation: real models answering beside replayed recordings, recorded once.

An evaluation file's `live:` section names models that are *asked*, not replayed: any model a Chorus
config can name (the embedded runtime `local/...`, a local OpenAI-compatible server, a hosted model)::

    live:
      qwen-small:
        model: local/qwen2.5-0.5b-instruct       # the usual `models:` entry fields
        recording: recordings/arc-qwen-small.jsonl   # relative to the evaluation file
        usd_per_hour: 0.05                       # optional: what an hour of this machine costs

Strategies use them like any other model, in the same run and the same strategy core as the
replayed ones: a cascade may start with a live local model and escalate to recorded ones.

**Recording.** What a live model answered is kept in a JSONL file, one line per distinct request:
the model id, a key (a hash of the messages, temperature, seed, token cap and schema: what decides the
answer), the answer text, the per-token log-probabilities when the provider gives them, with the
likeliest alternatives at each position (`top_logprobs`), and — for a multiple-choice prompt — each
option's probability normalised over the options (`choice_probs`, `strategies.evaluation.options`;
written for a reader: a replay reads it again from the alternatives and hands it to the cascade's
`logprob` estimator, which then takes the margin between the two likeliest options), prompt and
completion tokens, the latency measured when it was asked, and the provider's cost. Samples of a
model (the agreement estimator's, an ensemble's repeats) differ by seed, so each is a line of its
own: k samples, k lines. An evaluation replays these lines and never runs the model again; modes:

- `replay` (the default): only the file; a request it does not hold is an error naming `--record`;
- `missing` (`--record-missing`): recorded answers are reused, the others asked and appended at once
  (a long recording interrupted resumes where it stopped);
- `all` (`--record`): every request of this run is asked afresh (once; later asks of the same request
  in the run reuse it) and the file is replaced by this run's lines when the run ends.

Errors are recorded too (their type and message), so a replay fails where the recording did.

**Time.** Evaluation runs on a virtual clock (`engine`). A live call is made *blocking* the virtual
clock's event loop (on a helper thread with an event loop of its own), so no virtual time passes while
the model works; then the client sleeps its measured latency in virtual time. Members of an
ensemble thus overlap in virtual time as they would live, whatever the order they really ran in.

**Cost.** A hosted model's cost is the provider's. A model on this machine (`local/...`, or an
`api_base` on loopback) costs its compute: its time, which every report states (`local compute s`), and
in dollars only at the `usd_per_hour` given — never a silent 0. Without a rate, its dollar cost is
unknown (None) and the dollar figures leave it out, saying so; calibrating against a cost cap then
treats the local tier as free, so give a rate when a calibration weighs cost (`minimise: latency`
weighs its time instead).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import anyio
from pydantic import Field

from chorus_mcp.strategies.core import errors
from chorus_mcp.strategies.core.completion import Completion, CompletionRequest, TokenLogprob
from chorus_mcp.strategies.core.errors import ModelError, UserInputError
from chorus_mcp.strategies.evaluation.datasets import options_in
from chorus_mcp.strategies.evaluation.options import choice_probs
from chorus_mcp.strategies.models.catalog import ModelEntry
from chorus_mcp.strategies.models.client import ModelClient
from chorus_mcp.strategies.models.replay import NotRecorded

RecordMode = Literal["replay", "missing", "all"]
_ERRORS: dict[str, type[ModelError]] = {
    kind.__name__: kind
    for kind in (
        errors.ModelTimeout,
        errors.ProviderServerError,
        errors.ProviderUnavailable,
        errors.AuthenticationFailed,
        errors.ContextWindowExceeded,
        errors.BadRequest,
        errors.MalformedResponse,
        errors.RateLimited,
    )
}
"""Recorded failures are raised again as the same kind (so retries and fallbacks go as they went)."""
FORMAT = 1
"""The recording lines' `format`; a line of another format is refused (never misread)."""


class LiveModel(ModelEntry):
    """A `live:` entry: how to reach the model (the `models:` entry fields), where its answers are kept,
    and what its compute costs."""

    recording: str = Field(min_length=1)
    """The JSONL recording of its answers; a relative path is relative to the evaluation file."""
    usd_per_hour: Decimal | None = Field(default=None, ge=0)
    """What an hour of this model's compute costs, for a model on this machine; its time is turned into
    dollars at this rate. Unset: the dollar cost is unknown and reports give its time only."""


def is_local(entry: ModelEntry) -> bool:
    """A model computed on this machine: the embedded runtime, or a server on a loopback address."""
    from chorus_mcp.strategies.models.availability import source_of

    return source_of(entry) in ("embedded", "local server")


def request_key(model: str, request: CompletionRequest) -> str:
    """What decides a live answer, hashed: the model id and the request as the model sees it."""
    body = {
        "model": model,
        "messages": [[m.role, m.content] for m in request.messages],
        "temperature": request.temperature,
        "seed": request.seed,
        "max_tokens": request.max_tokens,
        "response_schema": request.response_schema,
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:32]


def _rounded(top: dict[str, float] | None) -> dict[str, float] | None:
    return None if top is None else {token: round(logprob, 6) for token, logprob in top.items()}


@dataclass(frozen=True)
class LiveAnswer:
    """One recorded live call: an answer (or the error it ended with) and what it took."""

    text: str | None
    latency_s: float
    logprobs: tuple[tuple[str, float], ...] | None = None
    top_logprobs: tuple[dict[str, float] | None, ...] | None = None
    """The alternatives at each answer token's position, when the provider gave them (`top_logprobs`)."""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: Decimal | None = None
    """The provider's cost (a hosted model's), as it reported it."""
    finish_reason: str | None = None
    error: str | None = None
    """The error's message when the call failed (then `text` is None)."""
    error_type: str | None = None

    @classmethod
    def of(cls, completion: Completion, latency_s: float) -> LiveAnswer:
        return cls(
            text=completion.text,
            latency_s=round(latency_s, 4),
            logprobs=None
            if completion.logprobs is None
            else tuple((t.token, round(t.logprob, 6)) for t in completion.logprobs),
            top_logprobs=None
            if not completion.logprobs or all(t.top is None for t in completion.logprobs)
            else tuple(_rounded(t.top) for t in completion.logprobs),
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
            cost_usd=completion.cost_usd,
            finish_reason=completion.finish_reason,
        )

    def line(self, model: str, key: str, request: CompletionRequest) -> dict[str, Any]:
        # For a reader of the file: the first line of the prompt's last paragraph (the question itself
        # when few-shot examples come first). The key, not this, identifies the request.
        paragraphs = [p for p in request.messages[-1].content.split("\n\n") if p.strip()]
        asked = paragraphs[-1].strip().splitlines()[0] if paragraphs else ""
        return {
            "format": FORMAT,
            "model": model,
            "key": key,
            "asked": asked[:100],
            "temperature": request.temperature,
            "seed": request.seed,
            "max_tokens": request.max_tokens,
            "text": self.text,
            "logprobs": None if self.logprobs is None else [list(pair) for pair in self.logprobs],
            "top_logprobs": None if self.top_logprobs is None else list(self.top_logprobs),
            "choice_probs": choice_probs(self.token_logprobs(), options_in(request.messages[-1].content)),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "latency_s": self.latency_s,
            "cost_usd": None if self.cost_usd is None else str(self.cost_usd),
            "finish_reason": self.finish_reason,
            "error": self.error,
            "error_type": self.error_type,
        }

    def token_logprobs(self) -> list[TokenLogprob] | None:
        if self.logprobs is None:
            return None
        tops = self.top_logprobs or ()
        return [
            TokenLogprob(token=t, logprob=lp, top=tops[i] if i < len(tops) else None)
            for i, (t, lp) in enumerate(self.logprobs)
        ]

    @classmethod
    def from_line(cls, record: dict[str, Any], where: str) -> LiveAnswer:
        if record.get("format") != FORMAT:
            raise UserInputError(f"{where}: recording format {record.get('format')!r}, expected {FORMAT}")
        try:
            logprobs = record.get("logprobs")
            top = record.get("top_logprobs")
            return cls(
                text=record["text"],
                latency_s=float(record["latency_s"]),
                logprobs=None if logprobs is None else tuple((str(t), float(lp)) for t, lp in logprobs),
                top_logprobs=None
                if top is None
                else tuple(None if at is None else {str(k): float(v) for k, v in at.items()} for at in top),
                prompt_tokens=record.get("prompt_tokens"),
                completion_tokens=record.get("completion_tokens"),
                cost_usd=None if record.get("cost_usd") is None else Decimal(str(record["cost_usd"])),
                finish_reason=record.get("finish_reason"),
                error=record.get("error"),
                error_type=record.get("error_type"),
            )
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            raise UserInputError(f"{where}: not a live-answer line ({exc!r})") from None


@dataclass
class LiveRecording:
    """The recorded answers of the live models of one evaluation, by (model id, request key)."""

    path: Path
    mode: RecordMode = "replay"
    _answers: dict[tuple[str, str], LiveAnswer] = field(default_factory=dict)
    _fresh: dict[tuple[str, str], LiveAnswer] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.path.is_file():
            self._answers = read_recording(self.path)
        elif self.mode == "replay":
            raise UserInputError(
                f"live recording {str(self.path)!r} does not exist: run the evaluation with --record "
                "to ask the live models and write it"
            )
        if self.mode == "all":
            self._scratch().unlink(missing_ok=True)

    def _scratch(self) -> Path:
        return self.path.with_name(self.path.name + ".partial")

    def get(self, model: str, key: str) -> LiveAnswer | None:
        if self.mode == "all":
            return self._fresh.get((model, key))
        return self._answers.get((model, key))

    def put(self, model: str, key: str, request: CompletionRequest, answer: LiveAnswer) -> None:
        """Keep a new answer, on disk at once (so an interrupted recording keeps what it asked)."""
        with self._lock:
            self._fresh[(model, key)] = answer
            self._answers[(model, key)] = answer
            target = self._scratch() if self.mode == "all" else self.path
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(answer.line(model, key, request), sort_keys=True) + "\n")

    def finish(self) -> None:
        """With `all`: replace the file with this run's answers (a run that asked nothing keeps it)."""
        scratch = self._scratch()
        if self.mode == "all" and scratch.is_file():
            scratch.replace(self.path)

    def __len__(self) -> int:
        return len(self._answers)


def read_recording(path: Path) -> dict[tuple[str, str], LiveAnswer]:
    answers: dict[tuple[str, str], LiveAnswer] = {}
    with path.open(encoding="utf-8") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            where = f"{path}:{number}"
            try:
                record = json.loads(text)
            except json.JSONDecodeError as exc:
                raise UserInputError(f"{where}: not valid JSON ({exc.msg})") from None
            if not isinstance(record, dict) or not isinstance(record.get("key"), str):
                raise UserInputError(f"{where}: each line must be an object with a 'key'")
            # A later line for the same request wins: `missing` appends, it never rewrites.
            answers[(str(record.get("model")), record["key"])] = LiveAnswer.from_line(record, where)
    return answers


class Asker:
    """Makes live calls from inside the virtual-clock event loop without letting its clock move: each
    call runs on a helper thread's own event loop (asyncio), and the calling loop blocks until it ends.
    One helper thread, and one client per model, for the whole evaluation."""

    def __init__(self) -> None:
        self._stack = contextlib.ExitStack()
        self._portal: Any = None

    def ask(self, client: ModelClient, request: CompletionRequest) -> tuple[Completion | ModelError, float]:
        """(the completion or the model error, wall seconds) — blocking the caller on purpose."""
        if self._portal is None:
            from anyio.from_thread import start_blocking_portal

            self._portal = self._stack.enter_context(start_blocking_portal(backend="asyncio"))
        started = time.monotonic()
        try:
            completion: Completion = self._portal.call(client.complete, request)
        except ModelError as exc:
            return exc, time.monotonic() - started
        return completion, time.monotonic() - started

    def close(self) -> None:
        self._stack.close()
        self._portal = None


@dataclass
class LiveClient:
    """A `ModelClient` for a live model: its recorded answer if there is one, else (when recording) the
    model asked for real. Sleeps the answer's latency on the (virtual) clock."""

    name: str
    entry: LiveModel
    recording: LiveRecording
    asker: Asker
    client: ModelClient | None = None
    """The real client, built on the first live call."""

    async def complete(self, request: CompletionRequest) -> Completion:
        key = request_key(self.entry.model, request)
        answer = self.recording.get(self.entry.model, key)
        if answer is None:
            if self.recording.mode == "replay":
                raise NotRecorded(
                    self.name,
                    f"the live recording {self.recording.path.name} has no answer of {self.entry.model} to "
                    f"this request (temperature {request.temperature}, seed {request.seed}); run the "
                    "evaluation with --record-missing (or --record) to ask the model",
                )
            answer = self._ask(request)
            self.recording.put(self.entry.model, key, request, answer)
        await anyio.sleep(answer.latency_s)
        logprobs = answer.token_logprobs()
        if answer.text is None:
            kind = _ERRORS.get(answer.error_type or "", errors.ProviderServerError)
            message = (answer.error or "").removeprefix(f"{self.name}: ")
            raise kind(self.name, f"{message} (recorded)")
        return Completion(
            text=answer.text,
            model=self.entry.model,
            prompt_tokens=answer.prompt_tokens,
            completion_tokens=answer.completion_tokens,
            cost_usd=self._cost(answer),
            latency_s=answer.latency_s,
            finish_reason=answer.finish_reason,
            logprobs=logprobs,
            # Read again from the alternatives (not the line's copy), so a replay and the recording
            # run agree by construction.
            choice_probs=choice_probs(logprobs, options_in(request.messages[-1].content)),
        )

    def _ask(self, request: CompletionRequest) -> LiveAnswer:
        if self.client is None:
            from chorus_mcp.strategies.models.availability import provider_client

            self.client = provider_client(self.name, self.entry)
        # Always ask for logprobs: whichever estimator replays this answer later can read them.
        outcome, wall_s = self.asker.ask(self.client, request.model_copy(update={"logprobs": True}))
        if isinstance(outcome, ModelError):
            kind = type(outcome).__name__
            return LiveAnswer(text=None, latency_s=round(wall_s, 4), error=outcome.message, error_type=kind)
        return LiveAnswer.of(outcome, outcome.latency_s or wall_s)

    def _cost(self, answer: LiveAnswer) -> Decimal | None:
        if not is_local(self.entry):
            return answer.cost_usd
        if self.entry.usd_per_hour is None:
            return None  # its price is its time, reported as such (see `local_compute_s`)
        return Decimal(str(answer.latency_s)) * self.entry.usd_per_hour / 3600


@dataclass
class LiveModels:
    """The live models of one evaluation: their recordings, the helper thread, and a client per alias."""

    models: dict[str, LiveModel]
    recordings: dict[str, LiveRecording]
    """By alias (models naming the same file share one)."""
    asker: Asker = field(default_factory=Asker)
    _clients: dict[str, LiveClient] = field(default_factory=dict)

    def client(self, alias: str) -> LiveClient:
        if alias not in self._clients:
            self._clients[alias] = LiveClient(alias, self.models[alias], self.recordings[alias], self.asker)
        return self._clients[alias]

    def local(self) -> set[str]:
        """The aliases computed on this machine (their time is their cost)."""
        return {alias for alias, entry in self.models.items() if is_local(entry)}

    def close(self) -> None:
        self.asker.close()
        for recording in {id(r): r for r in self.recordings.values()}.values():
            recording.finish()


def open_live(models: dict[str, LiveModel], base: Path, mode: RecordMode) -> LiveModels:
    """The live models with their recordings; relative recording paths are relative to `base`."""
    by_path: dict[Path, LiveRecording] = {}
    recordings = {}
    for alias, entry in models.items():
        path = Path(entry.recording).expanduser()
        path = path if path.is_absolute() else base / path
        if path not in by_path:
            by_path[path] = LiveRecording(path, mode)
        recordings[alias] = by_path[path]
    return LiveModels(dict(models), recordings)


@contextlib.contextmanager
def live_models(models: dict[str, LiveModel], base: Path, mode: RecordMode) -> Iterator[LiveModels]:
    live = open_live(models, base, mode)
    try:
        yield live
    finally:
        live.close()
