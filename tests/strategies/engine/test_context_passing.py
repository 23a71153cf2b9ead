"""Context passing: full, summary (cached in the session), extract, none — trimmed to the model's window."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import pytest

from chorus_mcp.strategies.core.completion import CompletionRequest, Message
from chorus_mcp.strategies.core.errors import ProviderServerError
from chorus_mcp.strategies.core.inputs import UNKNOWN_WINDOW, Attached, Input, InputNotSent
from chorus_mcp.strategies.core.result import Decision, NoteDecision
from chorus_mcp.strategies.core.spec import ModelStep, PipelineSpec
from chorus_mcp.strategies.engine.calling import with_inputs
from chorus_mcp.strategies.engine.context_passing import (
    ActiveSession,
    ContextPassing,
    approximate_tokens,
    bound,
    for_stage,
)
from chorus_mcp.strategies.engine.testing import context_of
from chorus_mcp.strategies.models.catalog import ModelEntry
from chorus_mcp.strategies.models.testing import ScriptedClient
from chorus_mcp.strategies.sessions.session import ContextSettings, Session, Turn, utc_now
from chorus_mcp.strategies.sessions.stores.memory import MemorySessionStore

pytestmark = pytest.mark.anyio

REQUEST = CompletionRequest.of("What now?", system="Be brief.")
STEP = ModelStep(model="m")


async def _session(store: MemorySessionStore, exchanges: int, size: int = 0) -> Session:
    session_id = await store.create()
    for i in range(exchanges):
        await store.append(
            session_id,
            [
                Turn(role="user", content=f"q{i} " + "x" * size, at=utc_now()),
                Turn(role="assistant", content=f"a{i} " + "y" * size, at=utc_now()),
            ],
        )
    session = await store.get(session_id)
    assert session is not None
    return session


def _shape(request: CompletionRequest) -> list[tuple[str, str]]:
    return [(m.role, m.content.split(" ")[0]) for m in request.messages]


def _notes(notes: Sequence[object]) -> str:
    return " | ".join(n.message for n in notes if isinstance(n, NoteDecision))


async def test_full_sends_every_turn_between_the_system_prompt_and_the_new_question() -> None:
    store = MemorySessionStore()
    session = await _session(store, 2)
    ctx = context_of(ScriptedClient("m", "ok"))

    built = await ContextPassing().build(session, REQUEST, "full", ModelStep(model="m"), ctx, store)

    assert _shape(built.request) == [
        ("system", "Be"),
        ("user", "q0"),
        ("assistant", "a0"),
        ("user", "q1"),
        ("assistant", "a1"),
        ("user", "What"),
    ]
    assert built.calls == [] and "full: 4 of 4 turn(s) verbatim" in _notes(built.notes)


async def test_none_sends_no_history() -> None:
    store = MemorySessionStore()
    session = await _session(store, 3)
    ctx = context_of(ScriptedClient("m", "ok"))

    built = await ContextPassing().build(session, REQUEST, "none", ModelStep(model="m"), ctx, store)

    assert built.request == REQUEST
    assert "6 earlier turn(s) not sent" in _notes(built.notes)


async def test_trimming_keeps_the_system_prompt_and_latest_turns_within_the_smallest_window() -> None:
    store = MemorySessionStore()
    session = await _session(store, 10, size=200)  # ~55 tokens a turn by the 4-characters rule
    ctx = context_of(ScriptedClient("small", "ok"), ScriptedClient("big", "ok"))
    settings = ContextSettings(windows={"small": 1024 + 300, "big": 100_000})
    spec = PipelineSpec.model_validate(
        {
            "stages": [
                {"name": "a", "prompt": "{input}", "step": "big"},
                {"name": "b", "prompt": "{a}", "step": "small"},
            ]
        }
    )

    built = await ContextPassing(settings).build(session, REQUEST, "full", spec, ctx, store)

    messages = built.request.messages
    assert approximate_tokens(ModelEntry(model="x"), messages) <= 300
    assert messages[0] == Message(role="system", content="Be brief.") and messages[-1].content == "What now?"
    history = _shape(built.request)[1:-1]
    assert history and history[0][0] == "user"  # an answer never goes without its question
    assert history[-2:] == [("user", "q9"), ("assistant", "a9")]  # the latest turns are the ones kept
    assert "older turn(s) left out to fit small's window (300 prompt tokens)" in _notes(built.notes)


async def test_a_real_token_counter_decides_what_fits() -> None:
    counted: list[int] = []

    def one_token_a_message(_entry: ModelEntry, messages: Sequence[Message]) -> int:
        counted.append(len(messages))
        return len(messages)

    store = MemorySessionStore()
    session = await _session(store, 5, size=10_000)
    ctx = context_of(ScriptedClient("m", "ok"))
    settings = ContextSettings(windows={"m": 1024 + 6})
    passing = ContextPassing(settings, count_tokens=one_token_a_message, blocking=True)

    built = await passing.build(session, REQUEST, "full", ModelStep(model="m"), ctx, store)

    # system + question = 2 tokens, so 4 one-token turns fit in 6, however long they are.
    roles = [role for role, _ in _shape(built.request)]
    assert roles == ["system", "user", "assistant", "user", "assistant", "user"]
    assert counted


async def test_summary_condenses_older_turns_once_caches_it_and_extends_it_as_the_session_grows() -> None:
    store = MemorySessionStore()
    session = await _session(store, 4)
    summariser = ScriptedClient("cheap", ["They discussed q0-q2.", "They discussed q0-q3."])
    worker = ScriptedClient("m", "ok")
    ctx = context_of(summariser, worker)
    passing = ContextPassing(ContextSettings(summary_model="cheap", keep_recent_turns=2))

    first = await passing.build(session, REQUEST, "summary", STEP, ctx, store)
    again = await passing.build(await store.get(session.id), REQUEST, "summary", STEP, ctx, store)

    assert [(m.role, m.content) for m in first.request.messages[:2]] == [
        ("system", "Be brief."),
        ("system", "Summary of the earlier conversation:\nThey discussed q0-q2."),
    ]
    assert _shape(first.request)[2:] == [("user", "q3"), ("assistant", "a3"), ("user", "What")]
    assert [(c.stage, c.cost_usd) for c in first.calls] == [("context/summary", Decimal("0.001"))]
    summarised = summariser.requests[0].messages[-1].content
    assert "User: q0" in summarised and "Assistant: a2" in summarised and "q3" not in summarised
    assert len(summariser.requests) == 1 and again.calls == [] and "(cached)" in _notes(again.notes)
    assert again.request == first.request

    await store.append(
        session.id,
        [
            Turn(role="user", content="q4", at=utc_now()),
            Turn(role="assistant", content="a4", at=utc_now()),
        ],
    )
    grown = await passing.build(await store.get(session.id), REQUEST, "summary", STEP, ctx, store)

    extension = summariser.requests[1].messages[-1].content
    assert extension.startswith("Earlier summary:\nThey discussed q0-q2.")
    assert "q3" in extension and "q0" not in extension.split("Conversation:")[1]
    assert "q0-q3" in grown.request.messages[1].content and "(extended)" in _notes(grown.notes)
    memo = (await store.get(session.id)).memos["summary"]  # type: ignore[union-attr]
    assert memo.through_seq == 7 and memo.model == "cheap"


async def test_extract_sends_the_key_facts_only() -> None:
    store = MemorySessionStore()
    session = await _session(store, 2)
    ctx = context_of(ScriptedClient("m", "- The user is in Paris."))

    built = await ContextPassing().build(session, REQUEST, "extract", ModelStep(model="m"), ctx, store)

    assert [(m.role, m.content) for m in built.request.messages] == [
        ("system", "Be brief."),
        ("system", "Key facts from the conversation so far:\n- The user is in Paris."),
        ("user", "What now?"),
    ]
    assert [c.stage for c in built.calls] == ["context/facts"]
    assert (await store.get(session.id)).memos["facts"].through_seq == 3  # type: ignore[union-attr]


async def test_when_no_summary_can_be_made_the_full_history_is_used_and_the_reason_noted() -> None:
    store = MemorySessionStore()
    session = await _session(store, 4)
    ctx = context_of(ScriptedClient("m", ProviderServerError("m", "HTTP 500", 500)))
    ctx.guard.retry.settings.max_attempts = 1

    built = await ContextPassing(ContextSettings(keep_recent_turns=2)).build(
        session, REQUEST, "summary", ModelStep(model="m"), ctx, store
    )

    assert len(built.request.messages) == 10
    assert built.calls and built.calls[0].status == "error"
    assert "no summary: m gave no answer; the full history is used" in _notes(built.notes)
    assert "summary" not in (await store.get(session.id)).memos  # type: ignore[union-attr]


async def test_a_pipeline_stage_may_choose_its_own_context() -> None:
    store = MemorySessionStore()
    session = await _session(store, 2)
    ctx = context_of(ScriptedClient("m", "ok"))
    call_request = CompletionRequest.of("task", system="S")
    full = await ContextPassing().build(session, call_request, "full", ModelStep(model="m"), ctx, store)
    with_history = full.request
    stage_request = with_history.model_copy(
        update={"messages": (*with_history.messages[:-1], Message(role="user", content="Plan: task"))}
    )
    active = ActiveSession(ContextPassing(), session, call_request, store)

    with bound(active):
        none = await for_stage(stage_request, "none", ModelStep(model="m"), ctx, "pipeline/plan")
        inherited = await for_stage(stage_request, None, ModelStep(model="m"), ctx, "pipeline/plan")
    unbound = await for_stage(stage_request, "none", ModelStep(model="m"), ctx, "pipeline/plan")

    assert [(m.role, m.content) for m in none.messages] == [("system", "S"), ("user", "Plan: task")]
    assert inherited == stage_request
    assert unbound == none
    assert [n.stage for n in active.notes] == ["pipeline/plan/context"]


def _attached(tokens: int) -> Attached:
    text = "word " * tokens
    item = Input(
        name="/project/spec.md",
        kind="text",
        mime_type="text/plain",
        sha256="ab" * 32,
        size_bytes=len(text),
        tokens=tokens,
        text=text,
    )
    return Attached(items=(item,))


async def test_history_is_trimmed_to_leave_the_attached_files_their_room_so_they_go_whole() -> None:
    store = MemorySessionStore()
    session = await _session(store, 20, size=1000)  # ~250 tokens a turn: the history alone fills the window
    ctx = context_of(ScriptedClient("m", "ok"))
    settings = ContextSettings(windows={"m": UNKNOWN_WINDOW})  # the window the files' fit assumes too
    request = REQUEST.model_copy(update={"inputs": _attached(3000)})

    built = await ContextPassing(settings).build(session, request, "full", STEP, ctx, store)

    history = _shape(built.request)[1:-1]
    assert history and history[-2:] == [("user", "q19"), ("assistant", "a19")]
    assert len(history) < 40
    notes = _notes(built.notes)
    assert f"older turn(s) left out to fit m's window ({UNKNOWN_WINDOW - 1024} prompt tokens, ~3,040" in notes
    decisions: list[Decision] = []
    sent = with_inputs(ctx, "m", built.request, "m", decisions)
    assert "word " * 3000 in sent.messages[-1].content  # whole, no excerpt
    assert "[cut by Chorus" not in sent.messages[-1].content and decisions == []


async def test_without_the_reservation_the_same_history_would_have_squeezed_the_file() -> None:
    store = MemorySessionStore()
    session = await _session(store, 20, size=1000)
    ctx = context_of(ScriptedClient("m", "ok"))
    settings = ContextSettings(windows={"m": UNKNOWN_WINDOW})

    # History fitted as if nothing were attached, then the file added: its share is what is left.
    built = await ContextPassing(settings).build(session, REQUEST, "full", STEP, ctx, store)
    decisions: list[Decision] = []
    late = built.request.model_copy(update={"inputs": _attached(3000)})
    with pytest.raises(InputNotSent):
        with_inputs(ctx, "m", late, "m", decisions)


async def test_when_history_and_files_cannot_both_fit_history_yields_first_and_the_result_says_so() -> None:
    store = MemorySessionStore()
    session = await _session(store, 5, size=400)
    ctx = context_of(ScriptedClient("m", "ok"))
    settings = ContextSettings(windows={"m": UNKNOWN_WINDOW})
    request = REQUEST.model_copy(update={"inputs": _attached(9000)})  # more than the whole window

    built = await ContextPassing(settings).build(session, request, "full", STEP, ctx, store)

    assert _shape(built.request) == [("system", "Be"), ("user", "What")]  # no history at all
    notes = _notes(built.notes)
    assert "full: 0 of 10 turn(s) verbatim; 10 older turn(s) left out" in notes
    assert "the attached files (~9,040 tokens) and the prompt need more than m's 7168" in notes
    assert "history yields first, and the files are cut to fit" in notes
    decisions: list[Decision] = []
    sent = with_inputs(ctx, "m", built.request, "m", decisions)
    assert "[cut by Chorus: /project/spec.md is 9,000 tokens" in sent.messages[-1].content
    (cut,) = [d.message for d in decisions if isinstance(d, NoteDecision)]
    assert cut.startswith("m: /project/spec.md is 9,000 tokens, more than its share")
