"""Traces of real tool calls through an MCP client session: one trace per call, under the MCP SDK's own
`tools/call` span, with the exact span tree of each tool; usage resources; structured logs without
secrets; tracing off costs nothing; export over real OTLP/HTTP."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.types import TextResourceContents
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from chorus_mcp.config.schema import ChorusConfig
from chorus_mcp.server.app import build_server
from chorus_mcp.server.ops.logs import setup_logging
from chorus_mcp.strategies.core.errors import AuthenticationFailed, register_secret
from chorus_mcp.strategies.models.testing import ScriptedClient
from chorus_mcp.strategies.tracing.attributes import set_capture_content
from tests.tracing_support import attributes, captured_spans, one, otlp_collector, tree

pytestmark = pytest.mark.anyio

REPO = Path(__file__).resolve().parents[2]
SECRET = "sk-chorus-trace-0123456789abcdef"


def _factory(*clients: ScriptedClient) -> Any:
    by_name = {c.name: c for c in clients}
    return lambda alias, _entry: by_name[alias]


@pytest.fixture
def clients() -> dict[str, ScriptedClient]:
    return {
        "cheap": ScriptedClient("cheap", "The answer is (B)."),
        "mid": ScriptedClient("mid", "B"),
        "strong": ScriptedClient(
            "strong", "The answer is C.", delay_s=1.0
        ),  # cut by the early stop, even on a loaded machine,
        "coder": ScriptedClient("coder", "def f(): pass"),
        "broken": ScriptedClient("broken", AuthenticationFailed("broken", f"HTTP 401: key {SECRET} refused")),
    }


async def _call(
    config: ChorusConfig,
    clients: dict[str, ScriptedClient],
    tool: str,
    arguments: dict[str, Any],
    mode: str = "auto",
) -> tuple[Any, list[ReadableSpan], ReadableSpan]:
    """Call `tool` through a real client session; the finished spans and the tool call's MCP span."""
    server = build_server(config, _factory(*clients.values()))
    with captured_spans() as exporter:
        async with Client(server, mode=mode) as client:  # type: ignore[arg-type]
            result = await client.call_tool(tool, arguments)
    spans = list(exporter.get_finished_spans())
    calls = [s for s in spans if s.name == f"tools/call {tool}"]
    assert len(calls) == 1, [s.name for s in spans]
    return result, spans, calls[0]


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_ensemble_vote_is_one_trace_under_the_mcp_tools_call_span(
    server_config: ChorusConfig, clients: dict[str, ScriptedClient], mode: str
) -> None:
    result, spans, call = await _call(
        server_config, clients, "ensemble_vote", {"prompt": "Which? A) x B) y C) z"}, mode
    )

    assert not result.is_error
    assert tree(spans, call, by_name=True) == [
        "tools/call ensemble_vote [TOOL]",
        "  chorus ensemble [AGENT]",
        "    member-1 [CHAIN]",
        "      llm cheap [LLM]",
        "    member-2 [CHAIN]",
        "      llm mid [LLM]",
        "    member-3 [CHAIN]",
        "      llm strong (cancelled) [LLM]",
        "    vote decision [CHAIN]",
    ]
    # Nothing else in the trace but, when the client propagates its context, the client's own span.
    in_trace = [s for s in spans if s.context.trace_id == call.context.trace_id]
    outside = [s.name for s in in_trace if s.name.startswith("MCP send")]
    assert len(in_trace) == 9 + len(outside) and outside in ([], ["MCP send tools/call ensemble_vote"])
    root = one(spans, "chorus ensemble")
    session_id = result.structured_content["session_id"]
    assert attributes(root)["session.id"] == session_id
    assert attributes(root)["chorus.totals.calls"] == 3
    assert attributes(root)["chorus.totals.cost_usd"] == 0.002
    # Early stop: the third member was cancelled once two agreed, and the vote says so.
    cancelled = one(spans, "llm strong (cancelled)")
    assert (
        attributes(cancelled)["chorus.call.status"] == "cancelled"
        and attributes(cancelled)["chorus.cancelled"]
    )
    assert cancelled.status.status_code == StatusCode.UNSET  # not an error, not an answer
    assert attributes(one(spans, "vote decision"))["chorus.vote.early_stop"] is True
    assert attributes(one(spans, "llm cheap"))["llm.token_count.total"] == 14


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_the_tool_call_span_at_the_root_carries_prompt_answer_status_and_the_results_totals(
    server_config: ChorusConfig, clients: dict[str, ScriptedClient], mode: str
) -> None:
    result, _, call = await _call(
        server_config, clients, "ensemble_vote", {"prompt": "Which? A) x B) y C) z"}, mode
    )

    assert not result.is_error
    root = attributes(call)
    assert call.status.status_code == StatusCode.OK
    assert root["openinference.span.kind"] == "TOOL" and root["tool.name"] == "ensemble_vote"
    assert root["input.value"] == "Which? A) x B) y C) z" and root["input.mime_type"] == "text/plain"
    assert root["output.value"] == result.structured_content["answer"] == "B"
    totals = result.structured_content["totals"]
    assert root["chorus.ok"] is True and root["chorus.strategy"] == "ensemble"
    assert root["chorus.totals.cost_usd"] == float(totals["cost_usd"]) == 0.002
    assert root["chorus.totals.calls"] == totals["calls"] == 3
    assert root["chorus.session_id"] == result.structured_content["session_id"]


