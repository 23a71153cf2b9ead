"""The bundled default's `research` pipeline: chosen by `run_pipeline`'s `pipeline` argument, it outlines,
researches each section as its own call, and writes the report from the sections' notes."""

from __future__ import annotations

import re
from typing import Any

import pytest
from mcp import Client

from chorus_mcp.config.loader import load_config
from chorus_mcp.server.app import build_server
from chorus_mcp.strategies.core.completion import CompletionRequest
from chorus_mcp.strategies.core.spec import PipelineSpec
from chorus_mcp.strategies.models.testing import ScriptedClient

pytestmark = pytest.mark.anyio


def _answer(request: CompletionRequest) -> str:
    prompt = request.messages[-1].content
    if prompt.startswith("List the 3 to 5 sections"):
        return '```json\n["Causes", "Cycles", "Effects"]\n```'
    if (section := re.search(r"\nSection: (.*)\n", prompt)) is not None:
        return f"facts about {section.group(1)}"
    return "REPORT:\n" + prompt.split("Section notes:\n", 1)[1]


def test_the_default_research_pipeline_fans_out_over_its_outline() -> None:
    research = load_config(None).strategies["research"]
    assert isinstance(research, PipelineSpec)
    fan_out = research.stages[1].for_each
    assert fan_out is not None and fan_out.stage == "outline" and fan_out.max_items == 5


async def test_the_default_research_pipeline_answers_through_run_pipeline() -> None:
    config = load_config(None)

    def factory(alias: str, _entry: Any) -> ScriptedClient:
        return ScriptedClient(alias, _answer)

    async with Client(build_server(config, factory)) as client:
        result = await client.call_tool(
            "run_pipeline", {"input": "How do tides work?", "pipeline": "research"}
        )

    data: dict[str, Any] = result.structured_content or {}
    assert not result.is_error, result.content
    assert [(c["model"], c["stage"]) for c in data["calls"]] == [
        ("fast", "pipeline/outline"),
        ("fast", "pipeline/sections[1]"),
        ("fast", "pipeline/sections[2]"),
        ("fast", "pipeline/sections[3]"),
        ("strong", "pipeline/report"),
    ]
    assert data["answer"] == (
        "REPORT:\n## 1. Causes\n\nfacts about Causes\n\n## 2. Cycles\n\nfacts about Cycles"
        "\n\n## 3. Effects\n\nfacts about Effects"
    )
    fan_outs = [(d["stage"], d["items"], d["answered"]) for d in data["decisions"] if d["kind"] == "for_each"]
    assert fan_outs == [("pipeline/sections", 3, 3)]
    assert "fan-out pipeline/sections: 3 of 3 items answered" in result.content[0].text
