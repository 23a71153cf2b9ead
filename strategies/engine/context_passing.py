"""Context passing: what of a session's history a model is sent, chosen per call or per pipeline stage.

Modes (`strategies.sessions.session.ContextMode`):

- `full`    — every earlier turn;
- `summary` — a summary of the older turns (written by a cheap model, cached in the session as a memo
              and extended incrementally as the session grows), then the latest `keep_recent_turns`
              turns verbatim;
- `extract` — only the key facts of the whole conversation (a memo too), no turns verbatim;
- `none`    — no history at all.

Whatever the mode, the result is trimmed to fit the smallest context window among the models the
step may call (its window minus room for the answer: the request's `max_tokens`, else the model's
`max_output_tokens`), counted with a real tokenizer when one is plugged in. The caller's system prompt,
the memo and the latest user message are always kept; turns are dropped oldest first, and an answer
is never sent without its question. Files attached to the call keep their room first: history gets what
they leave, and yields first when both cannot fit (the files are then cut by the per-model fit). If the
memo cannot be made (no model answers), the call goes on with the `full` history, trimmed, and says so.

Every decision is reported as a note in the result (`stage="context"`), and the memo calls are
recorded like any other model call (stage `context/summary`, `context/facts`), so their cost shows.

Pipeline stages may choose their own mode: `execute` binds the session for the run (`bound`), and a
stage asks `for_stage` for its request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TypeVar, cast

import anyio

from chorus_mcp.strategies.core.completion import CompletionRequest, Message
from chorus_mcp.strategies.core.errors import UserInputError
from chorus_mcp.strategies.core.inputs import reserved_tokens, rough_tokens
from chorus_mcp.strategies.core.result import CallRecord, Decision, NoteDecision
from chorus_mcp.strategies.core.spec import ModelStep, Step, StrategyRef, models_in
from chorus_mcp.strategies.core.templates import latest_user_text, with_prompt
from chorus_mcp.strategies.engine.calling import run_model
from chorus_mcp.strategies.engine.context import RunContext
from chorus_mcp.strategies.models.catalog import ModelEntry
from chorus_mcp.strategies.models.tokenizer import load_encoding
from chorus_mcp.strategies.sessions.session import (
    ContextMemo,
    ContextMode,
    ContextSettings,
    MemoKind,
    Session,
    SessionStore,
    Turn,
    utc_now,
)

TokenCounter = Callable[[ModelEntry, Sequence[Message]], int]
"""Prompt tokens of `messages` on `entry`'s model. May block (it runs in a worker thread)."""

WindowLookup = Callable[[ModelEntry], int | None]
"""The model's context window in prompt tokens, when known. May block."""

STAGE = "context"
T = TypeVar("T")

INSTRUCTIONS: dict[MemoKind, str] = {
    "summary": (
        "You condense conversations for another assistant. Summarise the conversation below in at most "
        "200 words: keep names, numbers, decisions, constraints and open questions; drop pleasantries. "
        "If an earlier summary is given, fold it in. Reply with the summary only."
    ),
    "facts": (
        "You extract the key facts of a conversation for another assistant. List every fact, decision, "
        "constraint and preference stated below as short bullet points ('- ...'), most important first. "
        "If earlier facts are given, keep those still true. Reply with the bullet points only."
    ),
}
HEADINGS: dict[MemoKind, str] = {
    "summary": "Summary of the earlier conversation:",
    "facts": "Key facts from the conversation so far:",
}


def approximate_tokens(_entry: ModelEntry, messages: Sequence[Message]) -> int:
    """~4 characters a token, plus a little per message: the fallback when no tokenizer is plugged in."""
    return sum(len(m.content) for m in messages) // 4 + 4 * len(messages)


def no_window(_entry: ModelEntry) -> int | None:
    return None


# -- an offline tokenizer --------------------------------------------------------------------------

TOKENS_PER_MESSAGE = 3
"""OpenAI's chat overhead per message (role and separators), as litellm's counter adds it too."""