async def test_a_failed_tool_call_span_is_an_error_whose_output_says_why(
    server_config: ChorusConfig, clients: dict[str, ScriptedClient]
) -> None:
    register_secret(SECRET)
    clients["strong"] = ScriptedClient(
        "strong", AuthenticationFailed("strong", f"HTTP 401: key {SECRET} refused")
    )
    result, _, call = await _call(
        server_config, clients, "ensemble_vote", {"prompt": "Which?", "models": ["broken", "strong"]}
    )

    assert result.is_error
    root = attributes(call)
    assert call.status.status_code == StatusCode.ERROR
    assert root["chorus.ok"] is False
    assert root["output.value"] == root["chorus.error"] == result.structured_content["error"]
    assert "refused" in root["chorus.error"] and SECRET not in str(root)


async def test_a_refused_tool_call_is_an_error_span_with_its_arguments_as_input(
    server_config: ChorusConfig, clients: dict[str, ScriptedClient]
) -> None:
    result, _, call = await _call(server_config, clients, "ensemble_vote", {"prompt": "   "})

    assert result.is_error
    root = attributes(call)
    assert call.status.status_code == StatusCode.ERROR
    assert root["chorus.ok"] is False and "prompt" in root["chorus.error"]
    assert root["input.value"] == "   "


async def test_without_content_capture_the_tool_call_span_keeps_status_and_totals_but_no_text(
    server_config: ChorusConfig, clients: dict[str, ScriptedClient]
) -> None:
    config = server_config.model_copy(
        update={"tracing": server_config.tracing.model_copy(update={"capture_content": False})}
    )
    try:
        _, _, call = await _call(config, clients, "ensemble_vote", {"prompt": "Which? A) x B) y C) z"})
    finally:
        set_capture_content(True)

    root = attributes(call)
    assert call.status.status_code == StatusCode.OK
    assert "input.value" not in root and "output.value" not in root
    assert root["chorus.totals.cost_usd"] == 0.002


async def test_an_llm_spans_invocation_parameters_are_the_settings_the_provider_was_sent(
    server_config: ChorusConfig, clients: dict[str, ScriptedClient]
) -> None:
    from chorus_mcp.config.loader import parse_config

    config = parse_config(
        """
models: {coder: {model: fake/coder}}
allow_unlisted_models: false
strategies:
  ensemble:
    kind: ensemble
    early_stop: false
    members:
      - {kind: model, model: coder, max_tokens: 4000, temperature: 0.3}
      - {kind: model, model: coder, max_tokens: 4000, temperature: 0.3}
limits: {max_output_tokens: 100}
""",
        env={},
    )
    _, spans, _ = await _call(config, clients, "ensemble_vote", {"prompt": "Which? A) x B) y"})

    # One model in two seats: the second is sampled with a seed of its own (self-consistency).
    sent = {r.seed: r for r in clients["coder"].requests}
    assert None in sent and len(sent) == 2  # the copy's seed: `ensemble.sample_seed`
    for span in [s for s in spans if s.name == "llm coder"]:
        params = json.loads(attributes(span)["llm.invocation_parameters"])
        request = sent[params.get("seed")]
        assert params == {
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            **({"seed": request.seed} if request.seed is not None else {}),
            "timeout_s": pytest.approx(request.timeout_s, abs=0.01),
        }
        assert params["max_tokens"] == 100 and params["temperature"] == 0.3  # the server's cap, as sent


