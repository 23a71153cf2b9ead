"""Against a real Arize Phoenix: a real stdio server exports its trace over OTLP/HTTP, and the spans read
back through Phoenix's own client API have the tree, model names and token counts of the tool call.

Phoenix is the optional `phoenix` extra; without it this module is skipped. It is started once for the
module (10 s or more: importing it is most of that) through `server.ops.phoenix`, the same launcher as
`chorus-mcp serve --phoenix`: loopback only, offline-safe, its data in a temporary folder.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fake_openai import FakeOpenAI

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("phoenix") is None,
        reason="needs a real Phoenix: the 'phoenix' extra is not installed (uv sync --extra phoenix)",
    ),
]

REPO = Path(__file__).resolve().parents[2]
PHOENIX_START_S = 300.0
"""Generous: Phoenix starts in 10-20 s on an idle machine, but took 3 minutes on a loaded one here."""
SPANS_ARRIVE_S = 30.0
MODELS = ("alpha", "beta", "gamma")


@pytest.fixture(scope="module")
def phoenix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from chorus_mcp.server.ops.phoenix import free_port, start_local_phoenix

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTHONPATH", str(REPO))
        started = start_local_phoenix(free_port(), tmp_path_factory.mktemp("phoenix"))
    try:
        if not started.ready(PHOENIX_START_S):
            log = started.log_path.read_text(errors="replace")[-3000:] if started.log_path else ""
            pytest.fail(f"Phoenix did not start within {PHOENIX_START_S:.0f}s:\n{log}")
        yield started.url
    finally:
        started.stop()


def _config(fake: FakeOpenAI, phoenix_url: str, project: str, path: Path) -> Path:
    models = {
        alias: {
            "model": f"openai/{alias}",
            "api_base": fake.base_url,
            "api_key_env": "CHORUS_TEST_KEY",
            "input_cost_per_mtok": 1,
            "output_cost_per_mtok": 2,
            "timeout_s": 30,
        }
        for alias in MODELS
    }
    config = {
        "models": models,
        "allow_unlisted_models": False,
        "strategies": {
            "ensemble": {
                "kind": "ensemble",
                "members": list(MODELS),
                "extract": "choice",
                "early_stop": False,
            }
        },
        "defaults": {"deadline_s": 30},
        "tracing": {"endpoint": phoenix_url, "project": project},
    }
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


async def test_a_tool_calls_trace_reaches_phoenix_with_its_llm_spans_and_token_counts(
    phoenix: str, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    from mcp import Client, StdioServerParameters

    fake_openai.script("alpha", "The answer is B.", latency_s=0.05)
    fake_openai.script("beta", "B", latency_s=0.05)
    fake_openai.script("gamma", "C", latency_s=0.05)
    project = f"chorus-test-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHORUS", "OTEL_"))}
    env.update(
        CHORUS_TEST_KEY="sk-chorus-phoenix-0123456789abcdef",
        PYTHONPATH=str(REPO),
        LITELLM_OFFLINE_MODE="true",
        LITELLM_LOCAL_MODEL_COST_MAP="True",
    )
    config = _config(fake_openai, phoenix, project, tmp_path / "chorus.yaml")
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "chorus_mcp.server.cli.main", "serve", "--config", str(config)],
        env=env,
        cwd=REPO,
    )
    async with Client(params) as client:
        result = await client.call_tool(
            "ensemble_vote", {"prompt": "Which? A) x B) y C) z", "detail": "full"}
        )
    # Leaving the session ended the server, which sent what it had left to Phoenix on its way out.
    assert not result.is_error, result.content
    data: dict[str, Any] = result.structured_content  # type: ignore[assignment]
    assert data["answer"] == "B"

    spans = _read_back(phoenix, project, expected=9)
    by_id = {s["context"]["span_id"]: s for s in spans}
    names = sorted(s["name"] for s in spans)
    assert names == sorted(
        [
            "tools/call ensemble_vote",
            "chorus ensemble",
            "member-1",
            "member-2",
            "member-3",
            *[f"llm {m}" for m in MODELS],
            "vote decision",
        ]
    )
    assert len({s["context"]["trace_id"] for s in spans}) == 1
    top = next(s for s in spans if s["name"] == "tools/call ensemble_vote")
    # The root of what the server sent. (Its parent, when the calling client traces too, is the client's
    # own span, in the caller's process: the context travels in the request's _meta.)
    assert top.get("parent_id") not in by_id
    root = next(s for s in spans if s["name"] == "chorus ensemble")
    assert root["parent_id"] == top["context"]["span_id"] and root["span_kind"] == "AGENT"
    assert root["attributes"]["session.id"] == data["session_id"]

    llm_spans = [s for s in spans if s["span_kind"] == "LLM"]
    assert len(llm_spans) == 3
    tokens = {c["model"]: (c["prompt_tokens"], c["completion_tokens"]) for c in data["calls"]}
    for span in llm_spans:
        attributes = span["attributes"]
        alias = attributes["chorus.model"]
        assert attributes["llm.model_name"] == alias  # the fake server answers under the model's own name
        assert attributes["llm.provider"] == "openai"
        prompt, completion = tokens[alias]
        assert attributes["llm.token_count.prompt"] == prompt
        assert attributes["llm.token_count.completion"] == completion
        assert attributes["llm.token_count.total"] == prompt + completion
        parent = by_id[span["parent_id"]]
        assert parent["name"].startswith("member-") and parent["attributes"]["chorus.model"] == alias
        assert parent["parent_id"] == root["context"]["span_id"]


def _read_back(url: str, project: str, *, expected: int) -> list[dict[str, Any]]:
    """The project's spans, once Phoenix has ingested `expected` of them (it writes in the background)."""
    from phoenix.client import Client as PhoenixClient

    client = PhoenixClient(base_url=url)
    deadline = time.monotonic() + SPANS_ARRIVE_S
    spans: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        try:
            spans = [dict(s) for s in client.spans.get_spans(project_identifier=project, limit=100)]
        except Exception:  # the project appears with its first span
            spans = []
        if len(spans) >= expected:
            return spans
        time.sleep(0.5)
    pytest.fail(f"Phoenix has {len(spans)} of {expected} spans after {SPANS_ARRIVE_S:.0f}s: {spans}")
