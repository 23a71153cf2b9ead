"""Spans of a run, straight through `run_strategy` (no MCP): tree, OpenInference attributes, decisions,
cancellation, privacy, secrets, and the usage ledger the instrumented client fills."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from chorus_mcp.strategies.core.completion import CompletionRequest
from chorus_mcp.strategies.core.errors import AuthenticationFailed, ProviderServerError, register_secret
from chorus_mcp.strategies.core.result import StrategyResult
from chorus_mcp.strategies.core.spec import (
    CascadeSpec,
    EnsembleSpec,
    ModelStep,
    PipelineSpec,
    RouteSpec,
    Step,
)
from chorus_mcp.strategies.engine.context import RunContext
from chorus_mcp.strategies.engine.reliability import CallGuard, ReliabilitySettings, RetrySettings
from chorus_mcp.strategies.engine.runner import run_strategy
from chorus_mcp.strategies.models.catalog import ModelCatalog, ModelEntry
from chorus_mcp.strategies.models.testing import ScriptedClient
from chorus_mcp.strategies.tracing import UsageLedger, instrument, instrumented
from chorus_mcp.strategies.tracing.attributes import set_capture_content
from chorus_mcp.strategies.tracing.settings import TracingSettings, export_target
from tests.tracing_support import attributes, captured_spans, children, one, roots, tree

pytestmark = pytest.mark.anyio

QUESTION = "Which planet is largest?\nA) Mars\nB) Jupiter\nC) Venus"
SECRET = "sk-tracing-test-0123456789abcdef"


@pytest.fixture(autouse=True)
def _content_captured() -> Iterator[None]:
    set_capture_content(True)
    yield
    set_capture_content(True)


def _context(
    *clients: ScriptedClient,
    ledger: UsageLedger | None = None,
    fallbacks: dict[str, list[str]] | None = None,
    models: dict[str, str] | None = None,
    retries: int = 1,
    deadline_s: float = 10.0,
    strategies: dict[str, Step] | None = None,
) -> RunContext:
    by_name = {c.name: c for c in clients}
    entries = {
        name: ModelEntry(
            model=(models or {}).get(name, f"fake/{name}"), fallbacks=(fallbacks or {}).get(name, [])
        )
        for name in by_name
    }
    catalog = ModelCatalog(
        entries, instrument(lambda name, _entry: by_name[name], ledger), allow_unlisted=False
    )
    guard = CallGuard(ReliabilitySettings(retry=RetrySettings(max_attempts=retries, base_delay_s=0.0)))
    return RunContext.starting_now(catalog, deadline_s, guard=guard, strategies=strategies or {})


async def _traced(
    step: Step, ctx: RunContext, prompt: str = QUESTION, session_id: str | None = None
) -> tuple[StrategyResult, list[ReadableSpan], ReadableSpan]:
    with captured_spans() as exporter:
        result = await run_strategy(step, CompletionRequest.of(prompt), ctx, session_id=session_id)
    spans = list(exporter.get_finished_spans())
    root = [s for s in spans if s.name.startswith("chorus ")]
    assert len(root) == 1, [s.name for s in spans]
    return result, spans, root[0]


async def test_an_early_stopped_ensemble_is_one_trace_with_its_cancelled_member_and_the_vote() -> None:
    clients = [
        ScriptedClient("a", "B"),
        ScriptedClient("b", "The answer is (B)."),
        ScriptedClient("c", "C", delay_s=2.0),
    ]
    spec = EnsembleSpec(members=["a", "b", "c"], extract="choice")

    result, spans, root = await _traced(spec, _context(*clients), session_id="s-1")

    assert result.ok and result.answer == "B"
    assert tree(spans, root, by_name=True) == [
        "chorus ensemble [AGENT]",
        "  member-1 [CHAIN]",
        "    llm a [LLM]",
        "  member-2 [CHAIN]",
        "    llm b [LLM]",
        "  member-3 [CHAIN]",
        "    llm c (cancelled) [LLM]",
        "  vote decision [CHAIN]",
    ]
    assert {s.context.trace_id for s in spans} == {root.context.trace_id}
    assert attributes(root) == {
        "openinference.span.kind": "AGENT",
        "chorus.strategy": "ensemble",
        "chorus.step": "ensemble",
        "chorus.stage": "ensemble",
        "session.id": "s-1",
        "input.value": QUESTION,
        "input.mime_type": "text/plain",
        "output.value": "B",
        "output.mime_type": "text/plain",
        "chorus.ok": True,
        "chorus.partial": False,
        "chorus.totals.calls": 3,
        "chorus.totals.prompt_tokens": 20,
        "chorus.totals.completion_tokens": 5,
        "chorus.totals.cost_usd": 0.002,
        "chorus.totals.cost_complete": True,
        "chorus.totals.latency_s": pytest.approx(result.totals.latency_s, abs=1e-3),
    }
    assert root.status.status_code == StatusCode.OK
    # The member cut off by the early stop: cancelled, not an error, on its step and on its call.
    cut = one(spans, "member-3")
    assert attributes(cut)["chorus.status"] == "cancelled" and cut.status.status_code == StatusCode.UNSET
    llm_c = one(spans, "llm c (cancelled)")
    assert attributes(llm_c)["chorus.call.status"] == "cancelled" and attributes(llm_c)["chorus.cancelled"]
    assert llm_c.status.status_code == StatusCode.UNSET and "llm.token_count.total" not in attributes(llm_c)
    vote = attributes(one(spans, "vote decision"))
    assert vote == {
        "openinference.span.kind": "CHAIN",
        "chorus.decision": "vote",
        "chorus.stage": "ensemble",
        "chorus.vote.mode": "majority",
        "chorus.vote.agreement": 1.0,
        "chorus.vote.consensus": True,
        "chorus.vote.early_stop": True,
        "chorus.vote.answers": 1,
        "chorus.vote.counts": '{"B": 2.0}',
        "chorus.vote.winner": "B",
        "output.value": "B",
        "output.mime_type": "text/plain",
    }


async def test_an_llm_span_carries_the_openinference_attributes_phoenix_reads() -> None:
    client = ScriptedClient("fast", "Jupiter is the largest.", cost_usd=Decimal("0.00042"))
    ctx = _context(client, models={"fast": "openai/gpt-4.1-mini"})
    step = ModelStep(model="fast", system="Be brief.", max_tokens=50, temperature=0.2)

    _, spans, root = await _traced(step, ctx)

    assert tree(spans, root) == ["chorus model [AGENT]", "  llm fast [LLM]"]
    llm = one(spans, "llm fast")
    found = attributes(llm)
    params = json.loads(str(found.pop("llm.invocation_parameters")))
    assert params["max_tokens"] == 50 and params["temperature"] == 0.2 and params["timeout_s"] > 0
    assert found == {
        "openinference.span.kind": "LLM",
        # The configured model (what Chorus and Phoenix price the call by); what answered, as the provider
        # named it, is the response's (the fake says its alias).
        "llm.model_name": "gpt-4.1-mini",
        "llm.request.model_name": "gpt-4.1-mini",
        "llm.response.model_name": "fast",
        "llm.provider": "openai",
        "chorus.model": "fast",
        "chorus.model_id": "openai/gpt-4.1-mini",
        "llm.input_messages.0.message.role": "system",
        "llm.input_messages.0.message.content": "Be brief.",
        "llm.input_messages.1.message.role": "user",
        "llm.input_messages.1.message.content": QUESTION,
        "input.value": QUESTION,
        "input.mime_type": "text/plain",
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.content": "Jupiter is the largest.",
        "output.value": "Jupiter is the largest.",
        "output.mime_type": "text/plain",
        "llm.token_count.prompt": 10,
        "llm.token_count.completion": 4,
        "llm.token_count.total": 14,
        "llm.finish_reason": "stop",
        "llm.cost.total": 0.00042,
        "chorus.cost_usd": 0.00042,
        "chorus.cost_known": True,
        "chorus.call.status": "ok",
        "chorus.cached": False,
        "chorus.latency_s": 0.0,
    }
    assert llm.status.status_code == StatusCode.OK
    assert llm.parent is not None and llm.parent.span_id == root.context.span_id


async def test_an_unknown_price_is_left_out_of_the_spans_never_reported_as_zero() -> None:
    client = ScriptedClient("local", "B", cost_usd=None)

    result, spans, root = await _traced(ModelStep(model="local"), _context(client))

    assert result.totals.cost_usd is None and not result.totals.cost_complete
    llm = attributes(one(spans, "llm local"))
    assert llm["chorus.cost_known"] is False and "chorus.cost_usd" not in llm and "llm.cost.total" not in llm
    assert "chorus.totals.cost_usd" not in attributes(root)
    assert attributes(root)["chorus.totals.cost_complete"] is False


async def test_a_failed_model_and_the_fallback_taken_are_spans_in_the_order_they_happened() -> None:
    broken = ScriptedClient("broken", AuthenticationFailed("broken", f"HTTP 401: bad key {SECRET}"))
    strong = ScriptedClient("strong", "B")
    ctx = _context(broken, strong, fallbacks={"broken": ["strong"]})
    register_secret(SECRET)

    result, spans, root = await _traced(EnsembleSpec(members=["broken"]), ctx)

    assert result.ok and [c.status for c in result.calls] == ["error", "ok"]
    assert tree(spans, root) == [
        "chorus ensemble [AGENT]",
        "  member-1 [CHAIN]",
        "    llm broken [LLM]",
        "    fallback decision [CHAIN]",
        "    llm strong [LLM]",
        "  vote decision [CHAIN]",
    ]
    failed = one(spans, "llm broken")
    assert failed.status.status_code == StatusCode.ERROR
    assert attributes(failed)["chorus.call.status"] == "error"
    assert attributes(failed)["error.type"] == "AuthenticationFailed"
    assert attributes(failed)["chorus.error"] == "broken: HTTP 401: bad key [REDACTED]"
    fallback = one(spans, "fallback decision")
    assert attributes(fallback) == {
        "openinference.span.kind": "CHAIN",
        "chorus.decision": "fallback",
        "chorus.stage": "ensemble/member-1",
        "chorus.fallback.from": "broken",
        "chorus.fallback.to": "strong",
        "chorus.reason": "broken: HTTP 401: bad key [REDACTED]",
    }
    # Placed at the failure: after the failed call ended, before the fallback call started.
    llm_strong = one(spans, "llm strong")
    assert (
        failed.end_time is not None and fallback.start_time is not None and llm_strong.start_time is not None
    )
    assert failed.end_time <= fallback.start_time <= llm_strong.start_time
    # The member answered through its fallback: the step is fine, only the failed call is an error.
    assert one(spans, "member-1").status.status_code == StatusCode.OK


async def test_every_retried_attempt_is_its_own_llm_span() -> None:
    flaky = ScriptedClient("flaky", [ProviderServerError("flaky", "HTTP 503", 503), "B"])

    result, spans, _ = await _traced(ModelStep(model="flaky"), _context(flaky, retries=2))

    assert result.ok
    attempts = [s for s in spans if s.name == "llm flaky"]
    assert [
        attributes(s)["chorus.call.status"] for s in sorted(attempts, key=lambda s: s.start_time or 0)
    ] == [
        "error",
        "ok",
    ]


async def test_a_route_decision_spans_the_classifier_call_and_ends_where_the_target_starts() -> None:
    classifier = ScriptedClient("classifier", "math")
    solver = ScriptedClient("solver", "42")
    writer = ScriptedClient("writer", "prose")
    spec = RouteSpec.model_validate(
        {
            "kind": "route",
            "classifier": "classifier",
            "default": "prose",
            "routes": [
                {"name": "math", "description": "arithmetic", "target": "solver"},
                {"name": "prose", "description": "writing", "target": "writer"},
            ],
        }
    )

    result, spans, root = await _traced(spec, _context(classifier, solver, writer), prompt="What is 6 x 7?")

    assert result.answer == "42"
    assert tree(spans, root) == [
        "chorus route [AGENT]",
        "  route decision [CHAIN]",
        "  llm classifier [LLM]",
        "  math [CHAIN]",
        "    llm solver [LLM]",
    ]
    decision = one(spans, "route decision")
    assert attributes(decision) == {
        "openinference.span.kind": "CHAIN",
        "chorus.decision": "route",
        "chorus.stage": "route",
        "chorus.route": "math",
        "chorus.route.method": "classifier",
        "chorus.reason": "classifier chose 'math'",
        "output.value": "math",
        "output.mime_type": "text/plain",
    }
    call, target = one(spans, "llm classifier"), one(spans, "math")
    assert decision.start_time is not None and decision.end_time is not None and call.start_time is not None
    assert call.end_time is not None and target.start_time is not None
    assert decision.start_time <= call.start_time and call.end_time <= decision.end_time <= target.start_time


async def test_a_named_strategy_has_its_own_span_and_a_route_to_it_ends_where_it_starts() -> None:
    clients = [ScriptedClient("a", "B"), ScriptedClient("b", "B")]
    named: dict[str, Step] = {"vote": EnsembleSpec(members=["a", "b"], early_stop=False)}
    spec = RouteSpec.model_validate(
        {
            "kind": "route",
            "default": "science",
            "routes": [{"name": "science", "target": {"kind": "strategy", "name": "vote"}}],
        }
    )

    _, spans, root = await _traced(spec, _context(*clients, strategies=named))

    assert tree(spans, root, by_name=True) == [
        "chorus route [AGENT]",
        "  route decision [CHAIN]",
        "  science [CHAIN]",
        "    vote [CHAIN]",
        "      member-1 [CHAIN]",
        "        llm a [LLM]",
        "      member-2 [CHAIN]",
        "        llm b [LLM]",
        "      vote decision [CHAIN]",
    ]
    reference = one(spans, "science")
    assert (
        attributes(reference)["chorus.step"] == "strategy"
        and attributes(reference)["chorus.strategy"] == "vote"
    )
    assert attributes(one(spans, "vote"))["chorus.stage"] == "route/science/vote"
    assert one(spans, "route decision").end_time == reference.start_time


async def test_a_cascade_shows_each_tiers_confidence_and_whether_it_escalated() -> None:
    cheap = ScriptedClient("cheap", "B\nConfidence: 40%")
    strong = ScriptedClient("strong", "C\nConfidence: 95%")
    spec = CascadeSpec(tiers=["cheap", "strong"], threshold=0.8)

    _, spans, root = await _traced(spec, _context(cheap, strong))

    assert tree(spans, root) == [
        "chorus cascade [AGENT]",
        "  tier-1 [CHAIN]",
        "    llm cheap [LLM]",
        "  confidence decision [CHAIN]",
        "  tier-2 [CHAIN]",
        "    llm strong [LLM]",
        "  confidence decision [CHAIN]",
    ]
    first = attributes(one(spans, "confidence decision", chorus__stage="cascade/tier-1"))
    assert first == {
        "openinference.span.kind": "CHAIN",
        "chorus.decision": "confidence",
        "chorus.stage": "cascade/tier-1",
        "chorus.confidence.model": "cheap",
        "chorus.confidence.estimator": "self_report",
        "chorus.confidence": 0.4,
        "chorus.confidence.threshold": 0.8,
        "chorus.escalate": True,
        "chorus.reason": "confidence 0.40 < 0.80, escalating",
        "output.value": "escalate",
        "output.mime_type": "text/plain",
    }
    second = attributes(one(spans, "confidence decision", chorus__stage="cascade/tier-2"))
    assert second["chorus.escalate"] is False and second["output.value"] == "accept"


async def test_a_decision_made_inside_a_nested_strategy_is_shown_once_under_its_own_step() -> None:
    clients = [ScriptedClient("a", "B\nConfidence: 90%"), ScriptedClient("b", "B"), ScriptedClient("c", "B")]
    nested = CascadeSpec(tiers=["a"], threshold=0.5)
    spec = EnsembleSpec(members=[nested, "b", "c"], early_stop=False)

    _, spans, root = await _traced(spec, _context(*clients))

    assert tree(spans, root, by_name=True) == [
        "chorus ensemble [AGENT]",
        "  member-1 [CHAIN]",
        "    confidence decision [CHAIN]",
        "    tier-1 [CHAIN]",
        "      llm a [LLM]",
        "  member-2 [CHAIN]",
        "    llm b [LLM]",
        "  member-3 [CHAIN]",
        "    llm c [LLM]",
        "  vote decision [CHAIN]",
    ]
    assert attributes(one(spans, "member-1"))["chorus.step"] == "cascade"


async def test_a_pipeline_shows_each_stage_and_every_review_verdict() -> None:
    writer = ScriptedClient("writer", ["draft one", "draft two"])
    reviewer = ScriptedClient(
        "reviewer", ['{"approved": false, "issues": ["too short"]}', '{"approved": true}']
    )
    spec = PipelineSpec.model_validate(
        {
            "kind": "pipeline",
            "stages": [
                {"name": "write", "prompt": "Write: {input}", "step": "writer"},
                {"name": "review", "prompt": "Review: {write}", "step": "reviewer", "review": True},
            ],
            "refine": {"stage": "write", "prompt": "Fix {issues} in {write}", "max_iterations": 1},
        }
    )

    result, spans, root = await _traced(spec, _context(writer, reviewer), prompt="a haiku")

    assert result.answer == "draft two"
    assert tree(spans, root) == [
        "chorus pipeline [AGENT]",
        "  write [CHAIN]",
        "    llm writer [LLM]",
        "  review [CHAIN]",
        "    llm reviewer [LLM]",
        "  review decision [CHAIN]",
        "  write#2 [CHAIN]",
        "    llm writer [LLM]",
        "  review#2 [CHAIN]",
        "    llm reviewer [LLM]",
        "  review decision [CHAIN]",
    ]
    first = attributes(one(spans, "review decision", chorus__stage="pipeline/review"))
    assert first["chorus.review.approved"] is False and first["chorus.review.issues"] == ("too short",)
    assert attributes(one(spans, "write#2"))["input.value"].startswith("Fix - too short in draft one")


async def test_with_content_capture_off_no_prompt_or_answer_text_reaches_a_span() -> None:
    set_capture_content(False)
    writer = ScriptedClient("writer", "a private answer")
    reviewer = ScriptedClient("reviewer", '{"approved": false, "issues": ["private issue"]}')
    spec = PipelineSpec.model_validate(
        {
            "kind": "pipeline",
            "stages": [
                {"name": "write", "prompt": "Write: {input}", "step": "writer"},
                {"name": "review", "prompt": "Review: {write}", "step": "reviewer", "review": True},
            ],
        }
    )
    vote = EnsembleSpec(members=["writer", "writer"], early_stop=False)

    _, spans, _ = await _traced(spec, _context(writer, reviewer), prompt="a private prompt")
    _, vote_spans, _ = await _traced(vote, _context(writer), prompt="a private prompt")

    for span in [*spans, *vote_spans]:
        for key, value in attributes(span).items():
            assert "private" not in str(value), (span.name, key)
            assert not key.startswith(("llm.input_messages", "llm.output_messages", "input."))
            # A decision's outcome (accept, approved, a route's name) is not content; answers are.
            assert not key.startswith("output.") or span.name.endswith(" decision"), (span.name, key)
    llm = attributes(one(spans, "llm writer"))
    assert llm["llm.token_count.total"] == 13 and llm["chorus.cost_usd"] == 0.001


async def test_no_api_key_or_bearer_token_appears_in_any_span_attribute_or_event() -> None:
    register_secret(SECRET)
    leaky = ScriptedClient(
        "leaky", ProviderServerError("leaky", f"HTTP 500 echoing Authorization: Bearer {SECRET}")
    )
    echo = ScriptedClient("echo", f"you said {SECRET} and Bearer abcdefgh12345678")
    spec = EnsembleSpec(members=["leaky", "echo"], early_stop=False, extract="text")
    prompt = f"my key is {SECRET}; header Bearer abcdefgh12345678; other key sk-live-abcdefghijklmnop"

    _, spans, _ = await _traced(spec, _context(leaky, echo), prompt=prompt)

    texts: list[str] = []
    for span in spans:
        texts.extend(str(v) for v in attributes(span).values())
        texts.extend(str(v) for event in span.events for v in (event.attributes or {}).values())
        texts.append(span.status.description or "")
    joined = "\n".join(texts)
    assert "[REDACTED]" in joined  # the text was there, without the secrets
    for secret in (SECRET, "abcdefgh12345678", "sk-live-abcdefghijklmnop"):
        assert secret not in joined


async def test_the_usage_ledger_counts_by_model_and_session_and_keeps_unknown_prices_unknown() -> None:
    ledger = UsageLedger()
    priced = ScriptedClient("priced", "B", cost_usd=Decimal("0.25"))
    unpriced = ScriptedClient("unpriced", "B", cost_usd=None)
    broken = ScriptedClient("broken", AuthenticationFailed("broken", "HTTP 401"))
    ctx = _context(priced, unpriced, broken, ledger=ledger)
    spec = EnsembleSpec(members=["priced", "unpriced", "broken"], early_stop=False)

    await run_strategy(spec, CompletionRequest.of(QUESTION), ctx, session_id="s-1")
    await run_strategy(ModelStep(model="priced"), CompletionRequest.of(QUESTION), ctx, session_id="s-2")
    only_unpriced = UsageLedger()
    await run_strategy(
        ModelStep(model="unpriced"), CompletionRequest.of(QUESTION), _context(unpriced, ledger=only_unpriced)
    )

    summary = ledger.summary()
    assert summary.totals.calls == 4 and summary.totals.ok == 3 and summary.totals.failed == 1
    assert summary.totals.cost_usd == Decimal("0.50") and not summary.totals.cost_complete
    assert summary.totals.unpriced_calls == 1
    assert summary.models["priced"].calls == 2 and summary.models["priced"].cost_usd == Decimal("0.50")
    assert summary.models["priced"].model == "fake/priced"
    assert summary.models["unpriced"].cost_usd is None and summary.models["unpriced"].unpriced_calls == 1
    assert summary.models["broken"].failed == 1 and summary.models["broken"].cost_usd == Decimal(0)
    assert list(summary.sessions) == ["s-2", "s-1"]  # newest first
    assert summary.sessions["s-1"].calls == 3 and summary.sessions["s-1"].cost_usd == Decimal("0.25")
    assert ledger.session("s-2") is not None and ledger.session("nope") is None
    assert only_unpriced.summary().totals.cost_usd is None  # never a made-up 0


def test_the_ledger_keeps_only_the_most_recent_sessions() -> None:
    ledger = UsageLedger(max_sessions=2)
    for session in ("a", "b", "c"):
        ledger.record("m", "fake/m", "error", None, session)
    assert list(ledger.summary().sessions) == ["c", "b"]


def test_the_instrumented_client_keeps_exactly_the_capabilities_of_the_client_it_wraps() -> None:
    from chorus_mcp.strategies.models.client import CostEstimator, WarmsUp

    class Both(ScriptedClient):
        async def ready(self) -> None:
            pass

        def estimate_cost_usd(self, request: CompletionRequest) -> Decimal | None:
            return Decimal(1)

    entry = ModelEntry(model="fake/x")
    plain = instrumented(ScriptedClient("x", "B"), entry)
    both = instrumented(Both("x", "B"), entry)
    assert not isinstance(plain, WarmsUp) and not isinstance(plain, CostEstimator)
    assert isinstance(both, WarmsUp) and isinstance(both, CostEstimator)
    assert both.name == "x" and plain.requests == []  # other attributes are the wrapped client's


def test_the_export_target_follows_config_then_the_standard_variables() -> None:
    off = TracingSettings()
    assert export_target(off, env={}) is None
    assert (
        export_target(off, env={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}) == "http://c:4318/v1/traces"
    )
    assert export_target(off, env={"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c/x"}) == "http://c/x"
    configured = TracingSettings(endpoint="http://127.0.0.1:6006/")
    assert export_target(configured, env={}) == "http://127.0.0.1:6006/v1/traces"
    assert export_target(configured, env={"OTEL_SDK_DISABLED": "true"}) is None
    assert export_target(configured.model_copy(update={"enabled": False}), env={}) is None
    assert export_target(TracingSettings(enabled=True), env={}) == "http://localhost:4318/v1/traces"


def test_spans_nest_under_the_current_span_so_the_mcp_servers_span_is_the_parent() -> None:
    # The runner opens its spans as children of whatever span is current (the MCP SDK's tools/call).
    import anyio
    from opentelemetry import trace

    async def main() -> tuple[list[ReadableSpan], ReadableSpan]:
        with captured_spans() as exporter:
            with trace.get_tracer("test").start_as_current_span("tools/call ensemble_vote") as outer:
                await run_strategy(
                    ModelStep(model="a"), CompletionRequest.of("q"), _context(ScriptedClient("a", "B"))
                )
            assert outer is not None
        spans = list(exporter.get_finished_spans())
        return spans, roots(spans, "tools/call ensemble_vote")[0]

    spans, outer = anyio.run(main)
    assert [s.name for s in children(spans, outer)] == ["chorus model"]


@pytest.mark.parametrize(
    ("cost", "split"),
    [(Decimal("0.001"), (0.0005, 0.0005)), (Decimal("0.002"), None)],
    ids=["the list price", "a long-context tier's price"],
)
async def test_an_llm_spans_cost_is_split_into_prompt_and_completion_when_the_rates_add_up_to_it(
    cost: Decimal, split: tuple[float, float] | None
) -> None:
    entry = ModelEntry(model="openai/m", input_cost_per_mtok=Decimal(50), output_cost_per_mtok=Decimal(125))
    client = instrumented(ScriptedClient("m", "Jupiter is the largest.", cost_usd=cost), entry)

    with captured_spans() as exporter:
        await client.complete(CompletionRequest.of(QUESTION))

    found = attributes(one(list(exporter.get_finished_spans()), "llm m"))
    assert found["llm.cost.total"] == float(cost)
    assert (found["llm.token_count.prompt"], found["llm.token_count.completion"]) == (10, 4)
    if split is None:  # 10 x 50 + 4 x 125 per million is not what this call cost: no split is made up
        assert "llm.cost.prompt" not in found and "llm.cost.completion" not in found
    else:
        assert (found["llm.cost.prompt"], found["llm.cost.completion"]) == split