async def test_a_cache_hit_is_marked_in_its_spans_name_and_attributes_and_prices_nothing(
    server_config: ChorusConfig, clients: dict[str, ScriptedClient]
) -> None:
    server = build_server(server_config, _factory(*clients.values()))
    with captured_spans() as exporter:
        async with Client(server) as client:
            for _ in range(2):
                await client.call_tool("route_specialist", {"prompt": "Write python to add"})
    spans = list(exporter.get_finished_spans())

    sent, hit = one(spans, "llm coder"), one(spans, "llm coder (cached)")
    assert attributes(sent)["chorus.call.status"] == "ok" and attributes(sent)["chorus.cached"] is False
    found = attributes(hit)
    assert found["chorus.call.status"] == "cached" and found["chorus.cached"] is True
    assert found["chorus.cache"] == "hit" and hit.status.status_code == StatusCode.OK
    assert not any(key.startswith("llm.token_count") for key in found)  # nothing sent: nothing to price
    assert len(clients["coder"].requests) == 1


async def test_a_failed_model_and_its_fallback_show_in_the_trace(
    server_config: ChorusConfig, clients: dict[str, ScriptedClient]
) -> None:
    register_secret(SECRET)
    clients["mid"] = ScriptedClient("mid", "C")  # agrees with the fallback (strong): no tie
    result, spans, call = await _call(
        server_config,
        clients,
        "ensemble_vote",
        {"prompt": "Which? A) x B) y C) z", "models": ["broken", "mid"]},
    )

    assert not result.is_error
    assert tree(spans, call, by_name=True) == [
        "tools/call ensemble_vote [TOOL]",
        "  chorus ensemble [AGENT]",
        "    member-1 [CHAIN]",
        "      fallback decision [CHAIN]",
        "      llm broken [LLM]",
        "      llm strong [LLM]",
        "    member-2 [CHAIN]",
        "      llm mid [LLM]",
        "    vote decision [CHAIN]",
    ]
    failed = one(spans, "llm broken")
    assert failed.status.status_code == StatusCode.ERROR
    assert attributes(failed)["chorus.error"] == "broken: HTTP 401: key [REDACTED] refused"
    assert attributes(one(spans, "fallback decision"))["chorus.fallback.to"] == "strong"


async def test_cascade_ask_shows_each_tier_and_its_confidence_decision(
    server_config: ChorusConfig, clients: dict[str, ScriptedClient]
) -> None:
    _, spans, call = await _call(server_config, clients, "cascade_ask", {"prompt": "What is 2+2?"})

    assert tree(spans, call) == [
        "tools/call cascade_ask [TOOL]",
        "  chorus cascade [AGENT]",
        "    tier-1 [CHAIN]",
        "      llm cheap [LLM]",
        "    confidence decision [CHAIN]",
        "    tier-2 [CHAIN]",
        "      llm strong [LLM]",
        "    confidence decision [CHAIN]",
    ]
    escalated = attributes(one(spans, "confidence decision", chorus__stage="cascade/tier-1"))
    assert escalated["chorus.escalate"] is True and escalated["chorus.confidence.threshold"] == 0.8


async def test_route_specialist_shows_the_route_decision_before_the_specialist(
    server_config: ChorusConfig, clients: dict[str, ScriptedClient]
) -> None:
    _, spans, call = await _call(
        server_config, clients, "route_specialist", {"prompt": "Write python to add"}
    )

    assert tree(spans, call) == [
        "tools/call route_specialist [TOOL]",
        "  chorus route [AGENT]",
        "    route decision [CHAIN]",
        "    code [CHAIN]",
        "      llm coder [LLM]",
    ]
    decision = attributes(one(spans, "route decision"))
    assert decision["chorus.route"] == "code" and decision["chorus.route.method"] == "rule"
    assert decision["chorus.reason"] == "keyword 'python' matched"


async def test_run_pipeline_shows_every_stage_refinement_and_review(
    server_config: ChorusConfig, clients: dict[str, ScriptedClient]
) -> None:
    _, spans, call = await _call(server_config, clients, "run_pipeline", {"input": "a sorter"})

    assert tree(spans, call) == [
        "tools/call run_pipeline [TOOL]",
        "  chorus pipeline [AGENT]",
        "    plan [CHAIN]",
        "      llm strong [LLM]",
        "    code [CHAIN]",
        "      llm coder [LLM]",
        "    review [CHAIN]",
        "      llm strong [LLM]",
        "    review decision [CHAIN]",
        "    code#2 [CHAIN]",
        "      llm coder [LLM]",
        "    review#2 [CHAIN]",
        "      llm strong (cached) [LLM]",  # the same review of the same code: the cache answers
        "    review decision [CHAIN]",
    ]
    assert [attributes(s)["chorus.review.iteration"] for s in spans if s.name == "review decision"] == [1, 2]


