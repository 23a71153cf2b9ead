"""A fan-out pipeline (outline → each section researched in parallel → report) through `run_pipeline`,
chosen by its `pipeline` argument: over real stdio with real provider clients against the fake
OpenAI-compatible server (one item failing), and in-process in both protocol eras with its trace."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from chorus_mcp.config.loader import parse_config
from chorus_mcp.server.app import build_server
from chorus_mcp.strategies.core.completion import CompletionRequest
from chorus_mcp.strategies.core.errors import BadRequest
from chorus_mcp.strategies.models.testing import ScriptedClient
from tests.fake_openai import FakeOpenAI, Fault, RecordedRequest
from tests.support.servers import fake_provider_config, server_env, stdio_server, write_config
from tests.tracing_support import captured_spans, tree

pytestmark = pytest.mark.anyio

SECRET = "sk-chorus-fanout-0123456789abcdef"
SECTIONS = ["Tides", "Waves", "Currents"]


def _research(outliner: str, researcher: str, writer: str) -> dict[str, Any]:
    return {
        "kind": "pipeline",
        "stages": [
            {"name": "outline", "prompt": "Outline: {input}", "step": outliner},
            {
                "name": "sections",
                "for_each": {"stage": "outline", "max_items": 5, "concurrency": 3},
                "prompt": "Research for {input}. Section: {item}",
                "step": researcher,
            },
            {"name": "report", "prompt": "Report on {input} from:\n{sections}", "step": writer},
        ],
    }


def _section_of(text: str) -> str:
    found = re.search(r"Section: (.*)", text)
    assert found is not None, text
    return found.group(1)


def _researcher(request: RecordedRequest) -> str | Fault:
    section = _section_of(request.last_user)
    if section == "Waves":
        return Fault.bad_request("This section cannot be researched.")
    return f"notes on {section}"


@pytest.mark.slow
async def test_over_stdio_each_section_is_researched_by_a_real_provider_call_and_a_failed_one_is_named(
    fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    fake_openai.script("alpha", json.dumps(SECTIONS))
    fake_openai.script("beta", _researcher)
    fake_openai.script("gamma", lambda r: "REPORT from " + r.last_user.split("from:\n", 1)[1])
    config = fake_provider_config(fake_openai, deadline_s=90, timeout_s=30)
    config["strategies"]["research"] = _research("alpha", "beta", "gamma")
    params = stdio_server(write_config(tmp_path / "chorus.yaml", config), server_env(SECRET))

    async with Client(params) as client:
        result = await client.call_tool("run_pipeline", {"input": "the sea", "pipeline": "research"})

    data: dict[str, Any] = result.structured_content or {}
    assert not result.is_error and data["ok"] is True, result.content
    assert data["answer"] == (
        "REPORT from ## 1. Tides\n\nnotes on Tides\n\n## 3. Currents\n\nnotes on Currents"
    )
    calls = [(c["model"], c["stage"], c["status"]) for c in data["calls"]]
    assert calls == [
        ("alpha", "pipeline/outline", "ok"),
        ("beta", "pipeline/sections[1]", "ok"),
        ("beta", "pipeline/sections[2]", "error"),
        ("beta", "pipeline/sections[3]", "ok"),
        ("gamma", "pipeline/report", "ok"),
    ]
    failed = data["calls"][2]
    assert "cannot be researched" in failed["error"]
    # The text the agent reads first says an item was lost, which one and why, not only the records.
    text = result.content[0].text
    assert (
        "fan-out pipeline/sections: 1 of 3 items failed: item 2 'Waves' "
        "(beta: request rejected (HTTP 400): This section cannot be researched.)"
    ) in text.splitlines()
    (fan_out,) = [d for d in data["decisions"] if d["kind"] == "for_each"]
    assert (fan_out["stage"], fan_out["items"], fan_out["answered"]) == ("pipeline/sections", 3, 2)
    assert [(f["number"], f["item"], f["stage"]) for f in fan_out["failed"]] == [
        (2, "Waves", "pipeline/sections[2]")
    ]
    assert not [d for d in data["decisions"] if d["kind"] == "note"]
    # Each section went to the provider as its own request, and the report's writer saw only the answered.
    assert sorted(_section_of(r.last_user) for r in fake_openai.requests_for("beta")) == sorted(SECTIONS)
    assert data["totals"]["calls"] == 5 and float(data["totals"]["cost_usd"]) > 0
    assert SECRET not in result.model_dump_json()


@pytest.mark.slow
async def test_over_stdio_an_outline_with_no_list_is_an_error_result_naming_the_stage(
    fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    fake_openai.script("alpha", "I would rather not outline this.")
    fake_openai.script("beta", "unused")
    config = fake_provider_config(fake_openai, deadline_s=90, timeout_s=30)
    research = _research("alpha", "beta", "gamma")
    research["stages"][1]["for_each"]["parse"] = "json"
    config["strategies"]["research"] = research
    params = stdio_server(write_config(tmp_path / "chorus.yaml", config), server_env(SECRET))

    async with Client(params) as client:
        result = await client.call_tool("run_pipeline", {"input": "the sea", "pipeline": "research"})

    data: dict[str, Any] = result.structured_content or {}
    assert result.is_error and data["ok"] is False
    assert data["error"] == (
        "stage 'pipeline/sections' failed: nothing to map over: stage 'outline' gave no JSON array "
        "(its answer began 'I would rather not outline this.')"
    )
    assert fake_openai.requests_for("beta") == []


CONFIG = {
    "models": {name: {"model": f"openai/{name}"} for name in ("outliner", "researcher", "writer")},
    "strategies": {"research": _research("outliner", "researcher", "writer")},
    "cache": {"store": "memory"},
    "defaults": {"deadline_s": 20},
}


def _last(request: CompletionRequest) -> str:
    return request.messages[-1].content


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_every_item_has_its_own_span_under_the_fan_out_stage_and_the_text_names_the_failure(
    mode: str,
) -> None:
    clients = {
        "outliner": ScriptedClient("outliner", json.dumps(SECTIONS)),
        "researcher": ScriptedClient(
            "researcher", lambda r: BadRequest("researcher", "bad section") if "Waves" in _last(r) else "x"
        ),
        "writer": ScriptedClient("writer", "the report"),
    }
    server = build_server(parse_config(json.dumps(CONFIG), env={}), lambda alias, _e: clients[alias])
    with captured_spans() as exporter:
        async with Client(server, mode=mode) as client:  # type: ignore[arg-type]
            result = await client.call_tool("run_pipeline", {"input": "the sea", "pipeline": "research"})
    spans = list(exporter.get_finished_spans())

    assert not result.is_error and (result.structured_content or {})["answer"] == "the report"
    call = next(s for s in spans if s.name == "tools/call run_pipeline")
    assert tree(spans, call, by_name=True) == [
        "tools/call run_pipeline [TOOL]",
        "  chorus pipeline [AGENT]",
        "    outline [CHAIN]",
        "      llm outliner [LLM]",
        "    report [CHAIN]",
        "      llm writer [LLM]",
        "    sections [CHAIN]",
        "      for_each decision [CHAIN]",
        "      sections[1] [CHAIN]",
        "        llm researcher [LLM]",
        "      sections[2] [CHAIN]",
        "        llm researcher [LLM]",
        "      sections[3] [CHAIN]",
        "        llm researcher [LLM]",
    ]
    decision = next(s for s in spans if s.name == "for_each decision")
    assert dict(decision.attributes or {})["chorus.for_each.failed"] == (2,)
    fan_outs = [d for d in (result.structured_content or {})["decisions"] if d["kind"] == "for_each"]
    assert [(d["stage"], [f["number"] for f in d["failed"]]) for d in fan_outs] == [
        ("pipeline/sections", [2])
    ]
    assert "fan-out pipeline/sections: 1 of 3 items failed: item 2 'Waves' (" in result.content[0].text