def offline_tokens(entry: ModelEntry, messages: Sequence[Message]) -> int:
    """Real prompt tokens, offline, never waiting on a slow import.

    litellm's own counter (`estimate_prompt_tokens`) when litellm is already loaded; until then the
    tokenizer that counter uses by default — tiktoken's `cl100k_base`, read from the encodings litellm
    bundles, so nothing is downloaded. ~4 characters a token if neither is available. Blocking.
    """
    from chorus_mcp.strategies.models.providers import litellm_client

    if getattr(litellm_client, "_litellm", None) is not None:
        return litellm_client.estimate_prompt_tokens(entry, messages)
    encoding = load_encoding()
    if encoding is None:
        return approximate_tokens(entry, messages)
    per_message = [len(encoding.encode(m.content, disallowed_special=())) for m in messages]
    return sum(per_message) + TOKENS_PER_MESSAGE * len(messages) + 3


@dataclass
class Built:
    """A request with its context in, and how it came about."""

    request: CompletionRequest
    calls: list[CallRecord] = field(default_factory=list)
    notes: list[Decision] = field(default_factory=list)


@dataclass
class _Target:
    alias: str
    entry: ModelEntry
    budget: int
    """Prompt tokens the model can take: its window minus room for the answer."""


@dataclass
class ContextPassing:
    """Builds the request a model is sent from a session's history, per `ContextSettings`."""

    settings: ContextSettings = field(default_factory=ContextSettings)
    count_tokens: TokenCounter = approximate_tokens
    known_window: WindowLookup = no_window
    blocking: bool = False
    """Whether `count_tokens` / `known_window` block (then they run in a worker thread)."""

    async def build(
        self,
        session: Session | None,
        request: CompletionRequest,
        mode: ContextMode,
        step: Step,
        ctx: RunContext,
        store: SessionStore,
    ) -> Built:
        """`request` (system prompt and the latest user message) with `session`'s history per `mode`."""
        turns = session.turns if session is not None else []
        if not turns:
            return Built(request)
        if mode == "none":
            return Built(request, notes=[_note(f"none: {len(turns)} earlier turn(s) not sent")])
        built = Built(request)
        memo: str | None = None
        kind: MemoKind | None = "summary" if mode == "summary" else "facts" if mode == "extract" else None
        history = list(turns)
        if kind is not None and session is not None:
            older = max(0, len(turns) - self.settings.keep_recent_turns)
            covered = turns if kind == "facts" else turns[:older]
            if covered:
                memo = await self._memo(session, kind, covered, step, ctx, store, built)
                if memo is not None:
                    history = [] if kind == "facts" else turns[len(covered) :]
        target = await self._target(step, ctx, request)
        built.request = await self._fit(request, history, memo, kind, target, built, mode, len(turns))
        return built

    # -- memos -------------------------------------------------------------------------------------

    async def _memo(
        self,
        session: Session,
        kind: MemoKind,
        covered: list[Turn],
        step: Step,
        ctx: RunContext,
        store: SessionStore,
        built: Built,
    ) -> str | None:
        """The digest of `covered` (cached, extended, or made now); None when no model could make it."""
        through = _seq(covered[-1])
        cached = session.memos.get(kind)
        if cached is not None and cached.through_seq >= through:
            built.notes.append(_note(f"{kind} of turns up to #{through} (cached)"))
            return cached.text
        new = [t for t in covered if cached is None or _seq(t) > cached.through_seq]
        model = self.settings.summary_model or _first_model(step, ctx)
        if model is None:
            built.notes.append(_note(f"no model to write the {kind}; the full history is used"))
            return None
        text, calls = await self._ask(model, kind, cached.text if cached else None, new, ctx)
        built.calls.extend(calls)
        if text is None:
            built.notes.append(_note(f"no {kind}: {model} gave no answer; the full history is used"))
            return None
        await store.save_memo(
            session.id, ContextMemo(kind=kind, through_seq=through, text=text, model=model, at=utc_now())
        )
        extended = " (extended)" if cached is not None else ""
        built.notes.append(_note(f"{kind} of turns up to #{through} written by {model}{extended}"))
        return text

    async def _ask(
        self, model: str, kind: MemoKind, earlier: str | None, turns: list[Turn], ctx: RunContext
    ) -> tuple[str | None, list[CallRecord]]:
        try:
            entry = ctx.catalog.entry(model)
        except UserInputError:
            return None, [
                CallRecord(
                    model=model,
                    stage=f"{STAGE}/{kind}",
                    status="skipped",
                    error=f"unknown model {model!r} (sessions.context.summary_model)",
                )
            ]
        instruction = Message(role="system", content=INSTRUCTIONS[kind])
        window = await self._window(model, entry) - self.settings.summary_max_tokens
        lines = [_line(t) for t in turns]
        head = f"Earlier {'summary' if kind == 'summary' else 'facts'}:\n{earlier}\n\n" if earlier else ""

        def prompt() -> Message:
            return Message(role="user", content=f"{head}Conversation:\n" + "\n".join(lines))

        # The conversation to digest must itself fit the digesting model: keep its newest lines.
        while len(lines) > 1 and await self._count(entry, [instruction, prompt()]) > window:
            lines = lines[max(1, len(lines) // 4) :]
        request = CompletionRequest(
            messages=(instruction, prompt()), max_tokens=self.settings.summary_max_tokens, temperature=0
        )
        outcome = await run_model(ModelStep(model=model), request, ctx, f"{STAGE}/{kind}")
        answer = outcome.result.answer
        return (answer.strip() or None) if outcome.result.ok and answer else None, outcome.result.calls

    # -- fitting into the window -------------------------------------------------------------------

    async def _fit(
        self,
        request: CompletionRequest,
        history: list[Turn],
        memo: str | None,
        kind: MemoKind | None,
        target: _Target | None,
        built: Built,
        mode: ContextMode,
        total: int,
    ) -> CompletionRequest:
        system = [m for m in request.messages if m.role == "system"]
        rest = [m for m in request.messages if m.role != "system"]
        if memo is not None and kind is not None:
            system.append(Message(role="system", content=f"{HEADINGS[kind]}\n{memo}"))
        kept = history
        used: int | None = None
        # The attached files follow the latest message (`engine.calling.with_inputs`) and get what the
        # messages leave: their room is kept first, so a long history cannot squeeze them into an excerpt.
        reserve = reserved_tokens(request.inputs)
        if target is not None:
            fixed = [*system, *rest]
            counts = await self._counts(target.entry, [fixed, *[[t.message()] for t in history]])
            # With files, the messages must also fit by the generous count the files' fit makes of them.
            rough = [rough_tokens(m.content for m in fixed), *[rough_tokens([t.content]) for t in history]]
            limit = target.budget - reserve
            used, counted = counts[0], rough[0]
            kept = []
            for turn, tokens, estimate in zip(
                reversed(history), reversed(counts[1:]), reversed(rough[1:]), strict=True
            ):
                if used + tokens > limit or (reserve and counted + estimate > limit):
                    break
                kept.insert(0, turn)
                used += tokens
                counted += estimate
            while kept and kept[0].role == "assistant":
                used -= counts[1 + len(history) - len(kept)]
                kept.pop(0)  # never an answer without its question
        sent = f"{len(kept)} of {total} turn(s) verbatim"
        if target is not None and len(kept) < len(history):
            kept_for = f", ~{reserve:,} of them kept for the attached files" if reserve else ""
            sent += (
                f"; {len(history) - len(kept)} older turn(s) left out to fit {target.alias}'s window "
                f"({target.budget} prompt tokens{kept_for})"
            )
        if target is not None and reserve and used is not None and used + reserve > target.budget:
            sent += (
                f"; the attached files (~{reserve:,} tokens) and the prompt need more than "
                f"{target.alias}'s {target.budget}: history yields first, and the files are cut to fit"
            )
        elif target is not None and used is not None and used > target.budget:
            sent += f"; the prompt alone needs ~{used} tokens, more than {target.alias}'s {target.budget}"
        built.notes.append(_note(f"{mode}: {sent}"))
        messages = (*system, *[t.message() for t in kept], *rest)
        return request.model_copy(update={"messages": messages})

    async def _target(self, step: Step, ctx: RunContext, request: CompletionRequest) -> _Target | None:
        """The model with the least room among those `step` may call (None when none is known)."""
        best: _Target | None = None
        for alias in _models_of(step, ctx):
            try:
                entry = ctx.catalog.entry(alias)
            except UserInputError:
                continue
            room = await self._window(alias, entry) - (request.max_tokens or entry.max_output_tokens)
            if best is None or room < best.budget:
                best = _Target(alias, entry, max(0, room))
        return best

    async def _window(self, alias: str, entry: ModelEntry) -> int:
        configured = self.settings.windows.get(alias)
        if configured is not None:
            return configured
        known = await self._call(lambda: self.known_window(entry))
        return known or self.settings.default_window_tokens

    async def _count(self, entry: ModelEntry, messages: Sequence[Message]) -> int:
        return (await self._counts(entry, [messages]))[0]

    async def _counts(self, entry: ModelEntry, groups: Sequence[Sequence[Message]]) -> list[int]:
        return await self._call(lambda: [self.count_tokens(entry, group) for group in groups])

    async def _call(self, fn: Callable[[], T]) -> T:
        return await anyio.to_thread.run_sync(fn) if self.blocking else fn()


# -- per pipeline stage ----------------------------------------------------------------------------


@dataclass
class ActiveSession:
    """The session a tool call runs in, as pipeline stages that choose their own context see it."""

    passing: ContextPassing
    session: Session | None
    request: CompletionRequest
    """The call's request without history: system prompt and the latest user message."""
    store: SessionStore
    calls: list[CallRecord] = field(default_factory=list)
    """Memo calls made for stages; the caller adds them to the result."""
    notes: list[Decision] = field(default_factory=list)


_active: ContextVar[ActiveSession | None] = ContextVar("chorus_active_session", default=None)


@contextmanager
def bound(active: ActiveSession) -> Iterator[ActiveSession]:
    """Make `active` the session of the strategy run inside (child tasks inherit it)."""
    token = _active.set(active)
    try:
        yield active
    finally:
        _active.reset(token)


async def for_stage(
    request: CompletionRequest, mode: ContextMode | None, step: Step, ctx: RunContext, stage: str
) -> CompletionRequest:
    """The request a pipeline stage sends when it chooses its own context `mode` (None: as the call)."""
    if mode is None:
        return request
    active = _active.get()
    prompt = latest_user_text(request)
    if active is None:
        if mode != "none":
            return request
        bare = [m for m in request.messages if m.role == "system"]
        return request.model_copy(update={"messages": (*bare, Message(role="user", content=prompt))})
    built = await active.passing.build(
        active.session, with_prompt(active.request, prompt), mode, step, ctx, active.store
    )
    active.calls.extend(built.calls)
    active.notes.extend(
        NoteDecision(stage=f"{stage}/{STAGE}", message=cast(NoteDecision, n).message) for n in built.notes
    )
    return built.request


# -- helpers ---------------------------------------------------------------------------------------


def _note(message: str) -> NoteDecision:
    return NoteDecision(stage=STAGE, message=message)


def _seq(turn: Turn) -> int:
    assert turn.seq is not None, "turns read from a store carry their seq"
    return turn.seq


def _line(turn: Turn) -> str:
    who = "User" if turn.role == "user" else "Assistant"
    return f"{who}: {turn.content}"


def _models_of(step: Step, ctx: RunContext, depth: int = 0) -> list[str]:
    """Every model `step` may call, named strategies followed (bounded, in case of a cycle)."""
    found = list(models_in(step))
    if depth < 8:
        for ref in _refs(step):
            named = ctx.strategies.get(ref)
            if named is not None:
                found.extend(_models_of(cast(Step, named), ctx, depth + 1))
    return list(dict.fromkeys(found))


def _refs(step: object) -> list[str]:
    if isinstance(step, StrategyRef):
        return [step.name]
    found: list[str] = []
    for value in getattr(step, "__dict__", {}).values():
        for item in value if isinstance(value, list) else [value]:
            if hasattr(item, "__dict__") and hasattr(item, "model_fields"):
                found.extend(_refs(item))
    return found


def _first_model(step: Step, ctx: RunContext) -> str | None:
    models = _models_of(step, ctx)
    return models[0] if models else None