async def test_usage_resources_add_up_calls_tokens_and_cost_by_model_and_session(
    server_config: ChorusConfig, clients: dict[str, ScriptedClient]
) -> None:
    clients["coder"] = ScriptedClient("coder", "def f(): pass", cost_usd=None)  # a price nobody knows
    server = build_server(server_config, _factory(*clients.values()))
    async with Client(server) as client:
        first = await client.call_tool("ensemble_vote", {"prompt": "Which? A) x B) y C) z"})
        second = await client.call_tool("route_specialist", {"prompt": "Write python to add"})
        summary = await _read(client, "usage://summary")
        session_id = first.structured_content["session_id"]  # type: ignore[index]
        one_session = await _read(client, f"usage://session/{session_id}")
        templates = await client.list_resource_templates()

    assert not second.is_error
    assert (
        summary["totals"]["calls"] == 4
        and summary["totals"]["ok"] == 3
        and summary["totals"]["cancelled"] == 1
    )
    assert summary["totals"]["cost_usd"] == "0.002" and summary["totals"]["cost_complete"] is False
    assert summary["totals"]["unpriced_calls"] == 1
    assert summary["models"]["cheap"] == {
        "model": "fake/cheap",
        "calls": 1,
        "ok": 1,
        "failed": 0,
        "cancelled": 0,
        "prompt_tokens": 10,
        "completion_tokens": 4,
        "cost_usd": "0.001",
        "cost_complete": True,
        "unpriced_calls": 0,
        "cache_hits": 0,
        "cache_misses": 1,
        "saved_cost_usd": "0",
    }
    assert summary["models"]["coder"]["cost_usd"] is None  # unknown, never 0
    assert summary["models"]["strong"]["cancelled"] == 1 and summary["models"]["strong"]["cost_usd"] == "0"
    assert list(summary["sessions"]) == [second.structured_content["session_id"], session_id]  # type: ignore[index]
    assert one_session["calls"] == 3 and one_session["cost_usd"] == "0.002"
    assert any(t.uri_template == "usage://session/{session_id}" for t in templates.resource_templates)


async def _read(client: Client, uri: str) -> Any:
    contents = (await client.read_resource(uri)).contents[0]
    assert isinstance(contents, TextResourceContents)
    return json.loads(contents.text)


async def test_logs_are_structured_json_on_the_given_stream_with_trace_ids_and_no_secrets(
    server_config: ChorusConfig, clients: dict[str, ScriptedClient]
) -> None:
    register_secret(SECRET)
    stream = io.StringIO()
    handler = setup_logging("INFO", "json", stream=stream)
    try:
        await _call(
            server_config,
            clients,
            "ensemble_vote",
            {"prompt": f"use key {SECRET} with Bearer abcdefgh12345678", "models": ["broken", "mid"]},
        )
    finally:
        import logging

        logging.getLogger().removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    finished = [line for line in lines if line["msg"] == "run finished"]
    assert len(finished) == 1
    run = finished[0]
    assert run["level"] == "INFO" and run["logger"] == "chorus.runner" and run["strategy"] == "ensemble"
    assert run["calls"] == 3 and run["cost_usd"] == "0.002" and len(run["trace_id"]) == 32
    failed = [line for line in lines if line["msg"] == "model call failed"]
    assert failed and failed[0]["model"] == "broken" and "[REDACTED]" in failed[0]["error"]
    assert SECRET not in stream.getvalue() and "abcdefgh12345678" not in stream.getvalue()


def test_text_logs_keep_fields_as_key_value_pairs_and_redact_them() -> None:
    import logging

    register_secret(SECRET)
    stream = io.StringIO()
    handler = setup_logging("DEBUG", "text", stream=stream)
    try:
        logging.getLogger("chorus.test").info("call %s", SECRET, extra={"model": "m 1", "key": SECRET})
    finally:
        logging.getLogger().removeHandler(handler)
    line = stream.getvalue().strip()
    assert line.endswith('INFO chorus.test: call [REDACTED] model="m 1" key=[REDACTED]')


def _run_script(script: str, tmp_path: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    path = tmp_path / "script.py"
    path.write_text(textwrap.dedent(script))
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "CHORUS"))}
    done = subprocess.run(
        [sys.executable, str(path)],
        cwd=REPO,
        env={**clean, "PYTHONPATH": str(REPO), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


_TOOL_CALL = """
    import json, sys, threading
    import anyio
    from mcp import Client
    from chorus_mcp.config.loader import parse_config
    from chorus_mcp.server.app import build_server
    from chorus_mcp.strategies.models.testing import ScriptedClient

    CONFIG = '''
    models: {a: {model: fake/a}, b: {model: fake/b}}
    allow_unlisted_models: false
    strategies: {ensemble: {kind: ensemble, members: [a, b]}}
    %s
    '''

    async def main():
        clients = {"a": ScriptedClient("a", "B"), "b": ScriptedClient("b", "B")}
        server = build_server(parse_config(CONFIG, source="t.yaml", env={}), lambda alias, _: clients[alias])
        async with Client(server) as client:
            await client.list_tools()
            result = await client.call_tool("ensemble_vote", {"prompt": "A or B?"})
            assert not result.is_error, result
"""


def test_tracing_off_by_default_installs_no_provider_exporter_or_thread(tmp_path: Path) -> None:
    report = _run_script(
        _TOOL_CALL % ""
        + """
    before = {t.name for t in threading.enumerate()}
    anyio.run(main)
    from opentelemetry import trace
    print(json.dumps({
        "provider": type(trace.get_tracer_provider()).__name__,
        # anyio's worker threads (blocking work of the server itself) aside, no thread was started.
        "threads": sorted({t.name for t in threading.enumerate()} - before - {"AnyIO worker thread"}),
        "exporter_loaded": any(m.startswith("opentelemetry.exporter") for m in sys.modules),
        "sdk_trace_loaded": "opentelemetry.sdk.trace" in sys.modules,
    }))
""",
        tmp_path,
    )
    assert report == {
        "provider": "ProxyTracerProvider",
        "threads": [],
        "exporter_loaded": False,
        "sdk_trace_loaded": False,
    }


@pytest.fixture
def collector() -> Iterator[tuple[str, list[bytes]]]:
    with otlp_collector() as received:
        yield received


def test_with_an_endpoint_spans_are_exported_over_otlp_http_as_one_trace_per_tool_call(
    tmp_path: Path, collector: tuple[str, list[bytes]]
) -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    url, bodies = collector
    config = f"tracing: {{endpoint: '{url}', project: chorus-test}}"
    report = _run_script(
        _TOOL_CALL % config
        + """
    anyio.run(main)
    print(json.dumps({"threads": sorted(t.name for t in threading.enumerate())}))
""",
        tmp_path,
    )
    assert any(name.startswith("OtelBatch") for name in report["threads"])
    spans: list[Any] = []
    resources: list[dict[str, str]] = []
    for body in bodies:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource_spans in request.resource_spans:
            resources.append({a.key: a.value.string_value for a in resource_spans.resource.attributes})
            for scope_spans in resource_spans.scope_spans:
                spans.extend(scope_spans.spans)
    names = sorted(s.name for s in spans)
    # Only the tool call's trace: the SDK's spans for initialize, tools/list… are left out.
    assert names == sorted(
        [
            "tools/call ensemble_vote",
            "chorus ensemble",
            "member-1",
            "member-2",
            "llm a",
            "llm b",
            "vote decision",
        ]
    )
    assert len({s.trace_id for s in spans}) == 1
    assert (
        resources[0]["service.name"] == "chorus-mcp"
        and resources[0]["openinference.project.name"] == "chorus-test"
    )
    llm = next(s for s in spans if s.name == "llm a")
    found = {a.key: a.value for a in llm.attributes}
    assert found["openinference.span.kind"].string_value == "LLM"
    assert found["llm.token_count.total"].int_value == 11


def test_serve_phoenix_without_the_extra_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import logging

    from chorus_mcp.server.cli.main import main
    from chorus_mcp.server.ops import phoenix

    monkeypatch.setattr(phoenix, "installed", lambda: False)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        assert main(["serve", "--phoenix", "--log-format", "text"]) == 2
    finally:  # `serve` set up the process's logging: give pytest its own back
        root.handlers[:] = handlers
        root.setLevel(level)
    assert "uv run --extra phoenix chorus-mcp serve --phoenix" in capsys.readouterr().err
